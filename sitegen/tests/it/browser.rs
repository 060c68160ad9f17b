//! Headless Chromium loads pages without console errors; a screenshot is
//! saved under the target folder for a human to look at.

use std::path::Path;
use std::process::Command;

use crate::fixture;

const CHROMIUM: &str = "/usr/bin/chromium";

fn load(page: &Path, png: &Path, profile: &Path, width: u32) -> String {
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},900"))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn chromium_loads_pages_without_console_errors() {
    if !Path::new(CHROMIUM).exists() {
        // CI installs Chromium and sets this, so that a missing browser fails there.
        assert!(
            std::env::var_os("CTJP_REQUIRE_CHROMIUM").is_none(),
            "{CHROMIUM} is missing but CTJP_REQUIRE_CHROMIUM is set"
        );
        println!("skipped: chromium not installed");
        return;
    }
    let (db, dir) = fixture::rendered().await;
    let shots = fixture::target_dir().join("sitegen-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    for (page, png, width) in [
        ("index.html", "home.png", 1280),
        ("logs/1.html", "log.png", 1280),
        ("certificates/index.html", "certificates.png", 1280),
        ("pki/index.html", "pki.png", 1280),
        ("domains/example.co.jp.html", "domain.png", 1280),
        (
            "certs/1212121212121212121212121212121212121212121212121212121212121212.html",
            "cert.png",
            1280,
        ),
        ("pki/lapses.html", "lapses.png", 1280),
        ("index.html", "home-phone.png", 400),
    ] {
        let png = shots.join(png);
        let _ = std::fs::remove_file(&png);
        let stderr = load(&dir.path().join(page), &png, profile.path(), width);
        for line in stderr.lines() {
            let bad = line.contains("Uncaught")
                || (line.contains("CONSOLE") && line.contains("rror"))
                || line.contains("Failed to load resource");
            assert!(!bad, "{page}: {line}");
        }
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "{}",
            png.display()
        );
    }
    // The search page runs its script on a query without errors.
    let search = dir.path().join("search.html");
    let url = format!("file://{}?q=example", search.display());
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Uncaught"), "{stderr}");
    assert!(dom.contains("href=\"domains/example.co.jp.html\""), "{dom}");
    assert!(dom.contains("1 match."), "{dom}");
    println!("screenshots in {}", shots.display());
    db.drop().await;
}
