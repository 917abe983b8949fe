DROP TRIGGER usage_events_roll_up ON usage_events;
DROP FUNCTION usage_roll_up();
DROP TABLE usage_rollups;
DROP FUNCTION usage_greatest(jsonb, jsonb);
DROP FUNCTION usage_add(jsonb, jsonb);
DROP FUNCTION usage_number(jsonb);
