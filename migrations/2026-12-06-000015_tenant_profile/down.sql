DROP TABLE onboardings;
DROP TABLE tenant_branding;
DROP TABLE tenant_settings;
DROP FUNCTION notify_tenant_settings();
DROP INDEX tenants_trial_end_idx;
ALTER TABLE tenants DROP COLUMN trial_ends_at;
