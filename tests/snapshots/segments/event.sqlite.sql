SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND customers.customer_id IN (SELECT events.customer_id 
FROM events 
WHERE events.workspace_id = ? AND events.name = ? AND events.occurred_at >= ? AND events.occurred_at < ? AND CASE WHEN (json_type(events.properties, ?) IN (__[POSTCOMPILE_json_type_2])) THEN json_extract(events.properties, ?) ELSE NULL END = ? AND CASE WHEN (json_type(events.properties, ?) IN (__[POSTCOMPILE_json_type_4])) THEN json_extract(events.properties, ?) ELSE NULL END >= ? GROUP BY events.customer_id 
HAVING count(*) >= ?)
-- count_1 = 3
-- end_1 = datetime.datetime(2026, 11, 23, 3, 0, 0, 1, tzinfo=datetime.timezone.utc)
-- json_extract_1 = '$."category"'
-- json_extract_2 = '$."price"'
-- json_type_1 = '$."category"'
-- json_type_2 = ['text']
-- json_type_3 = '$."price"'
-- json_type_4 = ['integer', 'real']
-- name_1 = 'Product Viewed'
-- param_1 = 'スキンケア'
-- param_2 = 3000
-- start_1 = datetime.datetime(2026, 10, 24, 3, 0, tzinfo=datetime.timezone.utc)
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
