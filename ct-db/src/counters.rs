//! Counters the database keeps as rows change: the triggers of migration
//! `20261201000006_counters.sql` add each task's, sighting's and failed
//! entry's share to `log_counters` and each certificate and name to
//! `total_counters`, in the statement that changes the row, whatever code
//! or SQL runs it. Rows are sharded by connection (`CONNECTION_ID() % 32`)
//! so that concurrent transactions do not wait on each other's counters;
//! the readers here sum the shards. Reading is a few rows per log, whatever
//! the size of the tables.

use std::collections::HashMap;

use sqlx::MySqlConnection;

use crate::error::Result;

/// The sums of one log's counters. "Main" tasks are those with
/// `check_of = 0`; check tasks repeat the range of a main task.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct LogCounters {
    pub log_id: u64,
    /// Main tasks, and main tasks by state.
    pub tasks: u64,
    pub pending: u64,
    pub leased: u64,
    pub done: u64,
    pub log_fault: u64,
    /// Check tasks, and check tasks by state.
    pub check_tasks: u64,
    pub check_pending: u64,
    pub check_leased: u64,
    pub check_done: u64,
    pub check_log_fault: u64,
    /// Main tasks whose check failed.
    pub checks_failed: u64,
    /// `entries` of every task, main and check (saturating).
    pub entries: u64,
    /// Of main tasks: matches, and errors and rate-limit answers including
    /// those of current leases (saturating).
    pub matches: u64,
    pub errors: u64,
    pub rate_limited: u64,
    /// Entries in main tasks: all, collected (done and proven) and the
    /// log's faults.
    pub span: u64,
    pub span_verified: u64,
    pub span_fault: u64,
    /// Grows whenever a main task is added or removed or changes its range
    /// or progress class: while it stays, so do the log's gaps and faults.
    pub layout: u64,
    /// Rows of `sightings` and `failed_entries` of the log.
    pub sightings: u64,
    pub failed_entries: u64,
}

/// The columns of `log_counters` after `log_id`, as [`LogCounters`] names them.
const LOG_COLUMNS: [&str; 21] = [
    "tasks",
    "pending",
    "leased",
    "done",
    "log_fault",
    "check_tasks",
    "check_pending",
    "check_leased",
    "check_done",
    "check_log_fault",
    "checks_failed",
    "entries",
    "matches",
    "errors",
    "rate_limited",
    "span",
    "span_verified",
    "span_fault",
    "layout",
    "sightings",
    "failed_entries",
];

/// `SUM(col)` over the shards as a u64: never negative, saturating.
fn sum(col: &str) -> String {
    format!(
        "CAST(GREATEST(0, LEAST(18446744073709551615, COALESCE(SUM({col}), 0))) AS UNSIGNED) AS {col}"
    )
}

/// Every log's counters (logs without any counted row are absent: all zero).
pub async fn by_log(conn: &mut MySqlConnection) -> Result<HashMap<u64, LogCounters>> {
    let cols: Vec<String> = LOG_COLUMNS.iter().map(|c| sum(c)).collect();
    let sql = format!(
        "SELECT log_id, {} FROM log_counters GROUP BY log_id",
        cols.join(", ")
    );
    let rows: Vec<LogCounters> = sqlx::query_as(&sql).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| (r.log_id, r)).collect())
}

/// Rows of `certificates` and `names`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Totals {
    pub certificates: u64,
    pub names: u64,
}

/// The whole collection's counters.
pub async fn totals(conn: &mut MySqlConnection) -> Result<Totals> {
    let sql = format!(
        "SELECT {}, {} FROM total_counters",
        sum("certificates"),
        sum("names")
    );
    Ok(sqlx::query_as(&sql).fetch_one(conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_summed_once() {
        let distinct: std::collections::BTreeSet<_> = LOG_COLUMNS.iter().collect();
        assert_eq!(distinct.len(), LOG_COLUMNS.len());
        assert!(sum("tasks").ends_with("AS tasks"));
    }
}
