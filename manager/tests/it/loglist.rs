//! `ct-manager logs import` of Chrome's real log list
//! (`$CT_REAL_DATA/loglists/`): verified against its signature, all 56 logs
//! with their operators, kinds, states, intervals and final tree heads; a
//! corrupted signature is refused; the older list re-imports without
//! duplicates.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::TestApp;

fn loglists() -> Option<PathBuf> {
    match std::env::var_os("CT_REAL_DATA") {
        Some(d) => {
            let dir = PathBuf::from(d).join("loglists");
            assert!(
                dir.is_dir(),
                "CT_REAL_DATA has no loglists/: {}",
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

fn import(app: &TestApp, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ct-manager"))
        .args(["--database-url", &app.database_url(), "logs", "import"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_real_log_list_imports_verified() {
    let Some(dir) = loglists() else { return };
    let app = TestApp::spawn().await;
    let list = dir.join("chrome-v3-2026-05-29.json");
    let sig = dir.join("chrome-v3-2026-05-29.json.sig");
    let key = dir.join("google-log-list-signing-key.pem");

    // A corrupted signature: refused, nothing imported, a clear message.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.sig");
    let mut bytes = std::fs::read(&sig).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&bad, bytes).unwrap();
    let out = import(
        &app,
        &[
            list.as_os_str(),
            "--signature".as_ref(),
            bad.as_os_str(),
            "--key".as_ref(),
            key.as_os_str(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature does not verify"), "{err}");
    assert_eq!(app.count("SELECT COUNT(*) FROM logs").await, 0);

    let out = import(
        &app,
        &[
            list.as_os_str(),
            "--signature".as_ref(),
            sig.as_os_str(),
            "--key".as_ref(),
            key.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("verifies"));
    assert_eq!(app.count("SELECT COUNT(*) FROM logs").await, 56);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM logs WHERE kind = 'static'")
            .await,
        21
    );
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT operator) FROM logs").await,
        8
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM logs WHERE state = 'usable'")
            .await,
        48
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM logs WHERE state = 'readonly'")
            .await,
        4
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM logs WHERE state = 'retired'")
            .await,
        4
    );
    // Retired and read-only logs are collected too, unless an admin says otherwise.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM logs WHERE enabled = 1")
            .await,
        56
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM logs WHERE final_tree_size IS NOT NULL")
            .await,
        4
    );
    assert_eq!(
        app.count("SELECT CAST(final_tree_size AS SIGNED) FROM logs WHERE description = 'Sectigo ''Mammoth2026h1'''").await,
        65_240_567
    );
    // Every log as the list has it: URL, kind, key, state, interval.
    let want: serde_json::Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    for op in want["operators"].as_array().unwrap() {
        for (field, kind) in [("logs", "rfc6962"), ("tiled_logs", "static")] {
            for l in op[field].as_array().into_iter().flatten() {
                let url = l
                    .get("url")
                    .or_else(|| l.get("submission_url"))
                    .unwrap()
                    .as_str()
                    .unwrap();
                let url = manager::logs::normalize_url(url).unwrap();
                let row: (String, String, String, String, Option<String>, Option<String>) = sqlx::query_as(
                    "SELECT kind, operator, description, state, temporal_start, temporal_end FROM logs WHERE url = ?",
                )
                .bind(&url)
                .fetch_one(&app.pool)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
                assert_eq!(row.0, kind, "{url}");
                assert_eq!(row.1, op["name"].as_str().unwrap(), "{url}");
                assert_eq!(row.2, l["description"].as_str().unwrap(), "{url}");
                let state = l["state"].as_object().unwrap().keys().next().unwrap();
                assert_eq!(&row.3, state, "{url}");
                assert_eq!(
                    row.4.as_deref(),
                    l["temporal_interval"]["start_inclusive"].as_str(),
                    "{url}"
                );
                assert_eq!(
                    row.5.as_deref(),
                    l["temporal_interval"]["end_exclusive"].as_str(),
                    "{url}"
                );
            }
        }
    }

    // The older list: logs in both are updated, none is duplicated.
    let older = dir.join("chrome-v3-2026-01-20.json");
    let out = import(&app, &[older.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let urls = app.count("SELECT COUNT(DISTINCT url) FROM logs").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM logs").await, urls);
    let old: serde_json::Value = serde_json::from_slice(&std::fs::read(&older).unwrap()).unwrap();
    let mut all: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for v in [&want, &old] {
        for op in v["operators"].as_array().unwrap() {
            for field in ["logs", "tiled_logs"] {
                for l in op[field].as_array().into_iter().flatten() {
                    let url = l
                        .get("url")
                        .or_else(|| l.get("submission_url"))
                        .unwrap()
                        .as_str()
                        .unwrap();
                    all.insert(manager::logs::normalize_url(url).unwrap());
                }
            }
        }
    }
    assert_eq!(urls as usize, all.len());
    app.cleanup().await;
}
