SELECT customers.customer_id 
FROM customers LEFT OUTER JOIN (SELECT customer_metrics.workspace_id AS workspace_id, customer_metrics.customer_id AS customer_id, customer_metrics.as_of AS as_of, customer_metrics.recency_days AS recency_days, customer_metrics.frequency AS frequency, customer_metrics.monetary AS monetary, customer_metrics.r_score AS r_score, customer_metrics.f_score AS f_score, customer_metrics.m_score AS m_score, customer_metrics.rfm_segment AS rfm_segment, customer_metrics.p_alive AS p_alive, customer_metrics.expected_purchases AS expected_purchases, customer_metrics.clv AS clv, customer_metrics.expected_next_order_at AS expected_next_order_at, customer_metrics.computed_at AS computed_at 
FROM customer_metrics 
WHERE customer_metrics.workspace_id = %(workspace_id_1)s::UUID) AS metrics_1 ON metrics_1.customer_id = customers.customer_id 
WHERE customers.workspace_id = %(workspace_id_2)s::UUID AND customers.merged_into IS NULL AND metrics_1.clv > %(clv_1)s::INTEGER
-- clv_1 = 30000
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
