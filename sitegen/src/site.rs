//! `Site::build`: load everything from the database, render every page into
//! a fresh folder, then publish it atomically. Each step is a method so tests
//! can build into a folder of their own. The collection's pages (logs,
//! throughput) are here, the volunteers' in [`workers`], live operations in
//! [`ops`]; the pages about the certificates themselves, from the analysis
//! layer, are in [`pki`].

pub mod ops;
pub mod pki;
pub mod workers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use minijinja::{Environment, Value, context};
use serde::Serialize;
use sqlx::MySqlPool;

use crate::charts::{self, Bar};
use crate::config::Config;
use crate::db::{self, Bucket, LogRow, SthRow};
use crate::error::{Error, Result, io};
use crate::{search, swap, templates};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Everything the pages show, read in one go.
#[derive(Debug, Clone, Serialize)]
pub struct Data {
    pub generated_at: i64,
    pub totals: db::Totals,
    pub logs: Vec<LogRow>,
    pub sths: Vec<SthRow>,
    pub hourly: Vec<Bucket>,
    pub daily: Vec<Bucket>,
    /// The leaderboard: one row per public name, with its machines.
    pub workers: Vec<workers::Identity>,
    #[serde(skip)]
    pub worker_days: Vec<db::KeyBucket>,
    #[serde(skip)]
    pub worker_logs: Vec<db::WindowTotals>,
    #[serde(skip)]
    pub log_days: Vec<db::KeyBucket>,
    #[serde(skip)]
    pub log_window: Vec<db::WindowTotals>,
    #[serde(skip)]
    pub pki: pki::PkiData,
    #[serde(skip)]
    pub ops: ops::OpsData,
}

/// What one build did, for the log line and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub pages: usize,
    pub load_ms: u128,
    pub render_ms: u128,
}

/// The site generator: configuration plus the environment, built once.
pub struct Site {
    cfg: Config,
    env: Environment<'static>,
}

/// Path (relative to the site root) of a registered domain's page.
pub fn domain_path(domain: &str) -> String {
    let safe = !domain.is_empty()
        && domain.len() <= 200
        && !domain.starts_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if safe {
        format!("domains/{domain}.html")
    } else {
        // FNV-1a: a stable file name for names that are not plain ASCII labels.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in domain.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("domains/_{h:016x}.html")
    }
}

/// Renders `items` with `f` on every core (pages are independent files),
/// returning how many pages were written.
fn on_all_cores<T: Sync>(items: &[T], f: impl Fn(&T) -> Result<usize> + Sync) -> Result<usize> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).sum::<Result<usize>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("a render thread panicked".into())))
            })
            .sum()
    })
}

fn fill(buckets: &[Bucket], start: i64, step: i64, count: i64) -> Vec<Bucket> {
    let by_at: HashMap<i64, &Bucket> = buckets.iter().map(|b| (b.at, b)).collect();
    (0..count)
        .map(|i| {
            let at = start + i * step;
            by_at.get(&at).map_or(
                Bucket {
                    at,
                    entries: 0,
                    matches: 0,
                },
                |b| **b,
            )
        })
        .collect()
}

