DROP TABLE usage_rollups;
DROP FUNCTION usage_greatest(jsonb, jsonb);
DROP FUNCTION usage_add(jsonb, jsonb);
DROP FUNCTION usage_number(jsonb);
