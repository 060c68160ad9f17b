//! Workers and their identities. A worker row is one machine's
//! registration, with its own token; an identity is a public name, with
//! the hash of its volunteer's secret when one was given. Every machine
//! registered with a name's secret shares its identity, so the dashboards
//! show that name once with the machines' totals summed ([`by_name`]). A
//! name registered without a secret has one machine, as before identities.
//!
//! This module takes hashes only: the manager hashes secrets and tokens.
//! Returning a replaced machine's leases is a task transition, left to
//! [`crate::TaskStore::release_worker`].

use sqlx::{MySqlConnection, MySqlPool};

use crate::error::{Result, retrying};
use crate::limits::now_ms;

/// One registration as the manager checked it.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub name: &'a str,
    /// SHA-256 (hex) of the volunteer's secret, when it gave one.
    pub secret_hash: Option<&'a str>,
    /// SHA-256 (hex) of the new machine's token.
    pub token_hash: &'a str,
    /// SHA-256 (hex) of the token of the registration this one replaces.
    pub replaces_hash: Option<&'a str>,
    pub version: Option<&'a str>,
    /// The client's address ('' when unknown: no rate limit then).
    pub address: &'a str,
    /// New names per address, and new machines per name, per hour (0: no
    /// limit).
    pub per_hour: u32,
}

/// A registered machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub worker_id: u64,
    pub identity_id: u64,
    /// The name as the identity stores it.
    pub name: String,
    pub joined: Joined,
    /// The machine this registration replaced: its token no longer works,
    /// its leases are for the caller to release.
    pub replaced: Option<u64>,
}

/// How a registration got its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The name was free: a new identity (with or without a secret).
    Claimed,
    /// Another machine of an existing name: its secret, or the token of the
    /// machine it replaces.
    Existing,
    /// A name registered without a secret got one from the holder of its
    /// token (`replaces`).
    Adopted,
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Someone else's name: registered without a secret, or with another
    /// one than the request's (`secret`: whether it has one).
    NameTaken { secret: bool },
    /// A machine of this name was flagged by a check or revoked by the
    /// operator: the name takes no new machines.
    Barred(Bar),
    /// `limit` new names from this address in the last hour already.
    TooManyNames { limit: u32 },
    /// `limit` new machines of this name in the last hour already.
    TooManyMachines { limit: u32 },
}

/// What bars a name from new machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    Flagged,
    Revoked,
}

/// What a registration gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Registered(Machine),
    Refused(Refused),
}

const HOUR_MS: i64 = 3_600_000;

/// Registers a machine: claims the name, or joins its identity with the
/// right secret (or the token of the machine it replaces), and retires the
/// replaced machine. One transaction; the identity row is locked while its
/// machines are counted and added.
pub async fn register(pool: &MySqlPool, r: &Registration<'_>) -> Result<Outcome> {
    retrying(|| async {
        let mut tx = pool.begin().await?;
        let outcome = register_in(&mut tx, r).await?;
        if matches!(outcome, Outcome::Registered(_)) {
            tx.commit().await?;
        }
        Ok(outcome)
    })
    .await
}

