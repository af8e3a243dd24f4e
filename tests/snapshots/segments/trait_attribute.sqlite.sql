SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND (CASE WHEN (json_type(customers.attributes, ?) IN (__[POSTCOMPILE_json_type_2])) THEN json_extract(customers.attributes, ?) ELSE NULL END IN (__[POSTCOMPILE_param_1]) OR CASE WHEN (json_type(customers.attributes, ?) IN (__[POSTCOMPILE_json_type_3])) THEN json_extract(customers.attributes, ?) ELSE NULL END IN (__[POSTCOMPILE_param_2]) OR CASE WHEN (json_type(customers.attributes, ?) IN (__[POSTCOMPILE_json_type_4])) THEN json_extract(customers.attributes, ?) = ? ELSE NULL END IN (__[POSTCOMPILE_param_3]))
-- json_extract_1 = '$."skin_type"'
-- json_extract_2 = 1
-- json_type_1 = '$."skin_type"'
-- json_type_2 = ['text']
-- json_type_3 = ['integer', 'real']
-- json_type_4 = ['true', 'false']
-- param_1 = ['dry']
-- param_2 = [3]
-- param_3 = [True]
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
