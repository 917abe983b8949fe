-- A second factor. The TOTP secret is sealed (ChaCha20-Poly1305) with a key
-- from configuration before it reaches the database; recovery codes are kept
-- as SHA-256 hashes; mfa_last_step makes each code usable once.
ALTER TABLE users
    ADD COLUMN mfa_secret     bytea,
    ADD COLUMN mfa_pending    bytea,
    ADD COLUMN mfa_last_step  bigint,
    ADD COLUMN mfa_recovery   text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT users_mfa_check CHECK (NOT mfa_enabled OR mfa_secret IS NOT NULL);
