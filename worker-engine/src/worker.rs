//! The managed worker: registers once (token kept in the state directory),
//! replays the spool, claims tasks, fetches each with [`fetch_range`],
//! uploads the matches with their audit paths, reports progress in
//! heartbeats, obeys the manager's scaling, and drains on shutdown.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use ct_core::matcher::Matcher;
use ct_core::protocol::{
    CompleteRequest, FailRequest, Hash32, HeartbeatRequest, RegisterRequest, TaskLease,
    TaskProgress, TaskStatus, UploadEntry, UploadRequest,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::adapt::Adaptive;
use crate::client::{ClientError, ManagerClient};
use crate::range::{LogCtx, MatchedEntry, Progress, RangeOutcome, fetch_range};
use crate::source::{LogKind, Source, http_client};
use crate::spool::{Spool, SpoolBatch};
use crate::view::{EngineView, ScalingEvent};

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
    pub spool_limit_bytes: u64,
    /// How long shutdown may take to flush uploads.
    pub drain_timeout: Duration,
    pub matcher: Matcher,
    /// The manager's registration secret, for closed deployments.
    pub registration_secret: Option<String>,
    /// Bind every connection (to logs and the manager) to this address.
    pub local_address: Option<std::net::IpAddr>,
}

/// What the state directory keeps between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registration {
    manager_url: String,
    worker_id: u64,
    name: String,
    token: String,
}

/// One spooled batch on its way, with whom to tell when it is settled.
struct Outgoing {
    seq: u64,
    batch: SpoolBatch,
    done: Option<oneshot::Sender<bool>>,
}

/// A task being worked on.
struct Running {
    lease: TaskLease,
    progress: Arc<Progress>,
    stats: Arc<crate::stats::LogStats>,
    errors: Arc<std::sync::atomic::AtomicU64>,
    rate_limited_at_start: u64,
    cancel: CancellationToken,
    /// The lease is lost or replaced by a newer one: never upload or complete.
    superseded: std::sync::atomic::AtomicBool,
}

impl Running {
    fn supersede(&self) {
        self.superseded.store(true, Relaxed);
        self.cancel.cancel();
    }
}

/// Per-log state shared by its tasks: one fetch at a time per log keeps the
/// log's concurrency within what the manager allows.
struct LogSlot {
    ctx: LogCtx,
    busy: Mutex<()>,
}

