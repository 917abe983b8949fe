ALTER TABLE users
    DROP CONSTRAINT users_mfa_check,
    DROP COLUMN mfa_secret,
    DROP COLUMN mfa_pending,
    DROP COLUMN mfa_last_step,
    DROP COLUMN mfa_recovery;
