//! `Site::build`: load everything from the database, render every page into
//! a fresh folder, then publish it atomically. Each step is a method so tests
//! can build into a folder of their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt, stream};
use minijinja::{Environment, Value, context};
use serde::Serialize;
use sqlx::MySqlPool;

use crate::charts::{self, Bar};
use crate::config::Config;
use crate::db::{self, Bucket, CertRow, Count, LogRow, SthRow, WorkerRow};
use crate::error::{Error, Result, io};
use crate::{search, swap, templates};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Top issuers are counted over this many latest certificates.
pub const ISSUER_SAMPLE: i64 = 100_000;

/// Everything the pages show, read in one go.
#[derive(Debug, Clone, Serialize)]
pub struct Data {
    pub generated_at: i64,
    pub totals: db::Totals,
    pub logs: Vec<LogRow>,
    pub sths: Vec<SthRow>,
    pub hourly: Vec<Bucket>,
    pub daily: Vec<Bucket>,
    pub new_certs: Vec<Bucket>,
    pub workers: Vec<WorkerRow>,
    #[serde(skip)]
    pub worker_days: Vec<db::KeyBucket>,
    #[serde(skip)]
    pub worker_logs: Vec<db::WindowTotals>,
    #[serde(skip)]
    pub log_days: Vec<db::KeyBucket>,
    #[serde(skip)]
    pub log_window: Vec<db::WindowTotals>,
    pub latest: Vec<CertRow>,
    pub expiring: Vec<CertRow>,
    pub expiring_count: i64,
    pub issuers: Vec<Count>,
    pub validation: Vec<Count>,
    pub categories: Vec<Category>,
    #[serde(skip)]
    pub domains: Vec<Count>,
    #[serde(skip)]
    pub domain_certs: Vec<(String, Vec<CertRow>)>,
}

