//! `ctlog-sim`: serves simulated CT logs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ctlog_sim::{FaultConfig, LogConfig, Profile, SimConfig, Simulator, Source, Views};

/// A Certificate Transparency log server for tests, demos and benchmarks:
/// RFC 6962 and static-ct-api, real signatures and Merkle trees, and the
/// faults real logs show.
/// The crate version and the git revision it was built from.
const VERSION: &str = git_version::git_version!(
    prefix = concat!(env!("CARGO_PKG_VERSION"), " ("),
    suffix = ")",
    args = ["--always", "--dirty=-modified"],
    fallback = concat!(env!("CARGO_PKG_VERSION"), " (unknown revision)")
);

#[derive(Debug, Parser)]
#[command(version = VERSION, about)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CTLOG_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Number of logs, served under /log0/, /log1/, ...
    #[arg(long, env = "CTLOG_SIM_LOGS", default_value_t = 1)]
    logs: usize,
    /// Entries per generated log.
    #[arg(long, env = "CTLOG_SIM_ENTRIES", default_value_t = 10_000)]
    entries: u64,
    /// Seed of the generated entries (log N uses a seed derived from it).
    #[arg(long, env = "CTLOG_SIM_SEED", default_value_t = 1)]
    seed: u64,
    /// Share of generated entries that name .jp domains.
    #[arg(long, env = "CTLOG_SIM_MATCH_SHARE", default_value_t = 0.01)]
    match_share: f64,
    /// Serve static-ct-api only (checkpoint, tiles, issuers); listed under tiled_logs.
    #[arg(long = "static", env = "CTLOG_SIM_STATIC")]
    static_api: bool,
    /// Serve both RFC 6962 and static-ct-api views of each log (listed as
    /// tiled with --static, else as RFC 6962).
    #[arg(long, env = "CTLOG_SIM_BOTH")]
    both: bool,
    /// Replay entries from a directory of get-entries JSON files instead of generating.
    #[arg(long, env = "CTLOG_SIM_REPLAY")]
    replay: Option<PathBuf>,
    /// Most entries one get-entries answer holds.
    #[arg(long, env = "CTLOG_SIM_BATCH_CAP", default_value_t = 256)]
    batch_cap: u64,
    /// Share of get-entries answers that are shorter than the cap allows.
    #[arg(long, env = "CTLOG_SIM_SHORT_RATE", default_value_t = 0.0)]
    short_rate: f64,
    /// Requests per second allowed per client address (token bucket), e.g. 50 or 50/s.
    #[arg(long, env = "CTLOG_SIM_RATE_LIMIT")]
    rate_limit: Option<String>,
    /// Token bucket size for --rate-limit.
    #[arg(long, env = "CTLOG_SIM_BURST", default_value_t = 10)]
    burst: u32,
    /// Share of answers replaced by 500 or 503.
    #[arg(long, env = "CTLOG_SIM_ERROR_RATE", default_value_t = 0.0)]
    error_rate: f64,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, env = "CTLOG_SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Share of answers cut mid-body (connection aborted).
    #[arg(long, env = "CTLOG_SIM_CUT_RATE", default_value_t = 0.0)]
    cut_rate: f64,
    /// Indices served malformed by get-entries, comma-separated (bad base64,
    /// truncated leaf, garbage DER, in turn); left out of the truth file.
    #[arg(long, env = "CTLOG_SIM_MALFORMED", value_delimiter = ',')]
    malformed: Vec<u64>,
    /// Indices whose entry in the log itself (its tree and every view) is an
    /// X.509 entry with a certificate that is not DER, comma-separated; left
    /// out of the truth file.
    #[arg(long, env = "CTLOG_SIM_GARBAGE", value_delimiter = ',')]
    garbage: Vec<u64>,
    /// Entries appended to each log per second (0: no growth).
    #[arg(long, env = "CTLOG_SIM_GROW", default_value_t = 0)]
    grow: u64,
    /// Serve the logs a fleet profile (JSON) describes, grouped by operator,
    /// each with its own limits, instead of the single-log flags above.
    #[arg(
        long,
        env = "CTLOG_SIM_PROFILE",
        conflicts_with_all = [
            "logs", "entries", "seed", "match_share", "static_api", "both", "replay",
            "batch_cap", "short_rate", "rate_limit", "burst", "error_rate", "latency_ms",
            "cut_rate", "malformed", "garbage", "grow",
        ]
    )]
    profile: Option<PathBuf>,
    /// Never gzip-encode get-entries answers (by default they are, for
    /// clients that send Accept-Encoding: gzip).
    #[arg(long, env = "CTLOG_SIM_NO_GZIP")]
    no_gzip: bool,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with a certificate for localhost,
    /// 127.0.0.1 and ::1 made at start by a CA of its own.
    #[arg(long, env = "CTLOG_SIM_TLS")]
    tls: bool,
    /// With --tls, write the CA certificate (PEM) clients should trust to this file.
    #[arg(long, env = "CTLOG_SIM_TLS_CA_OUT", requires = "tls")]
    tls_ca_out: Option<PathBuf>,
    /// Write the served logs as a v3 log list to this file (one entry per
    /// operator, with certspotter's per-log download settings).
    #[arg(long, env = "CTLOG_SIM_LOG_LIST_OUT")]
    log_list_out: Option<PathBuf>,
    /// Write the matching indices of every log to this file (at start and at stop).
    #[arg(long, env = "CTLOG_SIM_TRUTH_OUT")]
    truth_out: Option<PathBuf>,
}

