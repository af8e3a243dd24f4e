SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND customers.prefecture IN (__[POSTCOMPILE_prefecture_1])
-- prefecture_1 = ['13', '24', '25', '26', '27', '28', '29', '30', 'Hyogo', 'Kyoto', 'Mie', 'Nara', 'Osaka', 'Shiga', 'Tokyo', 'Wakayama', 'hyogo', 'hyogo-ken', 'kyoto', 'kyoto-fu', 'mie', 'mie-ken', 'nara', 'nara-ken', 'osaka', 'osaka-fu', 'shiga', 'shiga-ken', 'tokyo', 'tokyo-to', 'wakayama', 'wakayama-ken', '三重', '三重県', '京都', '京都府', '兵庫', '兵庫県', '和歌山', '和歌山県', '大阪', '大阪府', '奈良', '奈良県', '東京', '東京都', '滋賀', '滋賀県']
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
