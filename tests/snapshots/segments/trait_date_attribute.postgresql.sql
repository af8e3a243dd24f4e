SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND CASE WHEN (jsonb_typeof(jsonb_extract_path(customers.attributes, %(jsonb_extract_path_1)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_1])) THEN jsonb_extract_path_text(customers.attributes, %(jsonb_extract_path_text_1)s::VARCHAR) ELSE NULL END IS NOT NULL AND CASE WHEN (jsonb_typeof(jsonb_extract_path(customers.attributes, %(jsonb_extract_path_1)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_1])) THEN jsonb_extract_path_text(customers.attributes, %(jsonb_extract_path_text_1)s::VARCHAR) ELSE NULL END >= %(param_1)s::VARCHAR AND CASE WHEN (jsonb_typeof(jsonb_extract_path(customers.attributes, %(jsonb_extract_path_1)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_1])) THEN jsonb_extract_path_text(customers.attributes, %(jsonb_extract_path_text_1)s::VARCHAR) ELSE NULL END < %(param_2)s::VARCHAR
-- jsonb_extract_path_1 = 'anniversary'
-- jsonb_extract_path_text_1 = 'anniversary'
-- jsonb_typeof_1 = ['string']
-- param_1 = '2026-11-24'
-- param_2 = '2026-12-01'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
