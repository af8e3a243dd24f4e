SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (CASE WHEN (jsonb_typeof(jsonb_extract_path(customers.attributes, %(jsonb_extract_path_1)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_1])) THEN jsonb_extract_path_text(customers.attributes, %(jsonb_extract_path_text_1)s::VARCHAR) ELSE NULL END IN (__[POSTCOMPILE_param_1]) OR CASE WHEN (jsonb_typeof(jsonb_extract_path(customers.attributes, %(jsonb_extract_path_1)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_2])) THEN CAST(jsonb_extract_path_text(customers.attributes, %(jsonb_extract_path_text_1)s::VARCHAR) AS FLOAT) ELSE NULL END IN (__[POSTCOMPILE_param_2]) OR CASE WHEN (jsonb_typeof(jsonb_extract_path(customers.attributes, %(jsonb_extract_path_1)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_3])) THEN jsonb_extract_path_text(customers.attributes, %(jsonb_extract_path_text_1)s::VARCHAR) = %(jsonb_extract_path_text_2)s::VARCHAR ELSE NULL END IN (__[POSTCOMPILE_param_3]))
-- jsonb_extract_path_1 = 'skin_type'
-- jsonb_extract_path_text_1 = 'skin_type'
-- jsonb_extract_path_text_2 = 'true'
-- jsonb_typeof_1 = ['string']
-- jsonb_typeof_2 = ['number']
-- jsonb_typeof_3 = ['boolean']
-- param_1 = ['dry']
-- param_2 = [3]
-- param_3 = [True]
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
