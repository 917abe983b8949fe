-- Usage events (what a tenant's own customers used), the tenant's usage
-- closing instant, and the billable metrics that add events up.

-- One row per event, keyed by the client's event id: a duplicate, even a
-- retry racing the original, finds the row and adds nothing.
CREATE TABLE usage_events (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    event_id    text        NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 128),
    metric_code text        NOT NULL CHECK (metric_code ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    subject     text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 256),
    at          timestamptz NOT NULL,
    properties  jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(properties) = 'object'),
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

-- Aggregations read one metric's events in a window, per tenant (and subject).
CREATE INDEX usage_events_window_idx ON usage_events (tenant_id, metric_code, at, subject);

-- Usage before `closed_through` is billed: later events for it are refused
-- once the grace period has passed.
CREATE TABLE usage_closures (
    tenant_id      uuid        PRIMARY KEY REFERENCES tenants (id),
    closed_through timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE billable_metrics (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    id          uuid        NOT NULL,
    code        text        NOT NULL CHECK (code ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    aggregation jsonb       NOT NULL CHECK (jsonb_typeof(aggregation) = 'object'),
    filters     jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(filters) = 'array'),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_events
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE usage_closures ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_closures FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_closures
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE billable_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE billable_metrics FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON billable_metrics
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Events are never rewritten or deleted by the application.
GRANT SELECT, INSERT ON usage_events TO portico_app, portico_platform;
GRANT SELECT, INSERT, UPDATE ON usage_closures TO portico_app, portico_platform;
GRANT SELECT, INSERT, UPDATE, DELETE ON billable_metrics TO portico_app, portico_platform;
