SELECT customers.customer_id 
FROM customers LEFT OUTER JOIN (SELECT p.customer_id AS customer_id, count(*) AS n, sum(p.amount) AS total 
FROM (SELECT orders.customer_id AS customer_id, orders.order_id AS order_id, orders.ordered_at AS ordered_at, orders.channel AS channel, orders.currency AS currency, orders.discount AS discount, orders.coupon AS coupon, orders.total - orders.refunded AS amount 
FROM orders 
WHERE orders.workspace_id = ? AND orders.status != ? AND orders.ordered_at <= ? AND orders.total - orders.refunded > ? AND orders.channel IN (__[POSTCOMPILE_channel_1])) AS p GROUP BY p.customer_id) AS orders_1 ON orders_1.customer_id = customers.customer_id 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND coalesce(coalesce(orders_1.total, ?) >= ? AND coalesce(orders_1.total, ?) <= ?, 0) = 1
-- as_of_1 = datetime.datetime(2026, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- channel_1 = ['online']
-- coalesce_1 = 0.0
-- coalesce_2 = 10000.0
-- coalesce_3 = 50000.0
-- param_1 = 0
-- status_1 = 'cancelled'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
