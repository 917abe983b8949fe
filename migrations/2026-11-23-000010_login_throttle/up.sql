-- Failed sign-ins are counted per (email, client network), not per account:
-- an attacker elsewhere cannot lock the owner out, and an address without an
-- account is counted exactly like one with (nothing tells them apart). The
-- email is kept only as its SHA-256. A count idle for 15 minutes starts over.
ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN login_blocked_until;

CREATE TABLE login_throttle (
    email_hash     bytea       NOT NULL CHECK (length(email_hash) = 32),
    -- An IPv4 address or an IPv6 /64.
    client         text        NOT NULL,
    failures       integer     NOT NULL CHECK (failures >= 0),
    last_failed_at timestamptz NOT NULL,
    blocked_until  timestamptz,
    PRIMARY KEY (email_hash, client)
);

CREATE INDEX login_throttle_age_idx ON login_throttle (last_failed_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO portico_app, portico_platform;