async fn register_in(conn: &mut MySqlConnection, r: &Registration<'_>) -> Result<Outcome> {
    let now = now_ms();
    let limited = r.per_hour > 0;
    // The name's identity, locked: concurrent machines of one name queue
    // here. A new name is inserted; a concurrent first registration of the
    // same name deadlocks with this one on the gap, and the retry finds it.
    let mut found = lock_identity(conn, r.name).await?;
    let mut claimed = None;
    if found.is_none() {
        let inserted = sqlx::query(
            "INSERT IGNORE INTO identities (name, secret_hash, address, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(r.name)
        .bind(r.secret_hash)
        .bind(r.address)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            claimed = Some(inserted.last_insert_id());
        } else {
            found = lock_identity(conn, r.name).await?;
        }
    }
    // The live machine whose token the request names, if any (of any name:
    // its token's holder may retire it).
    let replaced: Option<(u64, Option<u64>)> = match r.replaces_hash {
        Some(h) => {
            sqlx::query_as(
                "SELECT id, identity_id FROM workers WHERE token_hash = ? AND revoked = 0 \
                 AND replaced_by IS NULL FOR UPDATE",
            )
            .bind(h)
            .fetch_optional(&mut *conn)
            .await?
        }
        None => None,
    };
    let (identity_id, name, joined) = if let Some(id) = claimed {
        if limited && !r.address.is_empty() {
            let (recent,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM identities WHERE address = ? AND created_at > ? AND id <> ?",
            )
            .bind(r.address)
            .bind(now - HOUR_MS)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
            if u64::try_from(recent).unwrap_or(0) >= u64::from(r.per_hour) {
                return Ok(Outcome::Refused(Refused::TooManyNames {
                    limit: r.per_hour,
                }));
            }
        }
        (id, r.name.to_owned(), Joined::Claimed)
    } else {
        let Some((id, name, stored)) = found else {
            return Err(crate::Error::Corrupt(format!(
                "identity {:?} neither inserted nor found",
                r.name
            )));
        };
        let replaces_own = replaced.is_some_and(|(_, of)| of == Some(id));
        let joined = match (stored.as_deref(), r.secret_hash) {
            (Some(want), Some(given)) if want == given => Joined::Existing,
            (Some(_), _) => return Ok(Outcome::Refused(Refused::NameTaken { secret: true })),
            (None, _) if !replaces_own => {
                return Ok(Outcome::Refused(Refused::NameTaken { secret: false }));
            }
            (None, Some(given)) => {
                sqlx::query("UPDATE identities SET secret_hash = ? WHERE id = ?")
                    .bind(given)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Joined::Adopted
            }
            (None, None) => Joined::Existing,
        };
        if let Some(bar) = bar_of(conn, id).await? {
            return Ok(Outcome::Refused(Refused::Barred(bar)));
        }
        if limited {
            let (recent,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM workers WHERE identity_id = ? AND first_seen > ?",
            )
            .bind(id)
            .bind(now - HOUR_MS)
            .fetch_one(&mut *conn)
            .await?;
            if u64::try_from(recent).unwrap_or(0) >= u64::from(r.per_hour) {
                return Ok(Outcome::Refused(Refused::TooManyMachines {
                    limit: r.per_hour,
                }));
            }
        }
        (id, name, joined)
    };
    let machine = sqlx::query(
        "INSERT INTO workers (name, identity_id, token_hash, version, first_seen, last_seen, address) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&name)
    .bind(identity_id)
    .bind(r.token_hash)
    .bind(r.version)
    .bind(now)
    .bind(now)
    .bind(r.address)
    .execute(&mut *conn)
    .await?
    .last_insert_id();
    let replaced = replaced.map(|(old, _)| old);
    if let Some(old) = replaced {
        sqlx::query("UPDATE workers SET replaced_by = ? WHERE id = ?")
            .bind(machine)
            .bind(old)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Outcome::Registered(Machine {
        worker_id: machine,
        identity_id,
        name,
        joined,
        replaced,
    }))
}

/// The identity named `name` (by the column's collation), locked: its id,
/// stored name and secret hash.
async fn lock_identity(
    conn: &mut MySqlConnection,
    name: &str,
) -> Result<Option<(u64, String, Option<String>)>> {
    Ok(
        sqlx::query_as("SELECT id, name, secret_hash FROM identities WHERE name = ? FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Whether a machine of identity `id` was flagged or revoked.
async fn bar_of(conn: &mut MySqlConnection, id: u64) -> Result<Option<Bar>> {
    let (flagged, revoked): (bool, bool) = sqlx::query_as(
        "SELECT COALESCE(MAX(flagged), 0) <> 0, COALESCE(MAX(revoked), 0) <> 0 \
         FROM workers WHERE identity_id = ?",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if flagged {
        Some(Bar::Flagged)
    } else if revoked {
        Some(Bar::Revoked)
    } else {
        None
    })
}

/// A machine as a token finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active {
        worker_id: u64,
        last_seen: i64,
    },
    Revoked,
    /// A later registration of the same machine named this token.
    Replaced,
}

/// The machine whose token has SHA-256 (hex) `token_hash`, if any.
pub async fn by_token(pool: &MySqlPool, token_hash: &str) -> Result<Option<TokenState>> {
    let row: Option<(u64, bool, bool, i64)> = sqlx::query_as(
        "SELECT id, revoked, replaced_by IS NOT NULL, last_seen FROM workers WHERE token_hash = ?",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(worker_id, revoked, replaced, last_seen)| {
        if revoked {
            TokenState::Revoked
        } else if replaced {
            TokenState::Replaced
        } else {
            TokenState::Active {
                worker_id,
                last_seen,
            }
        }
    }))
}

/// One public name with the totals of all its machines.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NameTotals {
    pub name: String,
    /// The first machine's registration, the last call of any (Unix ms).
    pub first_seen: i64,
    pub last_seen: i64,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    /// Machines registered under the name and not replaced by a later
    /// registration of the same machine (a machine that lost its state
    /// directory cannot be told apart and counts again).
    pub machines: u64,
}

