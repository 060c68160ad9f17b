-- Fleet collection (issue 13): fetch budgets per log and per operator,
-- the tip of live logs ahead of backfill, retired logs collected to their
-- final tree head, and cool-downs of a worker on a failing log.

-- Per client address. NULL: the operator's value, else the manager's default.
ALTER TABLE logs
    ADD COLUMN requests_per_sec DOUBLE NULL,
    ADD COLUMN entries_per_request INT UNSIGNED NULL,
    -- From the log list (readonly/retired logs): planning stops there.
    ADD COLUMN final_tree_size BIGINT UNSIGNED NULL,
    ADD COLUMN temporal_start VARCHAR(32) NULL,
    ADD COLUMN temporal_end VARCHAR(32) NULL;

-- An operator's defaults for its logs, and its limit across all its logs
-- per client address (operator_requests_per_sec).
CREATE TABLE operators (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    requests_per_sec DOUBLE NULL,
    entries_per_request INT UNSIGNED NULL,
    fetchers INT UNSIGNED NULL,
    operator_requests_per_sec DOUBLE NULL,
    updated_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Tasks planned as a live log grew (its newest entries) go ahead of its backlog.
ALTER TABLE tasks
    ADD COLUMN tip TINYINT(1) NOT NULL DEFAULT 0,
    ADD KEY tasks_pick (log_id, state, enabled, tip, priority, id),
    ADD KEY tasks_tip (state, tip, log_id);

-- A worker kept off a log after repeated failures there.
CREATE TABLE worker_cooldowns (
    worker_id BIGINT UNSIGNED NOT NULL,
    log_id BIGINT UNSIGNED NOT NULL,
    failures INT UNSIGNED NOT NULL DEFAULT 0,
    until_ms BIGINT NOT NULL DEFAULT 0,
    reason VARCHAR(255) NOT NULL DEFAULT '',
    PRIMARY KEY (worker_id, log_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Retired and read-only logs are collected to their final tree head unless
-- an admin disables them; earlier imports disabled retired logs.
UPDATE logs SET enabled = 1 WHERE state IN ('retired', 'readonly') AND enabled = 0;
