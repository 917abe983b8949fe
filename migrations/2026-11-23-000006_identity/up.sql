-- Identity: people, their memberships of tenants, and their sessions.
--
-- People, sessions and refresh tokens are global: sign-in and refresh look
-- them up before any tenant is known, so they are not tenant-owned rows and
-- have no row-level security; only the store's identity module reads them.
-- What a person may do in a tenant is a tenant-owned membership, walled like
-- every other tenant-owned table.

CREATE TABLE users (
    id                  uuid        PRIMARY KEY,
    -- Normalised: trimmed and lower case, so one person has one account.
    email               text        NOT NULL UNIQUE
                                    CHECK (email = lower(btrim(email)) AND char_length(email) BETWEEN 3 AND 254),
    name                text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    phone               text,
    status              text        NOT NULL CHECK (status IN ('active', 'inactive', 'suspended', 'pending')),
    -- Argon2id PHC string; NULL until the person sets a password.
    password_hash       text,
    email_verified_at   timestamptz,
    mfa_enabled         boolean     NOT NULL DEFAULT false,
    -- Failed sign-ins in a row, and until when the next attempt must wait.
    failed_logins       integer     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    login_blocked_until timestamptz,
    last_login_at       timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE ON users TO portico_app, portico_platform;

CREATE TABLE memberships (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id),
    role       text        NOT NULL CHECK (role IN ('platform_owner', 'platform_admin', 'platform_support',
                                                    'owner', 'admin', 'staff', 'viewer')),
    kind       text        NOT NULL CHECK (kind IN ('owner', 'admin', 'staff', 'student', 'parent', 'viewer')),
    status     text        NOT NULL CHECK (status IN ('active', 'invited', 'suspended')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id),
    -- Platform roles only through a membership of the platform tenant.
    CHECK (role NOT IN ('platform_owner', 'platform_admin', 'platform_support')
           OR tenant_id = '00000000-0000-7000-8000-000000000001')
);

CREATE INDEX memberships_user_idx ON memberships (user_id);

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memberships
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON memberships TO portico_app, portico_platform;

-- Sign-in needs a person's memberships across tenants before a tenant is
-- chosen. This function, owned by portico_owner, lists them with the
-- tenants' names and states and reveals nothing else.
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

-- One row per signed-in device. The absolute lifetime (expires_at) is set at
-- sign-in and never extended; revoked_at ends the session early.
CREATE TABLE sessions (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES users (id),
    -- The tenant the session is signed in to (switch-tenant changes it).
    tenant_id      uuid        NOT NULL REFERENCES tenants (id),
    device         text,
    ip             inet,
    user_agent     text,
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text
);

CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

-- Every refresh token a session was given, by SHA-256 of the token (the
-- token itself is never stored). A used token is kept (used_at) so that
-- presenting it again is recognised as theft and ends the session.
CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id uuid        NOT NULL REFERENCES sessions (id),
    created_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

GRANT SELECT, INSERT, UPDATE ON sessions, refresh_tokens TO portico_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, refresh_tokens TO portico_platform;
