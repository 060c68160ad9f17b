//! `ct-worker inspect`: decode CT answers from files, print a JSON line per
//! entry or, with `--summary`, the totals and the decode+match rate.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use ct_core::entry::{Depth, EntryRecord, Examiner};
use ct_core::leaf::leaf_index_extension;
use ct_core::rfc6962::GetEntries;
use ct_core::tiles::{decode_data_tile, maybe_gunzip};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print only the totals: entries, matched, errors, seconds, entries/s
    /// (decode and match only, files already in memory).
    #[arg(long)]
    summary: bool,
    /// The files are static-ct-api data tiles (raw or gzip), not get-entries JSON.
    #[arg(long)]
    tile: bool,
    #[command(flatten)]
    matching: crate::matching::MatchArgs,
    /// In `--summary` mode, decode the files this many times (for steadier rates).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Files to read.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: &InspectArgs) -> Result<()> {
    match inspect(args) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(BrokenPipe)
    })
}

fn inspect(args: &InspectArgs) -> Result<()> {
    let matcher = args.matching.matcher()?;
    let mut examiner = Examiner::new(matcher);
    // Read and check every file before printing anything.
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if args.tile {
            let raw = maybe_gunzip(&bytes)
                .with_context(|| format!("{}: not a data tile", path.display()))?
                .into_owned();
            decode_data_tile(&raw)
                .with_context(|| format!("{}: not a data tile", path.display()))?;
            inputs.push((path, raw));
        } else {
            serde_json::from_slice::<GetEntries<'_>>(&bytes)
                .with_context(|| format!("{}: not a get-entries answer", path.display()))?;
            inputs.push((path, bytes));
        }
    }
    if args.summary {
        return summary(args, &mut examiner, &inputs);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (path, bytes) in &inputs {
        let records = records(args.tile, &mut examiner, bytes, Depth::Full)
            .with_context(|| format!("decoding {}", path.display()))?;
        for rec in records {
            serde_json::to_writer(&mut out, &rec)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn records(
    tile: bool,
    examiner: &mut Examiner,
    bytes: &[u8],
    depth: Depth,
) -> Result<Vec<EntryRecord>> {
    if tile {
        let leaves = decode_data_tile(bytes)?;
        Ok(leaves
            .iter()
            .map(|leaf| {
                let index = leaf_index_extension(leaf.entry.extensions).ok().flatten();
                EntryRecord::new(index, &examiner.examine_tile_leaf(leaf, depth))
            })
            .collect())
    } else {
        let answer: GetEntries<'_> = serde_json::from_slice(bytes)?;
        Ok(answer
            .entries
            .iter()
            .map(|e| {
                EntryRecord::new(
                    None,
                    &examiner.examine_b64(&e.leaf_input, &e.extra_data, depth),
                )
            })
            .collect())
    }
}

fn summary(
    args: &InspectArgs,
    examiner: &mut Examiner,
    inputs: &[(&PathBuf, Vec<u8>)],
) -> Result<()> {
    let (mut entries, mut matched, mut errors) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    for _ in 0..args.repeat.max(1) {
        for (_, bytes) in inputs {
            if args.tile {
                for leaf in decode_data_tile(bytes)? {
                    let e = examiner.examine_tile_leaf(&leaf, Depth::MatchOnly);
                    entries += 1;
                    matched += u64::from(e.matched());
                    errors += u64::from(e.error.is_some());
                }
            } else {
                let answer: GetEntries<'_> = serde_json::from_slice(bytes)?;
                for entry in &answer.entries {
                    let e = examiner.examine_b64(
                        &entry.leaf_input,
                        &entry.extra_data,
                        Depth::MatchOnly,
                    );
                    entries += 1;
                    matched += u64::from(e.matched());
                    errors += u64::from(e.error.is_some());
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        entries as f64 / seconds
    } else {
        0.0
    };
    println!(
        "{}",
        serde_json::json!({
            "entries": entries,
            "matched": matched,
            "errors": errors,
            "seconds": seconds,
            "entries_per_second": rate.round(),
        })
    );
    Ok(())
}
