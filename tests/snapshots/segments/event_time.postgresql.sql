SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (EXISTS (SELECT * 
FROM (SELECT events.customer_id AS customer_id 
FROM events 
WHERE events.workspace_id = %(workspace_id_2)s::UUID AND events.name = %(name_1)s::VARCHAR AND events.occurred_at <= %(occurred_at_1)s::TIMESTAMP WITH TIME ZONE GROUP BY events.customer_id 
HAVING min(events.occurred_at) < %(end_1)s::TIMESTAMP WITH TIME ZONE) AS grouped 
WHERE grouped.customer_id = customers.customer_id))
-- end_1 = datetime.datetime(2025, 12, 31, 15, 0, tzinfo=datetime.timezone.utc)
-- name_1 = 'Product Viewed'
-- occurred_at_1 = datetime.datetime(2026, 11, 23, 3, 0, tzinfo=datetime.timezone.utc)
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
