SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND NOT (EXISTS (SELECT events.customer_id 
FROM events 
WHERE events.workspace_id = ? AND events.name = ? AND events.occurred_at >= ? AND events.occurred_at < ? AND events.customer_id = customers.customer_id))
-- end_1 = datetime.datetime(2026, 11, 23, 3, 0, 0, 1, tzinfo=datetime.timezone.utc)
-- name_1 = 'Checkout Started'
-- start_1 = datetime.datetime(2026, 10, 31, 15, 0, tzinfo=datetime.timezone.utc)
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