impl Site {
    pub fn new(cfg: Config) -> Self {
        let env = templates::environment(cfg.templates.clone(), cfg.timezone.clone());
        Self { cfg, env }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn offset_s(&self, now_ms: i64) -> i64 {
        jiff::Timestamp::from_millisecond(now_ms)
            .map(|ts| i64::from(self.cfg.timezone.to_offset(ts).seconds()))
            .unwrap_or(0)
    }

    /// Start (ms) of the local day containing `ms`, with the current offset.
    fn day_start(&self, ms: i64, offset_s: i64) -> i64 {
        (ms + offset_s * 1000).div_euclid(DAY_MS) * DAY_MS - offset_s * 1000
    }

    /// Step 1: read everything the pages need.
    pub async fn load(&self, pool: &MySqlPool, now_ms: i64) -> Result<Data> {
        let off = self.offset_s(now_ms);
        let active_since = now_ms - self.cfg.active_ms;
        let hour_start = now_ms.div_euclid(HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
        let day_start = self.day_start(now_ms, off) - 29 * DAY_MS;
        let since_day_s = day_start / 1000;
        // The collection's per-minute statistics, one query after another
        // beside the rest.
        let collection = async {
            let sths = db::sths(pool, 20).await?;
            let hourly = db::throughput(pool, hour_start / 1000, 3600, 0).await?;
            let daily = db::throughput(pool, since_day_s, 86_400, off).await?;
            let worker_days = db::key_days(pool, "worker_id", since_day_s, off).await?;
            let worker_logs = db::window_totals(pool, "worker_id", since_day_s).await?;
            let log_days = db::key_days(pool, "log_id", since_day_s, off).await?;
            let log_window = db::window_totals(pool, "0", since_day_s).await?;
            Ok::<_, Error>((
                sths,
                hourly,
                daily,
                worker_days,
                worker_logs,
                log_days,
                log_window,
            ))
        };
        let (mut totals, logs, pki, ops, (board, machines), collection) = tokio::try_join!(
            db::totals(pool, now_ms, active_since),
            db::logs(pool),
            self.load_pki(pool, now_ms),
            ops::OpsData::load(pool, now_ms),
            workers::load(pool, active_since),
            collection,
        )?;
        let (sths, hourly, daily, worker_days, worker_logs, log_days, log_window) = collection;
        let yesterday = workers::places_before(&ops.ranks, ct_db::ops::day_of(now_ms));
        let workers = workers::identities(board, machines, &yesterday);
        totals.entries_collected = logs
            .iter()
            .map(|l| i64::try_from(l.progress.entries_verified).unwrap_or(i64::MAX))
            .fold(0i64, i64::saturating_add);
        let hourly = fill(&hourly, hour_start, HOUR_MS, 24);
        let daily = fill(&daily, day_start, DAY_MS, 30);
        Ok(Data {
            generated_at: now_ms,
            totals,
            logs,
            sths,
            hourly,
            daily,
            workers,
            worker_days,
            worker_logs,
            log_days,
            log_window,
            pki,
            ops,
        })
    }

    fn write(&self, dir: &Path, rel: &str, body: &str) -> Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, body).map_err(io(path))
    }

    fn page(&self, dir: &Path, rel: &str, template: &str, ctx: Value) -> Result<()> {
        let t = |source| Error::Template {
            name: template.to_owned(),
            source,
        };
        let html = self
            .env
            .get_template(template)
            .map_err(t)?
            .render(ctx)
            .map_err(t)?;
        self.write(dir, rel, &html)
    }

    fn day_bars(&self, buckets: &[Bucket], what: &str, matches: bool) -> Vec<Bar> {
        buckets
            .iter()
            .map(|b| {
                let v = if matches { b.matches } else { b.entries };
                let day =
                    templates::fmt_time(b.at, &self.cfg.timezone, "%Y-%m-%d").unwrap_or_default();
                let label =
                    templates::fmt_time(b.at, &self.cfg.timezone, "%m-%d").unwrap_or_default();
                Bar {
                    label,
                    tooltip: format!("{day}: {} {what}", templates::num(Value::from(v))),
                    value: v as f64,
                }
            })
            .collect()
    }

