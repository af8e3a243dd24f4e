SELECT customers.customer_id 
FROM customers 
WHERE customers.workspace_id = ? AND customers.merged_into IS NULL AND customers.gender = ? AND customers.birth_md IN (__[POSTCOMPILE_birth_md_1])
-- birth_md_1 = ['05-01', '05-02', '05-03', '05-04', '05-05', '05-06', '05-07', '05-08', '05-09', '05-10', '05-11', '05-12', '05-13', '05-14', '05-15', '05-16', '05-17', '05-18', '05-19', '05-20', '05-21', '05-22', '05-23', '05-24', '05-25', '05-26', '05-27', '05-28', '05-29', '05-30', '05-31']
-- gender_1 = 'female'
-- workspace_id_1 = UUID('00000000-0000-7000-8000-000000000001')
