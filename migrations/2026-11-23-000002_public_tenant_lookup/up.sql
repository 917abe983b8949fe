-- Public pages (branding, sign-in) know a tenant only by its slug, before
-- anyone is signed in. This function, owned by portico_owner, turns a slug
-- into the id of a live, in-service tenant and reveals nothing else; the
-- caller then reads that tenant in a transaction scoped to it, so row-level
-- security stays in force for the read itself.
CREATE FUNCTION tenant_id_for_slug(wanted text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT id FROM public.tenants
     WHERE slug = wanted AND deleted_at IS NULL AND status IN ('active', 'trial')
$$;

REVOKE ALL ON FUNCTION tenant_id_for_slug(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_id_for_slug(text) TO portico_app;
