SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND customers.birth_md IN (__[POSTCOMPILE_birth_md_1])
-- birth_md_1 = ['11-23', '11-24', '11-25', '11-26', '11-27', '11-28', '11-29', '11-30']
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
