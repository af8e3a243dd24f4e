SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (EXISTS (SELECT * 
FROM (SELECT p.customer_id AS customer_id 
FROM (SELECT orders.customer_id AS customer_id, orders.order_id AS order_id, orders.ordered_at AS ordered_at, orders.channel AS channel, orders.currency AS currency, orders.discount AS discount, orders.coupon AS coupon, orders.total - orders.refunded AS amount 
FROM orders 
WHERE orders.workspace_id = %(workspace_id_2)s::UUID AND orders.status != %(status_1)s::VARCHAR AND orders.ordered_at <= %(as_of_1)s::TIMESTAMP WITH TIME ZONE AND orders.total - orders.refunded > %(param_1)s::INTEGER) AS p GROUP BY p.customer_id 
HAVING max(p.ordered_at) >= %(start_1)s::TIMESTAMP WITH TIME ZONE AND max(p.ordered_at) < %(end_1)s::TIMESTAMP WITH TIME ZONE) AS grouped 
WHERE grouped.customer_id = customers.customer_id))
-- as_of_1 = datetime.datetime(2026, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- end_1 = datetime.datetime(2026, 11, 23, 3, 0, 0, 1, tzinfo=datetime.timezone.utc)
-- param_1 = 0
-- start_1 = datetime.datetime(2026, 10, 24, 3, 0, tzinfo=datetime.timezone.utc)
-- status_1 = 'cancelled'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
