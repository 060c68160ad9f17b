-- The analysis layer (issue 14): facts per certificate computed by ct-core
-- from the stored raw entry, issuances (a precertificate and its final
-- certificate are one), renewal chains per set of .jp names, and rollups the
-- static site reads. Everything here is derived: `ct-manager analyse
-- --backfill` rebuilds it from `certificates`, `sightings` and `names`.

-- One row per analysed certificate.
CREATE TABLE cert_analysis (
    certificate_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    issuance_id BIGINT UNSIGNED NOT NULL,
    spki_sha256 BINARY(32) NULL,
    authority_key_id VARCHAR(128) NULL,
    subject_key_id VARCHAR(128) NULL,
    san_count INT UNSIGNED NOT NULL DEFAULT 0,
    is_wildcard TINYINT(1) NOT NULL DEFAULT 0,
    has_crl TINYINT(1) NOT NULL DEFAULT 0,
    has_ocsp TINYINT(1) NOT NULL DEFAULT 0,
    subject_c VARCHAR(255) NULL,
    subject_st VARCHAR(255) NULL,
    subject_l VARCHAR(255) NULL,
    subject_ou VARCHAR(255) NULL,
    issuer_c VARCHAR(255) NULL,
    issuer_st VARCHAR(255) NULL,
    issuer_l VARCHAR(255) NULL,
    issuer_ou VARCHAR(255) NULL,
    -- dv/ov/ev/iv/unknown; inferred = 1 when no CA/B Forum policy OID said
    -- so and the level comes from the subject O (OV) or its absence (DV).
    validation VARCHAR(16) NOT NULL DEFAULT 'unknown',
    validation_inferred TINYINT(1) NOT NULL DEFAULT 0,
    -- Whole days of the inclusive validity period (not_after - not_before + 1 s).
    validity_days INT NULL,
    -- The earliest CT log timestamp among its sightings, and that moment in
    -- Asia/Tokyo.
    first_logged_at_ms BIGINT UNSIGNED NULL,
    jst_night TINYINT(1) NULL,
    jst_weekend TINYINT(1) NULL,
    jst_holiday TINYINT(1) NULL,
    jst_hour TINYINT UNSIGNED NULL,
    jst_weekday TINYINT UNSIGNED NULL,
    analysed_at BIGINT NOT NULL,
    KEY cert_analysis_issuance (issuance_id),
    KEY cert_analysis_spki (spki_sha256),
    CONSTRAINT cert_analysis_certificate FOREIGN KEY (certificate_id) REFERENCES certificates (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per issuance: a CA's (issuer, serial). A precertificate's TBS
-- carries the final certificate's issuer and serial, so both land here.
CREATE TABLE issuances (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- SHA-256 of issuer_dn, a zero byte and serial: the issuance's identity
    -- in one short unique key.
    issuance_key BINARY(32) NOT NULL,
    serial VARCHAR(1024) NOT NULL,
    issuer_dn TEXT NULL,
    issuer_o VARCHAR(255) NULL,
    precert_certificate_id BIGINT UNSIGNED NULL,
    cert_certificate_id BIGINT UNSIGNED NULL,
    -- SHA-256 of the sorted .jp names, one per line: the renewal chain key.
    names_key BINARY(32) NOT NULL,
    -- JSON array of the sorted .jp names.
    names MEDIUMTEXT NOT NULL,
    not_before BIGINT NULL,
    not_after BIGINT NULL,
    validity_days INT NULL,
    spki_sha256 BINARY(32) NULL,
    first_logged_at_ms BIGINT UNSIGNED NULL,
    -- What the rollups counted this issuance under (so a move is undone).
    rollup_day INT NULL,
    rollup_ca VARCHAR(255) NULL,
    rollup_bucket VARCHAR(16) NULL,
    UNIQUE KEY issuances_key (issuance_key),
    KEY issuances_names (names_key, not_before),
    KEY issuances_logged (first_logged_at_ms),
    KEY issuances_ca (issuer_o)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Successive issuances for the same set of .jp names, by not_before.
CREATE TABLE renewals (
    issuance_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    previous_issuance_id BIGINT UNSIGNED NOT NULL,
    names_key BINARY(32) NOT NULL,
    -- This not_before minus the previous not_after, in whole days (floor);
    -- negative is an overlap.
    gap_days INT NOT NULL,
    same_key TINYINT(1) NOT NULL,
    -- The issuer O changed: the name set moved to another CA.
    ca_changed TINYINT(1) NOT NULL,
    KEY renewals_names (names_key),
    KEY renewals_previous (previous_issuance_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per set of .jp names: its latest issuance, for lapses and timelines.
CREATE TABLE name_sets (
    names_key BINARY(32) NOT NULL PRIMARY KEY,
    names MEDIUMTEXT NOT NULL,
    issuances INT UNSIGNED NOT NULL,
    first_not_before BIGINT NULL,
    latest_issuance_id BIGINT UNSIGNED NOT NULL,
    latest_not_before BIGINT NULL,
    latest_not_after BIGINT NULL,
    latest_spki_sha256 BINARY(32) NULL,
    latest_issuer_o VARCHAR(255) NULL,
    KEY name_sets_latest (latest_not_after)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Issuances per day (days since 1970-01-01 in Japan, UTC+9, of the
-- earliest CT log timestamp), CA (issuer O, '' when none) and validity
-- bucket (short, 90, 91-398, over-398, unknown); kept as issuances are analysed.
CREATE TABLE rollup_issuances (
    day INT NOT NULL,
    ca VARCHAR(255) NOT NULL,
    bucket VARCHAR(16) NOT NULL,
    issuances BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, ca, bucket)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Certificates (entries, precertificates included) per JST weekday x hour,
-- holiday or not, by the earliest CT log timestamp.
CREATE TABLE rollup_jst (
    weekday TINYINT UNSIGNED NOT NULL,
    hour TINYINT UNSIGNED NOT NULL,
    holiday TINYINT(1) NOT NULL,
    certificates BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (weekday, hour, holiday)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- How far the analysis has read: the last sighting it took into account.
CREATE TABLE analysis_state (
    id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    last_sighting_id BIGINT UNSIGNED NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
INSERT INTO analysis_state (id, last_sighting_id, updated_at) VALUES (1, 0, 0);

-- For researchers: one row per analysed certificate.
CREATE VIEW v_certificates AS
SELECT
    LOWER(HEX(c.fingerprint)) AS fingerprint,
    c.entry_type,
    a.issuance_id,
    c.serial,
    LOWER(HEX(a.spki_sha256)) AS spki_sha256,
    a.authority_key_id,
    a.subject_key_id,
    a.san_count,
    a.is_wildcard,
    a.has_crl,
    a.has_ocsp,
    c.not_before,
    c.not_after,
    a.validity_days,
    a.first_logged_at_ms,
    a.jst_night,
    a.jst_weekend,
    a.jst_holiday,
    c.issuer_dn,
    c.issuer_cn,
    c.issuer_o,
    a.issuer_c,
    a.issuer_st,
    a.issuer_l,
    a.issuer_ou,
    c.subject_dn,
    c.subject_cn,
    c.subject_o,
    a.subject_c,
    a.subject_st,
    a.subject_l,
    a.subject_ou,
    a.validation,
    a.validation_inferred,
    c.key_algorithm,
    c.key_bits,
    c.signature_algorithm,
    c.dns_names
FROM certificates c
JOIN cert_analysis a ON a.certificate_id = c.id;

-- One row per issuance; either fingerprint may be NULL.
CREATE VIEW v_issuances AS
SELECT
    i.id AS issuance_id,
    LOWER(HEX(p.fingerprint)) AS precert_fingerprint,
    LOWER(HEX(f.fingerprint)) AS cert_fingerprint,
    i.issuer_dn,
    i.issuer_o,
    i.serial,
    i.names,
    i.not_before,
    i.not_after,
    i.validity_days,
    LOWER(HEX(i.spki_sha256)) AS spki_sha256,
    i.first_logged_at_ms
FROM issuances i
LEFT JOIN certificates p ON p.id = i.precert_certificate_id
LEFT JOIN certificates f ON f.id = i.cert_certificate_id;

CREATE VIEW v_renewals AS
SELECT
    r.issuance_id,
    r.previous_issuance_id,
    r.gap_days,
    r.same_key,
    r.ca_changed
FROM renewals r;

CREATE VIEW v_names AS
SELECT
    LOWER(HEX(c.fingerprint)) AS fingerprint,
    n.name,
    n.category,
    n.registered_domain
FROM names n
JOIN certificates c ON c.id = n.certificate_id;

-- Name sets whose latest issuance has expired: nothing renewed them.
CREATE VIEW v_lapses AS
SELECT
    LOWER(HEX(s.names_key)) AS names_key,
    s.names,
    s.latest_issuance_id,
    s.latest_not_after AS expired_at,
    s.latest_issuer_o,
    s.issuances
FROM name_sets s
WHERE s.latest_not_after < UNIX_TIMESTAMP();
