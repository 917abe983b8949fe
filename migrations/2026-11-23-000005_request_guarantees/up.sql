-- Request guarantees: idempotency keys, where audited requests came from,
-- and the notifications that keep every instance's cache coherent.

-- One row per (tenant, principal, key). A request claims its key in a short
-- transaction of its own (state 'in_progress', a lock token and a lease);
-- the effect of the request and the completion of its row (the response)
-- commit together in one later transaction. A claim whose lease ran out
-- produced no effect (or it would be completed) and may be taken over.
CREATE TABLE idempotency_keys (
    tenant_id             uuid        NOT NULL REFERENCES tenants (id),
    principal_id          uuid        NOT NULL,
    key                   text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    fingerprint           text        NOT NULL,
    state                 text        NOT NULL CHECK (state IN ('in_progress', 'completed')),
    lock_token            uuid,
    locked_until          timestamptz,
    response_status       smallint,
    response_content_type text,
    response_body         bytea,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, principal_id, key),
    CHECK ((state = 'in_progress') = (lock_token IS NOT NULL AND locked_until IS NOT NULL)),
    CHECK ((state = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- The sweep that deletes expired keys.
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO portico_app;
-- The platform completes requests whose effect runs on its pool, and sweeps.
GRANT SELECT, UPDATE, DELETE ON idempotency_keys TO portico_platform;

-- Where an audited request came from.
ALTER TABLE audit_log ADD COLUMN ip inet, ADD COLUMN user_agent text;

-- Cache coherence across instances: every committed change of a cached
-- resource sends `resource:tenant_id:id` (ids only) on `portico_cache`.
-- NOTIFY is transactional: nothing is sent for a rolled-back change.
CREATE FUNCTION notify_cache_invalidation() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    changed  jsonb := to_jsonb(COALESCE(NEW, OLD));
    resource text  := TG_ARGV[0];
    tenant   text  := COALESCE(changed ->> 'tenant_id', changed ->> 'id');
BEGIN
    PERFORM pg_notify('portico_cache', resource || ':' || tenant || ':' || (changed ->> 'id'));
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_cache_invalidation
    AFTER UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation('tenant');
