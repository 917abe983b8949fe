ALTER TABLE users DROP COLUMN mfa_required;

DROP FUNCTION memberships_of(uuid);
CREATE FUNCTION memberships_of(person uuid)
    RETURNS TABLE (id uuid, tenant_id uuid, tenant_slug text, tenant_name text, tenant_status text,
                   role text, kind text, status text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT m.id, m.tenant_id, t.slug, t.name, t.status, m.role, m.kind, m.status
      FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
     WHERE m.user_id = person AND t.deleted_at IS NULL
$$;
REVOKE ALL ON FUNCTION memberships_of(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memberships_of(uuid) TO portico_app;

DROP FUNCTION invitation_tenant(bytea);
DROP TABLE invitations;
REVOKE DELETE ON memberships FROM portico_app, portico_platform;
UPDATE memberships SET role = 'viewer', role_id = NULL WHERE role = 'custom';
DROP INDEX memberships_kind_idx;
DROP INDEX memberships_role_idx;
ALTER TABLE memberships
    DROP CONSTRAINT memberships_role_fkey,
    DROP CONSTRAINT memberships_custom_role_check,
    DROP CONSTRAINT memberships_role_check,
    DROP CONSTRAINT memberships_invited_check,
    DROP CONSTRAINT memberships_platform_role_check,
    DROP COLUMN invite_name,
    DROP COLUMN invite_phone,
    DROP COLUMN role_id,
    ADD CONSTRAINT memberships_role_check CHECK (role IN ('platform_owner', 'platform_admin', 'platform_support',
                                                          'owner', 'admin', 'staff', 'viewer'));
DROP TABLE roles;
