//! The managed worker: registers once (token kept in the state directory),
//! replays the spool, claims tasks, fetches each with [`fetch_range`],
//! uploads the matches with their audit paths, reports progress in
//! heartbeats, obeys the manager's scaling, asks the manager for its
//! lifetime totals and the logs' outlook every [`WorkerConfig::standing_every`],
//! and drains on shutdown.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use ct_core::matcher::Matcher;
use ct_core::protocol::{
    CompleteRequest, Cooldown, FailRequest, FetchBudget, Hash32, HeartbeatRequest, RegisterRequest,
    SECRET_BYTES, Secret, TaskLease, TaskProgress, TaskStatus, UploadEntry, UploadRequest,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::adapt::Adaptive;
use crate::client::{ClientError, ManagerClient};
use crate::pace::{Pacer, valid_rate};
use crate::range::{LogCtx, MatchedEntry, Progress, RangeOutcome, fetch_range};
use crate::source::{HttpOptions, LogKind, Source, http_client_with};
use crate::spool::{Reservation, Room, Spool, SpoolBatch};
use crate::stats::CooldownInfo;
use crate::view::{EngineView, ScalingEvent, describe_budget};

/// Entries per get-entries request when the manager gives no budget.
const DEFAULT_BATCH: u64 = 1024;
/// The most entries per request a budget may ask (a log caps it anyway).
const MAX_BATCH: u64 = 10_000;
/// The longest wait between claims the manager may ask for.
const MAX_CLAIM_WAIT: Duration = Duration::from_secs(600);
/// The shortest wait between claims that gave nothing.
const MIN_CLAIM_WAIT: Duration = Duration::from_millis(250);

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub manager_url: String,
    pub name: Option<String>,
    pub state_dir: PathBuf,
    /// Fetchers per log at most, whatever the manager allows.
    pub max_fetchers: u32,
    /// Tasks held at once.
    pub max_tasks: u32,
    pub heartbeat: Duration,
    /// Matches per upload.
    pub upload_batch: usize,
    /// Largest upload spool. A full spool makes uploads wait for the
    /// manager's acknowledgements and holds claims (see [`Room`]); a batch
    /// larger than the whole spool still goes, alone.
    pub spool_limit_bytes: u64,
    /// How long shutdown may take to flush uploads.
    pub drain_timeout: Duration,
    pub matcher: Matcher,
    /// The manager's registration secret, for closed deployments.
    pub registration_secret: Option<String>,
    /// The volunteer's own secret for `name`: every machine (and every
    /// restart without the state directory) registered with it works under
    /// the same public name.
    pub secret: Option<Secret>,
    /// Bind every connection (to logs and the manager) to this address.
    pub local_address: Option<std::net::IpAddr>,
    /// Send every request to a log through this proxy. Without it (and for
    /// the manager always) `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
    /// `NO_PROXY` apply.
    pub proxy: Option<String>,
    /// Trust the CA certificates of this PEM file too on connections to logs.
    pub log_ca: Option<PathBuf>,
    /// The dashboards' base URL (`https://ctjp.example.org/`): the link to
    /// this machine's page is built from it and the manager's page path.
    pub site_url: Option<String>,
    /// How often to ask the manager for the name's lifetime totals, rank and
    /// the logs' outlook (first right after registering).
    pub standing_every: Duration,
}

/// What the state directory keeps between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registration {
    manager_url: String,
    worker_id: u64,
    name: String,
    token: String,
    /// Registered with a volunteer's secret (the secret itself is not kept).
    #[serde(default)]
    with_secret: bool,
}

impl Registration {
    /// Whether this registration is what `config` asks for. Without a
    /// secret any registration with this manager is (as before secrets); with
    /// one, a registration made with a secret under the same name.
    fn fits(&self, config: &WorkerConfig) -> bool {
        if self.manager_url != config.manager_url {
            return false;
        }
        if config.secret.is_none() {
            return true;
        }
        self.with_secret
            && config
                .name
                .as_deref()
                .is_some_and(|n| n.to_lowercase() == self.name.to_lowercase())
    }
}

/// What a secret given to the worker must be: checked before the manager is asked.
fn check_secret(config: &WorkerConfig) -> Result<()> {
    let Some(secret) = &config.secret else {
        return Ok(());
    };
    if config.name.is_none() {
        anyhow::bail!("a secret (--secret / WORKER_SECRET) needs a name (--name / WORKER_NAME)");
    }
    if !secret.is_valid_secret() {
        anyhow::bail!(
            "the secret (--secret / WORKER_SECRET) must be {} to {} bytes long (e.g. `openssl rand -hex 16`)",
            SECRET_BYTES.start(),
            SECRET_BYTES.end()
        );
    }
    Ok(())
}

/// One spooled batch on its way, with whom to tell when it is settled.
struct Outgoing {
    seq: u64,
    batch: SpoolBatch,
    done: Option<oneshot::Sender<bool>>,
    /// Its room in the spool, given back when it is settled.
    room: Reservation,
}

/// A task being worked on.
struct Running {
    lease: TaskLease,
    /// The log's slot (its budget is applied when the lease comes in, and by
    /// heartbeats after that).
    slot: Arc<LogSlot>,
    progress: Arc<Progress>,
    stats: Arc<crate::stats::LogStats>,
    errors: Arc<std::sync::atomic::AtomicU64>,
    rate_limited_at_start: u64,
    cancel: CancellationToken,
    /// Fires when the lease is lost or replaced (not at shutdown, when
    /// finished ranges still flush their uploads).
    lost: CancellationToken,
    /// The lease is lost or replaced by a newer one: never upload or complete.
    superseded: AtomicBool,
    /// Waiting for its log's slot (another task of the log is fetching).
    waiting: AtomicBool,
}

