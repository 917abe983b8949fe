DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP FUNCTION memberships_of(uuid);
DROP TABLE memberships;
DROP TABLE users;
