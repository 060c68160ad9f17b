//! `ct-worker inspect` through the real binary.

use std::path::PathBuf;
use std::process::Command;

fn worker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ct-worker"))
}

fn real_dir() -> Option<PathBuf> {
    match std::env::var_os("CT_REAL_DATA") {
        Some(d) => {
            let d = PathBuf::from(d);
            assert!(
                d.join("get-entries").is_dir(),
                "CT_REAL_DATA={} has no get-entries/",
                d.display()
            );
            Some(d)
        }
        None => {
            eprintln!("skipped: CT_REAL_DATA is not set");
            None
        }
    }
}

#[test]
fn prints_one_line_per_entry_with_the_required_fields() {
    let Some(dir) = real_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("single"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out = worker().arg("inspect").args(&files).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    for l in &lines {
        for key in [
            "leaf_hash",
            "entry_type",
            "timestamp",
            "serial",
            "subject_cn",
            "issuer_cn",
            "dns_names",
            "matched",
            "error",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
    assert_eq!(
        lines[0]["dns_names"],
        serde_json::json!(["api.mebuku-comm-test.jp"])
    );
    assert_eq!(lines[0]["matched"], true);
}

#[test]
fn summary_counts() {
    let Some(dir) = real_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("get-entries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out = worker()
        .args(["inspect", "--summary"])
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entries"], 264);
    assert_eq!(v["errors"], 0);
    assert!(v["matched"].as_u64().unwrap() > 0);
    assert!(v["entries_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn missing_file_names_it_and_fails() {
    let out = worker()
        .args(["inspect", "/nonexistent/answer.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/answer.json"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_file_names_it_and_fails() {
    let dir = std::env::temp_dir().join(format!("ctjp-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, b"{\"entries\": [ {\"leaf_input\": 5} ]}").unwrap();
    let out = worker().arg("inspect").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
    let tile = dir.join("tile");
    std::fs::write(&tile, b"\x00\x01garbage").unwrap();
    let out = worker()
        .args(["inspect", "--tile"])
        .arg(&tile)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a data tile"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_entries_inside_a_valid_answer_are_reported_not_fatal() {
    let dir = std::env::temp_dir().join(format!("ctjp-inspect-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("answer.json");
    std::fs::write(&f, br#"{"entries":[{"leaf_input":"!!!","extra_data":""},{"leaf_input":"AAAA","extra_data":""}]}"#).unwrap();
    let out = worker().arg("inspect").arg(&f).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["error"].as_str().unwrap().contains("base64"));
    assert!(lines[1]["error"].as_str().unwrap().contains("leaf_input"));
    assert!(lines[1]["leaf_hash"].is_string());
    std::fs::remove_dir_all(&dir).ok();
}
