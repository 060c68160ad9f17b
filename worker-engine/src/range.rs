//! Fetching one range `[start, end)` of one log with as many concurrent
//! fetchers as the log's [`Adaptive`] window allows. Short answers are
//! continued from `start + returned`; failed chunks go back to the front of
//! the queue; results are assembled in index order, so that matches leave in
//! order and every leaf hash feeds the range's Merkle tree.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ct_core::entry::Examiner;
use ct_core::leaf::{EntryType, encode_extra_data};
use ct_core::matcher::Matcher;
use ct_core::merkle::{Hash, MerkleTree};
use ct_core::tiles::TILE_WIDTH;
use serde::Serialize;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::adapt::Adaptive;
use crate::decode::{self, Decoded, Extra, PendingMatch};
use crate::source::{FetchError, LogKind, Source};
use crate::stats::{LogState, LogStats};

/// Consecutive failures after which a range is given up.
const MAX_FAILURES: u32 = 12;

/// A matching entry, ready to upload or write.
#[derive(Debug, Clone, Serialize)]
pub struct MatchedEntry {
    pub index: u64,
    pub leaf_hash: String,
    pub leaf_input: String,
    pub extra_data: String,
    pub names: Vec<String>,
    pub fingerprint: Option<String>,
    pub timestamp: u64,
    pub entry_type: EntryType,
    /// An entry that does not decode (not a match): uploaded so that the
    /// manager records the log's malformed entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
}

/// What fetching a range produced.
#[derive(Debug)]
pub struct RangeOutcome {
    pub start: u64,
    pub end: u64,
    /// The first index not fetched (`end` when the range is whole).
    pub next_index: u64,
    pub entries: u64,
    pub matches: u64,
    pub errors: Vec<(u64, String)>,
    pub rate_limited: u64,
    /// Leaf hashes of `[fetched_from, next_index)`.
    pub tree: MerkleTree,
    /// The range's subtree hash, when every entry of `[start, end)` was
    /// fetched here and hashed.
    pub subtree_hash: Option<Hash>,
    /// Why the range stopped early, if it did.
    pub failure: Option<String>,
}

/// Where a running range shows its progress: the first index not yet fetched,
/// the matches found in the range so far (what heartbeats report for its
/// task; the log's counters in [`LogStats`] span all its tasks), and the
/// matches fetched but not yet acknowledged by the manager (the uploader
/// removes them). The manager may resume a lost lease only from
/// [`Progress::safe_next`], so that no unacknowledged match is skipped.
#[derive(Debug, Default)]
pub struct Progress {
    pub cursor: std::sync::atomic::AtomicU64,
    pub matches: std::sync::atomic::AtomicU64,
    pub unacked: std::sync::Mutex<std::collections::BTreeSet<u64>>,
}

impl Progress {
    pub fn new(next: u64) -> Self {
        Progress {
            cursor: std::sync::atomic::AtomicU64::new(next),
            matches: std::sync::atomic::AtomicU64::new(0),
            unacked: std::sync::Mutex::new(Default::default()),
        }
    }

    /// The highest index from which a resumed lease loses nothing.
    pub fn safe_next(&self) -> u64 {
        // Cursor first: it moves only after its matches are in the set, so
        // every match below the cursor read here is in the set read next.
        let cursor = self.cursor.load(std::sync::atomic::Ordering::Acquire);
        let first_unacked = self.unacked.lock().ok().and_then(|s| s.first().copied());
        first_unacked.map_or(cursor, |u| u.min(cursor))
    }

    pub fn acknowledge(&self, indices: impl IntoIterator<Item = u64>) {
        if let Ok(mut s) = self.unacked.lock() {
            for i in indices {
                s.remove(&i);
            }
        }
    }
}

/// Everything a range fetch needs from its log.
#[derive(Clone)]
pub struct LogCtx {
    pub source: Arc<Source>,
    pub adapt: Arc<std::sync::Mutex<Adaptive>>,
    pub stats: Arc<LogStats>,
    pub matcher: Matcher,
    /// Entries per get-entries request (learned down when the log answers short).
    pub batch: u64,
    /// Upper bound on fetcher tasks (the manager's cap).
    pub max_fetchers: u32,
}