impl Running {
    fn supersede(&self) {
        self.superseded.store(true, Relaxed);
        self.lost.cancel();
        self.cancel.cancel();
    }
}

/// Per-log state shared by its tasks: one fetch at a time per log keeps the
/// log's concurrency within what the manager allows; its pacer (in the
/// source) keeps its request rate within the budget. Nothing here is shared
/// with another log, except the operator's pacer when the budget says so.
struct LogSlot {
    ctx: LogCtx,
    busy: Mutex<()>,
    /// Entries per get-entries request for the next range (the budget's).
    batch: AtomicU64,
    /// What the view last showed: fetchers, budget, reason.
    shown: std::sync::Mutex<(u32, Option<FetchBudget>, String)>,
    /// The log's operator, as its last lease said.
    operator: std::sync::Mutex<String>,
}

struct Inner {
    config: WorkerConfig,
    client: ManagerClient,
    http: reqwest::Client,
    view: Arc<EngineView>,
    tasks: Mutex<HashMap<u64, Arc<Running>>>,
    logs: Mutex<HashMap<String, Arc<LogSlot>>>,
    /// One pacer per operator that limits across its logs.
    operators: std::sync::Mutex<HashMap<String, Arc<Pacer>>>,
    /// Log URLs by the manager's log id (cooldowns name logs by id).
    log_urls: std::sync::Mutex<HashMap<u64, String>>,
    /// Cooldowns shown: log id to until (Unix ms).
    cooldowns: std::sync::Mutex<HashMap<u64, u64>>,
    /// A task of ours ended: what the manager's last "no task" answer was
    /// based on (the tasks we held) changed.
    task_ended: tokio::sync::Notify,
    /// A lease of a log new to this session came in: its outlook is worth
    /// asking for now.
    new_log: tokio::sync::Notify,
    uploads: mpsc::Sender<Outgoing>,
    spool: Mutex<Spool>,
    /// The spool's bound: what unsettled batches take of it.
    room: Room,
}

fn token_path(dir: &std::path::Path) -> PathBuf {
    dir.join("registration.json")
}

