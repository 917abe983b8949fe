DROP FUNCTION tenant_id_for_slug(text);