struct Shared {
    queue: VecDeque<(u64, u64)>,
    done: BTreeMap<u64, Decoded>,
    cursor: u64,
    /// Entries asked per request: the configured batch, lowered to the
    /// largest answer seen once the log answers short.
    batch: u64,
    configured_batch: u64,
    largest_answer: u64,
    tree: MerkleTree,
    unhashable: bool,
    matches: u64,
    errors: Vec<(u64, String)>,
    failure: Option<String>,
}

/// Fetches `[next, end)` of a range that starts at `start`.
pub async fn fetch_range(
    ctx: &LogCtx,
    start: u64,
    next: u64,
    end: u64,
    sink: mpsc::Sender<MatchedEntry>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> RangeOutcome {
    let next = next.clamp(start, end);
    let rate_before = LogStats::get(&ctx.stats.rate_limited);
    let shared = Arc::new(Mutex::new(Shared {
        queue: initial_chunks(ctx.source.kind, next, end, ctx.batch.max(1)),
        done: BTreeMap::new(),
        cursor: next,
        batch: ctx.batch.max(1),
        configured_batch: ctx.batch.max(1),
        largest_answer: 0,
        tree: MerkleTree::new(),
        unhashable: false,
        matches: 0,
        errors: Vec::new(),
        failure: None,
    }));
    let wake = Arc::new(Notify::new());
    let stop = cancel.child_token();
    ctx.stats.set_range(Some((start, end, next)));
    ctx.stats.set_state(LogState::Fetching);
    ctx.stats.set_pace(ctx.source.pacer().rate());
    let crew = Crew {
        ctx: ctx.clone(),
        shared: shared.clone(),
        wake,
        stop,
        sink,
        progress,
        end,
    };
    let mut set = tokio::task::JoinSet::new();
    for id in 0..ctx.max_fetchers.max(1) {
        let crew = crew.clone();
        set.spawn(async move { fetcher(id, crew).await });
    }
    drop(crew);
    while set.join_next().await.is_some() {}
    let mut s = shared.lock().await;
    let done_whole = s.cursor == end;
    let subtree_hash = (done_whole && next == start && !s.unhashable)
        .then(|| s.tree.root(s.tree.size()).ok())
        .flatten();
    ctx.stats.set_state(if s.failure.is_some() {
        LogState::Error
    } else if done_whole {
        LogState::Done
    } else {
        LogState::Idle
    });
    RangeOutcome {
        start,
        end,
        next_index: s.cursor,
        entries: s.cursor - next,
        matches: s.matches,
        errors: std::mem::take(&mut s.errors),
        rate_limited: LogStats::get(&ctx.stats.rate_limited) - rate_before,
        tree: std::mem::take(&mut s.tree),
        subtree_hash,
        failure: s.failure.take(),
    }
}

fn initial_chunks(kind: LogKind, from: u64, end: u64, batch: u64) -> VecDeque<(u64, u64)> {
    let mut q = VecDeque::new();
    let mut s = from;
    while s < end {
        let e = match kind {
            LogKind::Rfc6962 => (s + batch).min(end),
            LogKind::Static => ((s / TILE_WIDTH + 1) * TILE_WIDTH).min(end),
        };
        q.push_back((s, e));
        s = e;
    }
    q
}

/// What every fetcher of one range shares.
#[derive(Clone)]
struct Crew {
    ctx: LogCtx,
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    sink: mpsc::Sender<MatchedEntry>,
    progress: Arc<Progress>,
    end: u64,
}

async fn fetcher(id: u32, crew: Crew) {
    let Crew {
        ctx,
        shared,
        wake,
        stop,
        sink,
        progress,
        end,
    } = crew;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let (limit, resume_at) = match ctx.adapt.lock() {
            Ok(a) => (a.limit(), a.resume_at()),
            Err(_) => return,
        };
        ctx.stats.fetchers_allowed.store(
            ctx.adapt.lock().map(|a| a.allowed()).unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some(t) = resume_at {
            ctx.stats.set_state(LogState::BackingOff);
            tokio::select! {
                () = tokio::time::sleep_until(t) => {}
                () = stop.cancelled() => return,
            }
            ctx.stats.set_state(LogState::Fetching);
            continue;
        }
        if id >= limit {
            idle(&wake, &stop).await;
            continue;
        }
        let chunk = {
            let mut s = shared.lock().await;
            if s.cursor >= end || s.failure.is_some() {
                wake.notify_waiters();
                return;
            }
            let batch = s.batch;
            s.queue.pop_front().map(|(a, b)| {
                // RFC 6962 chunks never ask more than the learned batch.
                if ctx.source.kind == LogKind::Rfc6962 && b - a > batch {
                    s.queue.push_front((a + batch, b));
                    (a, a + batch)
                } else {
                    (a, b)
                }
            })
        };
        let Some((a, b)) = chunk else {
            idle(&wake, &stop).await;
            continue;
        };
        ctx.stats
            .fetchers_active
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = tokio::select! {
            r = fetch_chunk(&ctx, a, b) => Some(r),
            () = stop.cancelled() => None,
        };
        ctx.stats
            .fetchers_active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let Some(result) = result else {
            return;
        };
        LogStats::add(&ctx.stats.requests, 1);
        match result {
            Ok(decoded) => {
                if let Ok(mut a) = ctx.adapt.lock() {
                    a.on_success();
                    ctx.source.pacer().set_share(a.share());
                }
                ctx.stats.set_pace(ctx.source.pacer().rate());
                let got = decoded.hashes.len() as u64;
                let mut s = shared.lock().await;
                let first = decoded.start;
                s.largest_answer = s.largest_answer.max(got);
                if first + got < b {
                    // A log's cap is at least the largest answer it gave; a
                    // shorter answer may be chance, so never learn below that.
                    if ctx.source.kind == LogKind::Rfc6962 {
                        s.batch = s.configured_batch.min(s.largest_answer.max(1));
                    }
                    s.queue.push_front((first + got, b));
                }
                s.done.insert(first, decoded);
                advance(&ctx, &mut s, &sink, &progress).await;
            }
            Err(FetchError::RateLimited(retry)) => {
                LogStats::add(&ctx.stats.rate_limited, 1);
                let delay = slow_down(&ctx, |a| a.on_rate_limited(retry));
                tracing::debug!(log_name = %ctx.stats.name, delay_ms = delay.as_millis() as u64, retry_after = retry.is_some(), "rate limited");
                shared.lock().await.queue.push_front((a, b));
            }
            Err(e) => {
                let failures = match &e {
                    FetchError::Server(_, retry) => {
                        LogStats::add(&ctx.stats.server_errors, 1);
                        slow_down(&ctx, |a| a.on_server_error(*retry));
                        ctx.adapt.lock().map_or(MAX_FAILURES, |a| a.failures())
                    }
                    _ => {
                        LogStats::add(&ctx.stats.server_errors, 1);
                        ctx.adapt.lock().ok().map_or(MAX_FAILURES, |mut ad| {
                            ad.on_error();
                            ad.failures()
                        })
                    }
                };
                tracing::debug!(log_name = %ctx.stats.name, range.start = a, error = %e, failures, "fetch failed, will retry");
                let mut s = shared.lock().await;
                s.queue.push_front((a, b));
                if failures >= MAX_FAILURES {
                    s.failure = Some(format!("{failures} failures in a row, last: {e}"));
                }
            }
        }
        // The range is whole (or given up): every fetcher, idle ones too, stops.
        {
            let s = shared.lock().await;
            if s.cursor >= end || s.failure.is_some() {
                stop.cancel();
            }
        }
        wake.notify_waiters();
    }
}

/// A 429 or a 5xx: the log's AIMD state decreases (`f`), its pacer follows
/// the lower share, and nothing goes to the log (issuer lookups neither)
/// until the delay has passed. Only this log waits.
fn slow_down(ctx: &LogCtx, f: impl FnOnce(&mut Adaptive) -> Duration) -> Duration {
    let Ok(mut a) = ctx.adapt.lock() else {
        return Duration::ZERO;
    };
    let delay = f(&mut a);
    ctx.source.pacer().set_share(a.share());
    ctx.source.pacer().hold(delay);
    ctx.stats.set_pace(ctx.source.pacer().rate());
    delay
}

async fn idle(wake: &Notify, stop: &CancellationToken) {
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
        () = stop.cancelled() => {}
    }
}

