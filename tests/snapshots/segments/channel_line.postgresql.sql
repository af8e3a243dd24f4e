SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = %(workspace_id_1)s::UUID AND customers.merged_into IS NULL AND (EXISTS (SELECT * 
FROM consents 
WHERE consents.workspace_id = %(workspace_id_2)s::UUID AND consents.customer_id = customers.customer_id AND consents.channel = %(channel_1)s::VARCHAR AND consents.status = %(status_1)s::VARCHAR)) AND (EXISTS (SELECT * 
FROM identities 
WHERE identities.workspace_id = %(workspace_id_3)s::UUID AND identities.customer_id = customers.customer_id AND identities.kind = %(kind_1)s::VARCHAR AND NOT (EXISTS (SELECT * 
FROM suppressions 
WHERE suppressions.workspace_id = %(workspace_id_4)s::UUID AND suppressions.channel = %(channel_2)s::VARCHAR AND suppressions.address_hash = identities.value_hash))))
-- channel_1 = 'line'
-- channel_2 = 'line'
-- kind_1 = 'line_user_id'
-- status_1 = 'opted_in'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_4 = UUID('00000000-0000-7000-8000-000000000001')
