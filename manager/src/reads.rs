//! The public reads: `/v1/logs`, `/v1/stats`, `/v1/workers` and the gauges
//! of `/metrics` answer from one [`Snapshot`] of the database, read on a
//! pool of its own (`public_db_connections`, 2 by default), so that
//! anonymous readers can never take the connections workers need.
//!
//! A request is answered from the snapshot in memory when it was taken at
//! most `public_max_age` before the request arrived. When it is older, the
//! request still answers from it (for up to [`STALE_GRACE`] more) and wakes
//! [`PublicReads::refresh_loop`], which reads a new one: requests never wait
//! for the database while a recent snapshot exists. Without one (at start,
//! after an idle spell or while the database does not answer) the request
//! reads a new snapshot itself, and every request that arrives meanwhile
//! waits for that one read instead of starting its own (single flight; a
//! failed read is shared the same way). With a zero age every request
//! waits for a snapshot taken after it arrived, so it sees everything
//! committed before.
//!
//! A read is one transaction, so the logs, the totals and the counts are
//! one consistent view: the counters the database keeps as rows change
//! ([`ct_db::counters`]), a few index seeks per log
//! ([`ct_db::progress::ProgressReader`], which keeps each log's gaps while
//! its tasks do not move), the per-minute statistics of the last hour
//! (minutes that can no longer change are summed once and kept), and the
//! leaderboard, read right after the transaction. Nothing scans tasks,
//! sightings or certificates.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ct_core::protocol::ErrorCode;
use ct_db::TaskState;
use ct_db::progress::ProgressReader;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{MySqlConnection, MySqlPool};

use crate::Config;
use crate::error::{Error, Result};
use crate::logs::{self, LogInfo};
use crate::routes::public::{Minute, PublicWorker, Stats};

/// The longest a read of a snapshot may take before the requests waiting
/// for it answer 503 (a connection that stopped answering mid-read).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long past `public_max_age` a snapshot is still served while a new
/// one is read.
pub const STALE_GRACE: Duration = READ_TIMEOUT;

/// Leaderboard rows kept: the last page `/v1/workers` serves (offset at
/// most 1,000,000, limit at most 1,000).
const LEADERBOARD_ROWS: u32 = 1_001_000;

/// A per-minute row may still be written this long after its minute
/// began (a transaction that computed its minute, then waited on a lock);
/// older minutes are summed once and kept.
const MINUTE_SETTLES_S: i64 = 180;

/// What the public reads show, as the database was at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the read began (Unix ms).
    pub taken_at_ms: i64,
    /// Every log with its progress, by id.
    pub logs: Vec<LogInfo>,
    pub stats: Stats,
    /// Every public name, most entries first (at most [`LEADERBOARD_ROWS`]).
    pub leaderboard: Vec<PublicWorker>,
    /// Tasks (main and check) by state.
    pub tasks_by_state: Vec<(TaskState, u64)>,
    pub certificates: u64,
    /// Registered workers not revoked.
    pub workers_not_revoked: u64,
}

/// Why the last read failed, as the requests that waited for it answer.
#[derive(Debug, Clone)]
enum Failure {
    Unavailable,
    Internal(String),
}

impl Failure {
    fn of(e: &Error) -> Failure {
        if e.is_unavailable() {
            Failure::Unavailable
        } else {
            Failure::Internal(e.to_string())
        }
    }

    fn error(&self) -> Error {
        match self {
            Failure::Unavailable => unavailable(),
            Failure::Internal(m) => Error::Internal(m.clone()),
        }
    }
}

fn unavailable() -> Error {
    Error::unavailable(
        ErrorCode::Unavailable,
        "the database does not answer; retry",
    )
}

/// What a read keeps for the next one.
#[derive(Debug, Default)]
struct Reader {
    progress: ProgressReader,
    minutes: MinuteSums,
    /// The last read, when it failed: when it began and why.
    failed: Option<(Instant, Failure)>,
}

