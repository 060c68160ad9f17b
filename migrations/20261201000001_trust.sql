-- Trust rules (issue 12): every stored entry proven, leases that end return
-- their task whole, checks by independent workers, the manager's own audits,
-- and the log's faults told apart from a worker's.

-- The address a worker registered from: check tasks go to another address,
-- and registrations are rate-limited per address.
ALTER TABLE workers
    ADD COLUMN address VARCHAR(64) NOT NULL DEFAULT '',
    ADD KEY workers_address (address, first_seen);

ALTER TABLE tasks
    -- A check task may not go to a worker of this address (the checked one's).
    ADD COLUMN exclude_address VARCHAR(64) NOT NULL DEFAULT '',
    -- The last refused subtree hash, who reported it and from where: a second,
    -- independent worker reporting the same hash points at the log.
    ADD COLUMN fault_hash BINARY(32) NULL,
    ADD COLUMN fault_worker BIGINT UNSIGNED NULL,
    ADD COLUMN fault_address VARCHAR(64) NULL,
    -- The manager's own re-fetch of a completed range: NULL, 'pending',
    -- 'passed' or 'failed'.
    ADD COLUMN audit_state VARCHAR(16) NULL,
    ADD KEY tasks_audit (audit_state);

-- Ranges whose bytes, as the log served them to two independent workers and
-- to the manager itself, do not hash into the log's signed tree.
CREATE TABLE log_faults (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    log_id BIGINT UNSIGNED NOT NULL,
    task_id BIGINT UNSIGNED NOT NULL,
    start_index BIGINT UNSIGNED NOT NULL,
    end_index BIGINT UNSIGNED NOT NULL,
    -- The hash of the bytes served, and the log's (from its proof).
    served_hash BINARY(32) NOT NULL,
    log_hash BINARY(32) NULL,
    tree_size BIGINT UNSIGNED NULL,
    first_worker BIGINT UNSIGNED NULL,
    second_worker BIGINT UNSIGNED NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY log_faults_task (task_id),
    KEY log_faults_log (log_id, start_index),
    CONSTRAINT log_faults_log FOREIGN KEY (log_id) REFERENCES logs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Before this migration an upload without an audit path was stored, and a
-- lease could be resumed from a worker's word. Ranges not proven, or done
-- with unproven uploads, are collected again, whole; matches recorded
-- without proof no longer count in checks.
UPDATE tasks SET state = 'pending', next_index = start_index, lease_holder = NULL,
    lease_expires_at = NULL, lease_from = NULL, completed_by = NULL, completed_at = NULL,
    check_state = NULL, last_error = 'collected again: not proven before the trust rules'
    WHERE state = 'done' AND (proof_state IS NULL OR proof_state <> 'verified' OR unproven_uploads = 1);
DELETE FROM task_matches WHERE proven = 0;