/// Fetches and decodes `[a, b)`, decoding on the blocking pool.
async fn fetch_chunk(ctx: &LogCtx, a: u64, b: u64) -> Result<Decoded, FetchError> {
    let body = match ctx.source.kind {
        LogKind::Rfc6962 => ctx.source.get_entries(a, b).await?,
        LogKind::Static => {
            let n = a / TILE_WIDTH;
            let width = (b - n * TILE_WIDTH).min(TILE_WIDTH);
            ctx.source.data_tile(n, width).await?
        }
    };
    let kind = ctx.source.kind;
    let mut ex = Examiner::new(ctx.matcher.clone());
    let decoded = tokio::task::spawn_blocking(move || match kind {
        LogKind::Rfc6962 => decode::decode_entries(&mut ex, a, &body, b - a),
        LogKind::Static => decode::decode_tile(&mut ex, a / TILE_WIDTH, &body, a, b),
    })
    .await
    .map_err(|e| FetchError::BadAnswer(format!("decoder task: {e}")))?;
    let mut decoded = decoded.map_err(FetchError::BadAnswer)?;
    if decoded.start != a {
        return Err(FetchError::BadAnswer(format!(
            "answer starts at {}, asked {a}",
            decoded.start
        )));
    }
    // Static matches need their issuers for extra_data.
    for m in &mut decoded.matches {
        if let Extra::Tile {
            pre_certificate,
            chain,
        } = &m.extra
        {
            let mut certs = Vec::with_capacity(chain.len());
            for fp in chain {
                certs.push(ctx.source.issuer(fp).await?);
            }
            let refs: Vec<&[u8]> = certs.iter().map(|c| c.as_slice()).collect();
            let extra = encode_extra_data(pre_certificate.as_deref(), &refs);
            m.extra = Extra::Base64(ct_core::b64::encode(&extra));
        }
    }
    Ok(decoded)
}

