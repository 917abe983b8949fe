-- People and permissions: a tenant's own roles, invitations, and removing
-- or requiring a second factor of a person.

-- A tenant's custom roles: named bundles of catalogued permissions, never
-- platform ones (those are held only through the platform's built-in roles).
CREATE TABLE roles (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    id          uuid        NOT NULL,
    name        text        NOT NULL CHECK (name = btrim(name) AND char_length(name) BETWEEN 1 AND 100),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
    permissions text[]      NOT NULL CHECK (array_position(permissions, NULL) IS NULL
                                            AND array_to_string(permissions, ' ') NOT LIKE '%platform:%'),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    -- The platform's staff hold the platform's built-in roles only.
    CHECK (tenant_id <> '00000000-0000-7000-8000-000000000001')
);

CREATE UNIQUE INDEX roles_name_key ON roles (tenant_id, lower(name));

ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON roles
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON roles TO portico_app, portico_platform;

-- A membership holds a built-in role, or 'custom' with the tenant's role.
-- Until an invited person accepts, the tenant sees only what the inviter
-- typed (invite_name, invite_phone), never the account's own details.
ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships
    ADD COLUMN role_id uuid,
    ADD COLUMN invite_name text CHECK (char_length(invite_name) BETWEEN 1 AND 200),
    ADD COLUMN invite_phone text,
    ADD CONSTRAINT memberships_invited_check CHECK (status <> 'invited' OR invite_name IS NOT NULL),
    -- The platform tenant's members are its staff, with platform roles only.
    ADD CONSTRAINT memberships_platform_role_check
        CHECK (tenant_id <> '00000000-0000-7000-8000-000000000001'
               OR role IN ('platform_owner', 'platform_admin', 'platform_support')),
    ADD CONSTRAINT memberships_role_check CHECK (role IN ('platform_owner', 'platform_admin', 'platform_support',
                                                          'owner', 'admin', 'staff', 'viewer', 'custom')),
    ADD CONSTRAINT memberships_custom_role_check CHECK ((role = 'custom') = (role_id IS NOT NULL)),
    ADD CONSTRAINT memberships_role_fkey FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id);

CREATE INDEX memberships_role_idx ON memberships (tenant_id, role_id) WHERE role_id IS NOT NULL;
CREATE INDEX memberships_kind_idx ON memberships (tenant_id, kind, created_at DESC);

-- A person removed from a tenant loses the membership row (the audit trail keeps the story).
GRANT DELETE ON memberships TO portico_app, portico_platform;

-- An invitation to an 'invited' membership: one open invitation per
-- membership, by SHA-256 of its single-use token. Removing the membership
-- (revoking the invitation) removes it too.
CREATE TABLE invitations (
    tenant_id     uuid        NOT NULL REFERENCES tenants (id),
    membership_id uuid        NOT NULL,
    -- Unique across tenants: accepting presents the token alone, before any
    -- tenant is known (as sign-in finds a session by its refresh token).
    token_hash    bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    email         text        NOT NULL,
    -- Who sent it last (a person; none for an API key). Not a reference: a record, like the audit trail.
    invited_by    uuid,
    sent_count    integer     NOT NULL DEFAULT 1 CHECK (sent_count >= 1),
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    PRIMARY KEY (tenant_id, membership_id),
    FOREIGN KEY (tenant_id, membership_id) REFERENCES memberships (tenant_id, id) ON DELETE CASCADE
);

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON invitations TO portico_app, portico_platform;

-- Accepting an invitation presents only its token: this function, owned by
-- portico_owner, names the invitation's tenant and reveals nothing else.
CREATE FUNCTION invitation_tenant(hash bytea)
    RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT tenant_id FROM public.invitations WHERE token_hash = hash
$$;

REVOKE ALL ON FUNCTION invitation_tenant(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION invitation_tenant(bytea) TO portico_app;

-- Sign-in needs a membership's permissions: a custom role's come with it.
DROP FUNCTION memberships_of(uuid);
CREATE FUNCTION memberships_of(person uuid)
    RETURNS TABLE (id uuid, tenant_id uuid, tenant_slug text, tenant_name text, tenant_status text,
                   role text, kind text, status text, role_id uuid, role_name text, role_permissions text[])
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT m.id, m.tenant_id, t.slug, t.name, t.status, m.role, m.kind, m.status, r.id, r.name, r.permissions
      FROM public.memberships m
      JOIN public.tenants t ON t.id = m.tenant_id
      LEFT JOIN public.roles r ON r.tenant_id = m.tenant_id AND r.id = m.role_id
     WHERE m.user_id = person AND t.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION memberships_of(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION memberships_of(uuid) TO portico_app;

-- An administrator may require a second factor: until the person sets one
-- up, their tokens carry no permissions.
ALTER TABLE users ADD COLUMN mfa_required boolean NOT NULL DEFAULT false;
