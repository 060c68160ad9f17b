//! Live operations: how leases end hour by hour and how long they last
//! (`task_outcomes`, written by the transitions themselves through
//! [`record_outcome`]), each log's progress over time
//! (`log_progress_history`), a daily snapshot of the leaderboard
//! (`rank_snapshots`), and the reads over them, which the manager's API and
//! sitegen both show.
//!
//! Every read here is of these small tables or of the leased tasks alone
//! (an index range), never a scan of tasks, sightings or certificates.
//! [`snapshot`] is the one writer of the history and the ranks; it is
//! idempotent per hour and per day (the last snapshot of an hour or a day
//! stands).

mod history;
mod leases;
mod outcomes;

pub use history::{
    LogSummary, MAX_RANKED, ProgressHistory, ProgressPoint, Rank, Ranks, Snapshot, Summary,
    place_before, progress_history, ranks, snapshot, summary,
};
pub use leases::{LeaseDetail, LeaseGroup, Standing, lease_details, leases_by_name, standings};
pub(crate) use outcomes::record_outcome;
pub use outcomes::{
    DurationBucket, Durations, OutcomeCounts, OutcomeRow, OutcomeTotals, Outcomes, bucket_of,
    outcomes, outcomes_over, totals_since,
};

/// One hour in Unix ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in Unix ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// The most hours any read looks back (31 days).
pub const MAX_HOURS: u32 = 24 * 31;

/// The start of the hour holding `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The start of the (UTC) day holding `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// The start of the first of `hours` hours that end with the one holding
/// `now` (`hours` is at least 1).
pub fn since_hours(now: i64, hours: u32) -> i64 {
    hour_of(now) - i64::from(hours.max(1) - 1) * HOUR_MS
}

/// SQL for the sum of a BIGINT UNSIGNED column, saturating at its maximum.
fn sum_u64(expr: &str) -> String {
    format!("CAST(LEAST(18446744073709551615, COALESCE(SUM({expr}), 0)) AS UNSIGNED)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_days_start_where_they_should() {
        assert_eq!(hour_of(HOUR_MS * 5 + 1), HOUR_MS * 5);
        assert_eq!(hour_of(HOUR_MS * 5), HOUR_MS * 5);
        assert_eq!(day_of(DAY_MS * 3 + HOUR_MS), DAY_MS * 3);
        assert_eq!(since_hours(HOUR_MS * 10 + 5, 1), HOUR_MS * 10);
        assert_eq!(since_hours(HOUR_MS * 10 + 5, 24), HOUR_MS * -13);
        assert_eq!(since_hours(HOUR_MS * 10 + 5, 0), HOUR_MS * 10);
    }
}
