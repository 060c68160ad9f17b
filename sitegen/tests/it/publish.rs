//! Atomic publication and the command line.

use std::process::Command;

use crate::fixture;

#[tokio::test]
async fn swaps_symlink_and_keeps_previous_build() {
    let db = fixture::TestDb::new().await;
    fixture::fill(&db.pool).await;
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("site");
    let site = sitegen::Site::new(sitegen::Config::for_tests());
    let (first, _) = site.build(&db.pool, &out).await.unwrap();
    assert!(
        std::fs::symlink_metadata(&out)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(out.join("index.html").is_file());
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (second, _) = site.build(&db.pool, &out).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        std::fs::read_link(&out).unwrap(),
        second.file_name().unwrap()
    );
    assert!(
        first.is_dir(),
        "the previous build stays for readers still on it"
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (third, _) = site.build(&db.pool, &out).await.unwrap();
    assert!(
        !first.exists(),
        "builds older than the previous one are removed"
    );
    assert!(second.is_dir() && third.is_dir());
    db.drop().await;
}

#[tokio::test]
async fn cli_renders_and_fails_cleanly_without_database() {
    let db = fixture::TestDb::new().await;
    fixture::fill(&db.pool).await;
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("www");
    let bin = env!("CARGO_BIN_EXE_ct-sitegen");
    let ok = Command::new(bin)
        .env("DATABASE_URL", &db.url)
        .env("CT_SITE_OUT", &out)
        .args(["--timezone", "UTC"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let before = std::fs::read_link(&out).unwrap();
    let bad = Command::new(bin)
        .args(["--database-url", "mysql://root@127.0.0.1:1/none", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert_eq!(std::fs::read_link(&out).unwrap(), before);
    assert!(out.join("index.html").is_file());
    let builds = std::fs::read_dir(root.path()).unwrap().count();
    assert_eq!(builds, 2, "no half-built folder is left behind");
    let version = Command::new(bin).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains("ct-sitegen"));
    let tz = Command::new(bin)
        .args(["--database-url", &db.url, "--out"])
        .arg(&out)
        .args(["--timezone", "Mars/Olympus"])
        .output()
        .unwrap();
    assert!(!tz.status.success());
    assert!(String::from_utf8_lossy(&tz.stderr).contains("unknown time zone"));
    db.drop().await;
}
