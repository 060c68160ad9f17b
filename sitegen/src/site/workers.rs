//! The volunteers' pages. The leaderboard has one row per public name (an
//! identity: every machine registered with its secret), in the order and
//! with the totals of [`ct_db::workers::by_name`], the one the manager's
//! `/v1/workers` serves, with the change of place since yesterday's daily
//! snapshot. Each name has one page, with its machines.
//!
//! A name's page is `workers/<id>.html` of its first machine. Every other
//! machine's `workers/<id>.html` (the link a worker's screen shows, whose
//! path the manager gives) is a short page leading there, so that link
//! always reaches the volunteer's page.

use std::collections::HashMap;
use std::path::Path;

use ct_db::ops::Ranks;
use ct_db::workers::NameTotals;
use minijinja::{Value, context};
use serde::Serialize;
use sqlx::MySqlPool;

use super::{DAY_MS, Data, Site, fill};
use crate::charts;
use crate::db::{self, Bucket, MachineRow};
use crate::error::Result;

/// A public name with its machines' totals summed.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    /// Its first machine's id: the page is `workers/<id>.html`.
    pub id: i64,
    pub name: String,
    /// 1-based place on the leaderboard (as the worker's screen shows it).
    pub rank: usize,
    pub first_seen: i64,
    pub last_seen: i64,
    pub entries: u64,
    pub matches: u64,
    pub tasks_done: u64,
    /// Machines not replaced by a later registration of the same machine.
    pub machines: u64,
    /// A machine of it was seen within the active window.
    pub active: bool,
    /// Places gained since yesterday (negative: lost); `None` when it was
    /// not ranked then.
    pub change: Option<i64>,
    /// Every machine of the name, replaced ones too, first registered first.
    pub machine_rows: Vec<MachineRow>,
}

/// The leaderboard ([`ct_db::workers::by_name`], every name) and the
/// machines its names sum.
pub async fn load(
    pool: &MySqlPool,
    active_since: i64,
) -> Result<(Vec<NameTotals>, Vec<MachineRow>)> {
    let board = ct_db::workers::by_name(pool, u32::MAX, 0).await?;
    let machines = db::machines(pool, active_since).await?;
    Ok((board, machines))
}

/// Each name's place on the last daily leaderboard before `today` (the
/// start of the UTC day, as the snapshots count days): the previous places
/// of today's snapshot, or the places of the latest one when none was taken
/// today.
pub fn places_before(ranks: &Ranks, today: i64) -> HashMap<String, u32> {
    match ranks.day {
        Some(day) if day >= today => ranks
            .ranks
            .iter()
            .filter_map(|r| r.previous_place.map(|p| (r.name.clone(), p)))
            .collect(),
        Some(_) => ranks
            .ranks
            .iter()
            .map(|r| (r.name.clone(), r.place))
            .collect(),
        None => HashMap::new(),
    }
}

/// The leaderboard's names with their machines, in its order. A name whose
/// machines are not among `machines` (flagged between the two reads) is
/// left out; the places stay the leaderboard's.
pub fn identities(
    board: Vec<NameTotals>,
    machines: Vec<MachineRow>,
    yesterday: &HashMap<String, u32>,
) -> Vec<Identity> {
    let mut by_name: HashMap<String, Vec<MachineRow>> = HashMap::new();
    for m in machines {
        by_name.entry(m.name.clone()).or_default().push(m);
    }
    board
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let machine_rows = by_name.remove(&t.name)?;
            let id = machine_rows.first()?.id;
            let rank = i + 1;
            Some(Identity {
                id,
                rank,
                change: yesterday
                    .get(&t.name)
                    .map(|p| i64::from(*p) - i64::try_from(rank).unwrap_or(i64::MAX)),
                active: machine_rows.iter().any(|m| m.active),
                name: t.name,
                first_seen: t.first_seen,
                last_seen: t.last_seen,
                entries: t.entries,
                matches: t.matches,
                tasks_done: t.tasks_done,
                machines: t.machines,
                machine_rows,
            })
        })
        .collect()
}

/// One log a name's machines helped with, in the stats window.
#[derive(Debug, Default, Serialize)]
struct LogShare {
    log_id: i64,
    log: String,
    entries: i64,
    matches: i64,
    errors: i64,
    rate_limit_hits: i64,
}