/// Moves the cursor over every decoded batch that continues it.
async fn advance(
    ctx: &LogCtx,
    s: &mut Shared,
    sink: &mpsc::Sender<MatchedEntry>,
    progress: &Progress,
) {
    while let Some(decoded) = s.done.remove(&s.cursor) {
        let n = decoded.hashes.len() as u64;
        for h in decoded.hashes {
            match h {
                Some(h) => s.tree.push(h),
                None => {
                    s.unhashable = true;
                    s.tree.push([0; 32]);
                }
            }
        }
        LogStats::add(&ctx.stats.errors, decoded.errors.len() as u64);
        for (index, error) in &decoded.errors {
            tracing::warn!(log_name = %ctx.stats.name, entry.index = index, %error, "malformed entry recorded");
        }
        s.errors.extend(decoded.errors);
        if let Ok(mut unacked) = progress.unacked.lock() {
            unacked.extend(decoded.matches.iter().map(|m| m.index));
        }
        for m in decoded.matches {
            if m.malformed.is_none() {
                s.matches += 1;
                progress
                    .matches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                LogStats::add(&ctx.stats.matches, 1);
                ctx.stats.push_names(&m.names);
            }
            if sink.send(finish(m)).await.is_err() {
                s.failure
                    .get_or_insert_with(|| "match receiver closed".to_owned());
            }
        }
        s.cursor += n;
        progress
            .cursor
            .store(s.cursor, std::sync::atomic::Ordering::Release);
        LogStats::add(&ctx.stats.entries, n);
        if let Some((start, end, _)) = ctx.stats.range() {
            ctx.stats.set_range(Some((start, end, s.cursor)));
        }
    }
}

fn finish(m: PendingMatch) -> MatchedEntry {
    MatchedEntry {
        index: m.index,
        leaf_hash: hex::encode(m.leaf_hash),
        leaf_input: m.leaf_input,
        extra_data: match m.extra {
            Extra::Base64(s) => s,
            Extra::Tile { .. } => String::new(),
        },
        names: m.names,
        fingerprint: m.fingerprint.map(hex::encode),
        timestamp: m.timestamp,
        entry_type: m.entry_type,
        malformed: m.malformed,
    }
}
