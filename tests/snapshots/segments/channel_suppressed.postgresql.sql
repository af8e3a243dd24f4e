SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (EXISTS (SELECT * 
FROM suppressions 
WHERE suppressions.workspace_id = %(workspace_id_2)s::UUID AND suppressions.channel = %(channel_1)s::VARCHAR AND suppressions.address_hash = customers.phone_hash))
-- channel_1 = 'sms'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
