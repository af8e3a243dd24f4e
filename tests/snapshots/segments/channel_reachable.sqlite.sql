SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND (EXISTS (SELECT * 
FROM consents 
WHERE consents.workspace_id = ? AND consents.customer_id = customers.customer_id AND consents.channel = ? AND consents.status = ?)) AND customers.email_hash IS NOT NULL AND NOT (EXISTS (SELECT * 
FROM suppressions 
WHERE suppressions.workspace_id = ? AND suppressions.channel = ? AND suppressions.address_hash = customers.email_hash))
-- channel_1 = 'email'
-- channel_2 = 'email'
-- status_1 = 'opted_in'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
