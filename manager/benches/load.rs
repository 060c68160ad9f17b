//! Load generator of `scripts/bench-manager` (a `harness = false` bench; run
//! it through the script, which starts MariaDB's throw-away database,
//! ctlog-sim and a release `ct-manager serve`).
//!
//! 1. Finds the log (`--log-url`) in the manager and polls it, so its signed
//!    tree head is verified and tasks are planned.
//! 2. Pre-fetches every entry from the simulator once and precomputes, per
//!    planned task range, the matching entries with their audit paths and the
//!    range's subtree hash; the upload requests are built ahead so the
//!    generator spends little CPU while measuring.
//! 3. Baseline: `GET /healthz` (one `SELECT 1` on the manager's pool) at the
//!    same concurrency for a few seconds.
//! 4. `--workers` simulated workers: register, then claim -> heartbeat with
//!    progress half-way -> upload matches in batches -> complete, until no
//!    task is left (hidden-entry check tasks included) or `--duration`. They
//!    speak the protocol through the worker's own `ManagerClient`, one attempt
//!    a call (a 429 or 5xx is counted, not retried).
//!    `--fetch-rate` paces a worker like fetching from a log would (entries
//!    per second per worker; 0 = flat out).
//!    Beside them, `--public-readers` anonymous readers each read
//!    `/v1/logs`, `/v1/stats` and `/metrics` in turn, `--public-pause-ms`
//!    apart, until the workers end: their latencies are measured in the
//!    same run as the heartbeats'.
//! 5. Prints the figures and checks them against `/v1/stats` and the database.
//!
//! Flags: `--manager URL --admin-token T --log-url URL --database-url URL
//! [--workers 1000] [--fetch-rate 20] [--batch 64] [--duration 300]
//! [--baseline-secs 5] [--ramp 10] [--public-readers 24]
//! [--public-pause-ms 1000]` (worker starts spread over `--ramp` seconds, as
//! real workers never start in the same instant).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use ct_core::entry::{Depth, Examiner};
use ct_core::merkle::{Hash, MerkleTree, leaf_hash};
use ct_core::protocol::{
    CompleteRequest, Hash32, HeartbeatRequest, ProofState, RegisterRequest, TaskProgress,
    UploadEntry, UploadRequest,
};
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use worker_engine::client::{ClientError, ManagerClient};

#[derive(Debug, Clone)]
struct Args {
    manager: String,
    admin_token: String,
    log_url: String,
    database_url: String,
    workers: usize,
    fetch_rate: f64,
    batch: usize,
    duration: Duration,
    baseline_secs: u64,
    /// Worker starts are spread over this time.
    ramp: Duration,
    /// Anonymous readers of the public endpoints during the run.
    public_readers: usize,
    /// Each reader's pause between two reads.
    public_pause: Duration,
}

fn parse_args() -> Result<Args> {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        // `cargo bench` passes `--bench`; ignore flags without a value we do not know.
        if a == "--bench" {
            continue;
        }
        let Some(key) = a.strip_prefix("--") else {
            bail!("unexpected argument {a:?}");
        };
        let (k, v) = match key.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (
                key.to_owned(),
                it.next()
                    .with_context(|| format!("--{key} needs a value"))?,
            ),
        };
        m.insert(k, v);
    }
    let get = |k: &str| m.get(k).cloned();
    let need = |k: &str| get(k).with_context(|| format!("--{k} is required"));
    let num = |k: &str, d: f64| -> Result<f64> {
        get(k).map_or(Ok(d), |v| {
            v.parse()
                .with_context(|| format!("--{k} {v:?} is not a number"))
        })
    };
    let mut manager = need("manager")?;
    if manager.ends_with('/') {
        manager.pop();
    }
    Ok(Args {
        manager,
        admin_token: need("admin-token")?,
        log_url: need("log-url")?,
        database_url: need("database-url")?,
        workers: num("workers", 1000.0)? as usize,
        fetch_rate: num("fetch-rate", 20.0)?,
        batch: (num("batch", 64.0)? as usize).max(1),
        duration: Duration::from_secs_f64(num("duration", 300.0)?),
        baseline_secs: num("baseline-secs", 5.0)? as u64,
        ramp: Duration::from_secs_f64(num("ramp", 10.0)?.max(0.0)),
        public_readers: num("public-readers", 24.0)? as usize,
        public_pause: Duration::from_secs_f64(num("public-pause-ms", 1000.0)?.max(0.0) / 1000.0),
    })
}

