//! `ct-worker`: the ctjp volunteer worker. Without a subcommand it works for a
//! manager (`--no-tui` runs headless); `collect` fetches one range of a log
//! without a manager; `inspect` decodes CT answers on disk.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ct_core::protocol::Secret;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod collect;
mod headless;
mod inspect;
mod matching;
mod metrics;
mod tui;

/// The ctjp worker: collects .jp certificates from Certificate Transparency
/// logs for a ctjp manager.
#[derive(Debug, Parser)]
#[command(name = "ct-worker", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// The crate version and the git revision it was built from.
const VERSION: &str = git_version::git_version!(
    prefix = concat!(env!("CARGO_PKG_VERSION"), " ("),
    suffix = ")",
    args = ["--always", "--dirty=-modified"],
    fallback = concat!(env!("CARGO_PKG_VERSION"), " (unknown revision)")
);

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run headless: logs and summaries on stdout, no interactive screen.
    #[arg(long, env = "CT_NO_TUI", value_parser = clap::builder::BoolishValueParser::new())]
    no_tui: bool,
    /// The manager's base URL, e.g. https://ctjp.example.org.
    #[arg(long = "manager", env = "CT_MANAGER_URL")]
    manager: Option<String>,
    /// Your public name on the dashboards (the manager picks one when absent).
    #[arg(long, env = "WORKER_NAME")]
    name: Option<String>,
    /// Your own secret for --name (16 to 256 bytes, e.g. `openssl rand -hex 16`):
    /// the first registration with it claims the name, and every machine or
    /// restart (even without its state directory) that gives the same name and
    /// secret works under that name.
    #[arg(long, env = "WORKER_SECRET", hide_env_values = true, value_parser = secret_arg)]
    secret: Option<Secret>,
    /// Where the registration token and the upload spool live.
    #[arg(long, env = "CT_STATE_DIR", default_value = ".ct-worker")]
    state_dir: PathBuf,
    /// Fetchers per log at most, whatever the manager allows.
    #[arg(long, env = "CT_MAX_FETCHERS", default_value_t = 8)]
    max_fetchers: u32,
    /// Tasks held at once.
    #[arg(long, env = "CT_MAX_TASKS", default_value_t = 4)]
    max_tasks: u32,
    /// Seconds between progress heartbeats to the manager.
    #[arg(long, env = "CT_HEARTBEAT_SECS", default_value_t = 5)]
    heartbeat_secs: u64,
    /// Matching entries per upload request.
    #[arg(long, env = "CT_UPLOAD_BATCH", default_value_t = 200)]
    upload_batch: usize,
    /// Largest upload spool on disk, in MiB. When it is full, uploads wait for
    /// the manager and no task is claimed; a batch larger than the whole
    /// spool goes alone.
    #[arg(long, env = "CT_SPOOL_MIB", default_value_t = 512)]
    spool_mib: u64,
    /// Seconds shutdown may spend flushing uploads.
    #[arg(long, env = "CT_DRAIN_SECS", default_value_t = 30)]
    drain_secs: u64,
    /// The manager's registration secret (only closed deployments have one).
    #[arg(long, env = "CT_REGISTRATION_SECRET", hide_env_values = true)]
    registration_secret: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, env = "CT_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Bind every outgoing connection (to logs and the manager) to this local
    /// address: multi-homed hosts, or several workers on 127.0.0.x.
    #[arg(long, env = "CT_LOCAL_ADDRESS")]
    local_address: Option<std::net::IpAddr>,
    /// Send every request to a CT log through this proxy (an http:// or
    /// https:// URL). Without it, HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
    /// NO_PROXY apply to logs; they always apply to the manager.
    #[arg(long, env = "CT_PROXY", value_name = "URL")]
    proxy: Option<String>,
    /// Also trust the CA certificates of this PEM file on connections to CT
    /// logs (a TLS-inspecting proxy, a private log); the built-in web roots
    /// are trusted either way.
    #[arg(long, env = "CT_LOG_CA", value_name = "FILE")]
    log_ca: Option<PathBuf>,
    /// The dashboards' base URL (e.g. https://ctjp.example.org/): the screen
    /// and the headless totals link to this machine's page there.
    #[arg(long, env = "CT_SITE_URL", value_name = "URL")]
    site_url: Option<String>,
    /// Seconds between asking the manager for your name's lifetime totals,
    /// rank and the logs' ETAs; headless mode logs them as often.
    #[arg(long, env = "CT_TOTALS_SECS", default_value_t = 60)]
    totals_secs: u64,
    /// Directory for daily-rotated log files (none when absent).
    #[arg(long, env = "CT_LOG_DIR")]
    log_dir: Option<PathBuf>,
    /// Log format on stdout.
    #[arg(long, env = "CT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(flatten)]
    matching: crate::matching::MatchArgs,
}

/// `--secret` as a [`Secret`], so that no `Debug` of the arguments shows it.
fn secret_arg(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode get-entries JSON answers (or static-ct-api data tiles) and print
    /// one JSON object per entry.
    Inspect(inspect::InspectArgs),
    /// Fetch one range of one log without a manager and write the matching
    /// entries to a JSON-lines file.
    Collect(collect::CollectArgs),
}