async fn load_or_register(
    config: &WorkerConfig,
    client: &ManagerClient,
    view: &EngineView,
    cancel: &CancellationToken,
) -> Result<Registration> {
    check_secret(config)?;
    let path = token_path(&config.state_dir);
    // The registration this one replaces: the same machine's, with this manager.
    let mut replaces = None;
    if let Ok(bytes) = std::fs::read(&path) {
        let reg: Registration = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a registration", path.display()))?;
        if reg.fits(config) {
            return Ok(reg);
        }
        if reg.manager_url == config.manager_url {
            tracing::info!(path = %path.display(), worker.name = %reg.name, "registering again under the secret's name; the old registration's leases are released");
            replaces = Some(Secret::new(reg.token));
        } else {
            tracing::warn!(path = %path.display(), "registration is for another manager; registering again");
        }
    }
    view.set_manager_state("registering");
    let resp = client
        .register(
            &RegisterRequest {
                name: config.name.clone(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                registration_secret: config.registration_secret.clone(),
                secret: config.secret.clone(),
                replaces,
            },
            cancel,
        )
        .await
        .context("registering with the manager")?;
    let reg = Registration {
        manager_url: config.manager_url.clone(),
        worker_id: resp.worker_id,
        name: resp.name,
        token: resp.token,
        with_secret: config.secret.is_some(),
    };
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating {}", config.state_dir.display()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&reg)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("protecting {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(worker.id = reg.worker_id, worker.name = %reg.name, "registered");
    Ok(reg)
}

/// Runs the worker until `cancel` fires, then drains and returns.
pub async fn run(
    config: WorkerConfig,
    view: Arc<EngineView>,
    cancel: CancellationToken,
) -> Result<()> {
    let agent = concat!("ct-worker/", env!("CARGO_PKG_VERSION"));
    // Logs: the user's proxy and CA. The manager: the environment's proxy
    // rules and the standard roots only.
    let http = http_client_with(
        agent,
        &HttpOptions {
            local_address: config.local_address,
            proxy: config.proxy.clone(),
            extra_ca: config.log_ca.clone(),
        },
    )
    .context("the HTTP client for logs")?;
    let manager_http = http_client_with(
        agent,
        &HttpOptions {
            local_address: config.local_address,
            ..HttpOptions::default()
        },
    )
    .context("the HTTP client for the manager")?;
    let anonymous = ManagerClient::new(&config.manager_url, manager_http);
    let reg = match load_or_register(&config, &anonymous, &view, &cancel).await {
        Ok(reg) => reg,
        // Stopped while the manager was still out of reach: a clean stop.
        Err(_) if cancel.is_cancelled() => return Ok(()),
        Err(e) => return Err(e),
    };
    view.set_worker(format!("{} (#{})", reg.name, reg.worker_id));
    let client = anonymous.with_token(reg.token.clone());
    let spool = Spool::open(&config.state_dir.join("spool"))?;
    let room = Room::new(config.spool_limit_bytes);
    let pending = spool.pending()?;
    let (tx, rx) = mpsc::channel(256);
    let inner = Arc::new(Inner {
        config,
        client,
        http,
        view: view.clone(),
        tasks: Mutex::new(HashMap::new()),
        logs: Mutex::new(HashMap::new()),
        operators: std::sync::Mutex::new(HashMap::new()),
        log_urls: std::sync::Mutex::new(HashMap::new()),
        cooldowns: std::sync::Mutex::new(HashMap::new()),
        task_ended: tokio::sync::Notify::new(),
        new_log: tokio::sync::Notify::new(),
        uploads: tx,
        spool: Mutex::new(spool),
        room,
    });
    // Uploads stop only after the drain deadline, not at the first signal.
    let upload_stop = CancellationToken::new();
    let uploader = tokio::spawn(uploader(inner.clone(), rx, upload_stop.clone()));
    // The spool first: what a crash left behind goes out before new work,
    // and takes its room (waiting for acknowledgements when it held more
    // than the limit now allows).
    if !pending.is_empty() {
        tracing::info!(batches = pending.len(), "replaying the upload spool");
    }
    for (seq, path) in pending {
        let (batch, bytes) = inner.spool.lock().await.read(&path)?;
        let room = tokio::select! {
            r = inner.room.reserve(bytes) => r?,
            // Stopped: the rest stays on disk for the next start.
            () = cancel.cancelled() => break,
        };
        view.spool_batches.fetch_add(1, Relaxed);
        let _ = inner
            .uploads
            .send(Outgoing {
                seq,
                batch,
                done: None,
                room,
            })
            .await;
    }
    let heartbeats = tokio::spawn(heartbeat_loop(inner.clone(), cancel.clone()));
    let standings = tokio::spawn(standing_loop(inner.clone(), cancel.clone()));
    let mut runners = tokio::task::JoinSet::new();
    claim_loop(&inner, &cancel, &mut runners).await;
    // Shutdown: ranges stop (their tokens are children of `cancel`); finished
    // ones flush their uploads; progress is reported once more.
    view.draining.store(true, Relaxed);
    let drain = async {
        while runners.join_next().await.is_some() {}
        let _ = heartbeats.await;
        send_heartbeat(&inner, &CancellationToken::new()).await;
        // Wait for the spool to empty.
        while inner.view.spool_batches.load(Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(inner.config.drain_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            spool.batches = inner.view.spool_batches.load(Relaxed),
            "drain timed out; unsent uploads stay in the spool for the next start"
        );
    }
    upload_stop.cancel();
    let _ = uploader.await;
    let _ = standings.await;
    Ok(())
}

/// Claims while fewer than `max_tasks` tasks are fetching and the spool is
/// below its high-water mark ([`Room::above_high_water`]): a worker whose
/// uploads are not acknowledged fast enough stops taking work. A task waiting
/// for its log's slot (another task of that log is fetching) does not count,
/// so the worker goes on claiming other logs' work, up to twice `max_tasks`
/// tasks held. When a claim gives nothing, the next one waits as long as the
/// manager asks (`retry_after_ms`, jittered), or, when the worker held tasks
/// then, until one of them ends (the manager's answer counted them: "you
/// hold your share of every log"), but never less than [`MIN_CLAIM_WAIT`].
async fn claim_loop(
    inner: &Arc<Inner>,
    cancel: &CancellationToken,
    runners: &mut tokio::task::JoinSet<()>,
) {
    let mut idle_failures = 0u32;
    let max = inner.config.max_tasks.max(1);
    while !cancel.is_cancelled() {
        while runners.try_join_next().is_some() {}
        let (held, waiting) = {
            let tasks = inner.tasks.lock().await;
            let waiting = tasks.values().filter(|r| r.waiting.load(Relaxed)).count();
            (tasks.len() as u32, waiting as u32)
        };
        let room = claim_room(max, held, waiting);
        let spool_full = inner.room.above_high_water();
        if inner.view.paused.load(Relaxed) || room == 0 || spool_full {
            if spool_full && room > 0 {
                tracing::debug!(
                    spool.used_kib = inner.room.used_kib(),
                    "spool above its high-water mark; no claims until uploads are acknowledged"
                );
            }
            sleep_or_cancel(Duration::from_millis(200), cancel).await;
            continue;
        }
        match inner.client.claim(room, cancel).await {
            Ok(resp) if !resp.tasks.is_empty() => {
                idle_failures = 0;
                inner.view.set_manager_state("connected");
                for lease in resp.tasks {
                    let running = register_task(inner, lease, cancel).await;
                    let inner = inner.clone();
                    runners.spawn(async move { run_task(inner, running).await });
                }
            }
            Ok(resp) => {
                let reason = resp
                    .reason
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .unwrap_or("no work");
                inner
                    .view
                    .set_manager_state(format!("connected ({reason})"));
                let wait = match resp.retry_after_ms {
                    Some(ms) => {
                        idle_failures = 0;
                        claim_wait(Duration::from_millis(ms))
                    }
                    None => {
                        idle_failures = (idle_failures + 1).min(5);
                        Duration::from_secs(u64::from(idle_failures))
                    }
                };
                tracing::debug!(
                    reason,
                    wait_ms = wait.as_millis() as u64,
                    "no task; waiting before the next claim"
                );
                let asked = tokio::time::Instant::now();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = inner.task_ended.notified(), if held > 0 => {}
                    () = cancel.cancelled() => {}
                }
                sleep_or_cancel(MIN_CLAIM_WAIT.saturating_sub(asked.elapsed()), cancel).await;
            }
            Err(ClientError::Cancelled) => break,
            Err(e) => {
                inner.view.set_manager_state(format!("unreachable: {e}"));
                tracing::warn!(error = %e, "claim failed");
                idle_failures = (idle_failures + 1).min(5);
                sleep_or_cancel(crate::adapt::backoff(idle_failures + 2), cancel).await;
            }
        }
    }
}

/// How many tasks to claim: up to `max` fetching (tasks waiting for a busy
/// log do not fetch), and at most `2 * max` held.
fn claim_room(max: u32, held: u32, waiting: u32) -> u32 {
    let fetching = held.saturating_sub(waiting);
    max.saturating_sub(fetching)
        .min(max.saturating_mul(2).saturating_sub(held))
}

/// The manager's wait before the next claim: capped, at least
/// [`MIN_CLAIM_WAIT`], and up to 10% longer so that a fleet told the same
/// wait does not come back at once.
fn claim_wait(asked: Duration) -> Duration {
    use rand::Rng;
    let d = asked.clamp(MIN_CLAIM_WAIT, MAX_CLAIM_WAIT);
    d.mul_f64(rand::rng().random_range(1.0..=1.1))
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = cancel.cancelled() => {}
    }
}

/// The slot of the lease's log, created on its first task; the lease's
/// budget applies at once.
async fn log_slot(inner: &Inner, lease: &TaskLease) -> Arc<LogSlot> {
    let key = lease.log_url.clone();
    let new = inner
        .log_urls
        .lock()
        .is_ok_and(|mut ids| ids.insert(lease.log_id, key.clone()).is_none());
    if new {
        inner.new_log.notify_one();
    }
    let slot = {
        let mut logs = inner.logs.lock().await;
        match logs.get(&key) {
            Some(slot) => slot.clone(),
            None => {
                let slot = new_slot(inner, lease);
                logs.insert(key, slot.clone());
                slot
            }
        }
    };
    if let Ok(mut op) = slot.operator.lock() {
        op.clone_from(&lease.operator);
    }
    let cap = apply_budget(inner, &slot, lease.fetchers, lease.budget);
    show_scaling(inner, &slot, cap, lease.budget, None);
    slot
}

fn new_slot(inner: &Inner, lease: &TaskLease) -> Arc<LogSlot> {
    let (kind, url) = match lease.kind {
        ct_core::protocol::LogKind::Rfc6962 => (LogKind::Rfc6962, lease.log_url.clone()),
        ct_core::protocol::LogKind::Static => (
            LogKind::Static,
            lease
                .monitoring_url
                .clone()
                .unwrap_or_else(|| lease.log_url.clone()),
        ),
    };
    let cap = allowed(inner, lease.fetchers);
    let stats = inner.view.log(&lease.log_url);
    stats.fetchers_allowed.store(cap, Relaxed);
    stats.set_kind(match kind {
        LogKind::Rfc6962 => "rfc6962",
        LogKind::Static => "static",
    });
    Arc::new(LogSlot {
        ctx: LogCtx {
            source: Arc::new(Source::new(kind, &url, inner.http.clone())),
            adapt: Arc::new(std::sync::Mutex::new(Adaptive::new(cap))),
            stats,
            matcher: inner.config.matcher.clone(),
            batch: DEFAULT_BATCH,
            max_fetchers: inner.config.max_fetchers.max(1),
        },
        busy: Mutex::new(()),
        batch: AtomicU64::new(DEFAULT_BATCH),
        shown: std::sync::Mutex::new((cap, None, String::new())),
        operator: std::sync::Mutex::new(lease.operator.clone()),
    })
}

/// Applies the manager's figures to a log: fetchers (the lease's or the
/// heartbeat's, under the budget's and our own caps), the request rate of
/// its pacer, its operator's pacer, and the entries per request of its next
/// range. Without a budget the log is paced by AIMD alone, as before
/// budgets existed. Returns the fetcher cap.
fn apply_budget(inner: &Inner, slot: &LogSlot, fetchers: u32, budget: Option<FetchBudget>) -> u32 {
    let operator = slot.operator.lock().map(|o| o.clone()).unwrap_or_default();
    let cap = allowed(
        inner,
        budget.map_or(fetchers, |b| fetchers.min(b.fetchers.max(1))),
    );
    if let Ok(mut a) = slot.ctx.adapt.lock() {
        a.set_allowed(cap);
    }
    slot.ctx.stats.fetchers_allowed.store(cap, Relaxed);
    let source = &slot.ctx.source;
    source
        .pacer()
        .set_limit(budget.and_then(|b| valid_rate(b.requests_per_sec)));
    let operator_rate = budget
        .and_then(|b| b.operator_requests_per_sec)
        .and_then(valid_rate)
        .filter(|_| !operator.is_empty());
    match operator_rate {
        Some(rate) => {
            let pacer = inner.operators.lock().ok().map(|mut ops| {
                ops.entry(operator.clone())
                    .or_insert_with(|| Arc::new(Pacer::new(Some(rate))))
                    .clone()
            });
            if let Some(p) = &pacer {
                p.set_limit(Some(rate));
            }
            source.set_operator_pacer(pacer);
        }
        None => source.set_operator_pacer(None),
    }
    let batch = budget
        .map(|b| b.entries_per_request)
        .filter(|n| *n > 0)
        .map_or(DEFAULT_BATCH, |n| n.min(MAX_BATCH));
    slot.batch.store(batch, Relaxed);
    slot.ctx.stats.set_budget(budget);
    slot.ctx.stats.set_pace(source.pacer().rate());
    cap
}

/// Shows a change of a log's fetchers, budget or reason in the view; a
/// claim (`reason` `None`) has no reason of its own. The first reason the
/// manager gives for figures already shown is no news.
fn show_scaling(
    inner: &Inner,
    slot: &LogSlot,
    cap: u32,
    budget: Option<FetchBudget>,
    reason: Option<&str>,
) {
    let changed = match slot.shown.lock() {
        Ok(mut shown) => {
            let (c, b, r) = &mut *shown;
            let same_figures = *c == cap && *b == budget;
            let same = match reason {
                None => same_figures,
                Some(reason) if r.is_empty() && same_figures => {
                    *r = reason.to_owned();
                    true
                }
                Some(reason) => same_figures && r == reason,
            };
            if !same {
                *c = cap;
                *b = budget;
                if let Some(reason) = reason {
                    *r = reason.to_owned();
                }
            }
            !same
        }
        Err(_) => false,
    };
    if !changed {
        return;
    }
    let reason = reason.unwrap_or("claimed");
    let text = match budget {
        Some(b) if reason.is_empty() => describe_budget(&b),
        Some(b) => format!("{reason} · {}", describe_budget(&b)),
        None => reason.to_owned(),
    };
    tracing::info!(log_url = %slot.ctx.stats.name, fetchers = cap, reason = %text, "scaling");
    inner.view.push_scaling(ScalingEvent {
        at: SystemTime::now(),
        log: slot.ctx.stats.name.clone(),
        fetchers: cap,
        reason: text,
    });
}

/// Shows the manager's cooldowns: an event for each new one, and each log's
/// current one in its stats (cleared when the manager no longer lists it).
async fn show_cooldowns(inner: &Inner, cooldowns: &[Cooldown]) {
    let now = SystemTime::now();
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let urls = inner.log_urls.lock().map(|u| u.clone()).unwrap_or_default();
    let logs = inner.logs.lock().await;
    let mut fresh = Vec::new();
    if let Ok(mut shown) = inner.cooldowns.lock() {
        shown.retain(|id, until| *until > now_ms && cooldowns.iter().any(|c| c.log_id == *id));
        for c in cooldowns.iter().filter(|c| c.until > now_ms) {
            if shown.insert(c.log_id, c.until) != Some(c.until) {
                fresh.push(c);
            }
        }
    }
    for c in fresh {
        let label = urls
            .get(&c.log_id)
            .cloned()
            .unwrap_or_else(|| format!("log #{}", c.log_id));
        let left = Duration::from_millis(c.until - now_ms);
        tracing::info!(log_url = %label, until_ms = c.until, reason = %c.reason, "manager cooldown");
        inner
            .view
            .push_scaling(ScalingEvent::cooldown(now, label, left, &c.reason));
    }
    for (url, slot) in logs.iter() {
        let current = cooldowns
            .iter()
            .find(|c| c.until > now_ms && urls.iter().any(|(id, u)| *id == c.log_id && u == url));
        slot.ctx.stats.set_cooldown(current.map(|c| CooldownInfo {
            until: SystemTime::UNIX_EPOCH + Duration::from_millis(c.until),
            reason: c.reason.clone(),
        }));
    }
}

/// What this worker may use on a log: the manager's figure under our own caps.
fn allowed(inner: &Inner, manager: u32) -> u32 {
    let mut n = manager.min(inner.config.max_fetchers);
    let user = inner.view.user_cap.load(Relaxed);
    if user > 0 {
        n = n.min(user);
    }
    n.max(1)
}

async fn register_task(
    inner: &Arc<Inner>,
    lease: TaskLease,
    cancel: &CancellationToken,
) -> Arc<Running> {
    let slot = log_slot(inner, &lease).await;
    let running = Arc::new(Running {
        progress: Arc::new(Progress::new(lease.start)),
        stats: slot.ctx.stats.clone(),
        errors: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        rate_limited_at_start: crate::stats::LogStats::get(&slot.ctx.stats.rate_limited),
        cancel: cancel.child_token(),
        lost: CancellationToken::new(),
        superseded: AtomicBool::new(false),
        waiting: AtomicBool::new(false),
        slot,
        lease,
    });
    // The manager hands a task back to us when our lease on it expired (for
    // example while it was unreachable): the old run stops, the new lease wins.
    let old = inner
        .tasks
        .lock()
        .await
        .insert(running.lease.task_id, running.clone());
    match old {
        Some(old) => old.supersede(),
        None => {
            inner.view.active_tasks.fetch_add(1, Relaxed);
        }
    }
    tracing::info!(
        task.id = running.lease.task_id,
        log_url = %running.lease.log_url,
        range.start = running.lease.start,
        range.end = running.lease.end,
        range.next = running.lease.next_index,
        "claimed task"
    );
    running
}

/// The index a heartbeat may report: nothing unacknowledged is skipped, and
/// never below where the lease began.
fn reported_next(r: &Running) -> u64 {
    r.progress
        .safe_next()
        .max(r.lease.next_index)
        .min(r.lease.end)
}

async fn run_task(inner: Arc<Inner>, running: Arc<Running>) {
    let lease = running.lease.clone();
    let slot = running.slot.clone();
    let outcome = {
        // Another task of this log fetching: wait for it, claiming on for
        // other logs meanwhile (see `claim_room`).
        let _busy = match slot.busy.try_lock() {
            Ok(g) => g,
            Err(_) => {
                running.waiting.store(true, Relaxed);
                let g = tokio::select! {
                    g = slot.busy.lock() => Some(g),
                    () = running.cancel.cancelled() => None,
                };
                running.waiting.store(false, Relaxed);
                match g {
                    Some(g) => g,
                    None => {
                        finish_task(&inner, &running).await;
                        return;
                    }
                }
            }
        };
        let mut ctx = slot.ctx.clone();
        ctx.batch = slot.batch.load(Relaxed);
        let (tx, mut rx) = mpsc::channel::<MatchedEntry>(1024);
        let collector = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(m) = rx.recv().await {
                all.push(m);
            }
            all
        });
        // The whole range is fetched, also when resuming, so that its subtree
        // hash (and every entry's audit path) can be computed here.
        let outcome = fetch_range(
            &ctx,
            lease.start,
            lease.start,
            lease.end,
            tx,
            running.progress.clone(),
            running.cancel.clone(),
        )
        .await;
        let matches = collector.await.unwrap_or_default();
        (outcome, matches)
    };
    let (outcome, matches) = outcome;
    running.errors.store(outcome.errors.len() as u64, Relaxed);
    if running.superseded.load(Relaxed) {
        // Lost or replaced: the manager resumes from our acknowledged
        // progress, so nothing is uploaded or completed here.
    } else if outcome.next_index == lease.end && outcome.failure.is_none() {
        match outcome.subtree_hash {
            Some(subtree) => {
                upload_and_complete(&inner, &running, &outcome, &matches, Hash32(subtree)).await
            }
            None => {
                // An entry that is not base64 cannot be hashed: the range
                // cannot be proven, so it goes back for another worker.
                give_back(
                    &inner,
                    &lease,
                    "the log served an entry that cannot be hashed",
                )
                .await;
            }
        }
    } else if let Some(failure) = &outcome.failure {
        give_back(&inner, &lease, failure).await;
    }
    finish_task(&inner, &running).await;
}

