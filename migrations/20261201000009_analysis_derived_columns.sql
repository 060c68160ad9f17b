-- Fewer values written per analysed row (each costs the server a parse and
-- a field copy, a million times in a backfill):
--
-- cert_analysis: the JST hour, weekday, night and weekend follow from
-- first_logged_at_ms alone (Japan has kept UTC+9 without daylight saving
-- time since 1952, before any CT log), so they are computed when read
-- (VIRTUAL) instead of stored. The same rule as ct_core::jst::LogTime: NULL
-- after 9999-12-30T22:00:00Z (ct_core::jst::LAST_MS), the last instant it
-- takes. jst_holiday stays stored (ct-core takes it from the holiday
-- crate). analysed_at, which nothing read, goes.
ALTER TABLE cert_analysis
    DROP COLUMN jst_night,
    DROP COLUMN jst_weekend,
    DROP COLUMN jst_hour,
    DROP COLUMN jst_weekday,
    DROP COLUMN analysed_at,
    ALGORITHM = INSTANT;
ALTER TABLE cert_analysis
    ADD COLUMN jst_hour TINYINT UNSIGNED AS (IF(first_logged_at_ms <= 253402207200000,
        (first_logged_at_ms + 32400000) DIV 3600000 MOD 24, NULL)) VIRTUAL AFTER first_logged_at_ms,
    -- 0 = Monday .. 6 = Sunday; 1970-01-01 was a Thursday.
    ADD COLUMN jst_weekday TINYINT UNSIGNED AS (IF(first_logged_at_ms <= 253402207200000,
        ((first_logged_at_ms + 32400000) DIV 86400000 + 3) MOD 7, NULL)) VIRTUAL AFTER jst_hour,
    -- From 20:00 to 07:59.
    ADD COLUMN jst_night TINYINT(1) AS (IF(first_logged_at_ms <= 253402207200000,
        (first_logged_at_ms + 32400000) DIV 3600000 MOD 24 NOT BETWEEN 8 AND 19, NULL)) VIRTUAL AFTER jst_weekday,
    ADD COLUMN jst_weekend TINYINT(1) AS (IF(first_logged_at_ms <= 253402207200000,
        ((first_logged_at_ms + 32400000) DIV 86400000 + 3) MOD 7 >= 5, NULL)) VIRTUAL AFTER jst_night,
    ALGORITHM = INSTANT;

-- issuances: what the rollups counted an issuance under follows from its
-- own first_logged_at_ms, issuer_o and validity_days, so these too are
-- computed when read; the analysis computes the same in Rust
-- (manager::analyse::issuances::counted: ct_core::jst::jst_day, which
-- counts a time past LAST_MS on LAST_MS's day, and
-- ct_core::cert::validity_bucket).
ALTER TABLE issuances
    DROP COLUMN rollup_day,
    DROP COLUMN rollup_ca,
    DROP COLUMN rollup_bucket,
    ALGORITHM = INSTANT;
ALTER TABLE issuances
    ADD COLUMN rollup_day INT AS ((LEAST(first_logged_at_ms, 253402207200000) + 32400000) DIV 86400000)
        VIRTUAL AFTER first_logged_at_ms,
    ADD COLUMN rollup_ca VARCHAR(255) AS (IF(first_logged_at_ms IS NULL, NULL, COALESCE(issuer_o, '')))
        VIRTUAL AFTER rollup_day,
    ADD COLUMN rollup_bucket VARCHAR(16) AS (IF(first_logged_at_ms IS NULL, NULL,
        CASE WHEN validity_days IS NULL THEN 'unknown' WHEN validity_days < 90 THEN 'short'
             WHEN validity_days = 90 THEN '90' WHEN validity_days <= 398 THEN '91-398'
             ELSE 'over-398' END)) VIRTUAL AFTER rollup_ca,
    ALGORITHM = INSTANT;

-- Before, a time past LAST_MS was counted on its own (far) day. Where any
-- issuance has one, the two rollups keyed by day are rebuilt from the
-- generated columns (rollup_categories by the statement of migration 05);
-- elsewhere these find nothing to do (one look at issuances_logged).
DELETE FROM rollup_issuances
WHERE EXISTS (SELECT 1 FROM issuances WHERE first_logged_at_ms > 253402207200000);
INSERT INTO rollup_issuances (day, ca, bucket, issuances)
SELECT rollup_day, rollup_ca, rollup_bucket, COUNT(*) FROM issuances
WHERE rollup_day IS NOT NULL
  AND EXISTS (SELECT 1 FROM issuances WHERE first_logged_at_ms > 253402207200000)
GROUP BY 1, 2, 3;
DELETE FROM rollup_categories
WHERE EXISTS (SELECT 1 FROM issuances WHERE first_logged_at_ms > 253402207200000);
INSERT INTO rollup_categories (category, day, ca, bucket, issuances)
SELECT t.category, t.rollup_day, t.rollup_ca, t.rollup_bucket, COUNT(*)
FROM (
    SELECT DISTINCT i.id, n.category, i.rollup_day, i.rollup_ca, i.rollup_bucket
    FROM issuances i
    JOIN names n ON n.certificate_id = COALESCE(i.precert_certificate_id, i.cert_certificate_id)
    WHERE i.rollup_day IS NOT NULL
) t
WHERE EXISTS (SELECT 1 FROM issuances WHERE first_logged_at_ms > 253402207200000)
GROUP BY t.category, t.rollup_day, t.rollup_ca, t.rollup_bucket;