    /// Step 2: render every page and file of the site into `dir`.
    pub fn render(&self, data: &Data, dir: &Path) -> Result<usize> {
        let mut pages = 0usize;
        let tz = &self.cfg.timezone;
        let common = context! {
            base_url => self.cfg.base_url.clone(),
            timezone => self.cfg.timezone_name.clone(),
            generated_at => data.generated_at,
            version => env!("CARGO_PKG_VERSION"),
        };
        for (name, _) in templates::STATIC {
            let body = templates::source(self.cfg.templates.as_ref(), name, templates::STATIC)
                .unwrap_or_default();
            self.write(dir, name, &body)?;
        }

        // Charts (our own numbers and dates only; text escaped by `charts`).
        // Workers' counters include check tasks (a checked range is fetched
        // twice), so they chart work done; what was stored is counted from
        // the stored rows.
        let hourly_bars: Vec<Bar> = data
            .hourly
            .iter()
            .map(|b| {
                let local = templates::fmt_time(b.at, tz, "%m-%d %H:00").unwrap_or_default();
                Bar {
                    label: templates::fmt_time(b.at, tz, "%H").unwrap_or_default(),
                    tooltip: format!(
                        "{local}: {} entries fetched",
                        templates::num(Value::from(b.entries)),
                    ),
                    value: b.entries as f64,
                }
            })
            .collect();
        let chart_hourly = charts::bar_chart(
            "Entries fetched by workers per hour, last 24 hours",
            &hourly_bars,
            3,
        );
        let chart_daily = charts::bar_chart(
            "Entries fetched by workers per day, last 30 days",
            &self.day_bars(&data.daily, "entries fetched", false),
            5,
        );
        let issuance_days = Self::issuance_days(&data.pki, data.generated_at, 30);
        let chart_issuances = charts::bar_chart(
            "Issuances per day by CT log time (JST), last 30 days",
            &Self::issuance_day_bars(&issuance_days),
            5,
        );
        let sum = |v: &[Bucket], m: bool| -> i64 {
            v.iter()
                .map(|b| if m { b.matches } else { b.entries })
                .sum()
        };
        let active_now = data
            .workers
            .iter()
            .flat_map(|w| &w.machine_rows)
            .filter(|m| m.active)
            .count();
        let links = self.links(&data.pki);

        self.page(
            dir,
            "index.html",
            "index.html",
            context! {
                root => "",
                section => "home",
                totals => data.totals.clone(),
                logs => data.logs.clone(),
                chart_hourly => Value::from_safe_string(chart_hourly),
                chart_daily => Value::from_safe_string(chart_daily),
                chart_issuances => Value::from_safe_string(chart_issuances),
                entries_24h => sum(&data.hourly, false),
                entries_30d => sum(&data.daily, false),
                issuances_30d => issuance_days.iter().map(|d| d.1).sum::<i64>(),
                lapsed => data.pki.lapsed_count,
                top_workers => data.workers.iter().take(10).cloned().collect::<Vec<_>>(),
                active_count => active_now,
                ..common.clone()
            },
        )?;
        pages += 1;

        // Logs.
        let window: HashMap<i64, &db::WindowTotals> =
            data.log_window.iter().map(|w| (w.log_id, w)).collect();
        self.page(
            dir,
            "logs/index.html",
            "logs.html",
            context! { root => "../", section => "logs", logs => data.logs.clone(), ..common.clone() },
        )?;
        pages += 1;
        let mut sths_by_log: HashMap<i64, Vec<&SthRow>> = HashMap::new();
        for s in &data.sths {
            sths_by_log.entry(s.log_id).or_default().push(s);
        }
        let mut days_by_log: HashMap<i64, Vec<Bucket>> = HashMap::new();
        for b in &data.log_days {
            days_by_log.entry(b.key_id).or_default().push(Bucket {
                at: b.at,
                entries: b.entries,
                matches: b.matches,
            });
        }
        let day0 = data.daily.first().map_or(0, |b| b.at);
        for l in &data.logs {
            let days = fill(
                days_by_log.get(&l.id).map_or(&[][..], |v| v),
                day0,
                DAY_MS,
                30,
            );
            let chart = charts::bar_chart(
                "Entries fetched per day for this log, last 30 days (check tasks included)",
                &self.day_bars(&days, "entries", false),
                5,
            );
            let w = window.get(&l.id);
            self.page(
                dir,
                &format!("logs/{}.html", l.id),
                "log.html",
                context! {
                    root => "../",
                    section => "logs",
                    log => l.clone(),
                    sths => sths_by_log.get(&l.id).cloned().unwrap_or_default(),
                    chart => Value::from_safe_string(chart),
                    errors_30d => w.map_or(0, |w| w.errors),
                    rate_limits_30d => w.map_or(0, |w| w.rate_limit_hits),
                    unplanned => (l.tree_size - i64::try_from(l.progress.planned_end).unwrap_or(i64::MAX).max(l.start_index)).max(0),
                    ..common.clone()
                },
            )?;
            pages += 1;
        }

        pages += self.render_workers(data, dir, &common, day0)?;
        pages += self.render_ops(&data.ops, &data.workers, &data.logs, dir, &common)?;

        // Certificates: issuances by CT log time, name sets, categories.
        let pk = &data.pki;
        let all = Self::scope_all(pk);
        let top_domains: Vec<Value> = pk
            .top_domains
            .iter()
            .take(20)
            .map(|d| {
                context! { domain => d.registered_domain.clone(), n => d.issuances, path => links.domain(&d.registered_domain) }
            })
            .collect();
        let issuers: Vec<Value> = all
            .by_ca
            .iter()
            .take(20)
            .map(|(ca, n)| {
                let (name, path) = links.ca(ca);
                context! { ca => name, path => path, n => *n, pct => templates::pct(*n as f64, all.total as f64) }
            })
            .collect();
        let latest: Vec<pki::IssuanceView> =
            pk.latest.iter().map(|i| links.issuance(i, None)).collect();
        let validation_total: i64 = pk.validation.iter().map(|v| v.n).sum();
        self.page(
            dir,
            "certificates/index.html",
            "certificates.html",
            context! {
                root => "../",
                section => "certificates",
                totals => data.totals.clone(),
                latest => latest,
                expiring => pk.expiring.iter().map(|s| context! { names => s.names.clone(), latest_not_after_ms => s.latest_not_after_ms, issuances => s.issuances, ca => s.latest_issuer_o.clone() }).collect::<Vec<_>>(),
                expiring_count => pk.expiring_count,
                expiring_days => self.cfg.expiring_ms / DAY_MS,
                lapsed_count => pk.lapsed_count,
                issuers => issuers,
                ca_count => all.by_ca.len(),
                validation => pk.validation.clone(),
                validation_total => validation_total,
                categories => self.category_rows(pk),
                top_domains => top_domains,
                ..common.clone()
            },
        )?;
        pages += 1;
        pages += self.render_pki(pk, &links, dir, &common, data.generated_at)?;

        // Search.
        let entries: Vec<search::Entry<'_>> = pk
            .search
            .iter()
            .map(|(d, n)| search::Entry {
                d,
                n: *n,
                p: links.domain(d),
            })
            .collect();
        self.write(dir, "search.json", &search::script_safe_json(&entries)?)?;
        self.write(dir, "search-index.js", &search::index_js(&entries)?)?;
        self.page(
            dir,
            "search.html",
            "search.html",
            context! { root => "", section => "search", domains => entries.len(), ..common.clone() },
        )?;
        pages += 1;

        // Machine-readable figures.
        let days = Self::issuance_days(pk, data.generated_at, 30);
        let stats = serde_json::json!({
            "generated_at": data.generated_at,
            "generated_at_utc": templates::fmt_time(data.generated_at, &jiff::tz::TimeZone::UTC, "%Y-%m-%dT%H:%M:%SZ").unwrap_or_default(),
            "base_url": self.cfg.base_url,
            "totals": data.totals,
            "logs": data.logs.iter().map(|l| serde_json::json!({
                "id": l.id, "url": l.url, "description": l.description, "operator": l.operator,
                "state": l.state, "tree_size": l.tree_size, "collected": l.progress.entries_verified,
                "verified_until": l.progress.verified_until, "faulty": l.progress.entries_faulty,
                "open": l.progress.entries_missing, "planned_end": l.progress.planned_end,
                "errors": l.progress.errors, "rate_limited": l.progress.rate_limited,
                "failed_entries": l.progress.failed_entries,
            })).collect::<Vec<_>>(),
            "entries_fetched_hourly": data.hourly.iter().map(|b| serde_json::json!({"at": b.at, "entries": b.entries})).collect::<Vec<_>>(),
            "entries_fetched_daily": data.daily.iter().map(|b| serde_json::json!({"at": b.at, "entries": b.entries})).collect::<Vec<_>>(),
            "issuances_daily_jst": days.iter().map(|(d, n)| serde_json::json!({"day": crate::pki::day_label(*d), "issuances": n})).collect::<Vec<_>>(),
            "issuances_by_ca": all.by_ca.iter().map(|(ca, n)| serde_json::json!({"ca": ca, "issuances": n})).collect::<Vec<_>>(),
            "issuances_by_validity": crate::pki::BUCKETS.iter().zip(all.by_bucket).map(|(b, n)| serde_json::json!({"bucket": b, "issuances": n})).collect::<Vec<_>>(),
            "issuances_by_validation": pk.validation,
            "categories": self.category_rows(pk),
            "lapsed_name_sets": pk.lapsed_count,
            "name_sets_expiring_soon": pk.expiring_count,
            "workers_active": active_now,
        });
        self.write(dir, "stats.json", &search::script_safe_json(&stats)?)?;
        Ok(pages)
    }