/// Gives a task back to the manager (it returns to the pool whole).
async fn give_back(inner: &Inner, lease: &TaskLease, why: &str) {
    let req = FailRequest {
        error: why.to_owned(),
        index: lease.start,
    };
    if let Err(e) = inner
        .client
        .fail(lease.task_id, &req, &CancellationToken::new())
        .await
    {
        tracing::warn!(task.id = lease.task_id, error = %e, "reporting the failure failed");
    }
    tracing::warn!(task.id = lease.task_id, error = %why, "task given back");
}

/// Uploads every match (and every malformed entry) of a whole range with
/// its audit path, then completes the task with the range's subtree hash.
/// Each batch waits for room in the spool (the manager's acknowledgements
/// make it), so a small spool slows the task down but never drops it. A
/// task that cannot go on (the spool cannot be written, the manager refused
/// a batch) is given back at once; one whose lease was lost meanwhile is
/// left alone.
async fn upload_and_complete(
    inner: &Inner,
    running: &Running,
    outcome: &RangeOutcome,
    matches: &[MatchedEntry],
    subtree: Hash32,
) {
    let lease = &running.lease;
    let width = lease.end - lease.start;
    let first_leaf = outcome.tree.range_hash(0, 1).ok().map(Hash32);
    let mine: Vec<&MatchedEntry> = matches
        .iter()
        .filter(|m| m.index >= lease.start && m.index < lease.end)
        .collect();
    let mut settled = Vec::new();
    for chunk in mine.chunks(inner.config.upload_batch.max(1)) {
        let entries: Vec<UploadEntry> = chunk
            .iter()
            .map(|m| UploadEntry {
                index: m.index,
                leaf_input: m.leaf_input.clone(),
                extra_data: m.extra_data.clone(),
                audit_path: outcome
                    .tree
                    .inclusion_proof(m.index - lease.start, width)
                    .map(|p| p.into_iter().map(Hash32).collect())
                    .unwrap_or_default(),
            })
            .collect();
        let batch = SpoolBatch {
            task_id: lease.task_id,
            request: UploadRequest {
                entries,
                subtree_hash: subtree,
                first_leaf_hash: first_leaf,
            },
        };
        match enqueue(inner, batch, &running.lost).await {
            Ok(Some(rx)) => settled.push(rx),
            Ok(None) => {
                tracing::info!(
                    task.id = lease.task_id,
                    "lease lost while waiting for room in the spool"
                );
                return;
            }
            Err(e) => {
                tracing::error!(task.id = lease.task_id, error = %e, "cannot spool uploads");
                give_back(inner, lease, &format!("cannot spool uploads: {e}")).await;
                return;
            }
        }
    }
    for rx in settled {
        if !rx.await.unwrap_or(false) {
            give_back(inner, lease, "uploads could not be delivered").await;
            return;
        }
    }
    let real = mine.iter().filter(|m| m.malformed.is_none()).count() as u64;
    let req = CompleteRequest {
        next_index: lease.end,
        entries: width,
        matches: real,
        errors: (outcome.errors.len() as u64).min(width),
        rate_limited: outcome.rate_limited,
        subtree_hash: subtree,
        first_leaf_hash: first_leaf,
    };
    match inner
        .client
        .complete(lease.task_id, &req, &CancellationToken::new())
        .await
    {
        Ok(ack) => {
            inner.view.tasks_done.fetch_add(1, Relaxed);
            tracing::info!(task.id = lease.task_id, state = ?ack.state, matches = real, "task complete");
        }
        Err(e) => tracing::warn!(task.id = lease.task_id, error = %e, "complete refused"),
    }
}

