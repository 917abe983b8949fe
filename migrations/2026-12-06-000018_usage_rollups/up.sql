-- Hourly rollups of usage events, kept by a trigger in the statement that
-- stores the events (so every writer keeps them, whatever its version): per
-- tenant, metric, UTC hour and subject, the number of events and, per
-- property, the sum and the greatest of its numeric values. A
-- count, sum or max over whole hours reads these instead of the events;
-- the hours at a period's edges, filtered metrics and every other
-- aggregation read the events. (A unique count cannot be added up across
-- hours, so it is never rolled up.)

CREATE TABLE usage_rollups (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    metric_code text        NOT NULL,
    hour        timestamptz NOT NULL CHECK (hour = date_trunc('hour', hour, 'UTC')),
    subject     text        NOT NULL,
    events      bigint      NOT NULL CHECK (events > 0),
    sums        jsonb       NOT NULL CHECK (jsonb_typeof(sums) = 'object'),
    maxes       jsonb       NOT NULL CHECK (jsonb_typeof(maxes) = 'object'),
    PRIMARY KEY (tenant_id, metric_code, hour, subject)
);

-- A property's value as a number, as portico_metering::aggregate reads it:
-- a JSON number, or a string of decimal digits; anything else is no number.
CREATE FUNCTION usage_number(value jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'number' THEN (value #>> '{}')::numeric
        WHEN 'string' THEN CASE WHEN (value #>> '{}') ~ '^-?[0-9]+(\.[0-9]+)?$' THEN (value #>> '{}')::numeric END
    END
$$;

-- Two rollups' sums added key by key.
CREATE FUNCTION usage_add(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(k, coalesce((a ->> k)::numeric, 0) + coalesce((b ->> k)::numeric, 0)), '{}')
    FROM (SELECT jsonb_object_keys(a) UNION SELECT jsonb_object_keys(b)) AS keys (k)
$$;

-- Two rollups' maxima, the greater key by key.
CREATE FUNCTION usage_greatest(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(k, greatest((a ->> k)::numeric, (b ->> k)::numeric)), '{}')
    FROM (SELECT jsonb_object_keys(a) UNION SELECT jsonb_object_keys(b)) AS keys (k)
$$;

-- Adds the events a statement stored to their hours' rollups, in key order
-- (so statements racing over the same hours wait on each other in one order).
CREATE FUNCTION usage_roll_up() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_rollups (tenant_id, metric_code, hour, subject, events, sums, maxes)
    SELECT h.tenant_id, h.metric_code, h.hour, h.subject, h.events, coalesce(n.sums, '{}'), coalesce(n.maxes, '{}')
    FROM (SELECT tenant_id, metric_code, date_trunc('hour', at, 'UTC') AS hour, subject, count(*) AS events
          FROM stored GROUP BY 1, 2, 3, 4) h
    LEFT JOIN (
        SELECT tenant_id, metric_code, hour, subject,
               jsonb_object_agg(key, total) AS sums, jsonb_object_agg(key, top) AS maxes
        FROM (SELECT s.tenant_id, s.metric_code, date_trunc('hour', s.at, 'UTC') AS hour, s.subject, p.key,
                     sum(usage_number(p.value)) AS total, max(usage_number(p.value)) AS top
              FROM stored s CROSS JOIN LATERAL jsonb_each(s.properties) p
              WHERE usage_number(p.value) IS NOT NULL
              GROUP BY 1, 2, 3, 4, 5) per_key
        GROUP BY 1, 2, 3, 4) n USING (tenant_id, metric_code, hour, subject)
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, metric_code, hour, subject) DO UPDATE
        SET events = usage_rollups.events + EXCLUDED.events,
            sums = usage_add(usage_rollups.sums, EXCLUDED.sums),
            maxes = usage_greatest(usage_rollups.maxes, EXCLUDED.maxes);
    RETURN NULL;
END
$$;

CREATE TRIGGER usage_events_roll_up AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION usage_roll_up();

-- The events stored so far go through the trigger once, so they are rolled up
-- by the same definition as every later one.
CREATE TEMPORARY TABLE events_before_rollups ON COMMIT DROP AS SELECT * FROM usage_events;
DELETE FROM usage_events;
INSERT INTO usage_events SELECT * FROM events_before_rollups;

ALTER TABLE usage_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_rollups
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON usage_rollups TO portico_app, portico_platform;
