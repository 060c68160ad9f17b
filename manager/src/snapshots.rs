//! The operations snapshots: every `--snapshot-secs` each log's progress is
//! recorded under the current hour, the leaderboard under the current day,
//! and the shards of past hours' lease outcomes folded
//! ([`ct_db::ops::snapshot`]). A snapshot replaces the earlier ones of its
//! hour and day, so the last one of each stands.

use std::time::Duration;

use tokio::sync::watch;

use crate::error::Result;
use crate::{AppState, db};

/// Takes a snapshot now.
pub async fn take(state: &AppState) -> Result<ct_db::ops::Snapshot> {
    Ok(ct_db::ops::snapshot(&state.pool, db::now_ms()).await?)
}

/// Takes a snapshot at once and then every `every` until stopped.
pub async fn snapshot_loop(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match take(&state).await {
            Ok(s) => tracing::debug!(
                logs = s.logs,
                names = s.names,
                outcome_rows_folded = s.outcome_rows_folded,
                "operations snapshot taken"
            ),
            Err(e) => tracing::warn!(error = %e, "operations snapshot failed"),
        }
        if crate::sleep_or_stop(every, &mut stop).await {
            return;
        }
    }
}
