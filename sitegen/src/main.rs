//! ct-sitegen: renders the dashboards once, or every `--watch` seconds.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use sitegen::{Args, Config, Site};

async fn once(site: &Site, args: &Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let pool = sitegen::db::connect(&args.database_url)
        .await
        .context("cannot connect to the database (the published site is left as it was)")?;
    let built = site.build(&pool, &args.out).await;
    pool.close().await;
    let (dir, report) =
        built.with_context(|| format!("building the site into {}", args.out.display()))?;
    println!(
        "ct-sitegen: {} pages in {} ms (queries {} ms, render {} ms) -> {} -> {}",
        report.pages,
        t0.elapsed().as_millis(),
        report.load_ms,
        report.render_ms,
        args.out.display(),
        dir.display()
    );
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::from_args(&args).context("invalid options")?;
    let site = Site::new(cfg);
    if args.watch == 0 {
        return once(&site, &args).await;
    }
    loop {
        if let Err(e) = once(&site, &args).await {
            eprintln!("ct-sitegen: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.watch)) => {}
            () = shutdown_signal() => return Ok(()),
        }
    }
}

/// SIGINT or SIGTERM ends `--watch` between two renders.
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ct-sitegen: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
