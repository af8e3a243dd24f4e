SELECT customers.customer_id 
FROM customers LEFT OUTER JOIN (SELECT consents.customer_id AS customer_id 
FROM consents 
WHERE consents.workspace_id = %(workspace_id_1)s::UUID AND consents.channel = %(channel_1)s::VARCHAR AND consents.status = %(status_1)s::VARCHAR) AS consent_email_1 ON consent_email_1.customer_id = customers.customer_id LEFT OUTER JOIN (SELECT owner.customer_id AS customer_id 
FROM suppressions JOIN customers AS owner ON suppressions.workspace_id = %(workspace_id_2)s::UUID AND suppressions.channel = %(channel_2)s::VARCHAR AND suppressions.address_hash = owner.email_hash 
WHERE owner.workspace_id = %(workspace_id_3)s::UUID AND owner.workspace_id = suppressions.workspace_id) AS suppressed_email_2 ON suppressed_email_2.customer_id = customers.customer_id 
WHERE customers.workspace_id = %(workspace_id_4)s::UUID AND customers.merged_into IS NULL AND coalesce(consent_email_1.customer_id IS NOT NULL AND customers.email_hash IS NOT NULL AND suppressed_email_2.customer_id IS NULL, false)
-- channel_1 = 'email'
-- channel_2 = 'email'
-- status_1 = 'opted_in'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_4 = UUID('00000000-0000-7000-8000-000000000001')
