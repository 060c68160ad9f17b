-- Cheap public reads (issue 15, item 3): counters kept by triggers as rows
-- change, in the same statement (so in the same transaction) as the change,
-- whatever code or SQL makes it. `/v1/logs`, `/v1/stats`, `/v1/workers`,
-- `/metrics` and sitegen read these sums instead of counting whole tables.
--
-- Every counter row belongs to a shard: CONNECTION_ID() % 32. One
-- transaction runs on one connection, so it touches one shard only, and
-- concurrent transactions on other connections do not wait on each other's
-- counter rows. A shard's value alone means nothing (a task counted in by
-- one connection is counted out by another); the sum over the shards is
-- the total. Triggers are single statements so that `mysql < file` applies
-- this file too. Creating triggers needs the TRIGGER privilege (and, on a
-- server with binary logging, SUPER or log_bin_trust_function_creators).
-- On a large database this migration reads every task, sighting, failed
-- entry, certificate and name once, and builds one index on tasks.

-- Where a main task stands for a log's progress: 1 collected (done and
-- proven), 2 the log's fault, 0 anything else (a gap); NULL for a check
-- task. Indexed with the range start, so that the verified prefix, the gaps
-- and the faults are found with a few index seeks instead of a scan.
ALTER TABLE tasks
    ADD COLUMN progress_class TINYINT AS (CASE
        WHEN check_of <> 0 THEN NULL
        WHEN state = 'done' AND proof_state <=> 'verified' THEN 1
        WHEN state = 'log_fault' THEN 2
        ELSE 0 END) VIRTUAL,
    ADD KEY tasks_progress (log_id, progress_class, start_index);

