//! `ct-manager`: command line entry point.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use manager::{AppState, Config, db, export, logs};
use tokio::net::TcpListener;

/// The crate version and the git revision it was built from.
const VERSION: &str = git_version::git_version!(
    prefix = concat!(env!("CARGO_PKG_VERSION"), " ("),
    suffix = ")",
    args = ["--always", "--dirty=-modified"],
    fallback = concat!(env!("CARGO_PKG_VERSION"), " (unknown revision)")
);

#[derive(Debug, Parser)]
#[command(
    name = "ct-manager",
    version = VERSION,
    about = "ctjp manager: plans, leases, scales and ingests CT log ranges"
)]
struct Cli {
    /// MySQL/MariaDB URL, e.g. mysql://user:pass@127.0.0.1:3306/ctjp
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (migrates first).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage logs.
    Logs {
        #[command(subcommand)]
        command: LogsCommand,
    },
    /// Print every stored matching entry with its analysis columns.
    Export {
        /// Only entries stored at or after this Unix time (seconds).
        #[arg(long, env = "CT_EXPORT_SINCE", default_value_t = 0)]
        since: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = export::Format::Jsonl)]
        format: export::Format,
    },
    /// Analyse the certificates stored since the last run (issuances,
    /// renewals, analysis fields, rollups) and exit.
    Analyse {
        /// Throw away every derived row, recompute registered domains with
        /// the Public Suffix List, and analyse everything stored again.
        #[arg(long)]
        backfill: bool,
        /// Sightings per transaction.
        #[arg(long, default_value_t = manager::analyse::DEFAULT_BATCH, value_parser = clap::value_parser!(u32).range(1..=50_000))]
        batch: u32,
        /// Only sightings stored at least this many seconds ago (an ingest
        /// still committing is not skipped).
        #[arg(long, default_value_t = 30)]
        settle_secs: u64,
        /// Name suffixes that match (comma separated).
        #[arg(long, env = "CT_SUFFIXES", default_value = "jp", value_delimiter = ',')]
        suffix: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Import (insert or update) the logs of a v3 log list JSON file.
    Import {
        file: std::path::PathBuf,
        /// The list's detached signature (Google's `log_list.sig`): the
        /// import happens only when it verifies with `--key`.
        #[arg(long, requires = "key")]
        signature: Option<std::path::PathBuf>,
        /// PEM public key the signature must verify with (Google's log list
        /// signing key).
        #[arg(long, requires = "signature")]
        key: Option<std::path::PathBuf>,
    },
    /// List known logs.
    List,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Bearer token of admin calls (admin calls are refused without it).
    #[arg(long, env = "CT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Seconds a lease lives without progress.
    #[arg(long, env = "CT_LEASE_SECS", default_value_t = 300)]
    lease_secs: u64,
    /// Seconds between tree-head polls (0 disables polling).
    #[arg(long, env = "CT_POLL_SECS", default_value_t = 60)]
    poll_secs: u64,
    /// Seconds between sweeps of expired leases (0 disables the sweep).
    #[arg(long, env = "CT_REAP_SECS", default_value_t = 15)]
    reap_secs: u64,
    /// Tasks hold 2^k entries.
    #[arg(long, env = "CT_TASK_SIZE_LOG2", default_value_t = 12, value_parser = clap::value_parser!(u32).range(0..=30))]
    task_size_log2: u32,
    /// Largest request body in bytes.
    #[arg(long, env = "CT_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    max_body_bytes: usize,
    /// Name suffixes that match (comma separated).
    #[arg(long, env = "CT_SUFFIXES", default_value = "jp", value_delimiter = ',')]
    suffix: Vec<String>,
    /// Share (0 to 1) of completed ranges re-done by another worker as a hidden-entry check.
    #[arg(long, env = "CT_CHECK_SHARE", default_value_t = 0.02)]
    check_share: f64,
    /// A worker's first N ranges are all checked.
    #[arg(long, env = "CT_CHECK_FIRST", default_value_t = 3)]
    check_first: u32,
    /// Check tasks go only to workers with at least N completed tasks.
    #[arg(long, env = "CT_CHECK_MIN_TASKS", default_value_t = 1)]
    check_min_tasks: u64,
    /// Share (0 to 1) of completed ranges the manager re-fetches itself and compares.
    #[arg(long, env = "CT_AUDIT_SHARE", default_value_t = 0.001)]
    audit_share: f64,
    /// Seconds between rounds of due audits (0 disables the loop).
    #[arg(long, env = "CT_AUDIT_SECS", default_value_t = 10)]
    audit_secs: u64,
    /// Workers register only with this secret (closed deployments).
    #[arg(long, env = "CT_REGISTRATION_SECRET", hide_env_values = true)]
    registration_secret: Option<String>,
    /// New names per client address, and new machines per name, per hour (0: unlimited).
    #[arg(long, env = "CT_REGISTRATIONS_PER_HOUR", default_value_t = 30)]
    registrations_per_hour: u32,
    /// Take the client's address from this header (set it only behind a
    /// reverse proxy that overwrites it, e.g. nginx's X-Real-IP).
    #[arg(long, env = "CT_CLIENT_ADDRESS_HEADER")]
    client_address_header: Option<String>,
    /// Tasks of one log one worker may hold at once.
    #[arg(long, env = "CT_TASKS_PER_LOG", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    tasks_per_log: u32,
    /// Requests per second per client address to a log without a budget of its own or its operator's.
    #[arg(long, env = "CT_DEFAULT_RPS", default_value_t = 10.0)]
    default_requests_per_sec: f64,
    /// Entries per get-entries request for a log without a budget of its own or its operator's.
    #[arg(long, env = "CT_DEFAULT_BATCH", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    default_entries_per_request: u64,
    /// Seconds an idle worker is told to wait before claiming again.
    #[arg(long, env = "CT_IDLE_CLAIM_SECS", default_value_t = 30)]
    idle_claim_secs: u64,
    /// Database pool size.
    #[arg(long, env = "CT_DB_CONNECTIONS", default_value_t = 16)]
    db_connections: u32,
    /// Milliseconds a call waits for a database connection before it
    /// answers 503 (the database does not answer, or every connection is busy).
    #[arg(long, env = "CT_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    db_acquire_timeout_ms: u64,
    /// Connections of the public reads' own pool (/v1/logs, /v1/stats,
    /// /v1/workers, /metrics), apart from the workers'.
    #[arg(long, env = "CT_PUBLIC_DB_CONNECTIONS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    public_db_connections: u32,
    /// Milliseconds the public reads may answer from the same snapshot
    /// before one request reads it again (0: every request reads).
    #[arg(long, env = "CT_PUBLIC_MAX_AGE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    public_max_age_ms: u64,
    /// Seconds between runs of the analysis job (0 disables it).
    #[arg(long, env = "CT_ANALYSE_SECS", default_value_t = 60)]
    analyse_secs: u64,
    /// Seconds between snapshots of every log's progress and of the
    /// leaderboard for the operations history (0 disables them).
    #[arg(long, env = "CT_SNAPSHOT_SECS", default_value_t = 300)]
    snapshot_secs: u64,
}

