SELECT customers.customer_id 
FROM customers LEFT OUTER JOIN (SELECT consents.customer_id AS customer_id 
FROM consents 
WHERE consents.workspace_id = %(workspace_id_1)s::UUID AND consents.channel = %(channel_1)s::VARCHAR AND consents.status = %(status_1)s::VARCHAR) AS consent_line_1 ON consent_line_1.customer_id = customers.customer_id LEFT OUTER JOIN (SELECT DISTINCT identities.customer_id AS customer_id 
FROM identities 
WHERE identities.workspace_id = %(workspace_id_2)s::UUID AND identities.kind = %(kind_1)s::VARCHAR AND NOT (EXISTS (SELECT * 
FROM suppressions 
WHERE suppressions.workspace_id = %(workspace_id_3)s::UUID AND suppressions.channel = %(channel_2)s::VARCHAR AND suppressions.address_hash = identities.value_hash))) AS address_line_2 ON address_line_2.customer_id = customers.customer_id 
WHERE customers.workspace_id = %(workspace_id_4)s::UUID AND customers.merged_into IS NULL AND coalesce(consent_line_1.customer_id IS NOT NULL AND address_line_2.customer_id IS NOT NULL, false)
-- channel_1 = 'line'
-- channel_2 = 'line'
-- kind_1 = 'line_user_id'
-- status_1 = 'opted_in'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_4 = UUID('00000000-0000-7000-8000-000000000001')
