DROP TRIGGER tenants_cache_invalidation ON tenants;
DROP FUNCTION notify_cache_invalidation();
ALTER TABLE audit_log DROP COLUMN ip, DROP COLUMN user_agent;
DROP TABLE idempotency_keys;