fn secs(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            // sqlx's slow-statement warning carries the whole statement: for
            // the analysis' bulk inserts, megabytes of literals per line.
            // Slow requests show in /metrics; RUST_LOG brings it back.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx::query=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("ct-manager: {e:#}");
        std::process::exit(1);
    }
}

/// SIGINT or SIGTERM (what Docker, Kubernetes and systemd send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn create_database(url: &str) -> anyhow::Result<()> {
    if db::create_if_missing(url)
        .await
        .context("creating the database")?
    {
        tracing::info!("created the database");
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli
        .database_url
        .context("--database-url or DATABASE_URL is required")?;
    match cli.command {
        Command::Serve(args) => {
            let matcher = ct_core::matcher::Matcher::new(&args.suffix).context("--suffix")?;
            let config = Config {
                admin_token: args.admin_token.filter(|t| !t.is_empty()),
                lease: Duration::from_secs(args.lease_secs.max(1)),
                poll_interval: secs(args.poll_secs),
                reap_interval: secs(args.reap_secs),
                task_size_log2: args.task_size_log2,
                max_body_bytes: args.max_body_bytes,
                matcher,
                check_share: args.check_share.clamp(0.0, 1.0),
                check_first: args.check_first,
                check_min_tasks: args.check_min_tasks,
                audit_share: args.audit_share.clamp(0.0, 1.0),
                audit_interval: secs(args.audit_secs),
                registration_secret: args.registration_secret.filter(|s| !s.is_empty()),
                registrations_per_hour: args.registrations_per_hour,
                client_address_header: args.client_address_header.filter(|h| !h.is_empty()),
                tasks_per_log: args.tasks_per_log,
                default_requests_per_sec: if args.default_requests_per_sec.is_finite()
                    && args.default_requests_per_sec > 0.0
                {
                    args.default_requests_per_sec.min(10_000.0)
                } else {
                    anyhow::bail!("--default-requests-per-sec must be a positive number")
                },
                default_entries_per_request: args.default_entries_per_request,
                idle_claim: Duration::from_secs(args.idle_claim_secs.clamp(1, 3600)),
                db_acquire_timeout: Duration::from_millis(args.db_acquire_timeout_ms),
                public_db_connections: args.public_db_connections,
                public_max_age: Duration::from_millis(args.public_max_age_ms),
                analyse_interval: secs(args.analyse_secs),
                snapshot_interval: secs(args.snapshot_secs),
                ..Config::default()
            };
            create_database(&url).await?;
            let pool = db::connect_with(&url, args.db_connections, config.db_acquire_timeout)
                .await
                .context("connecting to the database")?;
            db::migrate(&pool).await.context("migrating the database")?;
            let listener = TcpListener::bind(&args.listen)
                .await
                .with_context(|| format!("binding {}", args.listen))?;
            tracing::info!(listen = %args.listen, config = ?config, "ct-manager serving");
            let state = AppState::new(pool, config)?;
            manager::serve(listener, state, async {
                shutdown_signal().await;
                tracing::info!("shutting down");
            })
            .await
            .context("serving")?;
        }
        Command::Analyse {
            backfill,
            batch,
            settle_secs,
            suffix,
        } => {
            let matcher = ct_core::matcher::Matcher::new(&suffix).context("--suffix")?;
            let pool = db::connect(&url, 4)
                .await
                .context("connecting to the database")?;
            db::migrate(&pool).await.context("migrating the database")?;
            let mut analyser = manager::analyse::Analyser::new(matcher);
            analyser.batch = batch;
            analyser.settle = Duration::from_secs(settle_secs);
            let started = std::time::Instant::now();
            let report = if backfill {
                analyser.backfill(&pool).await
            } else {
                analyser.run(&pool).await
            }
            .context("analysing")?;
            println!(
                "analysed {} sightings, {} new certificates, {} issuances touched, {} name sets, {} renewals, {} registered domains corrected in {:.2} s",
                report.sightings,
                report.certificates,
                report.issuances_touched,
                report.name_sets,
                report.renewals,
                report.names_updated,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Migrate => {
            create_database(&url).await?;
            let pool = db::connect(&url, 2)
                .await
                .context("connecting to the database")?;
            db::migrate(&pool).await.context("migrating the database")?;
            println!("migrations applied");
        }
        Command::Logs {
            command:
                LogsCommand::Import {
                    file,
                    signature,
                    key,
                },
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let list: ct_core::loglist::LogList = match (signature, key) {
                (Some(sig), Some(key)) => {
                    let sig = std::fs::read(&sig)
                        .with_context(|| format!("reading {}", sig.display()))?;
                    let pem = std::fs::read_to_string(&key)
                        .with_context(|| format!("reading {}", key.display()))?;
                    let key = ct_core::sth::LogKey::from_pem(&pem)
                        .with_context(|| format!("{} is not a PEM public key", key.display()))?;
                    let list = ct_core::loglist::LogList::verified(&bytes, &sig, &key)
                        .with_context(|| format!("refusing {}", file.display()))?;
                    eprintln!("ct-manager: the signature of {} verifies", file.display());
                    list
                }
                _ => serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing {} as a v3 log list", file.display()))?,
            };
            let pool = db::connect(&url, 2)
                .await
                .context("connecting to the database")?;
            db::migrate(&pool).await.context("migrating the database")?;
            let s = logs::import(&pool, &list).await.context("importing logs")?;
            println!(
                "inserted {}, updated {}, skipped {}",
                s.inserted,
                s.updated,
                s.skipped.len()
            );
            for why in s.skipped {
                println!("skipped: {why}");
            }
        }
        Command::Logs {
            command: LogsCommand::List,
        } => {
            let pool = db::connect(&url, 2)
                .await
                .context("connecting to the database")?;
            let mut out = std::io::stdout().lock();
            for l in logs::list(&pool).await.context("listing logs")? {
                let p = &l.progress;
                let ranges = |v: &[(u64, u64)]| {
                    v.iter()
                        .map(|(a, b)| format!("[{a},{b})"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\tenabled={}\tpriority={}\ttree_size={}\ttasks={}/{}\tverified=[{},{})\tverified_entries={}\tlog_fault_entries={} {}\tmissing_entries={} {}\tchecks_pending={}\tchecks_failed={}",
                    l.id,
                    l.kind,
                    l.url,
                    l.state,
                    l.enabled,
                    l.priority,
                    l.tree_size.map_or("-".into(), |s| s.to_string()),
                    l.tasks_done,
                    l.tasks,
                    l.start_index,
                    p.verified_until,
                    p.entries_verified,
                    p.entries_faulty,
                    ranges(&p.faults),
                    p.entries_missing,
                    ranges(&p.gaps),
                    p.checks_pending,
                    p.checks_failed,
                )
                .context("writing to stdout")?;
            }
        }
        Command::Export { since, format } => {
            let pool = db::connect(&url, 2)
                .await
                .context("connecting to the database")?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            export::export_as(&pool, since.saturating_mul(1000), format, &mut out)
                .await
                .context("exporting")?;
            out.flush().context("writing to stdout")?;
        }
    }
    Ok(())
}