/// The leaderboard: one row per public name, most entries first, the names
/// with a flagged or revoked machine left out. `limit` rows from `offset`.
pub async fn by_name(pool: &MySqlPool, limit: u32, offset: u32) -> Result<Vec<NameTotals>> {
    let sum =
        |col: &str| format!("CAST(LEAST(18446744073709551615, SUM(w.{col})) AS UNSIGNED) AS {col}");
    let sql = format!(
        "SELECT i.name, MIN(w.first_seen) AS first_seen, MAX(w.last_seen) AS last_seen, {}, {}, {}, \
           CAST(SUM(w.replaced_by IS NULL) AS UNSIGNED) AS machines \
         FROM identities i JOIN workers w ON w.identity_id = i.id \
         GROUP BY i.id, i.name \
         HAVING MAX(w.revoked) = 0 AND MAX(w.flagged) = 0 \
         ORDER BY entries DESC, i.id LIMIT ? OFFSET ?",
        sum("entries"),
        sum("matches"),
        sum("tasks_done"),
    );
    Ok(sqlx::query_as(&sql)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?)
}

/// A machine's name with the lifetime totals of all its machines, as
/// [`by_name`] sums them, and the name's place in [`by_name`]'s order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub name: String,
    pub machines: u64,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    /// 1-based place on the leaderboard; `None` when the name is not on it
    /// (a machine of it was flagged or revoked, or the machine has no
    /// identity).
    pub rank: Option<u64>,
    /// Names on the leaderboard.
    pub ranked: u64,
}

#[derive(sqlx::FromRow)]
struct IdentityTotals {
    id: u64,
    name: String,
    entries: u64,
    matches: u64,
    tasks_done: u64,
    machines: u64,
    barred: bool,
}

