//! Renewal chains and `name_sets` rows. New issuances usually come after
//! their set's latest one (collection follows the logs, and logs follow
//! time): then the chain only grows at its end, from the `name_sets` row
//! alone. An issuance older than the set's latest rebuilds that set's chain
//! from all its issuances.

use std::collections::{BTreeMap, HashMap};

use ct_db::bulk::Insert;
use sqlx::{MySqlConnection, QueryBuilder};

use super::chain::{self, Link, Renewal};
use super::issuances::Fresh;
use crate::error::Result;

const ROWS: usize = 1_000;

/// A set's `name_sets` row as it will be written.
struct Set {
    names: String,
    issuances: u64,
    first_not_before: Option<i64>,
    latest: Link,
}

#[derive(sqlx::FromRow)]
struct StoredSet {
    names_key: Vec<u8>,
    issuances: u32,
    first_not_before: Option<i64>,
    latest_issuance_id: u64,
    latest_not_before: Option<i64>,
    latest_not_after: Option<i64>,
    latest_spki_sha256: Option<Vec<u8>>,
    latest_issuer_o: Option<String>,
}

fn order(l: &Link) -> (Option<i64>, u64) {
    (l.not_before, l.id)
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The renewal rows of a batch, keyed by the set's names key.
pub type Renewals = Vec<(Vec<u8>, Renewal)>;

/// Adds `fresh` issuances to their sets' chains and writes the sets' rows;
/// returns the sets written and the renewal rows to write (by
/// [`write_renewals`]). The stored issuances are those up to `last` (the
/// fresh ones are written on another connection).
pub async fn extend(
    conn: &mut MySqlConnection,
    fresh: Vec<Fresh>,
    last: u64,
) -> Result<(u64, Renewals)> {
    let mut groups: BTreeMap<Vec<u8>, (String, Vec<Link>)> = BTreeMap::new();
    for f in fresh {
        groups
            .entry(f.names_key)
            .or_insert_with(|| (f.names, Vec::new()))
            .1
            .push(f.link);
    }
    let keys: Vec<Vec<u8>> = groups.keys().cloned().collect();
    let mut stored: HashMap<Vec<u8>, StoredSet> = HashMap::new();
    for chunk in keys.chunks(ROWS) {
        let mut q = QueryBuilder::new(
            "SELECT names_key, issuances, first_not_before, latest_issuance_id, latest_not_before, \
             latest_not_after, latest_spki_sha256, latest_issuer_o FROM name_sets WHERE names_key IN (",
        );
        let mut sep = q.separated(", ");
        for k in chunk {
            sep.push_bind(k.clone());
        }
        q.push(")");
        for s in q
            .build_query_as::<StoredSet>()
            .fetch_all(&mut *conn)
            .await?
        {
            stored.insert(s.names_key.clone(), s);
        }
    }
    let mut renewals: Renewals = Vec::new();
    let mut sets: Vec<(Vec<u8>, Set)> = Vec::new();
    let mut rebuild = Vec::new();
    let mut fresh_of: HashMap<Vec<u8>, Vec<Link>> = HashMap::new();
    for (key, (names, mut group)) in groups {
        group.sort_by_key(order);
        let Some(last) = group.last().cloned() else {
            continue;
        };
        let first_nb = group.iter().filter_map(|l| l.not_before).min();
        match stored.get(&key) {
            None => {
                let n = group.len() as u64;
                renewals.extend(chain::renewals(group).into_iter().map(|r| (key.clone(), r)));
                sets.push((
                    key,
                    Set {
                        names,
                        issuances: n,
                        first_not_before: first_nb,
                        latest: last,
                    },
                ));
            }
            Some(s) => {
                let latest = Link {
                    id: s.latest_issuance_id,
                    not_before: s.latest_not_before,
                    not_after: s.latest_not_after,
                    spki_sha256: s.latest_spki_sha256.clone(),
                    issuer_o: s.latest_issuer_o.clone(),
                };
                if group.first().is_some_and(|f| order(f) > order(&latest)) {
                    let n = u64::from(s.issuances) + group.len() as u64;
                    let first = min_opt(s.first_not_before, first_nb);
                    let mut chain_links = vec![latest];
                    chain_links.extend(group);
                    renewals.extend(
                        chain::renewals(chain_links)
                            .into_iter()
                            .map(|r| (key.clone(), r)),
                    );
                    sets.push((
                        key,
                        Set {
                            names,
                            issuances: n,
                            first_not_before: first,
                            latest: last,
                        },
                    ));
                } else {
                    rebuild.push(key.clone());
                    fresh_of.insert(key, group);
                }
            }
        }
    }
    let mut n_sets = sets.len() as u64;
    write_sets(conn, &sets).await?;
    n_sets += rebuild_sets(conn, &rebuild, last, fresh_of, &mut renewals).await?;
    Ok((n_sets, renewals))
}

/// Rebuilds the chains of `keys` from their stored issuances (up to
/// `last`) and this batch's `fresh` ones; adds their renewal rows to
/// `renewals`.
async fn rebuild_sets(
    conn: &mut MySqlConnection,
    keys: &[Vec<u8>],
    last: u64,
    mut fresh: HashMap<Vec<u8>, Vec<Link>>,
    renewals: &mut Renewals,
) -> Result<u64> {
    let mut n_sets = 0u64;
    for chunk in keys.chunks(ROWS) {
        let mut q = QueryBuilder::new(
            "SELECT names_key, id, not_before, not_after, spki_sha256, issuer_o, names FROM issuances \
             WHERE id <= ",
        );
        q.push_bind(last);
        q.push(" AND names_key IN (");
        let mut sep = q.separated(", ");
        for k in chunk {
            sep.push_bind(k.clone());
        }
        q.push(")");
        type Row = (
            Vec<u8>,
            u64,
            Option<i64>,
            Option<i64>,
            Option<Vec<u8>>,
            Option<String>,
            String,
        );
        let rows: Vec<Row> = q.build_query_as().fetch_all(&mut *conn).await?;
        let mut groups: HashMap<Vec<u8>, (String, Vec<Link>)> = HashMap::new();
        for (key, id, not_before, not_after, spki_sha256, issuer_o, names) in rows {
            groups
                .entry(key)
                .or_insert_with(|| (names, Vec::new()))
                .1
                .push(Link {
                    id,
                    not_before,
                    not_after,
                    spki_sha256,
                    issuer_o,
                });
        }
        let mut sets = Vec::new();
        for (key, (names, mut group)) in groups {
            group.extend(fresh.remove(&key).unwrap_or_default());
            let Some(latest) = chain::latest(&group).cloned() else {
                continue;
            };
            sets.push((
                key.clone(),
                Set {
                    names,
                    issuances: group.len() as u64,
                    first_not_before: group.iter().filter_map(|l| l.not_before).min(),
                    latest,
                },
            ));
            renewals.extend(chain::renewals(group).into_iter().map(|r| (key.clone(), r)));
        }
        n_sets += sets.len() as u64;
        write_sets(conn, &sets).await?;
    }
    Ok(n_sets)
}

/// Writes renewal rows (an upsert: writing them twice changes nothing).
pub async fn write_renewals(
    conn: &mut MySqlConnection,
    renewals: &[(Vec<u8>, Renewal)],
) -> Result<()> {
    // An issuance keeps its row once it has a predecessor (an older one
    // arriving later only gives the first one a row), so a rebuilt chain
    // is rewritten in place.
    let mut ins = Insert::new(
        "INSERT INTO renewals (issuance_id, previous_issuance_id, names_key, gap_days, same_key, ca_changed)",
        " ON DUPLICATE KEY UPDATE previous_issuance_id = VALUES(previous_issuance_id), \
         gap_days = VALUES(gap_days), same_key = VALUES(same_key), ca_changed = VALUES(ca_changed)",
    );
    for (key, r) in renewals {
        ins.row(|b| {
            b.push(r.issuance_id)
                .push(r.previous_issuance_id)
                .push(key)
                .push(r.gap_days)
                .push(r.same_key)
                .push(r.ca_changed);
        });
    }
    ins.execute(conn).await?;
    Ok(())
}

async fn write_sets(conn: &mut MySqlConnection, sets: &[(Vec<u8>, Set)]) -> Result<()> {
    let mut ins = Insert::new(
        "INSERT INTO name_sets (names_key, names, issuances, first_not_before, latest_issuance_id, \
         latest_not_before, latest_not_after, latest_spki_sha256, latest_issuer_o)",
        " ON DUPLICATE KEY UPDATE issuances = VALUES(issuances), \
         first_not_before = VALUES(first_not_before), latest_issuance_id = VALUES(latest_issuance_id), \
         latest_not_before = VALUES(latest_not_before), latest_not_after = VALUES(latest_not_after), \
         latest_spki_sha256 = VALUES(latest_spki_sha256), latest_issuer_o = VALUES(latest_issuer_o)",
    );
    for (key, s) in sets {
        ins.row(|b| {
            b.push(key)
                .push(&s.names)
                .push(s.issuances)
                .push(s.first_not_before)
                .push(s.latest.id)
                .push(s.latest.not_before)
                .push(s.latest.not_after)
                .push(&s.latest.spki_sha256)
                .push(&s.latest.issuer_o);
        });
    }
    ins.execute(conn).await?;
    Ok(())
}
