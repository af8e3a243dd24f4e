SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (EXISTS (SELECT * 
FROM (SELECT events.customer_id AS customer_id 
FROM events 
WHERE events.workspace_id = %(workspace_id_2)s::UUID AND events.name = %(name_1)s::VARCHAR AND events.occurred_at >= %(start_1)s::TIMESTAMP WITH TIME ZONE AND events.occurred_at < %(end_1)s::TIMESTAMP WITH TIME ZONE AND CASE WHEN (jsonb_typeof(jsonb_extract_path(events.properties, %(jsonb_extract_path_1)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_1])) THEN jsonb_extract_path_text(events.properties, %(jsonb_extract_path_text_1)s::VARCHAR) ELSE NULL END = %(param_1)s::VARCHAR AND CASE WHEN (jsonb_typeof(jsonb_extract_path(events.properties, %(jsonb_extract_path_2)s::VARCHAR)) IN (__[POSTCOMPILE_jsonb_typeof_2])) THEN CAST(jsonb_extract_path_text(events.properties, %(jsonb_extract_path_text_2)s::VARCHAR) AS FLOAT) ELSE NULL END >= %(param_2)s::INTEGER GROUP BY events.customer_id 
HAVING count(*) >= %(count_1)s::INTEGER) AS grouped 
WHERE grouped.customer_id = customers.customer_id))
-- count_1 = 3
-- end_1 = datetime.datetime(2026, 11, 23, 3, 0, 0, 1, tzinfo=datetime.timezone.utc)
-- jsonb_extract_path_1 = 'category'
-- jsonb_extract_path_2 = 'price'
-- jsonb_extract_path_text_1 = 'category'
-- jsonb_extract_path_text_2 = 'price'
-- jsonb_typeof_1 = ['string']
-- jsonb_typeof_2 = ['number']
-- name_1 = 'Product Viewed'
-- param_1 = 'スキンケア'
-- param_2 = 3000
-- start_1 = datetime.datetime(2026, 10, 24, 3, 0, tzinfo=datetime.timezone.utc)
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