    /// Loads and renders into `dir` (which must exist), without publishing.
    pub async fn build_into(&self, pool: &MySqlPool, dir: &Path, now_ms: i64) -> Result<Report> {
        let t0 = Instant::now();
        let data = self.load(pool, now_ms).await?;
        let load_ms = t0.elapsed().as_millis();
        let t1 = Instant::now();
        let pages = self.render(&data, dir)?;
        Ok(Report {
            pages,
            load_ms,
            render_ms: t1.elapsed().as_millis(),
        })
    }

    /// The whole build: fresh folder, load, render, atomic swap. On any
    /// error the fresh folder is removed and the published site is untouched.
    pub async fn build(&self, pool: &MySqlPool, out: &Path) -> Result<(PathBuf, Report)> {
        let dir = swap::prepare(out)?;
        // Builds older than the published one go while the database is read
        // (removing tens of thousands of files can take as long as the queries).
        let stale = swap::stale(out, &dir);
        let cleaner =
            tokio::task::spawn_blocking(move || stale.iter().for_each(|b| swap::discard(b)));
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let built = self.build_into(pool, &dir, now_ms).await;
        // A failed removal leaves a folder that the next publication removes.
        let _ = cleaner.await;
        let result = match built {
            Ok(r) => swap::publish(out, &dir).map(|()| r),
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => Ok((dir, r)),
            Err(e) => {
                swap::discard(&dir);
                Err(e)
            }
        }
    }
}