async fn finish_task(inner: &Inner, running: &Arc<Running>) {
    let mut tasks = inner.tasks.lock().await;
    // Only this run's entry: a newer lease of the same task may have replaced it.
    if tasks
        .get(&running.lease.task_id)
        .is_some_and(|r| Arc::ptr_eq(r, running))
    {
        tasks.remove(&running.lease.task_id);
        inner.view.active_tasks.fetch_sub(1, Relaxed);
        inner.task_ended.notify_waiters();
    }
}

/// Waits for room in the spool, writes the batch there and hands it to the
/// uploader; the receiver says whether the manager took it. `None` when
/// `lost` fired while waiting: the lease is gone and nothing was written.
async fn enqueue(
    inner: &Inner,
    batch: SpoolBatch,
    lost: &CancellationToken,
) -> Result<Option<oneshot::Receiver<bool>>> {
    let data = batch.encode()?;
    let bytes = data.len() as u64;
    let room = match inner.room.try_reserve(bytes) {
        Some(room) => room,
        None => {
            tracing::debug!(
                task.id = batch.task_id,
                bytes,
                spool.used_kib = inner.room.used_kib(),
                "spool full; waiting for the manager's acknowledgements"
            );
            tokio::select! {
                biased;
                () = lost.cancelled() => return Ok(None),
                r = inner.room.reserve(bytes) => r?,
            }
        }
    };
    let seq = inner.spool.lock().await.push(&data)?;
    inner.view.spool_batches.fetch_add(1, Relaxed);
    let (done, rx) = oneshot::channel();
    inner
        .uploads
        .send(Outgoing {
            seq,
            batch,
            done: Some(done),
            room,
        })
        .await
        .map_err(|_| anyhow::anyhow!("uploader stopped"))?;
    Ok(Some(rx))
}

