DROP TABLE login_throttle;
ALTER TABLE users
    ADD COLUMN failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    ADD COLUMN login_blocked_until timestamptz;
