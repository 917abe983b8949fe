-- An ended session must stop its access tokens at once on every instance:
-- each instance caches whether a session is live, and this trigger drops
-- that entry everywhere when a session changes. Sessions are global, so the
-- key is in the platform tenant's part of the cache.
CREATE FUNCTION notify_session_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portico_cache', 'session:00000000-0000-7000-8000-000000000001:' || NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_cache_invalidation
    AFTER UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_session_change();
