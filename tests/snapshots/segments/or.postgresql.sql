SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (coalesce(strpos(customers.city, %(kizuna_position_1)s::VARCHAR), %(coalesce_1)s::INTEGER) > %(coalesce_2)s::INTEGER OR customers.email_enc IS NOT NULL)
-- coalesce_1 = 0
-- coalesce_2 = 0
-- kizuna_position_1 = '市'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