/// Source addresses the simulated workers are spread over.
const ADDRESSES: usize = 16;

/// One planned range with everything a worker sends for it.
struct Work {
    start: u64,
    end: u64,
    /// The upload requests, in order.
    uploads: Vec<UploadRequest>,
    matches: u64,
    /// Matches in `[start, start + (end - start) / 2)`.
    half_matches: u64,
    subtree_hash: Hash32,
}

/// A fetched entry: its leaf hash, and its base64 text when it matches.
struct Fetched {
    hash: Hash,
    matched: Option<(String, String)>,
}

async fn fetch_entries(http: &reqwest::Client, log_url: &str, size: u64) -> Result<Vec<Fetched>> {
    let chunk = 1024u64;
    let mut set = tokio::task::JoinSet::new();
    let mut parts: Vec<(u64, Vec<Fetched>)> = Vec::new();
    let mut next = 0;
    while next < size || !set.is_empty() {
        while next < size && set.len() < 4 {
            let (s, e) = (next, (next + chunk).min(size));
            next = e;
            let http = http.clone();
            let url = log_url.to_owned();
            set.spawn(async move {
                let mut out = Vec::with_capacity((e - s) as usize);
                let examiner = Examiner::default();
                let mut i = s;
                while i < e {
                    let v: Value = http
                        .get(format!("{url}ct/v1/get-entries?start={i}&end={}", e - 1))
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    let list = v["entries"]
                        .as_array()
                        .filter(|l| !l.is_empty())
                        .ok_or_else(|| anyhow!("get-entries at {i}: no entries"))?;
                    for e in list {
                        let leaf_b64 = e["leaf_input"].as_str().unwrap_or_default();
                        let extra_b64 = e["extra_data"].as_str().unwrap_or_default();
                        let leaf = ct_core::b64::decode(leaf_b64, "leaf_input")?;
                        let extra = ct_core::b64::decode(extra_b64, "extra_data")?;
                        let matched = examiner
                            .examine(&leaf, &extra, Depth::MatchOnly)
                            .matched()
                            .then(|| (leaf_b64.to_owned(), extra_b64.to_owned()));
                        out.push(Fetched {
                            hash: leaf_hash(&leaf),
                            matched,
                        });
                        i += 1;
                    }
                }
                anyhow::Ok((s, out))
            });
        }
        if let Some(r) = set.join_next().await {
            parts.push(r??);
        }
    }
    parts.sort_by_key(|p| p.0);
    Ok(parts.into_iter().flat_map(|p| p.1).collect())
}

fn prepare(entries: &[Fetched], ranges: &[(u64, u64)], batch: usize) -> Result<Vec<Work>> {
    let mut out = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges {
        let slice = entries
            .get(start as usize..end as usize)
            .ok_or_else(|| anyhow!("range [{start}, {end}) beyond the fetched entries"))?;
        let span = end - start;
        let tree = MerkleTree::from_leaf_hashes(slice.iter().map(|f| f.hash));
        let subtree_hash = Hash32(tree.root(span)?);
        let mut ups = Vec::new();
        let (mut matches, mut half_matches) = (0, 0);
        for (k, f) in slice.iter().enumerate() {
            let Some((leaf, extra)) = &f.matched else {
                continue;
            };
            matches += 1;
            if (k as u64) < span / 2 {
                half_matches += 1;
            }
            ups.push(UploadEntry {
                index: start + k as u64,
                leaf_input: leaf.clone(),
                extra_data: extra.clone(),
                audit_path: tree
                    .inclusion_proof(k as u64, span)?
                    .into_iter()
                    .map(Hash32)
                    .collect(),
            });
        }
        let uploads = ups
            .chunks(batch)
            .map(|c| UploadRequest {
                entries: c.to_vec(),
                subtree_hash,
                first_leaf_hash: None,
            })
            .collect();
        out.push(Work {
            start,
            end,
            uploads,
            matches,
            half_matches,
            subtree_hash,
        });
    }
    Ok(out)
}