/// The snapshot cache of the public reads, with its own pool.
#[derive(Debug)]
pub struct PublicReads {
    pool: MySqlPool,
    max_age: Duration,
    current: RwLock<Option<(Instant, Arc<Snapshot>)>>,
    reader: tokio::sync::Mutex<Reader>,
    /// Wakes [`Self::refresh_loop`]: a request found the snapshot old.
    stale: tokio::sync::Notify,
}

impl PublicReads {
    /// A cache whose pool connects like `pool` (lazily), with
    /// `config.public_db_connections` connections at most.
    pub fn new(pool: &MySqlPool, config: &Config) -> Self {
        let options = pool.connect_options();
        let pool = MySqlPoolOptions::new()
            .max_connections(config.public_db_connections.max(1))
            .acquire_timeout(config.db_acquire_timeout)
            .connect_lazy_with(options.as_ref().clone());
        PublicReads {
            pool,
            max_age: config.public_max_age,
            current: RwLock::new(None),
            reader: tokio::sync::Mutex::new(Reader::default()),
            stale: tokio::sync::Notify::new(),
        }
    }

    /// The snapshot taken at most `age` before `asked`, if there is one.
    fn within(&self, asked: Instant, age: Duration) -> Option<Arc<Snapshot>> {
        let current = self.current.read().ok()?;
        let (taken, snapshot) = current.as_ref()?;
        (*taken + age >= asked).then(|| snapshot.clone())
    }

    /// A snapshot taken at most `max_age` before this call (or, while a
    /// new one is read, at most [`STALE_GRACE`] more). 503 `unavailable`
    /// when the database does not answer.
    pub async fn get(&self) -> Result<Arc<Snapshot>> {
        let asked = Instant::now();
        if let Some(s) = self.within(asked, self.max_age) {
            return Ok(s);
        }
        if !self.max_age.is_zero()
            && let Some(s) = self.within(asked, self.max_age + STALE_GRACE)
        {
            self.stale.notify_one();
            return Ok(s);
        }
        self.refresh(asked).await
    }

    /// Reads a new snapshot whenever a request found the current one older
    /// than `max_age`, until `stop` turns true. `serve` runs it when the
    /// age is not zero.
    pub async fn refresh_loop(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = self.stale.notified() => {}
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
            }
            if let Err(e) = self.refresh(Instant::now()).await {
                tracing::warn!(error = %e, "could not read the public reads' snapshot");
            }
        }
    }

    /// A snapshot taken at most `max_age` before `asked`: the one in
    /// memory, the one another caller is reading, or a new one.
    async fn refresh(&self, asked: Instant) -> Result<Arc<Snapshot>> {
        let mut reader = self.reader.lock().await;
        if let Some(s) = self.within(asked, self.max_age) {
            return Ok(s);
        }
        if let Some((began, why)) = &reader.failed
            && *began >= asked
        {
            return Err(why.error());
        }
        let began = Instant::now();
        let read = tokio::time::timeout(READ_TIMEOUT, reader.read(&self.pool)).await;
        match read {
            Ok(Ok(snapshot)) => {
                let snapshot = Arc::new(snapshot);
                if let Ok(mut current) = self.current.write() {
                    *current = Some((began, snapshot.clone()));
                }
                reader.failed = None;
                Ok(snapshot)
            }
            Ok(Err(e)) => {
                reader.failed = Some((began, Failure::of(&e)));
                Err(e)
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = READ_TIMEOUT.as_millis() as u64,
                    "the public reads' snapshot took too long to read"
                );
                reader.failed = Some((began, Failure::Unavailable));
                Err(unavailable())
            }
        }
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Reader {
    async fn read(&mut self, pool: &MySqlPool) -> Result<Snapshot> {
        let taken_at_ms = crate::db::now_ms();
        let mut tx = pool.begin().await?;
        let (logs, counters) = logs::read(&mut tx, &mut self.progress).await?;
        let totals = ct_db::counters::totals(&mut tx).await?;
        let (workers, workers_not_revoked): (u64, u64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(revoked = 0 AND replaced_by IS NULL), 0) AS UNSIGNED), \
             CAST(COALESCE(SUM(revoked = 0), 0) AS UNSIGNED) FROM workers",
        )
        .fetch_one(&mut *tx)
        .await?;
        let last_hour = self.minutes.last_hour(&mut tx, taken_at_ms / 1000).await?;
        tx.commit().await?;
        // After the transaction: at least as new as everything above.
        let leaderboard = ct_db::workers::by_name(pool, LEADERBOARD_ROWS, 0)
            .await?
            .into_iter()
            .map(PublicWorker::from)
            .collect();

        let mut by_state = [0u64; 4];
        let (mut entries, mut sightings, mut failed) = (0u64, 0u64, 0u64);
        for c in counters.values() {
            let add = |slot: &mut u64, n: u64| *slot = slot.saturating_add(n);
            add(&mut by_state[0], c.pending.saturating_add(c.check_pending));
            add(&mut by_state[1], c.leased.saturating_add(c.check_leased));
            add(&mut by_state[2], c.done.saturating_add(c.check_done));
            add(
                &mut by_state[3],
                c.log_fault.saturating_add(c.check_log_fault),
            );
            add(&mut entries, c.entries);
            add(&mut sightings, c.sightings);
            add(&mut failed, c.failed_entries);
        }
        let states = [
            TaskState::Pending,
            TaskState::Leased,
            TaskState::Done,
            TaskState::LogFault,
        ];
        let stats = Stats {
            logs: count(logs.len() as u64),
            logs_enabled: count(logs.iter().filter(|l| l.enabled).count() as u64),
            workers: count(workers),
            tasks_pending: count(by_state[0]),
            tasks_leased: count(by_state[1]),
            tasks_done: count(by_state[2]),
            certificates: count(totals.certificates),
            sightings: count(sightings),
            names: count(totals.names),
            failed_entries: count(failed),
            entries_processed: entries,
            last_hour,
        };
        Ok(Snapshot {
            taken_at_ms,
            logs,
            stats,
            leaderboard,
            tasks_by_state: states.into_iter().zip(by_state).collect(),
            certificates: totals.certificates,
            workers_not_revoked,
        })
    }
}