fn parse_rate(s: &str) -> Result<f64> {
    let n = s.trim().trim_end_matches("/s");
    let r: f64 = n
        .parse()
        .with_context(|| format!("--rate-limit {s:?} is not a number per second"))?;
    if !(r > 0.0 && r.is_finite()) {
        bail!("--rate-limit must be positive");
    }
    Ok(r)
}

impl Cli {
    fn config(&self) -> Result<SimConfig> {
        let mut config = match &self.profile {
            // The library's error names the file and the entry; print it once.
            Some(path) => Profile::load(path)
                .and_then(|p| p.sim_config(self.listen))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            None => self.single_config()?,
        };
        config.tls = self.tls;
        if self.no_gzip {
            for log in &mut config.logs {
                log.gzip = false;
            }
        }
        Ok(config)
    }

    /// The logs of the single-log flags (all alike).
    fn single_config(&self) -> Result<SimConfig> {
        let views = match (self.static_api, self.both) {
            (false, false) => Views::RFC6962,
            (true, false) => Views::STATIC,
            (list_as_tiled, true) => Views {
                rfc6962: true,
                tiles: true,
                list_as_tiled,
            },
        };
        let faults = FaultConfig {
            rate_limit: self.rate_limit.as_deref().map(parse_rate).transpose()?,
            burst: self.burst,
            error_rate: self.error_rate,
            latency_ms: self.latency_ms,
            cut_rate: self.cut_rate,
            short_rate: self.short_rate,
        };
        let source = match &self.replay {
            Some(dir) => Source::Replay(dir.clone()),
            None => Source::Generated {
                entries: self.entries,
                seed: self.seed,
                match_share: self.match_share,
            },
        };
        if self.logs == 0 {
            bail!("--logs must be at least 1");
        }
        let logs = (0..self.logs)
            .map(|_| LogConfig {
                source: source.clone(),
                views,
                batch_cap: self.batch_cap,
                grow_per_sec: if self.replay.is_some() { 0 } else { self.grow },
                malformed: self.malformed.clone(),
                garbage: self.garbage.clone(),
                faults: faults.clone(),
                operator: None,
                description: None,
                gzip: true,
            })
            .collect();
        let mut config = SimConfig::new(logs);
        config.listen = self.listen;
        Ok(config)
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("encoding JSON")?;
    write_file(path, &text)
}

async fn stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("listening for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("listening for SIGINT")?;
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    let config = cli.config()?;
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    for log in sim.logs() {
        tracing::info!(log.url = %log.url, log.operator = %log.operator, log.entries = log.entries, log.matches = log.truth.matches.len(), "serving log");
    }
    if let (Some(path), Some(pem)) = (&cli.tls_ca_out, sim.ca_pem()) {
        write_file(path, pem)?;
    }
    if let Some(path) = &cli.log_list_out {
        write_json(path, &sim.log_list_json())?;
    }
    if let Some(path) = &cli.truth_out {
        write_json(path, &sim.truth())?;
    }
    println!("ctlog-sim listening on {}", sim.base_url());
    stop_signal().await?;
    tracing::info!("stopping");
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    for log in (0..).map_while(|n| sim.log(n)) {
        let c = &log.faults.counters;
        tracing::info!(
            log.url = %log.url,
            rate_limited = get(&c.rate_limited),
            operator_limited = get(&c.operator_limited),
            errors = get(&c.errors),
            cut = get(&c.cut),
            short = get(&c.short),
            gzipped = get(&c.gzipped),
            bytes_sent = get(&c.bytes_sent),
            bytes_identity = get(&c.bytes_identity),
            "log counters"
        );
    }
    if let Some(path) = &cli.truth_out {
        write_json(path, &sim.truth())?;
    }
    sim.shutdown().await.context("stopping the server")?;
    Ok(())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("ctlog-sim: {e:#}");
        std::process::exit(1);
    }
}
