//! Every entry of the real CT data in `$CT_REAL_DATA` agrees with the fields an
//! independent parser found (`expected.jsonl`).

use std::path::{Path, PathBuf};

use ct_core::entry::{Depth, EntryRecord, Examiner};
use ct_core::rfc6962::GetEntries;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Expected {
    file: String,
    pos: usize,
    leaf_hash: String,
    timestamp: u64,
    entry_type: String,
    serial: String,
    subject_cn: Option<String>,
    issuer_cn: Option<String>,
    dns_names: Vec<String>,
    matched: bool,
    error: Option<String>,
}

/// The data directory, or `None` (after saying so) when the variable is unset.
pub fn real_data_dir() -> Option<PathBuf> {
    match std::env::var_os("CT_REAL_DATA") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("expected.jsonl").is_file(),
                "CT_REAL_DATA={} holds no expected.jsonl",
                dir.display()
            );
            Some(dir)
        }
        None => {
            eprintln!("skipped: CT_REAL_DATA is not set");
            None
        }
    }
}

/// Every entry file in the order expected.jsonl uses.
pub fn entry_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["get-entries", "single"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .unwrap_or_else(|e| panic!("reading {}/{sub}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        out.extend(files);
    }
    assert!(!out.is_empty(), "no entry files under {}", dir.display());
    out
}

#[test]
fn real_entries_agree_with_expected() {
    let Some(dir) = real_data_dir() else { return };
    let expected: Vec<Expected> = std::fs::read_to_string(dir.join("expected.jsonl"))
        .expect("expected.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("expected line"))
        .collect();
    let mut examiner = Examiner::default();
    let mut seen = 0;
    let mut matched = 0;
    for path in entry_files(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("entry file");
        let answer: GetEntries<'_> = serde_json::from_str(&text).expect("get-entries JSON");
        for (pos, e) in answer.entries.iter().enumerate() {
            let want = &expected[seen];
            assert_eq!(
                (want.file.as_str(), want.pos),
                (name.as_str(), pos),
                "order"
            );
            seen += 1;
            let full = examiner.examine_b64(&e.leaf_input, &e.extra_data, Depth::Full);
            let got = EntryRecord::new(None, &full);
            let ctx = format!("{name} #{pos}: {got:?}");
            assert_eq!(
                got.leaf_hash.as_deref(),
                Some(want.leaf_hash.as_str()),
                "{ctx}"
            );
            assert_eq!(got.timestamp, Some(want.timestamp), "{ctx}");
            assert_eq!(
                got.entry_type.map(|t| t.as_str()),
                Some(want.entry_type.as_str()),
                "{ctx}"
            );
            assert_eq!(got.serial.as_deref(), Some(want.serial.as_str()), "{ctx}");
            assert_eq!(got.subject_cn, want.subject_cn, "{ctx}");
            assert_eq!(got.issuer_cn, want.issuer_cn, "{ctx}");
            assert_eq!(got.dns_names, want.dns_names, "{ctx}");
            assert_eq!(got.matched, want.matched, "{ctx}");
            assert_eq!(got.error, want.error, "{ctx}");
            // The fast path never changes the answer.
            let quick = examiner.examine_b64(&e.leaf_input, &e.extra_data, Depth::MatchOnly);
            assert_eq!(quick.matched_names(), full.matched_names(), "{ctx}");
            assert_eq!(quick.leaf_hash, full.leaf_hash, "{ctx}");
            matched += usize::from(got.matched);
        }
    }
    assert_eq!(seen, expected.len(), "every expected line has an entry");
    eprintln!("{seen} real entries agree, {matched} match");
}
