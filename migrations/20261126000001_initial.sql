-- ctjp initial schema. Times are Unix milliseconds (BIGINT), hashes raw 32-byte BINARY.

CREATE TABLE logs (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    url VARCHAR(512) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    monitoring_url VARCHAR(512) NULL,
    public_key VARBINARY(2048) NOT NULL,
    log_id BINARY(32) NOT NULL,
    description VARCHAR(512) NOT NULL DEFAULT '',
    operator VARCHAR(255) NOT NULL DEFAULT '',
    state VARCHAR(32) NOT NULL DEFAULT '',
    mmd BIGINT UNSIGNED NOT NULL DEFAULT 0,
    enabled TINYINT(1) NOT NULL DEFAULT 1,
    priority INT NOT NULL DEFAULT 0,
    start_index BIGINT UNSIGNED NOT NULL DEFAULT 0,
    planned_end BIGINT UNSIGNED NOT NULL DEFAULT 0,
    max_fetchers INT UNSIGNED NOT NULL DEFAULT 4,
    last_polled_at BIGINT NULL,
    last_poll_error VARCHAR(1024) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE KEY logs_url (url),
    KEY logs_log_id (log_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sths (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    log_id BIGINT UNSIGNED NOT NULL,
    tree_size BIGINT UNSIGNED NOT NULL,
    timestamp_ms BIGINT UNSIGNED NOT NULL,
    root_hash BINARY(32) NOT NULL,
    signature VARBINARY(2048) NOT NULL,
    verified TINYINT(1) NOT NULL,
    error VARCHAR(1024) NULL,
    fetched_at BIGINT NOT NULL,
    UNIQUE KEY sths_head (log_id, timestamp_ms, tree_size, root_hash, verified),
    KEY sths_verified (log_id, verified, tree_size),
    CONSTRAINT sths_log FOREIGN KEY (log_id) REFERENCES logs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE workers (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    token_hash CHAR(64) NOT NULL,
    version VARCHAR(64) NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    revoked TINYINT(1) NOT NULL DEFAULT 0,
    entries BIGINT UNSIGNED NOT NULL DEFAULT 0,
    matches BIGINT UNSIGNED NOT NULL DEFAULT 0,
    tasks_done BIGINT UNSIGNED NOT NULL DEFAULT 0,
    UNIQUE KEY workers_name (name),
    UNIQUE KEY workers_token (token_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Scaling state: fetchers per worker and log (AIMD).
CREATE TABLE worker_logs (
    worker_id BIGINT UNSIGNED NOT NULL,
    log_id BIGINT UNSIGNED NOT NULL,
    fetchers INT UNSIGNED NOT NULL,
    reason VARCHAR(255) NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (worker_id, log_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- enabled and priority are copies of the log's, kept in step by the admin
-- calls, so that a claim is one indexed query on this table.
CREATE TABLE tasks (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    log_id BIGINT UNSIGNED NOT NULL,
    start_index BIGINT UNSIGNED NOT NULL,
    end_index BIGINT UNSIGNED NOT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'pending',
    enabled TINYINT(1) NOT NULL DEFAULT 1,
    priority INT NOT NULL DEFAULT 0,
    next_index BIGINT UNSIGNED NOT NULL,
    lease_holder BIGINT UNSIGNED NULL,
    lease_expires_at BIGINT NULL,
    lease_from BIGINT UNSIGNED NULL,
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    entries BIGINT UNSIGNED NOT NULL DEFAULT 0,
    matches BIGINT UNSIGNED NOT NULL DEFAULT 0,
    errors BIGINT UNSIGNED NOT NULL DEFAULT 0,
    rate_limited BIGINT UNSIGNED NOT NULL DEFAULT 0,
    lease_entries BIGINT UNSIGNED NOT NULL DEFAULT 0,
    lease_matches BIGINT UNSIGNED NOT NULL DEFAULT 0,
    lease_errors BIGINT UNSIGNED NOT NULL DEFAULT 0,
    lease_rate_limited BIGINT UNSIGNED NOT NULL DEFAULT 0,
    subtree_hash BINARY(32) NULL,
    last_error VARCHAR(1024) NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT NULL,
    UNIQUE KEY tasks_range (log_id, start_index),
    KEY tasks_claim (state, enabled, priority DESC, id),
    KEY tasks_lease (state, lease_expires_at),
    KEY tasks_holder (lease_holder),
    CONSTRAINT tasks_log FOREIGN KEY (log_id) REFERENCES logs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE certificates (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    fingerprint BINARY(32) NOT NULL,
    entry_type VARCHAR(8) NOT NULL,
    serial VARCHAR(1024) NOT NULL DEFAULT '',
    subject_dn TEXT NULL,
    subject_cn TEXT NULL,
    subject_o TEXT NULL,
    issuer_dn TEXT NULL,
    issuer_cn TEXT NULL,
    issuer_o TEXT NULL,
    not_before BIGINT NULL,
    not_after BIGINT NULL,
    dns_names MEDIUMTEXT NOT NULL,
    ip_addresses TEXT NOT NULL,
    key_algorithm VARCHAR(128) NULL,
    key_bits INT UNSIGNED NULL,
    signature_algorithm VARCHAR(128) NULL,
    policies TEXT NOT NULL,
    validation VARCHAR(16) NOT NULL DEFAULT 'unknown',
    is_ca TINYINT(1) NOT NULL DEFAULT 0,
    parse_error TEXT NULL,
    leaf_input MEDIUMBLOB NOT NULL,
    extra_data MEDIUMBLOB NOT NULL,
    first_seen BIGINT NOT NULL,
    UNIQUE KEY certificates_fingerprint (fingerprint),
    KEY certificates_not_after (not_after)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sightings (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    log_id BIGINT UNSIGNED NOT NULL,
    idx BIGINT UNSIGNED NOT NULL,
    certificate_id BIGINT UNSIGNED NOT NULL,
    leaf_hash BINARY(32) NOT NULL,
    timestamp_ms BIGINT UNSIGNED NOT NULL,
    worker_id BIGINT UNSIGNED NULL,
    task_id BIGINT UNSIGNED NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY sightings_entry (log_id, idx),
    KEY sightings_certificate (certificate_id),
    KEY sightings_created (created_at),
    CONSTRAINT sightings_log FOREIGN KEY (log_id) REFERENCES logs (id),
    CONSTRAINT sightings_certificate FOREIGN KEY (certificate_id) REFERENCES certificates (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE names (
    certificate_id BIGINT UNSIGNED NOT NULL,
    name VARCHAR(700) NOT NULL,
    category VARCHAR(16) NOT NULL,
    registered_domain VARCHAR(700) NOT NULL,
    PRIMARY KEY (certificate_id, name),
    KEY names_name (name),
    KEY names_registered (registered_domain),
    CONSTRAINT names_certificate FOREIGN KEY (certificate_id) REFERENCES certificates (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE failed_entries (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    log_id BIGINT UNSIGNED NOT NULL,
    idx BIGINT UNSIGNED NOT NULL,
    leaf_input MEDIUMBLOB NOT NULL,
    extra_data MEDIUMBLOB NOT NULL,
    error TEXT NOT NULL,
    worker_id BIGINT UNSIGNED NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY failed_entry (log_id, idx),
    CONSTRAINT failed_log FOREIGN KEY (log_id) REFERENCES logs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Per-minute counters, updated incrementally (minute = Unix seconds of the minute's start).
CREATE TABLE stats_minute (
    minute BIGINT NOT NULL,
    worker_id BIGINT UNSIGNED NOT NULL,
    log_id BIGINT UNSIGNED NOT NULL,
    entries BIGINT UNSIGNED NOT NULL DEFAULT 0,
    matches BIGINT UNSIGNED NOT NULL DEFAULT 0,
    errors BIGINT UNSIGNED NOT NULL DEFAULT 0,
    rate_limit_hits BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, worker_id, log_id),
    KEY stats_log (log_id, minute)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
