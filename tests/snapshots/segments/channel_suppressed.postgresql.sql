SELECT customers.customer_id 
FROM customers LEFT OUTER JOIN (SELECT owner.customer_id AS customer_id 
FROM suppressions JOIN customers AS owner ON suppressions.workspace_id = %(workspace_id_1)s::UUID AND suppressions.channel = %(channel_1)s::VARCHAR AND suppressions.address_hash = owner.phone_hash 
WHERE owner.workspace_id = %(workspace_id_2)s::UUID AND owner.workspace_id = suppressions.workspace_id) AS suppressed_sms_1 ON suppressed_sms_1.customer_id = customers.customer_id 
WHERE customers.workspace_id = %(workspace_id_3)s::UUID AND customers.merged_into IS NULL AND coalesce(suppressed_sms_1.customer_id IS NOT NULL, false)
-- channel_1 = 'sms'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_2 = UUID('00000000-0000-7000-8000-000000000001')
-- workspace_id_3 = UUID('00000000-0000-7000-8000-000000000001')