-- Per log. "Main" tasks are those with check_of = 0.
CREATE TABLE log_counters (
    log_id BIGINT UNSIGNED NOT NULL,
    shard SMALLINT UNSIGNED NOT NULL,
    -- Main tasks, and main tasks by state.
    tasks BIGINT NOT NULL DEFAULT 0,
    pending BIGINT NOT NULL DEFAULT 0,
    leased BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    log_fault BIGINT NOT NULL DEFAULT 0,
    -- Check tasks, and check tasks by state.
    check_tasks BIGINT NOT NULL DEFAULT 0,
    check_pending BIGINT NOT NULL DEFAULT 0,
    check_leased BIGINT NOT NULL DEFAULT 0,
    check_done BIGINT NOT NULL DEFAULT 0,
    check_log_fault BIGINT NOT NULL DEFAULT 0,
    -- Main tasks whose check failed (check_state = 'failed').
    checks_failed BIGINT NOT NULL DEFAULT 0,
    -- Sums of u64 columns: DECIMAL, so that they never overflow.
    -- `entries` of every task (main and check).
    entries DECIMAL(38, 0) NOT NULL DEFAULT 0,
    -- Of main tasks: matches; errors and rate-limit answers with those of
    -- the current lease (errors + lease_errors, ...).
    matches DECIMAL(38, 0) NOT NULL DEFAULT 0,
    errors DECIMAL(38, 0) NOT NULL DEFAULT 0,
    rate_limited DECIMAL(38, 0) NOT NULL DEFAULT 0,
    -- Entries (end_index - start_index) of main tasks: all, progress class
    -- 1 (collected) and class 2 (the log's fault).
    span DECIMAL(38, 0) NOT NULL DEFAULT 0,
    span_verified DECIMAL(38, 0) NOT NULL DEFAULT 0,
    span_fault DECIMAL(38, 0) NOT NULL DEFAULT 0,
    -- Grows whenever a main task is added or removed or changes its range
    -- or progress class: readers keep the gaps and faults they listed while
    -- the sum stays the same.
    layout BIGINT NOT NULL DEFAULT 0,
    -- Rows of sightings and failed_entries.
    sightings BIGINT NOT NULL DEFAULT 0,
    failed_entries BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (log_id, shard)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Rows of certificates and names.
CREATE TABLE total_counters (
    shard SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
    certificates BIGINT NOT NULL DEFAULT 0,
    names BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The counters of the rows as they stand (shard 0), before any trigger.
INSERT INTO log_counters (log_id, shard, tasks, pending, leased, done, log_fault,
    check_tasks, check_pending, check_leased, check_done, check_log_fault, checks_failed,
    entries, matches, errors, rate_limited, span, span_verified, span_fault, layout)
SELECT log_id, 0,
    SUM(check_of = 0), SUM(check_of = 0 AND state = 'pending'), SUM(check_of = 0 AND state = 'leased'),
    SUM(check_of = 0 AND state = 'done'), SUM(check_of = 0 AND state = 'log_fault'),
    SUM(check_of <> 0), SUM(check_of <> 0 AND state = 'pending'), SUM(check_of <> 0 AND state = 'leased'),
    SUM(check_of <> 0 AND state = 'done'), SUM(check_of <> 0 AND state = 'log_fault'),
    SUM(check_of = 0 AND check_state <=> 'failed'),
    SUM(entries),
    SUM(IF(check_of = 0, matches, 0)),
    SUM(IF(check_of = 0, CAST(errors AS DECIMAL(38, 0)) + lease_errors, 0)),
    SUM(IF(check_of = 0, CAST(rate_limited AS DECIMAL(38, 0)) + lease_rate_limited, 0)),
    SUM(IF(check_of = 0, CAST(end_index AS DECIMAL(38, 0)) - start_index, 0)),
    SUM(IF(progress_class <=> 1, CAST(end_index AS DECIMAL(38, 0)) - start_index, 0)),
    SUM(IF(progress_class <=> 2, CAST(end_index AS DECIMAL(38, 0)) - start_index, 0)),
    SUM(check_of = 0)
FROM tasks GROUP BY log_id;
INSERT INTO log_counters (log_id, shard, sightings)
SELECT log_id, 0, COUNT(*) FROM sightings GROUP BY log_id
ON DUPLICATE KEY UPDATE sightings = VALUES(sightings);
INSERT INTO log_counters (log_id, shard, failed_entries)
SELECT log_id, 0, COUNT(*) FROM failed_entries GROUP BY log_id
ON DUPLICATE KEY UPDATE failed_entries = VALUES(failed_entries);
INSERT INTO total_counters (shard, certificates, names)
SELECT 0, (SELECT COUNT(*) FROM certificates), (SELECT COUNT(*) FROM names);

-- A task's share of its log's counters, added when it is inserted,
-- subtracted when it is deleted, and both (old out, new in) when a counted
-- column changes. The three triggers spell out the same columns.
CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks FOR EACH ROW
INSERT INTO log_counters (log_id, shard, tasks, pending, leased, done, log_fault,
    check_tasks, check_pending, check_leased, check_done, check_log_fault, checks_failed,
    entries, matches, errors, rate_limited, span, span_verified, span_fault, layout)
VALUES (NEW.log_id, CONNECTION_ID() % 32,
    NEW.check_of = 0, NEW.check_of = 0 AND NEW.state = 'pending', NEW.check_of = 0 AND NEW.state = 'leased',
    NEW.check_of = 0 AND NEW.state = 'done', NEW.check_of = 0 AND NEW.state = 'log_fault',
    NEW.check_of <> 0, NEW.check_of <> 0 AND NEW.state = 'pending', NEW.check_of <> 0 AND NEW.state = 'leased',
    NEW.check_of <> 0 AND NEW.state = 'done', NEW.check_of <> 0 AND NEW.state = 'log_fault',
    NEW.check_of = 0 AND NEW.check_state <=> 'failed',
    NEW.entries,
    IF(NEW.check_of = 0, NEW.matches, 0),
    IF(NEW.check_of = 0, CAST(NEW.errors AS DECIMAL(38, 0)) + NEW.lease_errors, 0),
    IF(NEW.check_of = 0, CAST(NEW.rate_limited AS DECIMAL(38, 0)) + NEW.lease_rate_limited, 0),
    IF(NEW.check_of = 0, CAST(NEW.end_index AS DECIMAL(38, 0)) - NEW.start_index, 0),
    IF(NEW.progress_class <=> 1, CAST(NEW.end_index AS DECIMAL(38, 0)) - NEW.start_index, 0),
    IF(NEW.progress_class <=> 2, CAST(NEW.end_index AS DECIMAL(38, 0)) - NEW.start_index, 0),
    NEW.check_of = 0)
ON DUPLICATE KEY UPDATE tasks = tasks + VALUES(tasks), pending = pending + VALUES(pending),
    leased = leased + VALUES(leased), done = done + VALUES(done), log_fault = log_fault + VALUES(log_fault),
    check_tasks = check_tasks + VALUES(check_tasks), check_pending = check_pending + VALUES(check_pending),
    check_leased = check_leased + VALUES(check_leased), check_done = check_done + VALUES(check_done),
    check_log_fault = check_log_fault + VALUES(check_log_fault), checks_failed = checks_failed + VALUES(checks_failed),
    entries = entries + VALUES(entries), matches = matches + VALUES(matches), errors = errors + VALUES(errors),
    rate_limited = rate_limited + VALUES(rate_limited), span = span + VALUES(span),
    span_verified = span_verified + VALUES(span_verified), span_fault = span_fault + VALUES(span_fault),
    layout = layout + VALUES(layout);

CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks FOR EACH ROW
INSERT INTO log_counters (log_id, shard, tasks, pending, leased, done, log_fault,
    check_tasks, check_pending, check_leased, check_done, check_log_fault, checks_failed,
    entries, matches, errors, rate_limited, span, span_verified, span_fault, layout)
VALUES (OLD.log_id, CONNECTION_ID() % 32,
    -(OLD.check_of = 0), -(OLD.check_of = 0 AND OLD.state = 'pending'), -(OLD.check_of = 0 AND OLD.state = 'leased'),
    -(OLD.check_of = 0 AND OLD.state = 'done'), -(OLD.check_of = 0 AND OLD.state = 'log_fault'),
    -(OLD.check_of <> 0), -(OLD.check_of <> 0 AND OLD.state = 'pending'), -(OLD.check_of <> 0 AND OLD.state = 'leased'),
    -(OLD.check_of <> 0 AND OLD.state = 'done'), -(OLD.check_of <> 0 AND OLD.state = 'log_fault'),
    -(OLD.check_of = 0 AND OLD.check_state <=> 'failed'),
    -CAST(OLD.entries AS DECIMAL(38, 0)),
    -IF(OLD.check_of = 0, CAST(OLD.matches AS DECIMAL(38, 0)), 0),
    -IF(OLD.check_of = 0, CAST(OLD.errors AS DECIMAL(38, 0)) + OLD.lease_errors, 0),
    -IF(OLD.check_of = 0, CAST(OLD.rate_limited AS DECIMAL(38, 0)) + OLD.lease_rate_limited, 0),
    -IF(OLD.check_of = 0, CAST(OLD.end_index AS DECIMAL(38, 0)) - OLD.start_index, 0),
    -IF(OLD.progress_class <=> 1, CAST(OLD.end_index AS DECIMAL(38, 0)) - OLD.start_index, 0),
    -IF(OLD.progress_class <=> 2, CAST(OLD.end_index AS DECIMAL(38, 0)) - OLD.start_index, 0),
    OLD.check_of = 0)
ON DUPLICATE KEY UPDATE tasks = tasks + VALUES(tasks), pending = pending + VALUES(pending),
    leased = leased + VALUES(leased), done = done + VALUES(done), log_fault = log_fault + VALUES(log_fault),
    check_tasks = check_tasks + VALUES(check_tasks), check_pending = check_pending + VALUES(check_pending),
    check_leased = check_leased + VALUES(check_leased), check_done = check_done + VALUES(check_done),
    check_log_fault = check_log_fault + VALUES(check_log_fault), checks_failed = checks_failed + VALUES(checks_failed),
    entries = entries + VALUES(entries), matches = matches + VALUES(matches), errors = errors + VALUES(errors),
    rate_limited = rate_limited + VALUES(rate_limited), span = span + VALUES(span),
    span_verified = span_verified + VALUES(span_verified), span_fault = span_fault + VALUES(span_fault),
    layout = layout + VALUES(layout);

-- Nothing is written when no counted column changed (a heartbeat that
-- reports progress but no errors, a lease's expiry time, ...).
CREATE TRIGGER tasks_count_update AFTER UPDATE ON tasks FOR EACH ROW
INSERT INTO log_counters (log_id, shard, tasks, pending, leased, done, log_fault,
    check_tasks, check_pending, check_leased, check_done, check_log_fault, checks_failed,
    entries, matches, errors, rate_limited, span, span_verified, span_fault, layout)
SELECT * FROM (
    SELECT OLD.log_id AS d_log_id, CONNECTION_ID() % 32 AS d_shard,
        -(OLD.check_of = 0) AS d_tasks, -(OLD.check_of = 0 AND OLD.state = 'pending') AS d_pending,
        -(OLD.check_of = 0 AND OLD.state = 'leased') AS d_leased, -(OLD.check_of = 0 AND OLD.state = 'done') AS d_done,
        -(OLD.check_of = 0 AND OLD.state = 'log_fault') AS d_log_fault,
        -(OLD.check_of <> 0) AS d_check_tasks, -(OLD.check_of <> 0 AND OLD.state = 'pending') AS d_check_pending,
        -(OLD.check_of <> 0 AND OLD.state = 'leased') AS d_check_leased,
        -(OLD.check_of <> 0 AND OLD.state = 'done') AS d_check_done,
        -(OLD.check_of <> 0 AND OLD.state = 'log_fault') AS d_check_log_fault,
        -(OLD.check_of = 0 AND OLD.check_state <=> 'failed') AS d_checks_failed,
        -CAST(OLD.entries AS DECIMAL(38, 0)) AS d_entries,
        -IF(OLD.check_of = 0, CAST(OLD.matches AS DECIMAL(38, 0)), 0) AS d_matches,
        -IF(OLD.check_of = 0, CAST(OLD.errors AS DECIMAL(38, 0)) + OLD.lease_errors, 0) AS d_errors,
        -IF(OLD.check_of = 0, CAST(OLD.rate_limited AS DECIMAL(38, 0)) + OLD.lease_rate_limited, 0) AS d_rate_limited,
        -IF(OLD.check_of = 0, CAST(OLD.end_index AS DECIMAL(38, 0)) - OLD.start_index, 0) AS d_span,
        -IF(OLD.progress_class <=> 1, CAST(OLD.end_index AS DECIMAL(38, 0)) - OLD.start_index, 0) AS d_span_verified,
        -IF(OLD.progress_class <=> 2, CAST(OLD.end_index AS DECIMAL(38, 0)) - OLD.start_index, 0) AS d_span_fault,
        0 AS d_layout
    UNION ALL
    SELECT NEW.log_id, CONNECTION_ID() % 32,
        NEW.check_of = 0, NEW.check_of = 0 AND NEW.state = 'pending', NEW.check_of = 0 AND NEW.state = 'leased',
        NEW.check_of = 0 AND NEW.state = 'done', NEW.check_of = 0 AND NEW.state = 'log_fault',
        NEW.check_of <> 0, NEW.check_of <> 0 AND NEW.state = 'pending', NEW.check_of <> 0 AND NEW.state = 'leased',
        NEW.check_of <> 0 AND NEW.state = 'done', NEW.check_of <> 0 AND NEW.state = 'log_fault',
        NEW.check_of = 0 AND NEW.check_state <=> 'failed',
        NEW.entries,
        IF(NEW.check_of = 0, NEW.matches, 0),
        IF(NEW.check_of = 0, CAST(NEW.errors AS DECIMAL(38, 0)) + NEW.lease_errors, 0),
        IF(NEW.check_of = 0, CAST(NEW.rate_limited AS DECIMAL(38, 0)) + NEW.lease_rate_limited, 0),
        IF(NEW.check_of = 0, CAST(NEW.end_index AS DECIMAL(38, 0)) - NEW.start_index, 0),
        IF(NEW.progress_class <=> 1, CAST(NEW.end_index AS DECIMAL(38, 0)) - NEW.start_index, 0),
        IF(NEW.progress_class <=> 2, CAST(NEW.end_index AS DECIMAL(38, 0)) - NEW.start_index, 0),
        NOT (OLD.log_id <=> NEW.log_id AND OLD.start_index <=> NEW.start_index
            AND OLD.end_index <=> NEW.end_index AND OLD.progress_class <=> NEW.progress_class)
) AS d
WHERE NOT (OLD.log_id <=> NEW.log_id AND OLD.check_of <=> NEW.check_of AND OLD.state <=> NEW.state
    AND OLD.proof_state <=> NEW.proof_state AND OLD.check_state <=> NEW.check_state
    AND OLD.start_index <=> NEW.start_index AND OLD.end_index <=> NEW.end_index
    AND OLD.entries <=> NEW.entries AND OLD.matches <=> NEW.matches
    AND OLD.errors <=> NEW.errors AND OLD.lease_errors <=> NEW.lease_errors
    AND OLD.rate_limited <=> NEW.rate_limited AND OLD.lease_rate_limited <=> NEW.lease_rate_limited)
ON DUPLICATE KEY UPDATE tasks = tasks + VALUES(tasks), pending = pending + VALUES(pending),
    leased = leased + VALUES(leased), done = done + VALUES(done), log_fault = log_fault + VALUES(log_fault),
    check_tasks = check_tasks + VALUES(check_tasks), check_pending = check_pending + VALUES(check_pending),
    check_leased = check_leased + VALUES(check_leased), check_done = check_done + VALUES(check_done),
    check_log_fault = check_log_fault + VALUES(check_log_fault), checks_failed = checks_failed + VALUES(checks_failed),
    entries = entries + VALUES(entries), matches = matches + VALUES(matches), errors = errors + VALUES(errors),
    rate_limited = rate_limited + VALUES(rate_limited), span = span + VALUES(span),
    span_verified = span_verified + VALUES(span_verified), span_fault = span_fault + VALUES(span_fault),
    layout = layout + VALUES(layout);

CREATE TRIGGER sightings_count_insert AFTER INSERT ON sightings FOR EACH ROW
INSERT INTO log_counters (log_id, shard, sightings) VALUES (NEW.log_id, CONNECTION_ID() % 32, 1)
ON DUPLICATE KEY UPDATE sightings = sightings + 1;

CREATE TRIGGER sightings_count_delete AFTER DELETE ON sightings FOR EACH ROW
INSERT INTO log_counters (log_id, shard, sightings) VALUES (OLD.log_id, CONNECTION_ID() % 32, -1)
ON DUPLICATE KEY UPDATE sightings = sightings - 1;

CREATE TRIGGER failed_entries_count_insert AFTER INSERT ON failed_entries FOR EACH ROW
INSERT INTO log_counters (log_id, shard, failed_entries) VALUES (NEW.log_id, CONNECTION_ID() % 32, 1)
ON DUPLICATE KEY UPDATE failed_entries = failed_entries + 1;

CREATE TRIGGER failed_entries_count_delete AFTER DELETE ON failed_entries FOR EACH ROW
INSERT INTO log_counters (log_id, shard, failed_entries) VALUES (OLD.log_id, CONNECTION_ID() % 32, -1)
ON DUPLICATE KEY UPDATE failed_entries = failed_entries - 1;

CREATE TRIGGER certificates_count_insert AFTER INSERT ON certificates FOR EACH ROW
INSERT INTO total_counters (shard, certificates) VALUES (CONNECTION_ID() % 32, 1)
ON DUPLICATE KEY UPDATE certificates = certificates + 1;

CREATE TRIGGER certificates_count_delete AFTER DELETE ON certificates FOR EACH ROW
INSERT INTO total_counters (shard, certificates) VALUES (CONNECTION_ID() % 32, -1)
ON DUPLICATE KEY UPDATE certificates = certificates - 1;

CREATE TRIGGER names_count_insert AFTER INSERT ON names FOR EACH ROW
INSERT INTO total_counters (shard, names) VALUES (CONNECTION_ID() % 32, 1)
ON DUPLICATE KEY UPDATE names = names + 1;

CREATE TRIGGER names_count_delete AFTER DELETE ON names FOR EACH ROW
INSERT INTO total_counters (shard, names) VALUES (CONNECTION_ID() % 32, -1)
ON DUPLICATE KEY UPDATE names = names - 1;
