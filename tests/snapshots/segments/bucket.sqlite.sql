SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND kizuna_bucket(customers.customer_id, ?, ?) >= ? AND kizuna_bucket(customers.customer_id, ?, ?) <= ?
-- kizuna_bucket_1 = 'spring'
-- kizuna_bucket_2 = 100
-- kizuna_bucket_3 = 0
-- kizuna_bucket_4 = 9
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
