//! Scaling: how many concurrent fetchers a worker may use on a log. AIMD per
//! (worker, log): +1 while fetches succeed, halve on reported rate limits,
//! always within the log's cap an admin can set.

use sqlx::MySqlConnection;

use crate::db;
use crate::error::Result;

/// The advice for one (worker, log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub fetchers: u32,
    pub reason: String,
}

/// One AIMD step from `current`, given what happened since the last report.
pub fn step(current: u32, cap: u32, entries_delta: u64, rate_limited_delta: u64) -> Advice {
    let cap = cap.max(1);
    let current = current.clamp(1, cap);
    if rate_limited_delta > 0 {
        let next = (current / 2).max(1);
        Advice {
            fetchers: next,
            reason: format!("{rate_limited_delta} rate-limit answers reported: halved to {next}"),
        }
    } else if entries_delta > 0 {
        if current < cap {
            Advice {
                fetchers: current + 1,
                reason: format!("fetches succeed: raised to {}", current + 1),
            }
        } else {
            Advice {
                fetchers: cap,
                reason: format!("at the log's cap of {cap}"),
            }
        }
    } else {
        Advice {
            fetchers: current,
            reason: "no progress reported: unchanged".to_owned(),
        }
    }
}

/// The stored fetchers of (worker, log), creating the row with `initial` when absent.
pub async fn current(
    conn: &mut MySqlConnection,
    worker_id: u64,
    log_id: u64,
    cap: u32,
    initial: u32,
) -> Result<Advice> {
    let row: Option<(u32, String)> = sqlx::query_as(
        "SELECT fetchers, reason FROM worker_logs WHERE worker_id = ? AND log_id = ?",
    )
    .bind(worker_id)
    .bind(log_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((f, reason)) if f <= cap.max(1) => Ok(Advice {
            fetchers: f.max(1),
            reason,
        }),
        Some(_) => Ok(Advice {
            fetchers: cap.max(1),
            reason: format!("capped by the log's limit of {}", cap.max(1)),
        }),
        None => {
            let advice = Advice {
                fetchers: initial.clamp(1, cap.max(1)),
                reason: "initial".to_owned(),
            };
            store(conn, worker_id, log_id, &advice).await?;
            Ok(advice)
        }
    }
}

/// Stores an advice.
pub async fn store(
    conn: &mut MySqlConnection,
    worker_id: u64,
    log_id: u64,
    a: &Advice,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO worker_logs (worker_id, log_id, fetchers, reason, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE fetchers = VALUES(fetchers), reason = VALUES(reason), updated_at = VALUES(updated_at)",
    )
    .bind(worker_id)
    .bind(log_id)
    .bind(a.fetchers)
    .bind(db::clip(&a.reason, 255))
    .bind(db::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd() {
        assert_eq!(step(1, 4, 10, 0).fetchers, 2);
        assert_eq!(step(4, 4, 10, 0).fetchers, 4);
        assert_eq!(step(4, 8, 10, 3).fetchers, 2);
        assert_eq!(step(1, 8, 10, 3).fetchers, 1);
        assert_eq!(step(3, 8, 0, 0).fetchers, 3);
        assert_eq!(step(9, 2, 0, 0).fetchers, 2);
        assert_eq!(step(5, 0, 1, 0).fetchers, 1);
    }
}
