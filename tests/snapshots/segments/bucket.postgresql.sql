SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND CAST(CAST(%(param_1)s::VARCHAR || substr(md5(%(param_2)s::VARCHAR || CAST(customers.customer_id AS TEXT)), %(substr_1)s::INTEGER, %(substr_2)s::INTEGER) AS BIT(32)) AS BIGINT) %% %(param_3)s::BIGINT >= %(param_4)s::BIGINT AND CAST(CAST(%(param_1)s::VARCHAR || substr(md5(%(param_2)s::VARCHAR || CAST(customers.customer_id AS TEXT)), %(substr_1)s::INTEGER, %(substr_2)s::INTEGER) AS BIT(32)) AS BIGINT) %% %(param_3)s::BIGINT <= %(param_5)s::BIGINT
-- param_1 = 'x'
-- param_2 = 'spring:'
-- param_3 = 100
-- param_4 = 0
-- param_5 = 9
-- substr_1 = 1
-- substr_2 = 8
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
