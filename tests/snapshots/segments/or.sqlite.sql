SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND (coalesce(instr(customers.city, ?), ?) > ? OR customers.email_enc IS NOT NULL)
-- coalesce_1 = 0
-- coalesce_2 = 0
-- kizuna_position_1 = '市'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
