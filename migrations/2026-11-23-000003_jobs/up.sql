-- The job queue. Jobs are tenant-owned like everything else (the platform's
-- own jobs belong to the platform tenant): request code enqueues inside its
-- scoped transaction, so a job of a rolled-back transaction never exists.
-- Workers claim through portico_platform (FOR UPDATE SKIP LOCKED) and run
-- each handler in its job's tenant scope through portico_app.
CREATE TABLE jobs (
    tenant_id        uuid        NOT NULL REFERENCES tenants (id),
    id               uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),
    payload          jsonb       NOT NULL DEFAULT '{}',
    state            text        NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    priority         smallint    NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer     NOT NULL CHECK (max_attempts >= 1),
    last_error       text,
    lease_expires_at timestamptz,
    unique_key       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    PRIMARY KEY (tenant_id, id),
    CHECK ((state = 'running') = (lease_expires_at IS NOT NULL))
);

-- At most one pending job per tenant and unique key.
CREATE UNIQUE INDEX jobs_pending_unique_key ON jobs (tenant_id, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');
-- The claim: queued jobs that are due, highest priority first, then oldest.
CREATE INDEX jobs_due_idx ON jobs (priority DESC, run_at) WHERE state = 'queued';
-- Leases to take back from workers that died.
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobs
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT ON jobs TO portico_app;
-- Only the claimer changes a job's state, and only sweeps delete finished ones.
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs TO portico_platform;
