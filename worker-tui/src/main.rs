//! `ct-worker`: the ctjp volunteer worker. For now it offers `inspect`, which
//! decodes CT log answers on disk with ct-core; the fetching engine, the
//! headless mode and the TUI come in their own issues.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inspect;

/// The ctjp worker: collects .jp certificates from Certificate Transparency logs.
#[derive(Debug, Parser)]
#[command(name = "ct-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode get-entries JSON answers (or static-ct-api data tiles) and print
    /// one JSON object per entry.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Inspect(args)) => inspect::run(&args),
        None => Err(anyhow::anyhow!(
            "the fetching engine is not built yet; only `ct-worker inspect` works (see --help)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ct-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
