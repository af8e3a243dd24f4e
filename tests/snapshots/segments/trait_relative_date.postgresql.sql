SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND customers.registered_at < %(end_1)s::TIMESTAMP WITH TIME ZONE
-- end_1 = datetime.datetime(2026, 10, 24, 3, 0, tzinfo=datetime.timezone.utc)
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
