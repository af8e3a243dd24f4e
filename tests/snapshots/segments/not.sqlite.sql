SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND coalesce(customers.prefecture IN (__[POSTCOMPILE_prefecture_1]), 0) = 0
-- prefecture_1 = ['東京都']
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
