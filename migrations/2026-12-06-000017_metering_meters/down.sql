DROP TABLE meter_sources;
DROP TABLE meter_readings;
DROP TABLE meters;
DROP TABLE metering_sites;