impl Site {
    /// The leaderboard, a page per name and a page per other machine
    /// leading to its name's; the pages written. `day0` is the first day of
    /// the 30-day charts.
    pub(super) fn render_workers(
        &self,
        data: &Data,
        dir: &Path,
        common: &Value,
        day0: i64,
    ) -> Result<usize> {
        let workers = &data.workers;
        let mut pages = 0;
        self.page(
            dir,
            "workers/index.html",
            "workers.html",
            context! { root => "../", section => "workers", workers => workers, ..common.clone() },
        )?;
        pages += 1;
        // Machine id -> the index of its name in `workers`.
        let owner: HashMap<i64, usize> = workers
            .iter()
            .enumerate()
            .flat_map(|(i, w)| w.machine_rows.iter().map(move |m| (m.id, i)))
            .collect();
        let mut days_of: Vec<HashMap<i64, Bucket>> = vec![HashMap::new(); workers.len()];
        for b in &data.worker_days {
            if let Some(&i) = owner.get(&b.key_id) {
                let d = days_of[i].entry(b.at).or_insert(Bucket {
                    at: b.at,
                    entries: 0,
                    matches: 0,
                });
                d.entries = d.entries.saturating_add(b.entries);
                d.matches = d.matches.saturating_add(b.matches);
            }
        }
        let log_name: HashMap<i64, &str> = data
            .logs
            .iter()
            .map(|l| (l.id, l.description.as_str()))
            .collect();
        let mut logs_of: Vec<Vec<LogShare>> = (0..workers.len()).map(|_| Vec::new()).collect();
        for t in &data.worker_logs {
            let Some(&i) = owner.get(&t.key_id) else {
                continue;
            };
            let shares = &mut logs_of[i];
            let at = match shares.iter().position(|s| s.log_id == t.log_id) {
                Some(at) => at,
                None => {
                    shares.push(LogShare {
                        log_id: t.log_id,
                        log: log_name
                            .get(&t.log_id)
                            .map_or_else(|| format!("log {}", t.log_id), |d| (*d).to_owned()),
                        ..LogShare::default()
                    });
                    shares.len() - 1
                }
            };
            let s = &mut shares[at];
            s.entries = s.entries.saturating_add(t.entries);
            s.matches = s.matches.saturating_add(t.matches);
            s.errors = s.errors.saturating_add(t.errors);
            s.rate_limit_hits = s.rate_limit_hits.saturating_add(t.rate_limit_hits);
        }
        for ((w, days), mut shares) in workers.iter().zip(days_of).zip(logs_of) {
            shares.sort_by(|a, b| b.entries.cmp(&a.entries).then(a.log_id.cmp(&b.log_id)));
            let mut days: Vec<Bucket> = days.into_values().collect();
            days.sort_by_key(|b| b.at);
            let days = fill(&days, day0, DAY_MS, 30);
            let chart = charts::bar_chart(
                "Entries fetched per day by this name's machines, last 30 days",
                &self.day_bars(&days, "entries", false),
                5,
            );
            self.page(
                dir,
                &format!("workers/{}.html", w.id),
                "worker.html",
                context! {
                    root => "../",
                    section => "workers",
                    worker => w,
                    chart => Value::from_safe_string(chart),
                    entries_30d => days.iter().map(|b| b.entries).sum::<i64>(),
                    matches_30d => days.iter().map(|b| b.matches).sum::<i64>(),
                    per_log => shares,
                    ..common.clone()
                },
            )?;
            pages += 1;
            for m in w.machine_rows.iter().filter(|m| m.id != w.id) {
                self.page(
                    dir,
                    &format!("workers/{}.html", m.id),
                    "machine.html",
                    context! {
                        root => "../",
                        section => "workers",
                        worker => w,
                        machine => m,
                        ..common.clone()
                    },
                )?;
                pages += 1;
            }
        }
        Ok(pages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_db::ops::Rank;

    fn rank(place: u32, name: &str, previous_place: Option<u32>) -> Rank {
        Rank {
            place,
            name: name.to_owned(),
            entries: 0,
            matches: 0,
            tasks_done: 0,
            machines: 1,
            previous_place,
            change: None,
        }
    }

    fn machine(id: i64, name: &str, active: bool) -> MachineRow {
        MachineRow {
            id,
            name: name.to_owned(),
            version: None,
            first_seen: 0,
            last_seen: 0,
            entries: 1,
            matches: 0,
            tasks_done: 0,
            replaced: false,
            active,
        }
    }

    fn totals(name: &str, entries: u64) -> NameTotals {
        NameTotals {
            name: name.to_owned(),
            first_seen: 0,
            last_seen: 0,
            entries,
            matches: 0,
            tasks_done: 0,
            machines: 1,
        }
    }

    #[test]
    fn yesterday_is_the_last_snapshot_before_today() {
        let today = 10 * DAY_MS;
        let r = Ranks {
            day: Some(today),
            previous_day: Some(today - DAY_MS),
            taken_at: Some(today + 1),
            ranks: vec![rank(1, "a", Some(2)), rank(2, "b", None)],
        };
        let p = places_before(&r, today);
        assert_eq!((p.get("a"), p.get("b")), (Some(&2), None));
        // No snapshot today yet: the latest one is yesterday's.
        let p = places_before(&r, today + DAY_MS);
        assert_eq!((p.get("a"), p.get("b")), (Some(&1), Some(&2)));
        let none = Ranks {
            day: None,
            previous_day: None,
            taken_at: None,
            ranks: Vec::new(),
        };
        assert!(places_before(&none, today).is_empty());
    }

    #[test]
    fn a_name_is_one_row_over_its_machines() {
        let yesterday = HashMap::from([("b".to_owned(), 1), ("a".to_owned(), 2)]);
        let rows = identities(
            vec![totals("a", 9), totals("gone", 5), totals("b", 3)],
            vec![
                machine(2, "a", false),
                machine(7, "a", true),
                machine(3, "b", false),
            ],
            &yesterday,
        );
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].id, rows[0].rank, rows[0].change), (2, 1, Some(1)));
        assert!(rows[0].active);
        assert_eq!(rows[0].machine_rows.len(), 2);
        // "gone" keeps its place: b is third, as the worker's screen says.
        assert_eq!((rows[1].id, rows[1].rank, rows[1].change), (3, 3, Some(-2)));
        assert!(!rows[1].active);
    }
}
