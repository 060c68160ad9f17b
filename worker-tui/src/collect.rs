//! `ct-worker collect`: the engine without a manager. Fetches one range of
//! one log and writes its matching entries to a JSON-lines file, for
//! researchers on one machine and for benchmarks.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use worker_engine::adapt::Adaptive;
use worker_engine::range::{LogCtx, Progress, fetch_range};
use worker_engine::source::{HttpOptions, LogKind, Source, http_client_with};
use worker_engine::stats::LogStats;

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The log's URL (RFC 6962), or its monitoring prefix with --static.
    #[arg(long, env = "CT_LOG_URL")]
    log_url: String,
    /// The log is a static-ct-api (tiled) log.
    #[arg(long = "static")]
    is_static: bool,
    /// First index to fetch.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// One past the last index; the log's current tree size when absent.
    #[arg(long)]
    end: Option<u64>,
    /// Where to write the matching entries, one JSON object per line.
    #[arg(long)]
    out: PathBuf,
    /// Concurrent fetchers at most.
    #[arg(long, env = "CT_MAX_FETCHERS", default_value_t = 4)]
    max_fetchers: u32,
    /// Entries per get-entries request (lowered to the log's cap when it answers short).
    #[arg(long, default_value_t = 1024)]
    batch: u64,
    /// Send every request to the log through this proxy.
    #[arg(long, env = "CT_PROXY")]
    proxy: Option<String>,
    /// PEM file of extra CA certificates to trust for the log (a private log,
    /// ctlog-sim --tls).
    #[arg(long, env = "CT_LOG_CA")]
    log_ca: Option<PathBuf>,
    #[command(flatten)]
    matching: crate::matching::MatchArgs,
}

pub async fn run(args: CollectArgs) -> Result<()> {
    let matcher = args.matching.matcher()?;
    let kind = if args.is_static {
        LogKind::Static
    } else {
        LogKind::Rfc6962
    };
    let client = http_client_with(
        concat!("ct-worker/", env!("CARGO_PKG_VERSION")),
        &HttpOptions {
            local_address: None,
            proxy: args.proxy.clone().filter(|p| !p.trim().is_empty()),
            extra_ca: args.log_ca.clone(),
        },
    )?;
    let source = Arc::new(Source::new(kind, &args.log_url, client));
    let end = match args.end {
        Some(e) => e,
        None => source
            .tree_size()
            .await
            .with_context(|| format!("reading the tree size of {}", args.log_url))?,
    };
    if args.start > end {
        bail!("--start {} is past --end {end}", args.start);
    }
    let ctx = LogCtx {
        source,
        adapt: Arc::new(std::sync::Mutex::new(Adaptive::new(args.max_fetchers))),
        stats: Arc::new(LogStats::new(args.log_url.clone())),
        matcher,
        batch: args.batch,
        max_fetchers: args.max_fetchers,
    };
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let (tx, mut rx) = mpsc::channel(1024);
    let writer = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut out = std::io::BufWriter::new(file);
        let mut n = 0;
        while let Some(m) = rx.blocking_recv() {
            serde_json::to_writer(&mut out, &m)?;
            out.write_all(b"\n")?;
            n += 1;
        }
        out.flush()?;
        Ok(n)
    });
    let cancel = CancellationToken::new();
    let ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let started = Instant::now();
    let progress = Arc::new(Progress::new(args.start));
    let outcome = fetch_range(&ctx, args.start, args.start, end, tx, progress, cancel).await;
    let seconds = started.elapsed().as_secs_f64();
    ctrl_c.abort();
    let written = writer
        .await
        .context("writer task")?
        .with_context(|| format!("writing {}", args.out.display()))?;
    let summary = serde_json::json!({
        "log_url": args.log_url,
        "start": outcome.start,
        "end": outcome.end,
        "next_index": outcome.next_index,
        "entries": outcome.entries,
        "matches": written,
        "errors": outcome.errors.len(),
        "rate_limited": outcome.rate_limited,
        "requests": LogStats::get(&ctx.stats.requests),
        "seconds": seconds,
        "entries_per_second": if seconds > 0.0 { (outcome.entries as f64 / seconds).round() } else { 0.0 },
        "subtree_hash": outcome.subtree_hash.map(hex::encode),
        "failure": outcome.failure,
    });
    println!("{summary}");
    if let Some(f) = outcome.failure {
        bail!("stopped at index {}: {f}", outcome.next_index);
    }
    if outcome.next_index < end {
        bail!("interrupted at index {}", outcome.next_index);
    }
    Ok(())
}