fn hist() -> Histogram<u64> {
    // Microseconds, 1 us .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// Latencies and counts of one simulated worker (merged at the end).
struct Tally {
    claim: Histogram<u64>,
    heartbeat: Histogram<u64>,
    upload: Histogram<u64>,
    complete: Histogram<u64>,
    claims: u64,
    claims_empty: u64,
    tasks: u64,
    checks: u64,
    verified: u64,
    uploads: u64,
    uploaded_entries: u64,
    new: u64,
    duplicate: u64,
    rejected: u64,
    errors: HashMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            claim: hist(),
            heartbeat: hist(),
            upload: hist(),
            complete: hist(),
            claims: 0,
            claims_empty: 0,
            tasks: 0,
            checks: 0,
            verified: 0,
            uploads: 0,
            uploaded_entries: 0,
            new: 0,
            duplicate: 0,
            rejected: 0,
            errors: HashMap::new(),
        }
    }

    fn merge(&mut self, o: &Tally) {
        let _ = self.claim.add(&o.claim);
        let _ = self.heartbeat.add(&o.heartbeat);
        let _ = self.upload.add(&o.upload);
        let _ = self.complete.add(&o.complete);
        self.claims += o.claims;
        self.claims_empty += o.claims_empty;
        self.tasks += o.tasks;
        self.checks += o.checks;
        self.verified += o.verified;
        self.uploads += o.uploads;
        self.uploaded_entries += o.uploaded_entries;
        self.new += o.new;
        self.duplicate += o.duplicate;
        self.rejected += o.rejected;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    fn error(&mut self, what: &str, e: &dyn std::fmt::Display) {
        let key = format!("{what}: {}", first_line(&e.to_string()));
        let n = self.errors.entry(key.clone()).or_default();
        if *n == 0 {
            eprintln!("load: {key}");
        }
        *n += 1;
    }

    /// A failed call, by status and error code when the manager answered.
    fn failed(&mut self, what: &str, e: &ClientError) {
        match (e.status(), e.code()) {
            (Some(status), Some(code)) => self.error(what, &format!("{status} {code}")),
            _ => self.error(what, e),
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

struct Shared {
    args: Args,
    /// Without a token and without retries, one per source address
    /// (127.0.0.2 and up: check tasks go to another address than the
    /// checked worker's); each worker adds its token.
    clients: Vec<ManagerClient>,
    /// Never cancelled: calls without retries do not wait on it.
    cancel: CancellationToken,
    work: HashMap<u64, Work>,
    t0: Instant,
    deadline: Instant,
    /// Workers holding a lease now.
    active: AtomicUsize,
    /// Micros since t0 of the first upload sent and of the end of the last upload that stored something.
    first_upload_us: AtomicU64,
    last_new_us: AtomicU64,
    /// Micros since t0 at which the last task was claimed (end of the claim phase).
    last_claim_us: AtomicU64,
}

impl Shared {
    fn since(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }
}

fn us(t: Instant) -> u64 {
    t.elapsed().as_micros().max(1) as u64
}

async fn pace(sh: &Shared, entries: u64) {
    if sh.args.fetch_rate > 0.0 && entries > 0 {
        tokio::time::sleep(Duration::from_secs_f64(entries as f64 / sh.args.fetch_rate)).await;
    }
}

async fn worker(sh: Arc<Shared>, n: usize, token: String) -> Tally {
    let client = sh.clients[n % sh.clients.len()].clone().with_token(token);
    let mut t = Tally::new();
    // Real workers do not start in the same millisecond: spread the starts
    // over the ramp so that their heartbeats do not arrive in one burst.
    let ramp = sh
        .args
        .ramp
        .mul_f64(n as f64 / sh.args.workers.max(1) as f64);
    tokio::time::sleep(ramp).await;
    let mut idle = 0u32;
    while Instant::now() < sh.deadline {
        let started = Instant::now();
        let claimed = client.claim(1, &sh.cancel).await;
        let _ = t.claim.record(us(started));
        t.claims += 1;
        let lease = match claimed {
            Ok(c) => c.tasks.into_iter().next(),
            Err(e) => {
                t.failed("claim", &e);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let Some(lease) = lease else {
            t.claims_empty += 1;
            // Done when nobody holds a lease (a completion may still add a check task).
            if sh.active.load(Relaxed) == 0 {
                idle += 1;
                if idle >= 3 {
                    break;
                }
            }
            // Idle workers poll again after 1 to 2 s.
            let jitter = (n % 1000) as u64;
            tokio::time::sleep(Duration::from_millis(1000 + jitter)).await;
            continue;
        };
        idle = 0;
        sh.active.fetch_add(1, Relaxed);
        sh.last_claim_us.fetch_max(sh.since(), Relaxed);
        if let Err(e) = work_task(&sh, &mut t, &client, &lease).await {
            t.error("task", &e);
        }
        sh.active.fetch_sub(1, Relaxed);
    }
    t
}

async fn work_task(
    sh: &Shared,
    t: &mut Tally,
    client: &ManagerClient,
    lease: &ct_core::protocol::TaskLease,
) -> Result<()> {
    let w = sh
        .work
        .get(&lease.start)
        .filter(|w| w.end == lease.end)
        .ok_or_else(|| anyhow!("no prepared range [{}, {})", lease.start, lease.end))?;
    t.tasks += 1;
    if lease.check_of.is_some() {
        t.checks += 1;
    }
    let from = lease.next_index;
    let total = w.end - from;
    let half = total / 2;
    pace(sh, half).await;
    let progress = HeartbeatRequest {
        tasks: vec![TaskProgress {
            task_id: lease.task_id,
            next_index: from + half,
            entries: half,
            matches: if from == w.start { w.half_matches } else { 0 },
            errors: 0,
            rate_limited: 0,
        }],
    };
    let started = Instant::now();
    let hb = client.heartbeat(&progress, &sh.cancel).await;
    let _ = t.heartbeat.record(us(started));
    if let Err(e) = hb {
        t.failed("heartbeat", &e);
    }
    pace(sh, total - half).await;
    for up in &w.uploads {
        let _ = sh.first_upload_us.fetch_min(sh.since(), Relaxed);
        let started = Instant::now();
        let r = client.upload(lease.task_id, up, &sh.cancel).await;
        let _ = t.upload.record(us(started));
        t.uploads += 1;
        t.uploaded_entries += up.entries.len() as u64;
        match r {
            Ok(r) => {
                t.new += r.new;
                t.duplicate += r.duplicate;
                t.rejected += r.rejected;
                if r.new > 0 {
                    sh.last_new_us.fetch_max(sh.since(), Relaxed);
                }
                if let Some(x) = r.rejections.first() {
                    t.error("upload rejection", &anyhow!("{:?} {}", x.code, x.reason));
                }
            }
            Err(e) => t.failed("upload", &e),
        }
    }
    let done = CompleteRequest {
        next_index: w.end,
        entries: total,
        matches: if from == w.start { w.matches } else { 0 },
        errors: 0,
        rate_limited: 0,
        subtree_hash: w.subtree_hash,
        first_leaf_hash: None,
    };
    let started = Instant::now();
    let r = client.complete(lease.task_id, &done, &sh.cancel).await;
    let _ = t.complete.record(us(started));
    match r {
        Ok(a) if a.proof == Some(ProofState::Verified) => t.verified += 1,
        Ok(a) => t.error("complete", &anyhow!("proof {:?}", a.proof)),
        Err(e) => t.failed("complete", &e),
    }
    Ok(())
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join("/"))
        .unwrap_or_else(|_| "?".into())
}

/// `GET /healthz` at the same concurrency: the request rate the HTTP stack
/// and one pooled `SELECT 1` allow on this machine now.
async fn baseline(
    http: &reqwest::Client,
    url: &str,
    conc: usize,
    secs: u64,
) -> (f64, Histogram<u64>) {
    let end = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let http = http.clone();
        let url = format!("{url}/healthz");
        set.spawn(async move {
            let mut h = hist();
            let mut n = 0u64;
            while Instant::now() < end {
                let s = Instant::now();
                if let Ok(r) = http.get(&url).send().await
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    n += 1;
                    let _ = h.record(us(s));
                }
            }
            (n, h)
        });
    }
    let mut h = hist();
    let mut n = 0;
    while let Some(Ok((k, hh))) = set.join_next().await {
        n += k;
        let _ = h.add(&hh);
    }
    (n as f64 / t0.elapsed().as_secs_f64(), h)
}

/// The public endpoints the readers read, in turn.
const PUBLIC: [&str; 3] = ["/v1/logs", "/v1/stats", "/metrics"];

/// Latencies of the public reads, per endpoint of [`PUBLIC`].
struct Reads {
    latency: [Histogram<u64>; 3],
    errors: u64,
}

/// One anonymous reader: the public endpoints in turn, `pause` apart,
/// until `stop`.
async fn public_reader(
    http: reqwest::Client,
    base: String,
    first: usize,
    pause: Duration,
    stop: CancellationToken,
) -> Reads {
    let mut r = Reads {
        latency: [hist(), hist(), hist()],
        errors: 0,
    };
    let mut k = first;
    while !stop.is_cancelled() {
        let i = k % PUBLIC.len();
        k += 1;
        let started = Instant::now();
        let ok = match http.get(format!("{base}{}", PUBLIC[i])).send().await {
            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            let _ = r.latency[i].record(us(started));
        } else {
            r.errors += 1;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => {}
        }
    }
    r
}

/// Copies up to 32,768 stored certificates with ids above `after` (and their
/// names and sightings) into scratch tables, `per_tx` certificates per
/// transaction on one connection; certificates per second.
async fn db_baseline(pool: &sqlx::MySqlPool, per_tx: u64, after: u64) -> Result<(f64, u64)> {
    let mut conn = pool.acquire().await?;
    for t in ["certificates", "names", "sightings"] {
        sqlx::query(&format!("DROP TABLE IF EXISTS bl_{t}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!("CREATE TABLE bl_{t} LIKE {t}"))
            .execute(&mut *conn)
            .await?;
    }
    let (lo, hi): (Option<u64>, Option<u64>) =
        sqlx::query_as("SELECT MIN(id), MAX(id) FROM certificates WHERE id > ?")
            .bind(after)
            .fetch_one(&mut *conn)
            .await?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok((f64::NAN, 0));
    };
    let hi = hi.min(lo + 32_767);
    let started = Instant::now();
    let mut a = lo;
    while a <= hi {
        let b = (a + per_tx).min(hi + 1);
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        for sql in [
            "INSERT INTO bl_certificates SELECT * FROM certificates WHERE id >= ? AND id < ?",
            "INSERT INTO bl_names SELECT * FROM names WHERE certificate_id >= ? AND certificate_id < ?",
            "INSERT INTO bl_sightings SELECT * FROM sightings WHERE certificate_id >= ? AND certificate_id < ?",
        ] {
            sqlx::query(sql).bind(a).bind(b).execute(&mut *conn).await?;
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        a = b;
    }
    let secs = started.elapsed().as_secs_f64();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bl_certificates")
        .fetch_one(&mut *conn)
        .await?;
    for t in ["certificates", "names", "sightings"] {
        sqlx::query(&format!("DROP TABLE bl_{t}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok((n as f64 / secs, n as u64))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.workers + 16)
        .timeout(Duration::from_secs(120))
        .build()?;
    let admin = |r: reqwest::RequestBuilder| r.bearer_auth(&args.admin_token);

    // The log, polled (verified head) and planned.
    let logs: Value = admin(http.get(format!("{}/v1/admin/logs", args.manager)))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let log_id = logs
        .as_array()
        .and_then(|l| l.iter().find(|l| l["url"] == args.log_url.as_str()))
        .and_then(|l| l["id"].as_u64())
        .with_context(|| format!("log {} is not in the manager", args.log_url))?;
    let poll: Value = admin(http.post(format!("{}/v1/admin/logs/{log_id}/poll", args.manager)))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    eprintln!("load: poll {poll}");
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await?;
    let ranges: Vec<(u64, u64)> = sqlx::query_as(
        "SELECT start_index, end_index FROM tasks WHERE log_id = ? AND check_of = 0 ORDER BY start_index",
    )
    .bind(log_id)
    .fetch_all(&pool)
    .await?;
    let size = ranges
        .last()
        .map(|r| r.1)
        .context("no tasks were planned")?;
    eprintln!(
        "load: log {log_id}: {} tasks over {size} entries; fetching them from the simulator",
        ranges.len()
    );
    let prep = Instant::now();
    let entries = fetch_entries(&http, &args.log_url, size).await?;
    let batch = args.batch;
    let rs = ranges.clone();
    let work = tokio::task::spawn_blocking(move || prepare(&entries, &rs, batch)).await??;
    let matches: u64 = work.iter().map(|w| w.matches).sum();
    eprintln!(
        "load: prepared {} ranges, {matches} matching entries in {:.1} s",
        work.len(),
        prep.elapsed().as_secs_f64()
    );

    // What the database holds before the run (the public reads count it cheaply).
    let before: Value = http
        .get(format!("{}/v1/stats", args.manager))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let (certs_before,): (Option<u64>,) = sqlx::query_as("SELECT MAX(id) FROM certificates")
        .fetch_one(&pool)
        .await?;
    let certs_before = certs_before.unwrap_or(0);

    // Baseline at the same concurrency.
    let la_base = load_avg();
    let (healthz_rps, healthz) =
        baseline(&http, &args.manager, args.workers, args.baseline_secs).await;

    // Register every worker first (not part of the cycle's figures).
    let mut clients = Vec::with_capacity(ADDRESSES);
    for k in 0..ADDRESSES {
        let local = std::net::IpAddr::from([127, 0, 0, 2 + k as u8]);
        let bound = reqwest::Client::builder()
            .pool_max_idle_per_host(args.workers / ADDRESSES + 16)
            .timeout(Duration::from_secs(120))
            .local_address(local)
            .build()?;
        clients.push(ManagerClient::new(&args.manager, bound).without_retries());
    }
    let cancel = CancellationToken::new();
    let reg_t0 = Instant::now();
    // Names of this run: a kept database still holds earlier runs' names.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 1_000_000);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..args.workers {
        let client = clients[i % ADDRESSES].clone();
        let cancel = cancel.clone();
        set.spawn(async move {
            let req = RegisterRequest {
                name: Some(format!("bench-{run}-{i}")),
                version: Some("bench".into()),
                ..RegisterRequest::default()
            };
            // A burst of registrations may find every connection busy for
            // longer than the manager's acquire timeout: it answers 503,
            // and the worker retries, as real workers do.
            let mut retries = 0u32;
            loop {
                match client.register(&req, &cancel).await {
                    Ok(r) => return anyhow::Ok((i, r.token, retries)),
                    Err(e) if e.status() == Some(503) && retries < 20 => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(250 * u64::from(retries.min(8))))
                            .await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        });
    }
    let mut tokens = vec![String::new(); args.workers];
    let mut register_retries = 0u32;
    while let Some(r) = set.join_next().await {
        let (i, tok, retries) = r??;
        tokens[i] = tok;
        register_retries += retries;
    }
    let register_s = reg_t0.elapsed().as_secs_f64();

    let la_start = load_avg();
    let t0 = Instant::now();
    let sh = Arc::new(Shared {
        clients,
        cancel,
        work: work.into_iter().map(|w| (w.start, w)).collect(),
        t0,
        deadline: t0 + args.duration,
        active: AtomicUsize::new(0),
        first_upload_us: AtomicU64::new(u64::MAX),
        last_new_us: AtomicU64::new(0),
        last_claim_us: AtomicU64::new(0),
        args: args.clone(),
    });
    let mut set = tokio::task::JoinSet::new();
    for (i, tok) in tokens.into_iter().enumerate() {
        set.spawn(worker(sh.clone(), i, tok));
    }
    let stop_reads = CancellationToken::new();
    let mut readers = tokio::task::JoinSet::new();
    for k in 0..args.public_readers {
        readers.spawn(public_reader(
            http.clone(),
            args.manager.clone(),
            k,
            args.public_pause,
            stop_reads.clone(),
        ));
    }
    // Load average while the run is going (sampled every 5 s).
    let la_samples = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let sampler = {
        let s = la_samples.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if let Some(v) = std::fs::read_to_string("/proc/loadavg")
                    .ok()
                    .and_then(|l| l.split_whitespace().next().and_then(|x| x.parse().ok()))
                    && let Ok(mut g) = s.lock()
                {
                    g.push(v);
                }
            }
        })
    };
    let mut total = Tally::new();
    while let Some(r) = set.join_next().await {
        total.merge(&r?);
    }
    stop_reads.cancel();
    let mut reads = Reads {
        latency: [hist(), hist(), hist()],
        errors: 0,
    };
    while let Some(r) = readers.join_next().await {
        let r = r?;
        for (all, one) in reads.latency.iter_mut().zip(&r.latency) {
            let _ = all.add(one);
        }
        reads.errors += r.errors;
    }
    sampler.abort();
    let wall = t0.elapsed().as_secs_f64();
    let la_end = load_avg();
    let la_max = la_samples
        .lock()
        .map(|g| g.iter().copied().fold(0.0, f64::max))
        .unwrap_or(0.0);

    // Cross-check with the manager and the database.
    let stats: Value = http
        .get(format!("{}/v1/stats", args.manager))
        .send()
        .await?
        .json()
        .await?;
    // This run's rows: its log's, and the certificates stored since it began.
    let (db_certs, db_sightings, tasks_done, tasks_left, checks_done): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM certificates WHERE id > ?), (SELECT COUNT(*) FROM sightings WHERE log_id = ?), \
             (SELECT COUNT(*) FROM tasks WHERE log_id = ? AND state = 'done'), \
             (SELECT COUNT(*) FROM tasks WHERE log_id = ? AND state <> 'done'), \
             (SELECT COUNT(*) FROM tasks WHERE log_id = ? AND state = 'done' AND check_of <> 0)",
        )
        .bind(certs_before)
        .bind(log_id)
        .bind(log_id)
        .bind(log_id)
        .bind(log_id)
        .fetch_one(&pool)
        .await?;
    let metrics = http
        .get(format!("{}/metrics", args.manager))
        .send()
        .await?
        .text()
        .await?;
    let metric = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or("?")
            .to_owned()
    };

    // Baseline 2: the same stored rows written again by one connection, 64
    // certificates (with their names and sightings) per transaction, the
    // database's own INSERT ... SELECT (no HTTP, no decoding, no transfer).
    let (db_rows_per_s, db_rows) = db_baseline(&pool, args.batch as u64, certs_before).await?;

    let first = sh.first_upload_us.load(Relaxed);
    let last = sh.last_new_us.load(Relaxed);
    let upload_phase = if last > first {
        (last - first) as f64 / 1e6
    } else {
        f64::NAN
    };
    let claim_phase = sh.last_claim_us.load(Relaxed) as f64 / 1e6;
    let stored_per_s = total.new as f64 / upload_phase;
    let claims_ok = total.claims - total.claims_empty;

    println!("== bench-manager (scripts/bench-manager) ==");
    println!(
        "workers={} ramp_s={} fetch_rate={}/s/worker batch={} tasks_planned={} matching_entries={matches}",
        args.workers,
        args.ramp.as_secs_f64(),
        args.fetch_rate,
        args.batch,
        ranges.len()
    );
    println!(
        "run: wall_s={wall:.1} register_s={register_s:.1} (retried {register_retries} after 503) tasks_worked={} (checks {}) verified={} claims={} (empty {}) uploads={} uploaded_entries={}",
        total.tasks,
        total.checks,
        total.verified,
        total.claims,
        total.claims_empty,
        total.uploads,
        total.uploaded_entries
    );
    println!(
        "claims/s={:.1} (tasks leased over the claim phase {claim_phase:.1} s; all claim calls {:.1}/s) claim_p50_ms={:.1} claim_p99_ms={:.1}",
        claims_ok as f64 / claim_phase,
        total.claims as f64 / wall,
        ms(&total.claim, 0.5),
        ms(&total.claim, 0.99)
    );
    println!(
        "heartbeat_p50_ms={:.1} heartbeat_p99_ms={:.1} heartbeat_max_ms={:.1} heartbeats={}",
        ms(&total.heartbeat, 0.5),
        ms(&total.heartbeat, 0.99),
        total.heartbeat.max() as f64 / 1000.0,
        total.heartbeat.len()
    );
    println!(
        "upload_p50_ms={:.1} upload_p99_ms={:.1} complete_p50_ms={:.1} complete_p99_ms={:.1}",
        ms(&total.upload, 0.5),
        ms(&total.upload, 0.99),
        ms(&total.complete, 0.5),
        ms(&total.complete, 0.99)
    );
    println!(
        "stored_certs_per_s={stored_per_s:.0} (new={} over the upload phase {upload_phase:.1} s) duplicates={} rejected={} uploaded_entries_per_s={:.0}",
        total.new,
        total.duplicate,
        total.rejected,
        total.uploaded_entries as f64 / wall
    );
    println!(
        "proofs: log_proof_requests={} (one get-entry-and-proof per completed task; ranges_verified={})",
        metric("ctjp_proof_requests_total"),
        metric("ctjp_ranges_verified_total")
    );
    println!(
        "baseline: healthz_rps={healthz_rps:.0} healthz_p50_ms={:.1} healthz_p99_ms={:.1} ({} concurrent, {} s, load {la_base}) -> heartbeat_p99/healthz_p99={:.2}",
        ms(&healthz, 0.5),
        ms(&healthz, 0.99),
        args.workers,
        args.baseline_secs,
        ms(&total.heartbeat, 0.99) / ms(&healthz, 0.99).max(0.001)
    );
    println!(
        "baseline: db_insert_certs_per_s={db_rows_per_s:.0} ({db_rows} stored certificates with names and sightings copied by one connection, {} per transaction) -> stored_certs_per_s/db_insert={:.2}",
        args.batch,
        stored_per_s / db_rows_per_s
    );
    let stat = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let tasks_in =
        |v: &Value| stat(v, "tasks_pending") + stat(v, "tasks_leased") + stat(v, "tasks_done");
    println!(
        "scale: tasks={} certificates={} sightings={} names={} before the run (from /v1/stats)",
        tasks_in(&before),
        stat(&before, "certificates"),
        stat(&before, "sightings"),
        stat(&before, "names"),
    );
    let reads_n: u64 = reads.latency.iter().map(|h| h.len()).sum();
    println!(
        "public_reads: readers={} pause_ms={} requests={reads_n} errors={} logs_p50_ms={:.1} logs_p99_ms={:.1} stats_p50_ms={:.1} stats_p99_ms={:.1} metrics_p50_ms={:.1} metrics_p99_ms={:.1} (same run: heartbeat_p99_ms={:.1})",
        args.public_readers,
        args.public_pause.as_millis(),
        reads.errors,
        ms(&reads.latency[0], 0.5),
        ms(&reads.latency[0], 0.99),
        ms(&reads.latency[1], 0.5),
        ms(&reads.latency[1], 0.99),
        ms(&reads.latency[2], 0.5),
        ms(&reads.latency[2], 0.99),
        ms(&total.heartbeat, 0.99),
    );
    println!(
        "check: stats.certificates={} (before {}) run.certificates={db_certs} run.sightings={db_sightings} tasks_done={tasks_done} (checks {checks_done}) tasks_not_done={tasks_left} (this run's log)",
        stats["certificates"],
        stat(&before, "certificates"),
    );
    println!("load_avg: start={la_start} end={la_end} max_1min_during_run={la_max:.2}");
    let mut errs: Vec<_> = total.errors.iter().collect();
    errs.sort();
    for (k, v) in errs {
        println!("errors: {v} x {k}");
    }
    let hb99 = ms(&total.heartbeat, 0.99);
    let met = |ok: bool| if ok { "MET" } else { "MISSED" };
    let reads99 = reads
        .latency
        .iter()
        .map(|h| ms(h, 0.99))
        .fold(0.0, f64::max);
    println!(
        "targets: heartbeat_p99_ms<100: {} ; stored_certs_per_s>=5000: {} ; public_reads_p99_ms<50: {}",
        met(hb99 < 100.0),
        met(stored_per_s >= 5000.0),
        met(reads_n > 0 && reads99 < 50.0),
    );
    if db_certs as u64 != total.new {
        println!(
            "WARNING: the database holds {db_certs} certificates but uploads reported {} new",
            total.new
        );
    }
    Ok(())
}
