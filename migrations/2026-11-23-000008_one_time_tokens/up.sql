-- Single-use tokens sent by email (password reset, email verification).
-- Global like sessions: they are presented before anyone is signed in. Only
-- the SHA-256 of a token is kept; a used or expired token does nothing.
CREATE TABLE one_time_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users (id),
    purpose    text        NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    -- The address the token was sent to (verification confirms this one).
    email      text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);

GRANT SELECT, INSERT, UPDATE ON one_time_tokens TO portico_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON one_time_tokens TO portico_platform;
