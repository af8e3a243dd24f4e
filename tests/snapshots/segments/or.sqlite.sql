SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND (coalesce(coalesce(instr(customers.city, ?), ?) > ?, 0) = 1 OR coalesce(customers.email_enc IS NOT NULL, 0) = 1)
-- coalesce_1 = 0
-- coalesce_2 = 0
-- kizuna_position_1 = '市'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
