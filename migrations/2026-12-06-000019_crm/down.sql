DROP TABLE crm_search_terms, crm_merges, crm_settings, crm_ticket_comments, crm_tickets, crm_activities,
    crm_deal_stage_changes, crm_deals, crm_leads, crm_stages, crm_pipelines, crm_contact_keys, crm_contacts,
    crm_companies;
DROP FUNCTION crm_index_record();
DROP FUNCTION crm_words(text);