/// Names and certificates of one name category.
#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub category: String,
    pub names: i64,
    pub certificates: i64,
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
        // Independent heavy aggregates run side by side (the pool has 4 connections).
        let (totals, domains, categories, issuers) = tokio::try_join!(
            db::totals(pool, active_since),
            db::domains(pool),
            db::categories(pool),
            db::top_issuers(pool, ISSUER_SAMPLE, 20),
        )?;
        let logs = db::logs(pool).await?;
        let sths = db::sths(pool, 20).await?;
        let hourly = fill(
            &db::throughput(pool, hour_start / 1000, 3600, 0).await?,
            hour_start,
            HOUR_MS,
            24,
        );
        let daily = fill(
            &db::throughput(pool, since_day_s, 86_400, off).await?,
            day_start,
            DAY_MS,
            30,
        );
        let new_certs: Vec<Bucket> = db::new_certificates(pool, day_start, off)
            .await?
            .into_iter()
            .filter_map(|c| {
                c.key.parse().ok().map(|at| Bucket {
                    at,
                    entries: 0,
                    matches: c.n,
                })
            })
            .collect();
        let new_certs = fill(&new_certs, day_start, DAY_MS, 30);
        let workers = db::workers(pool, active_since).await?;
        let worker_days = db::key_days(pool, "worker_id", since_day_s, off).await?;
        let worker_logs = db::window_totals(pool, "worker_id", since_day_s).await?;
        let log_days = db::key_days(pool, "log_id", since_day_s, off).await?;
        let log_window = db::window_totals(pool, "0", since_day_s).await?;
        let latest = db::latest_certificates(pool, 50).await?;
        let (expiring, expiring_count) =
            db::expiring(pool, now_ms, now_ms + self.cfg.expiring_ms, 50).await?;
        let validation = db::validation_levels(pool).await?;
        let categories = categories
            .into_iter()
            .map(|(category, names, certificates)| Category {
                category,
                names,
                certificates,
            })
            .collect();
        let limit = i64::try_from(self.cfg.domain_certs).unwrap_or(50);
        let domain_certs: Vec<(String, Vec<CertRow>)> = stream::iter(
            domains
                .iter()
                .take(self.cfg.domain_pages)
                .map(|d| async move {
                    db::domain_certificates(pool, &d.key, limit)
                        .await
                        .map(|certs| (d.key.clone(), certs))
                }),
        )
        .buffered(4)
        .try_collect()
        .await?;
        Ok(Data {
            generated_at: now_ms,
            totals,
            logs,
            sths,
            hourly,
            daily,
            new_certs,
            workers,
            worker_days,
            worker_logs,
            log_days,
            log_window,
            latest,
            expiring,
            expiring_count,
            issuers,
            validation,
            categories,
            domains,
            domain_certs,
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
        let hourly_bars: Vec<Bar> = data
            .hourly
            .iter()
            .map(|b| {
                let local = templates::fmt_time(b.at, tz, "%m-%d %H:00").unwrap_or_default();
                Bar {
                    label: templates::fmt_time(b.at, tz, "%H").unwrap_or_default(),
                    tooltip: format!(
                        "{local}: {} entries, {} matches",
                        templates::num(Value::from(b.entries)),
                        templates::num(Value::from(b.matches))
                    ),
                    value: b.entries as f64,
                }
            })
            .collect();
        let chart_hourly =
            charts::bar_chart("Entries scanned per hour, last 24 hours", &hourly_bars, 3);
        let chart_daily = charts::bar_chart(
            "Entries scanned per day, last 30 days",
            &self.day_bars(&data.daily, "entries", false),
            5,
        );
        let chart_new = charts::bar_chart(
            "New matching certificates per day, last 30 days",
            &self.day_bars(&data.new_certs, "new certificates", true),
            5,
        );
        let sum = |v: &[Bucket], m: bool| -> i64 {
            v.iter()
                .map(|b| if m { b.matches } else { b.entries })
                .sum()
        };
        let log_names: HashMap<i64, &LogRow> = data.logs.iter().map(|l| (l.id, l)).collect();
        let active_now: Vec<&WorkerRow> = data.workers.iter().filter(|w| w.active).collect();

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
                chart_new => Value::from_safe_string(chart_new),
                entries_24h => sum(&data.hourly, false),
                matches_24h => sum(&data.hourly, true),
                entries_30d => sum(&data.daily, false),
                new_30d => sum(&data.new_certs, true),
                top_workers => data.workers.iter().take(10).cloned().collect::<Vec<_>>(),
                active_count => active_now.len(),
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
                "Entries scanned per day for this log, last 30 days",
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

        // Workers.
        self.page(
            dir,
            "workers/index.html",
            "workers.html",
            context! { root => "../", section => "workers", workers => data.workers.clone(), ..common.clone() },
        )?;
        pages += 1;
        let mut days_by_worker: HashMap<i64, Vec<Bucket>> = HashMap::new();
        for b in &data.worker_days {
            days_by_worker.entry(b.key_id).or_default().push(Bucket {
                at: b.at,
                entries: b.entries,
                matches: b.matches,
            });
        }
        #[derive(Serialize)]
        struct WorkerLogView {
            log_id: i64,
            log: String,
            entries: i64,
            matches: i64,
            errors: i64,
            rate_limit_hits: i64,
        }
        let mut logs_by_worker: HashMap<i64, Vec<WorkerLogView>> = HashMap::new();
        for w in &data.worker_logs {
            logs_by_worker
                .entry(w.key_id)
                .or_default()
                .push(WorkerLogView {
                    log_id: w.log_id,
                    log: log_names
                        .get(&w.log_id)
                        .map_or_else(|| format!("log {}", w.log_id), |l| l.description.clone()),
                    entries: w.entries,
                    matches: w.matches,
                    errors: w.errors,
                    rate_limit_hits: w.rate_limit_hits,
                });
        }
        for w in &data.workers {
            let days = fill(
                days_by_worker.get(&w.id).map_or(&[][..], |v| v),
                day0,
                DAY_MS,
                30,
            );
            let chart = charts::bar_chart(
                "Entries scanned per day by this worker, last 30 days",
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
                    worker => w.clone(),
                    chart => Value::from_safe_string(chart),
                    entries_30d => sum(&days, false),
                    matches_30d => sum(&days, true),
                    per_log => logs_by_worker.remove(&w.id).unwrap_or_default(),
                    ..common.clone()
                },
            )?;
            pages += 1;
        }

        // Certificates and domains.
        let with_page: HashMap<&str, String> = data
            .domain_certs
            .iter()
            .map(|(d, _)| (d.as_str(), domain_path(d)))
            .collect();
        let top_domains: Vec<Value> = data
            .domains
            .iter()
            .take(20)
            .map(|d| {
                context! { domain => d.key.clone(), n => d.n, path => with_page.get(d.key.as_str()).cloned() }
            })
            .collect();
        self.page(
            dir,
            "certificates/index.html",
            "certificates.html",
            context! {
                root => "../",
                section => "certificates",
                totals => data.totals.clone(),
                latest => data.latest.clone(),
                expiring => data.expiring.clone(),
                expiring_count => data.expiring_count,
                expiring_days => self.cfg.expiring_ms / DAY_MS,
                issuers => data.issuers.clone(),
                issuer_sample => ISSUER_SAMPLE,
                validation => data.validation.clone(),
                categories => data.categories.clone(),
                top_domains => top_domains,
                ..common.clone()
            },
        )?;
        pages += 1;
        for (i, (domain, certs)) in data.domain_certs.iter().enumerate() {
            let total = data.domains.get(i).map_or(certs.len() as i64, |d| d.n);
            self.page(
                dir,
                &domain_path(domain),
                "domain.html",
                context! {
                    root => "../",
                    section => "certificates",
                    domain => domain.clone(),
                    certs => certs.clone(),
                    total => total,
                    ..common.clone()
                },
            )?;
            pages += 1;
        }

        // Search.
        let entries: Vec<search::Entry<'_>> = data
            .domains
            .iter()
            .map(|d| search::Entry {
                d: &d.key,
                n: d.n,
                p: with_page.get(d.key.as_str()).cloned(),
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
            "hourly": data.hourly,
            "daily": data.daily,
            "new_certificates_daily": data.new_certs.iter().map(|b| serde_json::json!({"at": b.at, "n": b.matches})).collect::<Vec<_>>(),
            "validation": data.validation,
            "issuers": data.issuers,
            "categories": data.categories,
            "expiring_soon": data.expiring_count,
            "workers_active": active_now.len(),
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
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let result = match self.build_into(pool, &dir, now_ms).await {
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
