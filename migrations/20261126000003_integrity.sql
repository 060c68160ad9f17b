-- Range and entry integrity (issue 6): proof state of every task, hidden-entry
-- check tasks (same range, another worker), per-task upload records to compare
-- the two sets of matches, and flagged workers with their evidence.

-- A check task repeats the range of task `check_of`; ordinary tasks have 0.
-- The range key therefore includes check_of.
ALTER TABLE tasks
    ADD COLUMN check_of BIGINT UNSIGNED NOT NULL DEFAULT 0,
    -- The worker that may not claim this task (the one it checks, or the one
    -- whose result was refused).
    ADD COLUMN exclude_worker BIGINT UNSIGNED NULL,
    ADD COLUMN completed_by BIGINT UNSIGNED NULL,
    -- NULL until checked; then 'verified', 'unproven' or 'mismatch'.
    ADD COLUMN proof_state VARCHAR(16) NULL,
    -- The subtree hash that was checked (from uploads or from complete).
    ADD COLUMN proof_hash BINARY(32) NULL,
    -- Size of the signed tree head it was checked against.
    ADD COLUMN proof_tree_size BIGINT UNSIGNED NULL,
    ADD COLUMN proof_error VARCHAR(1024) NULL,
    ADD COLUMN proof_checked_at BIGINT NULL,
    -- Some upload of this task came without audit paths.
    ADD COLUMN unproven_uploads TINYINT(1) NOT NULL DEFAULT 0,
    -- Refused results (proof mismatches) so far.
    ADD COLUMN mismatches INT UNSIGNED NOT NULL DEFAULT 0,
    -- For a task that was checked: 'pending', 'passed' or 'failed'.
    ADD COLUMN check_state VARCHAR(16) NULL,
    ADD UNIQUE KEY tasks_range_check (log_id, start_index, check_of),
    ADD KEY tasks_proof (log_id, state, proof_state),
    ADD KEY tasks_completed_by (completed_by);

ALTER TABLE tasks DROP INDEX tasks_range;

ALTER TABLE workers
    ADD COLUMN mismatches INT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN flagged TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN checks_failed INT UNSIGNED NOT NULL DEFAULT 0;

-- Every accepted match of a task per worker (index and leaf hash): the sets a
-- check compares. Duplicates of stored sightings are recorded too.
CREATE TABLE task_matches (
    task_id BIGINT UNSIGNED NOT NULL,
    worker_id BIGINT UNSIGNED NOT NULL,
    idx BIGINT UNSIGNED NOT NULL,
    leaf_hash BINARY(32) NOT NULL,
    proven TINYINT(1) NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, worker_id, idx)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Evidence against a worker: its set of matches for `task_id` differed from
-- another worker's for the same range (`other_task_id`).
CREATE TABLE flags (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    worker_id BIGINT UNSIGNED NOT NULL,
    task_id BIGINT UNSIGNED NOT NULL,
    other_task_id BIGINT UNSIGNED NOT NULL,
    other_worker_id BIGINT UNSIGNED NULL,
    log_id BIGINT UNSIGNED NOT NULL,
    start_index BIGINT UNSIGNED NOT NULL,
    end_index BIGINT UNSIGNED NOT NULL,
    -- JSON arrays of indices: matches the other worker proved and this one
    -- did not report, and matches this one reported that the other did not.
    missing MEDIUMTEXT NOT NULL,
    extra MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    KEY flags_worker (worker_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
