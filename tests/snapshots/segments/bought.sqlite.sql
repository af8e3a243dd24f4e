SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND customers.customer_id IN (SELECT lines.customer_id 
FROM (SELECT order_items.customer_id AS customer_id, order_items.order_id AS order_id, order_items.sku AS sku, coalesce(order_items.category, ?) AS category, coalesce(order_items.brand, ?) AS brand, order_items.is_sale AS is_sale, p.currency AS currency, order_items.quantity - order_items.returned_quantity AS units, ((order_items.quantity * order_items.unit_price - order_items.discount) * (order_items.quantity - order_items.returned_quantity)) / (nullif(order_items.quantity, ?) + 0.0) AS revenue 
FROM order_items JOIN (SELECT orders.customer_id AS customer_id, orders.order_id AS order_id, orders.ordered_at AS ordered_at, orders.channel AS channel, orders.currency AS currency, orders.discount AS discount, orders.coupon AS coupon, orders.total - orders.refunded AS amount 
FROM orders 
WHERE orders.workspace_id = ? AND orders.status != ? AND orders.ordered_at <= ? AND orders.total - orders.refunded > ? AND orders.ordered_at >= ?) AS p ON order_items.order_id = p.order_id AND order_items.customer_id = p.customer_id 
WHERE order_items.workspace_id = ? AND order_items.quantity - order_items.returned_quantity > ? AND ((order_items.quantity * order_items.unit_price - order_items.discount) * (order_items.quantity - order_items.returned_quantity)) / (nullif(order_items.quantity, ?) + 0.0) > ? AND order_items.category IN (__[POSTCOMPILE_category_1]) AND order_items.brand IN (__[POSTCOMPILE_brand_1])) AS lines)
-- as_of_1 = datetime.datetime(2026, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- brand_1 = ['Kizuna']
-- category_1 = ['スキンケア']
-- coalesce_1 = '(none)'
-- coalesce_2 = '(none)'
-- nullif_1 = 0
-- param_1 = 0
-- param_2 = 0
-- param_3 = 0
-- since_1 = datetime.datetime(2025, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- status_1 = 'cancelled'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
