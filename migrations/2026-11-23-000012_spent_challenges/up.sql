-- A second-factor challenge (a short-lived signed token) completes one
-- sign-in only: its id is recorded when it is used. Global like sessions.
CREATE TABLE spent_challenges (
    id         uuid        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

GRANT SELECT, INSERT ON spent_challenges TO portico_app;
GRANT SELECT, INSERT, DELETE ON spent_challenges TO portico_platform;
