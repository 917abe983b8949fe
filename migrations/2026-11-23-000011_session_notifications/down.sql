DROP TRIGGER sessions_cache_invalidation ON sessions;
DROP FUNCTION notify_session_change();
