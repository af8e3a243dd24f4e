SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND customers.customer_id IN (SELECT p.customer_id 
FROM (SELECT orders.customer_id AS customer_id, orders.order_id AS order_id, orders.ordered_at AS ordered_at, orders.channel AS channel, orders.currency AS currency, orders.discount AS discount, orders.coupon AS coupon, orders.total - orders.refunded AS amount 
FROM orders 
WHERE orders.workspace_id = ? AND orders.status != ? AND orders.ordered_at <= ? AND orders.total - orders.refunded > ?) AS p GROUP BY p.customer_id 
HAVING sum(p.amount) / (nullif(count(*), ?) + 0.0) >= ?)
-- as_of_1 = datetime.datetime(2026, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- nullif_1 = 0
-- param_1 = 0
-- param_2 = 5000.0
-- status_1 = 'cancelled'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