impl Minute {
    fn add(&mut self, o: &Minute) {
        self.entries = self.entries.saturating_add(o.entries);
        self.matches = self.matches.saturating_add(o.matches);
        self.errors = self.errors.saturating_add(o.errors);
        self.rate_limit_hits = self.rate_limit_hits.saturating_add(o.rate_limit_hits);
    }
}

/// The sums of `stats_minute` per minute: minutes that can no longer
/// change are read once.
#[derive(Debug, Default)]
struct MinuteSums {
    settled: BTreeMap<i64, Minute>,
    /// Every settled minute before this one is in `settled` (when it has rows).
    settled_until: i64,
}

#[derive(sqlx::FromRow)]
struct MinuteRow {
    minute: i64,
    #[sqlx(flatten)]
    sums: Minute,
}

impl MinuteSums {
    /// Entries, matches, errors and rate-limit answers reported in the
    /// hour before `now_s` (Unix seconds): the rows of the minutes that
    /// began at most an hour ago.
    async fn last_hour(&mut self, conn: &mut MySqlConnection, now_s: i64) -> Result<Minute> {
        let since = now_s - 3600;
        let settled_before = (now_s - MINUTE_SETTLES_S) / 60 * 60;
        self.settled = self.settled.split_off(&since);
        let from = self.settled_until.max(since);
        let sum = |c: &str| {
            format!("CAST(LEAST(18446744073709551615, COALESCE(SUM({c}), 0)) AS UNSIGNED) AS {c}")
        };
        let rows: Vec<MinuteRow> = sqlx::query_as(&format!(
            "SELECT minute, {}, {}, {}, {} FROM stats_minute WHERE minute >= ? GROUP BY minute",
            sum("entries"),
            sum("matches"),
            sum("errors"),
            sum("rate_limit_hits"),
        ))
        .bind(from)
        .fetch_all(&mut *conn)
        .await?;
        let mut total = Minute::default();
        for r in rows {
            if r.minute < settled_before {
                self.settled.insert(r.minute, r.sums);
            } else {
                total.add(&r.sums);
            }
        }
        self.settled_until = self.settled_until.max(settled_before);
        for m in self.settled.values() {
            total.add(m);
        }
        Ok(total)
    }
}
