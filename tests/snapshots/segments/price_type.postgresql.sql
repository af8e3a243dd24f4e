SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (EXISTS (SELECT pb.customer_id 
FROM (SELECT per_customer.customer_id AS customer_id, per_customer.units AS units, per_customer.sale_units AS sale_units, per_customer.amount AS amount, per_customer.sale_amount AS sale_amount, per_customer.currency_min AS currency_min, per_customer.currency_max AS currency_max, per_customer.units - per_customer.sale_units AS full_price_units, CAST(per_customer.sale_units AS FLOAT) / CAST(per_customer.units AS NUMERIC) AS sale_unit_share, per_customer.amount - per_customer.sale_amount AS full_price_amount, per_customer.sale_amount / CAST(per_customer.amount AS FLOAT) AS sale_amount_share, CASE WHEN (per_customer.sale_amount / CAST(per_customer.amount AS FLOAT) <= %(param_1)s) THEN %(param_2)s::VARCHAR WHEN (per_customer.sale_amount / CAST(per_customer.amount AS FLOAT) >= %(param_3)s) THEN %(param_4)s::VARCHAR ELSE %(param_5)s::VARCHAR END AS pb_class 
FROM (SELECT lines.customer_id AS customer_id, sum(lines.units) AS units, sum(CASE WHEN lines.is_sale THEN lines.units ELSE %(param_6)s::INTEGER END) AS sale_units, sum(lines.revenue) AS amount, sum(CASE WHEN lines.is_sale THEN lines.revenue ELSE %(param_7)s END) AS sale_amount, min(lines.currency) AS currency_min, max(lines.currency) AS currency_max 
FROM (SELECT order_items.customer_id AS customer_id, order_items.order_id AS order_id, order_items.sku AS sku, coalesce(order_items.category, %(coalesce_1)s::VARCHAR) AS category, coalesce(order_items.brand, %(coalesce_2)s::VARCHAR) AS brand, order_items.is_sale AS is_sale, p.currency AS currency, order_items.quantity - order_items.returned_quantity AS units, ((order_items.quantity * order_items.unit_price - order_items.discount) * (order_items.quantity - order_items.returned_quantity)) / CAST(nullif(order_items.quantity, %(nullif_1)s::INTEGER) AS NUMERIC) AS revenue 
FROM order_items JOIN (SELECT orders.customer_id AS customer_id, orders.order_id AS order_id, orders.ordered_at AS ordered_at, orders.channel AS channel, orders.currency AS currency, orders.discount AS discount, orders.coupon AS coupon, orders.total - orders.refunded AS amount 
FROM orders 
WHERE orders.workspace_id = %(workspace_id_2)s::UUID AND orders.status != %(status_1)s::VARCHAR AND orders.ordered_at <= %(as_of_1)s::TIMESTAMP WITH TIME ZONE AND orders.total - orders.refunded > %(param_8)s::INTEGER AND orders.ordered_at >= %(since_1)s::TIMESTAMP WITH TIME ZONE) AS p ON order_items.order_id = p.order_id AND order_items.customer_id = p.customer_id 
WHERE order_items.workspace_id = %(workspace_id_3)s::UUID AND order_items.quantity - order_items.returned_quantity > %(param_9)s::INTEGER AND ((order_items.quantity * order_items.unit_price - order_items.discount) * (order_items.quantity - order_items.returned_quantity)) / CAST(nullif(order_items.quantity, %(nullif_1)s::INTEGER) AS NUMERIC) > %(param_10)s::INTEGER) AS lines GROUP BY lines.customer_id) AS per_customer) AS pb 
WHERE pb.pb_class = %(pb_class_1)s::VARCHAR AND pb.customer_id = customers.customer_id))
-- as_of_1 = datetime.datetime(2026, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- coalesce_1 = '(none)'
-- coalesce_2 = '(none)'
-- nullif_1 = 0
-- param_1 = 0.2
-- param_10 = 0
-- param_2 = 'full_price'
-- param_3 = 0.8
-- param_4 = 'sale'
-- param_5 = 'mixed'
-- param_6 = 0
-- param_7 = 0.0
-- param_8 = 0
-- param_9 = 0
-- pb_class_1 = 'full_price'
-- since_1 = datetime.datetime(2025, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- status_1 = 'cancelled'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
