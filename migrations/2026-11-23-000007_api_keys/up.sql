-- API keys for server-to-server calls. Like sessions they are found before
-- any tenant is known (a request carries only the key), so they are global
-- rows, read only by the store's identity module; each belongs to a tenant
-- and carries a subset of its creator's permissions there.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- The visible part of the key (`ptk_` and 12 hex digits), unique, to find it by.
    prefix       text        NOT NULL UNIQUE CHECK (prefix ~ '^ptk_[0-9a-f]{12}$'),
    -- SHA-256 of the whole key; the key itself is shown once and never stored.
    secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
    permissions  text[]      NOT NULL,
    -- The person who made it (a development token's person may have no row).
    created_by   uuid        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON api_keys TO portico_app, portico_platform;
