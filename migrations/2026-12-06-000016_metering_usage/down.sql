DROP TABLE billable_metrics;
DROP TABLE usage_closures;
DROP TABLE usage_events;
