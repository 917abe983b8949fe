-- A tenant's profile: its trial end, settings and feature overrides,
-- branding, and the record of its onboarding.

ALTER TABLE tenants ADD COLUMN trial_ends_at timestamptz;

-- A tenant's industry now names a profile of the catalogue (in the repository:
-- crates/tenancy/data/industries.json). A value from before that names none
-- moves into the tenant's metadata, and the tenant follows the generic profile.
UPDATE tenants
   SET metadata = metadata || jsonb_build_object('formerIndustry', industry), industry = NULL
 WHERE industry IS NOT NULL
   AND industry NOT IN ('generic', 'property_management', 'education', 'trucking', 'service_repair');
CREATE INDEX tenants_trial_end_idx ON tenants (trial_ends_at) WHERE status = 'trial' AND deleted_at IS NULL;

-- Only the tenant's own values: defaults live in the industry catalogue
-- (in the repository), so a value the tenant never set follows the profile.
CREATE TABLE tenant_settings (
    tenant_id  uuid        PRIMARY KEY REFERENCES tenants (id),
    settings   jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- Feature key -> true/false, set by the platform's staff.
    features   jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(features) = 'object'),
    updated_at timestamptz NOT NULL
);

CREATE TABLE tenant_branding (
    tenant_id         uuid        PRIMARY KEY REFERENCES tenants (id),
    display_name      text        CHECK (char_length(display_name) BETWEEN 1 AND 100),
    primary_color     text        CHECK (primary_color ~ '^#[0-9a-f]{6}$'),
    accent_color      text        CHECK (accent_color ~ '^#[0-9a-f]{6}$'),
    custom_domain     text        CHECK (custom_domain = lower(custom_domain) AND char_length(custom_domain) <= 253),
    -- The logo's key in the file store always starts with the tenant's id.
    logo_key          text        CHECK (logo_key LIKE tenant_id::text || '/%'),
    logo_content_type text        CHECK (logo_content_type IN ('image/png', 'image/jpeg', 'image/svg+xml')),
    logo_size         bigint      CHECK (logo_size > 0),
    logo_width        integer,
    logo_height       integer,
    logo_updated_at   timestamptz,
    updated_at        timestamptz NOT NULL,
    CHECK ((logo_key IS NULL) = (logo_content_type IS NULL)
       AND (logo_key IS NULL) = (logo_size IS NULL)
       AND (logo_key IS NULL) = (logo_updated_at IS NULL))
);

-- One tenant per domain. Unique across tenants on purpose: a domain serves
-- one portal, so a second claim is refused (and learns only that).
CREATE UNIQUE INDEX tenant_branding_domain_key ON tenant_branding (custom_domain);

-- How a tenant was onboarded, once. The fingerprint (a hash of the request)
-- tells a replay, answered from this row, from a different second attempt.
CREATE TABLE onboardings (
    tenant_id           uuid        PRIMARY KEY REFERENCES tenants (id),
    source              text        NOT NULL CHECK (source IN ('platform', 'self_service')),
    owner_membership_id uuid        NOT NULL,
    owner_email         text        NOT NULL,
    welcome_credits     jsonb       NOT NULL CHECK (jsonb_typeof(welcome_credits) = 'array'),
    -- The answer it gave, given again to a replay.
    result              jsonb       NOT NULL CHECK (jsonb_typeof(result) = 'object'),
    fingerprint         bytea       NOT NULL,
    completed_at        timestamptz NOT NULL,
    -- When the owner accepted the invitation (confirming the address).
    confirmed_at        timestamptz,
    -- When the welcome credits were granted: at onboarding by the platform's
    -- staff, at confirmation for a sign-up.
    welcome_granted_at  timestamptz
);

-- The sweep of sign-ups never confirmed.
CREATE INDEX onboardings_unconfirmed_idx ON onboardings (completed_at) WHERE confirmed_at IS NULL;

-- A tenant's configuration is cached with the tenant (feature gates read it
-- on every request): a change drops the tenant's entries on every instance.
CREATE FUNCTION notify_tenant_settings() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portico_cache', 'tenant:' || NEW.tenant_id::text || ':' || NEW.tenant_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER tenant_settings_cache_invalidation
    AFTER INSERT OR UPDATE ON tenant_settings
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_settings();

ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE tenant_branding ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_branding FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_branding
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE onboardings ENABLE ROW LEVEL SECURITY;
ALTER TABLE onboardings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON onboardings
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON tenant_settings, tenant_branding TO portico_app, portico_platform;
-- An onboarding happens once; only its confirmation is written later.
GRANT SELECT, INSERT, UPDATE ON onboardings TO portico_app, portico_platform;
