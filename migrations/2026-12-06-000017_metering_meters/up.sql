-- Where a tenant's meters are (a tree of sites), the meters, their
-- readings, and the external systems readings are pulled from.

CREATE TABLE metering_sites (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    id           uuid        NOT NULL,
    parent_id    uuid,
    kind         text        NOT NULL CHECK (kind IN ('property', 'building', 'unit', 'other')),
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    external_ref text        CHECK (char_length(external_ref) BETWEEN 1 AND 128),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES metering_sites (tenant_id, id),
    CHECK (parent_id IS DISTINCT FROM id)
);
CREATE UNIQUE INDEX metering_sites_external_ref_key ON metering_sites (tenant_id, external_ref)
    WHERE external_ref IS NOT NULL;
CREATE INDEX metering_sites_parent_idx ON metering_sites (tenant_id, parent_id);

-- A meter sits on a site or on a subject key, never both. A replacement is
-- a new row naming the one it replaces; a meter has at most one successor.
CREATE TABLE meters (
    tenant_id     uuid        NOT NULL REFERENCES tenants (id),
    id            uuid        NOT NULL,
    site_id       uuid,
    subject       text        CHECK (char_length(subject) BETWEEN 1 AND 256),
    kind          text        NOT NULL CHECK (kind IN ('electricity', 'water', 'heat', 'gas', 'ev_charging', 'api_calls', 'custom')),
    unit          text        NOT NULL CHECK (char_length(unit) BETWEEN 1 AND 32),
    mode          text        NOT NULL CHECK (mode IN ('register', 'interval')),
    digits        smallint    CHECK (digits BETWEEN 1 AND 18),
    serial_number text        CHECK (char_length(serial_number) BETWEEN 1 AND 64),
    active_from   timestamptz NOT NULL,
    active_until  timestamptz CHECK (active_until > active_from),
    start_reading numeric     CHECK (start_reading >= 0),
    replaces      uuid,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES metering_sites (tenant_id, id),
    FOREIGN KEY (tenant_id, replaces) REFERENCES meters (tenant_id, id),
    UNIQUE (tenant_id, replaces),
    CHECK ((site_id IS NULL) <> (subject IS NULL)),
    CHECK (mode = 'register' OR (digits IS NULL AND start_reading IS NULL))
);
CREATE INDEX meters_site_idx ON meters (tenant_id, site_id);
CREATE INDEX meters_serial_idx ON meters (tenant_id, serial_number);

-- One reading per meter and instant; a rejected one is kept with its reason
-- (readings pulled from a source are never lost) and never counts.
CREATE TABLE meter_readings (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    meter_id   uuid        NOT NULL,
    at         timestamptz NOT NULL,
    value      numeric     NOT NULL,
    source     text        NOT NULL CHECK (source IN ('manual', 'import', 'integration')),
    status     text        NOT NULL CHECK (status IN ('valid', 'estimated', 'rejected')),
    reason     text        CHECK (char_length(reason) <= 500),
    flagged    text        CHECK (char_length(flagged) <= 500),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, meter_id) REFERENCES meters (tenant_id, id),
    UNIQUE (tenant_id, meter_id, at),
    CHECK ((status = 'rejected') = (reason IS NOT NULL)),
    CHECK (status = 'rejected' OR value >= 0)
);

-- An external system readings are pulled from, on a schedule, with the
-- cursor it gave last and the meters its names stand for.
CREATE TABLE meter_sources (
    tenant_id      uuid        NOT NULL REFERENCES tenants (id),
    id             uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('evcc', 'simulated')),
    name           text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    base_url       text        CHECK (char_length(base_url) <= 2000),
    every_minutes  integer     NOT NULL CHECK (every_minutes BETWEEN 1 AND 1440),
    meters         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(meters) = 'object'),
    cursor         text,
    next_pull_at   timestamptz NOT NULL,
    last_pulled_at timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((kind = 'evcc') = (base_url IS NOT NULL))
);
-- The sweep finds the sources due, across tenants.
CREATE INDEX meter_sources_due_idx ON meter_sources (next_pull_at);

ALTER TABLE metering_sites ENABLE ROW LEVEL SECURITY;
ALTER TABLE metering_sites FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON metering_sites
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE meters ENABLE ROW LEVEL SECURITY;
ALTER TABLE meters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON meters
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE meter_readings ENABLE ROW LEVEL SECURITY;
ALTER TABLE meter_readings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON meter_readings
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE meter_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE meter_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON meter_sources
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON metering_sites, meters, meter_sources TO portico_app, portico_platform;
-- Readings are never rewritten or deleted (a meter with readings is replaced, not deleted).
GRANT SELECT, INSERT ON meter_readings TO portico_app, portico_platform;
