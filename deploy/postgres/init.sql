-- Run once by the postgres image on an empty data directory (compose): the register's own
-- database beside Temporal's (auto-setup creates temporal and temporal_visibility itself).
-- Kubernetes, on a managed PostgreSQL, has `dsar setup` create it (the dsar-setup Job).
CREATE DATABASE dsar;
