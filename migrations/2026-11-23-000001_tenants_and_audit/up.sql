-- Tenants and the audit trail.
--
-- Isolation rule for every tenant-owned table: `tenant_id` leads the primary
-- key and every foreign key, row-level security is enabled AND forced, and the
-- policy compares with the transaction-local `app.tenant_id` setting. NULLIF
-- turns the '' a pooled connection keeps after a scoped transaction into
-- NULL, so an unscoped query sees no rows instead of failing.
-- Roles are cluster-wide and created by bootstrap, never here.

CREATE TABLE tenants (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    slug          text        NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'),
    contact_email text        NOT NULL CHECK (char_length(contact_email) BETWEEN 3 AND 254),
    phone         text,
    industry      text,
    status        text        NOT NULL CHECK (status IN ('active', 'trial', 'suspended', 'inactive')),
    metadata      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz
);

-- Deleted tenants keep their slug: old links must never reach a new tenant.
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);
CREATE INDEX tenants_listing_idx ON tenants (created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- `tenants` is keyed by its own id: a scoped transaction sees only its tenant's row.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- No DELETE: tenants are soft-deleted, their audit rows outlive them.
GRANT SELECT, INSERT, UPDATE ON tenants TO portico_app, portico_platform;

CREATE TABLE audit_log (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id),
    id              uuid        NOT NULL,
    actor_type      text        NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
    actor_id        uuid,
    actor_tenant_id uuid,
    actor_name      text,
    action          text        NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    resource_type   text        NOT NULL,
    resource_id     text        NOT NULL,
    changes         jsonb       NOT NULL DEFAULT '{}',
    request_id      text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((actor_type = 'system') = (actor_id IS NULL))
);

CREATE INDEX audit_log_time_idx ON audit_log (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX audit_log_resource_idx ON audit_log (tenant_id, resource_type, resource_id, occurred_at DESC);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- The audit trail is append-only for the application: no UPDATE, no DELETE.
GRANT SELECT, INSERT ON audit_log TO portico_app, portico_platform;

-- Readiness checks, as portico_app, that every migration is applied.
GRANT SELECT ON __diesel_schema_migrations TO portico_app, portico_platform;
