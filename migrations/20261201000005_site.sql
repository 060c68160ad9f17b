-- Rollups the static site reads (issue 14, item 6), beside rollup_issuances
-- and rollup_jst, so that no page scans certificates, names or issuances.
-- Derived like the rest of the analysis layer: the analysis job keeps them
-- as it counts issuances, and `ct-manager analyse --backfill` empties them
-- with the others. The INSERT ... SELECT statements at the end of this file
-- build them from the analysis tables as they stand; they are also the
-- exact definition of every column.
--
-- "Counted" below means what rollup_issuances counts: an issuance is counted
-- once its first_logged_at_ms is known, under (rollup_day, rollup_ca,
-- rollup_bucket). An issuance's .jp names are the `names` rows of its
-- precertificate, else of its certificate (the two carry the same SANs).
--
-- How the analysis job keeps them (manager::analyse::issuances::apply):
-- - a new issuance row gets subject_o (the certificate's subject O, clipped
--   to 255, NULL when none);
-- - when a new issuance is counted (+1 in rollup_issuances under (day, ca,
--   bucket)), add 1 to rollup_categories (c, day, ca, bucket) for each
--   distinct category c of its names, to rollup_orgs (subject_o or '', ca,
--   bucket, the certificate's cert_analysis.validation), to rollup_domains
--   for each distinct registered domain of its names and to rollup_names
--   for each distinct name (with LEAST/GREATEST of first_logged_at_ms);
-- - when a stored issuance moves (-1 under its old (day, ca, bucket), +1
--   under the new), do the same to rollup_categories for each category of
--   its names; rollup_orgs, rollup_domains and rollup_names keep no day, so
--   only their first_logged_at_ms may move (LEAST);
-- - `--backfill` empties these four tables with the others.
-- Rows whose count falls to 0 may stay: the site reads issuances > 0.

-- The subject O of the issuance's certificates (NULL when none), set when
-- the issuance row is inserted and never changed: per-organisation pages
-- list an organisation's latest issuances through its index.
ALTER TABLE issuances
    ADD COLUMN subject_o VARCHAR(255) NULL,
    ADD KEY issuances_org (subject_o, first_logged_at_ms);

-- Counted issuances per name category (names.category), JST day, CA and
-- validity bucket, as rollup_issuances but once per distinct category of the
-- issuance's names (an issuance naming a co.jp and an ac.jp name counts in
-- both). Moves with the issuance's rollup_day like rollup_issuances.
CREATE TABLE rollup_categories (
    category VARCHAR(16) NOT NULL,
    day INT NOT NULL,
    ca VARCHAR(255) NOT NULL,
    bucket VARCHAR(16) NOT NULL,
    issuances BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (category, day, ca, bucket)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Counted issuances per registered domain (names.registered_domain), once
-- per distinct registered domain of the issuance's names, with the earliest
-- and latest first_logged_at_ms among them. Added to when an issuance is
-- counted for the first time; its category is its names' (MIN if they differ).
CREATE TABLE rollup_domains (
    registered_domain VARCHAR(700) NOT NULL PRIMARY KEY,
    category VARCHAR(16) NOT NULL,
    issuances BIGINT NOT NULL DEFAULT 0,
    first_logged_at_ms BIGINT UNSIGNED NULL,
    last_logged_at_ms BIGINT UNSIGNED NULL,
    -- Largest first, ties by name: the order the site lists them in.
    KEY rollup_domains_size (issuances DESC, registered_domain),
    KEY rollup_domains_category (category, issuances DESC, registered_domain)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Counted issuances per .jp name (names.name), once per distinct name of the
-- issuance. Its row count is the number of unique names.
CREATE TABLE rollup_names (
    name VARCHAR(700) NOT NULL PRIMARY KEY,
    registered_domain VARCHAR(700) NOT NULL,
    issuances BIGINT NOT NULL DEFAULT 0,
    first_logged_at_ms BIGINT UNSIGNED NULL,
    last_logged_at_ms BIGINT UNSIGNED NULL,
    -- (The primary key, name, follows in the index: names of a domain in order.)
    KEY rollup_names_domain (registered_domain)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Counted issuances per subject organisation (issuances.subject_o, '' when
-- none), CA (issuer O, '' when none), validity bucket and validation level
-- (cert_analysis.validation of the issuance's certificate, else of its
-- precertificate). Every counted issuance is in exactly one row, so the sum
-- equals rollup_issuances'. Added to when an issuance is counted for the first
-- time (none of these keys changes afterwards).
CREATE TABLE rollup_orgs (
    org VARCHAR(255) NOT NULL,
    ca VARCHAR(255) NOT NULL,
    bucket VARCHAR(16) NOT NULL,
    validation VARCHAR(16) NOT NULL,
    issuances BIGINT NOT NULL DEFAULT 0,
    first_logged_at_ms BIGINT UNSIGNED NULL,
    last_logged_at_ms BIGINT UNSIGNED NULL,
    PRIMARY KEY (org, ca, bucket, validation)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Build everything from what the analysis has written so far (nothing on a
-- fresh database).
UPDATE issuances i
    JOIN certificates c ON c.id = COALESCE(i.cert_certificate_id, i.precert_certificate_id)
    SET i.subject_o = LEFT(NULLIF(c.subject_o, ''), 255);

INSERT INTO rollup_categories (category, day, ca, bucket, issuances)
SELECT t.category, t.rollup_day, t.rollup_ca, t.rollup_bucket, COUNT(*)
FROM (
    SELECT DISTINCT i.id, n.category, i.rollup_day, i.rollup_ca, i.rollup_bucket
    FROM issuances i
    JOIN names n ON n.certificate_id = COALESCE(i.precert_certificate_id, i.cert_certificate_id)
    WHERE i.rollup_day IS NOT NULL
) t
GROUP BY t.category, t.rollup_day, t.rollup_ca, t.rollup_bucket;

INSERT INTO rollup_domains (registered_domain, category, issuances, first_logged_at_ms, last_logged_at_ms)
SELECT t.registered_domain, MIN(t.category), COUNT(*), MIN(t.first_logged_at_ms), MAX(t.first_logged_at_ms)
FROM (
    SELECT i.id, n.registered_domain, MIN(n.category) AS category, i.first_logged_at_ms
    FROM issuances i
    JOIN names n ON n.certificate_id = COALESCE(i.precert_certificate_id, i.cert_certificate_id)
    WHERE i.rollup_day IS NOT NULL
    GROUP BY i.id, n.registered_domain, i.first_logged_at_ms
) t
GROUP BY t.registered_domain;

INSERT INTO rollup_names (name, registered_domain, issuances, first_logged_at_ms, last_logged_at_ms)
SELECT t.name, MIN(t.registered_domain), COUNT(*), MIN(t.first_logged_at_ms), MAX(t.first_logged_at_ms)
FROM (
    SELECT DISTINCT i.id, n.name, n.registered_domain, i.first_logged_at_ms
    FROM issuances i
    JOIN names n ON n.certificate_id = COALESCE(i.precert_certificate_id, i.cert_certificate_id)
    WHERE i.rollup_day IS NOT NULL
) t
GROUP BY t.name;

INSERT INTO rollup_orgs (org, ca, bucket, validation, issuances, first_logged_at_ms, last_logged_at_ms)
SELECT COALESCE(i.subject_o, ''), i.rollup_ca, i.rollup_bucket,
       COALESCE(a.validation, p.validation, 'unknown'), COUNT(*),
       MIN(i.first_logged_at_ms), MAX(i.first_logged_at_ms)
FROM issuances i
LEFT JOIN cert_analysis a ON a.certificate_id = i.cert_certificate_id
LEFT JOIN cert_analysis p ON p.certificate_id = i.precert_certificate_id
WHERE i.rollup_day IS NOT NULL
GROUP BY 1, 2, 3, 4;
