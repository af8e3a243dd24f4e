SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND (EXISTS (SELECT * 
FROM consents 
WHERE consents.workspace_id = ? AND consents.customer_id = customers.customer_id AND consents.channel = ? AND consents.status = ?)) AND (EXISTS (SELECT * 
FROM identities 
WHERE identities.workspace_id = ? AND identities.customer_id = customers.customer_id AND identities.kind = ? AND NOT (EXISTS (SELECT * 
FROM suppressions 
WHERE suppressions.workspace_id = ? AND suppressions.channel = ? AND suppressions.address_hash = identities.value_hash))))
-- channel_1 = 'line'
-- channel_2 = 'line'
-- kind_1 = 'line_user_id'
-- status_1 = 'opted_in'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_4 = UUID('00000000-0000-7000-8000-000000000001')
