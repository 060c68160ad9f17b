-- Indexes the static dashboards (ct-sitegen) read through: new certificates
-- per day (range on first_seen), certificates per validation level and per
-- name category (covering index scans instead of table scans).
CREATE INDEX certificates_first_seen ON certificates (first_seen);
CREATE INDEX certificates_validation ON certificates (validation);
CREATE INDEX names_category ON names (category, name);
