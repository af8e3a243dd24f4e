SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND customers.customer_id IN (SELECT events.customer_id 
FROM events 
WHERE events.workspace_id = ? AND events.name = ? AND events.occurred_at <= ? GROUP BY events.customer_id 
HAVING min(events.occurred_at) < ?)
-- end_1 = datetime.datetime(2025, 12, 31, 15, 0, tzinfo=datetime.timezone.utc)
-- name_1 = 'Product Viewed'
-- occurred_at_1 = datetime.datetime(2026, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