/// The standing of machine `worker_id`'s name (`None`: no such machine).
/// Two queries: the name's sums over its machines (by `workers_identity`),
/// and one pass over the names' sums for the rank.
pub async fn standing(pool: &MySqlPool, worker_id: u64) -> Result<Option<Standing>> {
    let sum =
        |col: &str| format!("CAST(LEAST(18446744073709551615, SUM(w.{col})) AS UNSIGNED) AS {col}");
    let sql = format!(
        "SELECT i.id, i.name, {}, {}, {}, CAST(SUM(w.replaced_by IS NULL) AS UNSIGNED) AS machines, \
           (MAX(w.revoked) <> 0 OR MAX(w.flagged) <> 0) AS barred \
         FROM workers me JOIN identities i ON i.id = me.identity_id \
           JOIN workers w ON w.identity_id = i.id \
         WHERE me.id = ? GROUP BY i.id, i.name",
        sum("entries"),
        sum("matches"),
        sum("tasks_done"),
    );
    let Some(me) = sqlx::query_as::<_, IdentityTotals>(&sql)
        .bind(worker_id)
        .fetch_optional(pool)
        .await?
    else {
        // A machine without an identity (written by something else than
        // the registration) is its own name, and not on the leaderboard.
        let own: Option<(String, u64, u64, u64)> =
            sqlx::query_as("SELECT name, entries, matches, tasks_done FROM workers WHERE id = ?")
                .bind(worker_id)
                .fetch_optional(pool)
                .await?;
        return Ok(own.map(|(name, entries, matches, tasks_done)| Standing {
            name,
            machines: 1,
            entries,
            matches,
            tasks_done,
            rank: None,
            ranked: 0,
        }));
    };
    // The leaderboard's names, and those before this one in its order
    // (more entries, or as many and an earlier identity).
    let (ranked, ahead): (i64, u64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(t.entries > ? OR (t.entries = ? AND t.id < ?)), 0) AS UNSIGNED) \
         FROM (SELECT i.id, CAST(LEAST(18446744073709551615, SUM(w.entries)) AS UNSIGNED) AS entries \
               FROM identities i JOIN workers w ON w.identity_id = i.id \
               GROUP BY i.id HAVING MAX(w.revoked) = 0 AND MAX(w.flagged) = 0) t",
    )
    .bind(me.entries)
    .bind(me.entries)
    .bind(me.id)
    .fetch_one(pool)
    .await?;
    Ok(Some(Standing {
        name: me.name,
        machines: me.machines,
        entries: me.entries,
        matches: me.matches,
        tasks_done: me.tasks_done,
        rank: (!me.barred).then_some(ahead + 1),
        ranked: u64::try_from(ranked).unwrap_or(0),
    }))
}

/// How one log's collection stands (see [`outlook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Outlook {
    pub log_id: u64,
    /// Largest verified tree size (0 before the first).
    pub tree_size: u64,
    /// Entries in main tasks waiting or leased.
    pub outstanding: u64,
    /// Where planning goes on from: the end of the planned tasks, or the
    /// log's start index when that is further.
    pub planned_from: u64,
    /// Entries the fleet reported for the log in minutes from `since_s`.
    pub recent_entries: u64,
    /// The first of those minutes with a report (Unix seconds).
    pub first_minute: Option<i64>,
}

impl Outlook {
    /// Entries up to the tree size not collected yet: outstanding, and not
    /// planned yet.
    pub fn remaining(&self) -> u64 {
        self.outstanding
            .saturating_add(self.tree_size.saturating_sub(self.planned_from))
    }
}

/// How the logs `log_ids` stand (those that exist; at most the caller's
/// bound of them): per log one index lookup of its largest verified head,
/// one range of its waiting and leased tasks (`tasks_pick`) and one range of
/// its per-minute statistics from `since_s` (`stats_log`).
pub async fn outlook(pool: &MySqlPool, log_ids: &[u64], since_s: i64) -> Result<Vec<Outlook>> {
    if log_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT l.id AS log_id, \
           CAST(COALESCE((SELECT MAX(s.tree_size) FROM sths s WHERE s.log_id = l.id AND s.verified = 1), 0) AS UNSIGNED) AS tree_size, \
           CAST(COALESCE((SELECT SUM(t.end_index - t.start_index) FROM tasks t \
             WHERE t.log_id = l.id AND t.state IN ('pending', 'leased') AND t.check_of = 0), 0) AS UNSIGNED) AS outstanding, \
           GREATEST(l.planned_end, l.start_index) AS planned_from, \
           CAST(COALESCE((SELECT SUM(m.entries) FROM stats_minute m WHERE m.log_id = l.id AND m.minute >= ?), 0) AS UNSIGNED) AS recent_entries, \
           (SELECT MIN(m.minute) FROM stats_minute m WHERE m.log_id = l.id AND m.minute >= ?) AS first_minute \
         FROM logs l WHERE l.id IN ({}) ORDER BY l.id",
        crate::placeholders(log_ids.len())
    );
    let mut q = sqlx::query_as::<_, Outlook>(&sql)
        .bind(since_s)
        .bind(since_s);
    for id in log_ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(pool).await?)
}
