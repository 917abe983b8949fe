-- Recurring schedules: each firing enqueues one job, keyed by schedule and
-- slot, in the schedule's tenant. Workers fire due schedules with
-- FOR UPDATE SKIP LOCKED and move next_run_at on in the same transaction,
-- so a slot fires once however many workers run.
CREATE TABLE schedules (
    tenant_id     uuid        NOT NULL REFERENCES tenants (id),
    id            uuid        NOT NULL,
    name          text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    cron          text        NOT NULL,
    time_zone     text        NOT NULL,
    job_kind      text        NOT NULL CHECK (job_kind ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),
    payload       jsonb       NOT NULL DEFAULT '{}',
    max_attempts  integer     NOT NULL CHECK (max_attempts >= 1),
    enabled       boolean     NOT NULL DEFAULT true,
    next_run_at   timestamptz,
    last_fired_at timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE enabled AND next_run_at IS NOT NULL;

ALTER TABLE schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON schedules
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON schedules TO portico_app, portico_platform;
