SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND CASE WHEN (json_type(customers.attributes, ?) IN (__[POSTCOMPILE_json_type_2])) THEN json_extract(customers.attributes, ?) ELSE NULL END IS NOT NULL AND CASE WHEN (json_type(customers.attributes, ?) IN (__[POSTCOMPILE_json_type_2])) THEN json_extract(customers.attributes, ?) ELSE NULL END >= ? AND CASE WHEN (json_type(customers.attributes, ?) IN (__[POSTCOMPILE_json_type_2])) THEN json_extract(customers.attributes, ?) ELSE NULL END < ?
-- json_extract_1 = '$."anniversary"'
-- json_type_1 = '$."anniversary"'
-- json_type_2 = ['text']
-- param_1 = '2026-11-24'
-- param_2 = '2026-12-01'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