fn async_main(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Collect(args)) => {
            init_stderr_logging();
            async_main(collect::run(args))
        }
        None => run_worker(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ct-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("CT_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

fn init_stderr_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CT_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// `--site-url` when given: an http(s) URL.
fn site_url(arg: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(url) = arg.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!("--site-url (CT_SITE_URL) must be an http:// or https:// URL, not {url:?}");
    }
    Ok(Some(url))
}

fn run_worker(args: RunArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let Some(manager) = args.manager.clone() else {
        anyhow::bail!("--manager URL (or CT_MANAGER_URL) is required; see --help");
    };
    let site_url = site_url(args.site_url.clone())?;
    let interactive =
        !args.no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !args.no_tui && !interactive {
        eprintln!("ct-worker: not on a terminal; running headless (--no-tui)");
    }
    // Logs: daily files when asked (always in TUI mode, where nothing may
    // write to the terminal), and stdout or the screen's log pane. The guard
    // flushes the file writer when main returns, so it is held by name.
    let log_dir = match &args.log_dir {
        Some(dir) => Some(dir.clone()),
        None if interactive => Some(args.state_dir.join("logs")),
        None => None,
    };
    let (file_layer, _file_guard) = match &log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let (writer, guard) = tracing_appender::non_blocking(tracing_appender::rolling::daily(
                dir,
                "ct-worker.log",
            ));
            (
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(writer),
                ),
                Some(guard),
            )
        }
        None => (None, None),
    };
    let (human, json) = match (interactive, args.log_format) {
        (true, _) => (None, None),
        (false, LogFormat::Human) => (Some(tracing_subscriber::fmt::layer()), None),
        (false, LogFormat::Json) => (None, Some(tracing_subscriber::fmt::layer().json())),
    };
    let ui_logs = tui::logs::LogBuffer::default();
    let ui_layer = interactive.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_target(false)
            .with_timer(tui::logs::Clock)
            .with_writer(ui_logs.clone())
    });
    tracing_subscriber::registry()
        .with(filter())
        .with(human)
        .with(json)
        .with(file_layer)
        .with(ui_layer)
        .try_init()
        .context("setting up logging")?;
    let config = worker_engine::worker::WorkerConfig {
        manager_url: manager,
        name: args.name,
        state_dir: args.state_dir,
        max_fetchers: args.max_fetchers.max(1),
        max_tasks: args.max_tasks.max(1),
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        upload_batch: args.upload_batch.max(1),
        spool_limit_bytes: args.spool_mib.saturating_mul(1 << 20),
        drain_timeout: Duration::from_secs(args.drain_secs),
        matcher: args.matching.matcher()?,
        registration_secret: args.registration_secret.filter(|s| !s.is_empty()),
        secret: args.secret.filter(|s| !s.expose().is_empty()),
        local_address: args.local_address,
        proxy: args.proxy.filter(|p| !p.trim().is_empty()),
        log_ca: args.log_ca.filter(|p| !p.as_os_str().is_empty()),
        site_url,
        standing_every: Duration::from_secs(args.totals_secs.max(1)),
    };
    let metrics_listen = args.metrics_listen;
    async_main(async move {
        let view = worker_engine::view::EngineView::new();
        let cancel = CancellationToken::new();
        let signals = tokio::spawn(stop_on_signal(cancel.clone(), interactive));
        let metrics_server = metrics_listen
            .map(|addr| tokio::spawn(metrics::serve(addr, Arc::clone(&view), cancel.clone())));
        let result = if interactive {
            let opts = tui::Options {
                max_fetchers: config.max_fetchers,
                drain_timeout: config.drain_timeout,
                log_path: log_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            };
            let engine = tokio::spawn(worker_engine::worker::run(
                config,
                Arc::clone(&view),
                cancel.clone(),
            ));
            tui::run(Arc::clone(&view), cancel.clone(), engine, ui_logs, opts).await
        } else {
            let summary = tokio::spawn(headless::summaries(
                view.clone(),
                Duration::from_secs(10),
                config.standing_every,
                cancel.clone(),
            ));
            let result =
                worker_engine::worker::run(config, Arc::clone(&view), cancel.clone()).await;
            cancel.cancel();
            let _ = summary.await;
            result
        };
        signals.abort();
        if let Some(m) = metrics_server {
            cancel.cancel();
            match m.await {
                Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "metrics server"),
                Err(e) => tracing::warn!(error = %e, "metrics server task"),
                Ok(Ok(())) => {}
            }
        }
        let (entries, matches) = view.totals();
        tracing::info!(
            entries,
            matches,
            jp_ratio = %worker_engine::view::fmt_ratio(matches, entries),
            uploaded = worker_engine::view::EngineView::get(&view.uploaded),
            "stopped"
        );
        result
    })
}

/// SIGINT or SIGTERM starts the drain; a second one exits at once (after
/// giving the terminal back when the screen is up).
async fn stop_on_signal(cancel: CancellationToken, interactive: bool) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("stopping: no new claims, flushing uploads (signal again to quit at once)");
        cancel.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        if interactive {
            ratatui::restore();
        }
        std::process::exit(130);
    }
    #[cfg(not(unix))]
    {
        let _ = interactive;
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_url_is_http_or_https() {
        assert_eq!(site_url(None).ok(), Some(None));
        assert_eq!(site_url(Some("  ".into())).ok(), Some(None));
        assert_eq!(
            site_url(Some(" https://ctjp.example.org/ ".into())).ok(),
            Some(Some("https://ctjp.example.org/".into()))
        );
        assert!(site_url(Some("ctjp.example.org".into())).is_err());
        assert!(site_url(Some("https://a b".into())).is_err());
    }
}