struct Inner {
    config: WorkerConfig,
    client: ManagerClient,
    http: reqwest::Client,
    view: Arc<EngineView>,
    tasks: Mutex<HashMap<u64, Arc<Running>>>,
    logs: Mutex<HashMap<String, Arc<LogSlot>>>,
    uploads: mpsc::Sender<Outgoing>,
    spool: Mutex<Spool>,
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
    let path = token_path(&config.state_dir);
    if let Ok(bytes) = std::fs::read(&path) {
        let reg: Registration = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a registration", path.display()))?;
        if reg.manager_url == config.manager_url {
            return Ok(reg);
        }
        tracing::warn!(path = %path.display(), "registration is for another manager; registering again");
    }
    view.set_manager_state("registering");
    let resp = client
        .register(
            &RegisterRequest {
                name: config.name.clone(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                registration_secret: config.registration_secret.clone(),
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
    let http = http_client(
        concat!("ct-worker/", env!("CARGO_PKG_VERSION")),
        config.local_address,
    )?;
    let anonymous = ManagerClient::new(&config.manager_url, http.clone());
    let reg = match load_or_register(&config, &anonymous, &view, &cancel).await {
        Ok(reg) => reg,
        // Stopped while the manager was still out of reach: a clean stop.
        Err(_) if cancel.is_cancelled() => return Ok(()),
        Err(e) => return Err(e),
    };
    view.set_worker(format!("{} (#{})", reg.name, reg.worker_id));
    let client = anonymous.with_token(reg.token.clone());
    let spool = Spool::open(&config.state_dir.join("spool"), config.spool_limit_bytes)?;
    let pending = spool.pending()?;
    let (tx, rx) = mpsc::channel(256);
    let inner = Arc::new(Inner {
        config,
        client,
        http,
        view: view.clone(),
        tasks: Mutex::new(HashMap::new()),
        logs: Mutex::new(HashMap::new()),
        uploads: tx,
        spool: Mutex::new(spool),
    });
    // Uploads stop only after the drain deadline, not at the first signal.
    let upload_stop = CancellationToken::new();
    let uploader = tokio::spawn(uploader(inner.clone(), rx, upload_stop.clone()));
    // The spool first: what a crash left behind goes out before new work.
    if !pending.is_empty() {
        tracing::info!(batches = pending.len(), "replaying the upload spool");
    }
    for (seq, path) in pending {
        let batch = inner.spool.lock().await.read(&path)?;
        view.spool_batches.fetch_add(1, Relaxed);
        let _ = inner
            .uploads
            .send(Outgoing {
                seq,
                batch,
                done: None,
            })
            .await;
    }
    let heartbeats = tokio::spawn(heartbeat_loop(inner.clone(), cancel.clone()));
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
    Ok(())
}

async fn claim_loop(
    inner: &Arc<Inner>,
    cancel: &CancellationToken,
    runners: &mut tokio::task::JoinSet<()>,
) {
    let mut idle_failures = 0u32;
    while !cancel.is_cancelled() {
        while runners.try_join_next().is_some() {}
        let active = inner.tasks.lock().await.len() as u32;
        if inner.view.paused.load(Relaxed) || active >= inner.config.max_tasks {
            sleep_or_cancel(Duration::from_millis(200), cancel).await;
            continue;
        }
        match inner
            .client
            .claim(inner.config.max_tasks - active, cancel)
            .await
        {
            Ok(resp) if !resp.tasks.is_empty() => {
                idle_failures = 0;
                inner.view.set_manager_state("connected");
                for lease in resp.tasks {
                    let running = register_task(inner, lease, cancel).await;
                    let inner = inner.clone();
                    runners.spawn(async move { run_task(inner, running).await });
                }
            }
            Ok(_) => {
                inner.view.set_manager_state("connected (no work)");
                idle_failures = (idle_failures + 1).min(5);
                sleep_or_cancel(Duration::from_secs(u64::from(idle_failures)), cancel).await;
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

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = cancel.cancelled() => {}
    }
}

async fn log_slot(inner: &Inner, lease: &TaskLease) -> Arc<LogSlot> {
    let key = lease.log_url.clone();
    let mut logs = inner.logs.lock().await;
    if let Some(slot) = logs.get(&key) {
        return slot.clone();
    }
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
    let stats = inner.view.log(&key);
    stats.fetchers_allowed.store(cap, Relaxed);
    stats.set_kind(match kind {
        LogKind::Rfc6962 => "rfc6962",
        LogKind::Static => "static",
    });
    let slot = Arc::new(LogSlot {
        ctx: LogCtx {
            source: Arc::new(Source::new(kind, &url, inner.http.clone())),
            adapt: Arc::new(std::sync::Mutex::new(Adaptive::new(cap))),
            stats,
            matcher: inner.config.matcher.clone(),
            batch: 1024,
            max_fetchers: inner.config.max_fetchers.max(1),
        },
        busy: Mutex::new(()),
    });
    logs.insert(key, slot.clone());
    slot
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
        superseded: std::sync::atomic::AtomicBool::new(false),
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
        log.url = %running.lease.log_url,
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
    let slot = log_slot(&inner, &lease).await;
    let outcome = {
        let _busy = tokio::select! {
            g = slot.busy.lock() => g,
            () = running.cancel.cancelled() => {
                finish_task(&inner, &running).await;
                return;
            }
        };
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
            &slot.ctx,
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
                upload_and_complete(&inner, &lease, &outcome, &matches, Hash32(subtree)).await
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
async fn upload_and_complete(
    inner: &Inner,
    lease: &TaskLease,
    outcome: &RangeOutcome,
    matches: &[MatchedEntry],
    subtree: Hash32,
) {
    let width = lease.end - lease.start;
    let first_leaf = outcome.tree.range_hash(0, 1).ok().map(Hash32);
    let mine: Vec<&MatchedEntry> = matches
        .iter()
        .filter(|m| m.index >= lease.start && m.index < lease.end)
        .collect();
    let mut settled = Vec::new();
    let mut ok = true;
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
        match enqueue(inner, batch).await {
            Ok(rx) => settled.push(rx),
            Err(e) => {
                tracing::error!(task.id = lease.task_id, error = %e, "cannot spool uploads");
                ok = false;
                break;
            }
        }
    }
    for rx in settled {
        ok &= rx.await.unwrap_or(false);
    }
    if !ok {
        give_back(inner, lease, "uploads could not be delivered").await;
        return;
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
    }
}

/// Spools a batch and hands it to the uploader; the receiver says whether
/// the manager took it.
async fn enqueue(inner: &Inner, batch: SpoolBatch) -> Result<oneshot::Receiver<bool>> {
    let seq = inner.spool.lock().await.push(&batch)?;
    inner.view.spool_batches.fetch_add(1, Relaxed);
    let (done, rx) = oneshot::channel();
    inner
        .uploads
        .send(Outgoing {
            seq,
            batch,
            done: Some(done),
        })
        .await
        .map_err(|_| anyhow::anyhow!("uploader stopped"))?;
    Ok(rx)
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
                    matches: crate::stats::LogStats::get(&r.stats.matches)
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
            let logs = inner.logs.lock().await;
            for f in resp.fetchers {
                if let Some(slot) = logs.get(&f.log_url) {
                    let cap = allowed(inner, f.fetchers);
                    let changed = slot
                        .ctx
                        .adapt
                        .lock()
                        .map(|mut a| {
                            let before = a.allowed();
                            a.set_allowed(cap);
                            before != cap
                        })
                        .unwrap_or(false);
                    slot.ctx.stats.fetchers_allowed.store(cap, Relaxed);
                    if changed {
                        tracing::info!(log.url = %f.log_url, fetchers = cap, reason = %f.reason, "scaling");
                        inner.view.push_scaling(ScalingEvent {
                            at: SystemTime::now(),
                            log: f.log_url.clone(),
                            fetchers: cap,
                            reason: f.reason.clone(),
                        });
                    }
                }
            }
        }
        Err(ClientError::Cancelled) => {}
        Err(e) => {
            inner.view.set_manager_state(format!("unreachable: {e}"));
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}