async fn uploader(inner: Arc<Inner>, mut rx: mpsc::Receiver<Outgoing>, stop: CancellationToken) {
    loop {
        let out = tokio::select! {
            o = rx.recv() => o,
            () = stop.cancelled() => None,
        };
        let Some(out) = out else { return };
        let mut failures = 0u32;
        let accepted = loop {
            match inner
                .client
                .upload(out.batch.task_id, &out.batch.request, &stop)
                .await
            {
                Ok(resp) => {
                    inner.view.set_manager_state("connected");
                    if resp.rejected > 0 {
                        tracing::warn!(task.id = out.batch.task_id, rejected = resp.rejected, first = ?resp.rejections.first(), "manager rejected entries");
                    }
                    inner
                        .view
                        .uploaded
                        .fetch_add(resp.new + resp.duplicate, Relaxed);
                    break true;
                }
                Err(ClientError::Refused {
                    status,
                    code,
                    message,
                }) => {
                    // The lease is gone (or the batch is unacceptable): the
                    // manager resumes from our acknowledged progress, so
                    // another worker will fetch these entries again.
                    tracing::warn!(task.id = out.batch.task_id, status, %code, %message, "upload refused; dropping the batch");
                    break false;
                }
                Err(ClientError::Cancelled) => return,
                Err(e) => {
                    inner.view.set_manager_state(format!("unreachable: {e}"));
                    failures += 1;
                    let delay = crate::adapt::backoff(failures + 2).min(Duration::from_secs(15));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        };
        if let Err(e) = inner.spool.lock().await.remove(out.seq) {
            tracing::warn!(error = %e, "could not remove a settled spool batch");
        }
        inner.view.spool_batches.fetch_sub(1, Relaxed);
        // Settled: its room goes to the next batch waiting.
        drop(out.room);
        if accepted && let Some(r) = inner.tasks.lock().await.get(&out.batch.task_id) {
            r.progress
                .acknowledge(out.batch.request.entries.iter().map(|e| e.index));
        }
        if let Some(done) = out.done {
            let _ = done.send(accepted);
        }
    }
}

async fn heartbeat_loop(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(inner.config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        send_heartbeat(&inner, &cancel).await;
    }
}

async fn send_heartbeat(inner: &Inner, cancel: &CancellationToken) {
    let tasks: Vec<Arc<Running>> = inner.tasks.lock().await.values().cloned().collect();
    if tasks.is_empty() {
        return;
    }
    let req = HeartbeatRequest {
        tasks: tasks
            .iter()
            .map(|r| {
                let next = reported_next(r);
                TaskProgress {
                    task_id: r.lease.task_id,
                    next_index: next,
                    entries: next - r.lease.next_index,
                    // This task's matches: the log's counter spans all its tasks.
                    matches: r
                        .progress
                        .matches
                        .load(Relaxed)
                        .min(next - r.lease.next_index),
                    errors: r.errors.load(Relaxed),
                    rate_limited: crate::stats::LogStats::get(&r.stats.rate_limited)
                        .saturating_sub(r.rate_limited_at_start),
                }
            })
            .collect(),
    };
    match inner.client.heartbeat(&req, cancel).await {
        Ok(resp) => {
            inner.view.set_manager_state("connected");
            for t in resp.tasks {
                if t.status == TaskStatus::Lost
                    && let Some(r) = tasks.iter().find(|r| r.lease.task_id == t.task_id)
                {
                    tracing::warn!(task.id = t.task_id, "lease lost; stopping the task");
                    r.supersede();
                }
            }
            let slots: Vec<(ct_core::protocol::LogFetchers, Arc<LogSlot>)> = {
                let logs = inner.logs.lock().await;
                resp.fetchers
                    .into_iter()
                    .filter_map(|f| logs.get(&f.log_url).map(|s| (f, s.clone())))
                    .collect()
            };
            for (f, slot) in slots {
                let cap = apply_budget(inner, &slot, f.fetchers, f.budget);
                show_scaling(inner, &slot, cap, f.budget, Some(&f.reason));
            }
            show_cooldowns(inner, &resp.cooldowns).await;
        }
        Err(ClientError::Cancelled) => {}
        Err(e) => {
            inner.view.set_manager_state(format!("unreachable: {e}"));
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}

/// Asks the manager for the name's lifetime totals and the logs' outlook,
/// at once, then every [`WorkerConfig::standing_every`] and when a lease of
/// a log new to this session comes in, until `cancel`. A manager without
/// `GET /v1/workers/me` (404) is not asked again.
async fn standing_loop(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(inner.config.standing_every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = inner.new_log.notified() => {}
            () = cancel.cancelled() => return,
        }
        let result = tokio::select! {
            r = refresh_standing(&inner, &cancel) => r,
            () = cancel.cancelled() => return,
        };
        match result {
            Ok(()) => {}
            Err(ClientError::Cancelled) => return,
            Err(e) if e.status() == Some(404) => {
                tracing::info!(
                    "this manager does not report lifetime totals (no GET /v1/workers/me)"
                );
                return;
            }
            Err(e) => tracing::debug!(error = %e, "asking the manager for lifetime totals failed"),
        }
    }
}

async fn refresh_standing(inner: &Inner, cancel: &CancellationToken) -> Result<(), ClientError> {
    // The logs of held tasks first, then the others this session knows.
    let held: std::collections::BTreeSet<u64> = inner
        .tasks
        .lock()
        .await
        .values()
        .map(|r| r.lease.log_id)
        .collect();
    let urls: HashMap<u64, String> = inner.log_urls.lock().map(|m| m.clone()).unwrap_or_default();
    let mut ids: Vec<u64> = urls.keys().copied().collect();
    ids.sort_by_key(|id| (!held.contains(id), *id));
    let s = inner.client.standing(&ids, cancel).await?;
    let at = SystemTime::now();
    for o in &s.logs {
        if let Some(url) = urls.get(&o.log_id) {
            inner.view.log(url).set_outlook(crate::stats::Outlook {
                tree_size: o.tree_size,
                remaining: o.remaining,
                fleet_rate: o.entries_per_sec,
                at,
            });
        }
    }
    let page_url = inner.config.site_url.as_deref().map(|base| {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            s.page_path.trim_start_matches('/')
        )
    });
    inner.view.set_standing(crate::view::Standing {
        name: s.name,
        machines: s.machines,
        entries: s.entries,
        matches: s.matches,
        tasks_done: s.tasks_done,
        rank: s.rank,
        rank_yesterday: s.rank_yesterday,
        of: s.of,
        page_url,
        at,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_waiting_for_a_busy_log_leave_room_for_other_logs() {
        assert_eq!(claim_room(4, 0, 0), 4);
        assert_eq!(claim_room(4, 4, 0), 0);
        // Two tasks wait behind their logs' running ones: two more fetch.
        assert_eq!(claim_room(4, 4, 2), 2);
        assert_eq!(claim_room(4, 7, 4), 1);
        // Never more than twice the limit held.
        assert_eq!(claim_room(4, 8, 6), 0);
        assert_eq!(claim_room(1, 1, 1), 1);
        assert_eq!(claim_room(1, 2, 1), 0);
    }

    #[test]
    fn the_managers_claim_wait_is_kept_jittered_and_capped() {
        for _ in 0..100 {
            let w = claim_wait(Duration::from_millis(1500));
            assert!(w >= Duration::from_millis(1500) && w <= Duration::from_millis(1650));
        }
        assert!(claim_wait(Duration::ZERO) >= MIN_CLAIM_WAIT);
        assert!(claim_wait(Duration::from_secs(86_400)) <= MAX_CLAIM_WAIT.mul_f64(1.1));
    }

    fn config(name: Option<&str>, secret: Option<&str>) -> WorkerConfig {
        WorkerConfig {
            manager_url: "http://m".into(),
            name: name.map(str::to_owned),
            state_dir: PathBuf::from("unused"),
            max_fetchers: 1,
            max_tasks: 1,
            heartbeat: Duration::from_secs(1),
            upload_batch: 1,
            spool_limit_bytes: 1,
            drain_timeout: Duration::from_secs(1),
            matcher: Matcher::default(),
            registration_secret: None,
            secret: secret.map(Secret::new),
            local_address: None,
            proxy: None,
            log_ca: None,
            site_url: None,
            standing_every: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_stored_registration_is_reused_unless_a_secret_asks_for_another() {
        let stored = |name: &str, with_secret: bool| Registration {
            manager_url: "http://m".into(),
            worker_id: 1,
            name: name.into(),
            token: "t".into(),
            with_secret,
        };
        let secret = Some("0123456789abcdef");
        // Without a secret, as before: any registration with this manager.
        assert!(stored("ivy", false).fits(&config(Some("other"), None)));
        assert!(
            !Registration {
                manager_url: "http://elsewhere".into(),
                ..stored("ivy", false)
            }
            .fits(&config(None, None))
        );
        // With one: made with a secret, under that name.
        assert!(stored("Ivy", true).fits(&config(Some("ivy"), secret)));
        assert!(!stored("ivy", false).fits(&config(Some("ivy"), secret)));
        assert!(!stored("ivy", true).fits(&config(Some("jan"), secret)));
        // Files written before secrets read as registered without one.
        let old: Registration = serde_json::from_str(
            r#"{"manager_url":"http://m","worker_id":1,"name":"ivy","token":"t"}"#,
        )
        .unwrap();
        assert!(!old.with_secret);
    }

    #[test]
    fn a_secret_needs_a_name_and_a_bounded_length() {
        assert!(check_secret(&config(None, None)).is_ok());
        assert!(check_secret(&config(Some("ivy"), Some("0123456789abcdef"))).is_ok());
        let e = check_secret(&config(None, Some("0123456789abcdef"))).unwrap_err();
        assert!(e.to_string().contains("needs a name"), "{e}");
        let e = check_secret(&config(Some("ivy"), Some("short"))).unwrap_err();
        assert!(e.to_string().contains("16 to 256 bytes"), "{e}");
        assert!(check_secret(&config(Some("ivy"), Some(&"x".repeat(257)))).is_err());
    }
}
