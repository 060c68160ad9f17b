-- Live operations (issue 15, item 4): how leases end hour by hour, how long
-- they last, each log's progress over time, and a daily snapshot of the
-- leaderboard. ct-db writes `task_outcomes` in the same transaction as the
-- transition that ends a lease (one statement each, `ct_db::ops`); the
-- manager's operations loop writes the snapshots, idempotently per hour
-- and per day. Times are Unix milliseconds (UTC).

-- When the current lease began; NULL when the task is not leased (and for
-- leases taken before this migration: their duration is unknown).
ALTER TABLE tasks ADD COLUMN leased_at BIGINT NULL;

-- Leases that ended, by the hour they ended in, log, outcome, main or check
-- task and duration.
CREATE TABLE task_outcomes (
    -- The start of the hour.
    hour BIGINT NOT NULL,
    log_id BIGINT UNSIGNED NOT NULL,
    -- completed, failed, expired, refused, released (`ct_db::TaskOutcome`).
    outcome VARCHAR(16) NOT NULL,
    -- A hidden-entry check task (tasks.check_of <> 0). A check is counted
    -- here only, never again as a main task.
    is_check TINYINT(1) NOT NULL,
    -- How long the lease lasted, from claim to its end: 0 under 1 s, k for
    -- [2^(k-1), 2^k) s up to 20 for 2^19 s and more; 255 unknown.
    bucket TINYINT UNSIGNED NOT NULL,
    -- CONNECTION_ID() % 8: transitions on other connections never wait on
    -- each other's row here (one transaction runs on one connection). The
    -- sum over the shards is the total; the operations loop folds the
    -- shards of past hours into shard 0.
    shard TINYINT UNSIGNED NOT NULL,
    -- Leases, the entries of their ranges (end_index - start_index), and
    -- the sum and maximum of their durations.
    n BIGINT UNSIGNED NOT NULL DEFAULT 0,
    entries BIGINT UNSIGNED NOT NULL DEFAULT 0,
    duration_ms_sum BIGINT UNSIGNED NOT NULL DEFAULT 0,
    duration_ms_max BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, log_id, outcome, is_check, bucket, shard),
    KEY task_outcomes_log (log_id, hour),
    -- The rows the loop still has to fold (shard <> 0).
    KEY task_outcomes_shard (shard, hour)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Each log's progress (`ct_db::progress`) as the last snapshot of each hour
-- found it.
CREATE TABLE log_progress_history (
    log_id BIGINT UNSIGNED NOT NULL,
    hour BIGINT NOT NULL,
    taken_at BIGINT NOT NULL,
    -- The largest verified tree head.
    tree_size BIGINT UNSIGNED NOT NULL,
    -- Entries in collected, proven ranges (progress.entries_verified).
    entries_collected BIGINT UNSIGNED NOT NULL,
    verified_until BIGINT UNSIGNED NOT NULL,
    entries_faulty BIGINT UNSIGNED NOT NULL,
    entries_missing BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (log_id, hour),
    KEY log_progress_history_hour (hour)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The leaderboard (`ct_db::workers::by_name`: one row per public name, the
-- names with a flagged or revoked machine left out) as the last snapshot
-- of each day found it.
CREATE TABLE rank_snapshots (
    -- The start of the day (UTC).
    day BIGINT NOT NULL,
    -- The identity's name (identities.name, unique by this collation).
    name VARCHAR(64) NOT NULL,
    -- 1 for the most entries.
    place INT UNSIGNED NOT NULL,
    entries BIGINT UNSIGNED NOT NULL,
    matches BIGINT UNSIGNED NOT NULL,
    tasks_done BIGINT UNSIGNED NOT NULL,
    machines BIGINT UNSIGNED NOT NULL,
    taken_at BIGINT NOT NULL,
    PRIMARY KEY (day, name),
    UNIQUE KEY rank_snapshots_place (day, place)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
