REVOKE SELECT ON __diesel_schema_migrations FROM portico_app, portico_platform;
DROP TABLE audit_log;
DROP TABLE tenants;
