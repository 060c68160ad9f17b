//! The numbers on the pages, internal links, HTML parsing and escaping.

use std::path::Path;

use scraper::{Html, Selector};

use crate::fixture::{self, EVIL_DN, EVIL_ISSUER, EVIL_NAME, EVIL_ORG, EVIL_QUOTE, EVIL_WORKER};

pub fn read(dir: &Path, rel: &str) -> Html {
    let s = std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    Html::parse_document(&s)
}

pub fn text(doc: &Html, css: &str) -> String {
    let sel = Selector::parse(css).unwrap();
    let el = doc
        .select(&sel)
        .next()
        .unwrap_or_else(|| panic!("no element {css}"));
    el.text().collect::<String>().trim().to_owned()
}

/// The cells of a table's body rows, whitespace collapsed.
pub fn rows(doc: &Html, css: &str) -> Vec<Vec<String>> {
    let cells = Selector::parse("th, td").unwrap();
    let table = doc
        .select(&Selector::parse(css).unwrap())
        .next()
        .unwrap_or_else(|| panic!("no table {css}"));
    table
        .select(&Selector::parse("tbody tr").unwrap())
        .map(|tr| {
            tr.select(&cells)
                .map(|c| {
                    let t = c.text().collect::<Vec<_>>().join(" ");
                    t.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect()
        })
        .collect()
}

pub fn all_text(doc: &Html) -> String {
    let joined = doc.root_element().text().collect::<Vec<_>>().join(" ");
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn numbers_on_pages() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let home = read(d, "index.html");
    // alice 700 + 300 (two machines), bob 556 (300 and a check task's
    // 256), flagged mallory's 5,000: work reported.
    assert_eq!(text(&home, "#total-fetched"), "6,556");
    // Proven entries, each once: [0,256) of log 1 and of log 2.
    assert_eq!(text(&home, "#total-collected"), "512");
    assert_eq!(text(&home, "#total-certificates"), "8");
    assert_eq!(text(&home, "#total-issuances"), "6");
    assert_eq!(text(&home, "#total-sightings"), "9");
    assert_eq!(text(&home, "#total-names"), "6");
    assert_eq!(text(&home, "#total-domains"), "3");
    // Machines: alice's two are active.
    assert_eq!(text(&home, "#workers-active"), "2");
    assert_eq!(text(&home, "#workers-ever"), "4");
    let home_text = all_text(&home);
    assert!(home_text.contains("256 / 1,000 (25.6%)"), "{home_text}");
    assert!(home_text.contains("256 / 500 (51.2%)"), "{home_text}");
    // Last 24 h: alice's 500 entries and bob's check task's 256; 30 days:
    // plus bob's 300 and alice's second machine's 300.
    assert_eq!(text(&home, "#fetched-24h"), "756");
    assert!(home_text.contains("1,356 entries fetched in the last 30 days"));
    // Only E was first logged in the last 30 days (C was collected recently
    // but logged 43 days ago).
    assert_eq!(text(&home, "#issuances-30d"), "1");
    assert_eq!(
        home.select(&Selector::parse("svg[role=img][aria-label]").unwrap())
            .count(),
        3
    );

    let log = read(d, "logs/1.html");
    assert_eq!(text(&log, "#tree-size"), "1,000");
    assert!(text(&log, "#collected").starts_with("256"));
    assert_eq!(text(&log, "#verified-until"), "256");
    assert_eq!(text(&log, "#faulty"), "256");
    assert_eq!(text(&log, "#open"), "488");
    assert_eq!(text(&log, "#unplanned"), "0");
    assert_eq!(text(&log, "#tasks-pending"), "1");
    assert_eq!(text(&log, "#tasks-leased"), "1");
    assert_eq!(text(&log, "#tasks-done"), "1");
    assert_eq!(text(&log, "#tasks-fault"), "1");
    assert_eq!(text(&log, "#errors"), "3");
    assert_eq!(text(&log, "#rate-limited"), "2");
    assert_eq!(text(&log, "#failed"), "1");
    let log2 = read(d, "logs/2.html");
    // The unverified head of 600 is listed but the progress uses the verified 500.
    assert_eq!(text(&log2, "#tree-size"), "500");
    assert!(all_text(&log2).contains("not verified"));
    assert_eq!(text(&log2, "h1"), "Log <b>B</b> \"quoted\"");

    let workers = read(d, "workers/index.html");
    let rows: Vec<String> = workers
        .select(&Selector::parse("tbody tr").unwrap())
        .map(|r| r.text().collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].contains("alice") && rows[0].contains("1,000") && rows[0].contains("active"));
    assert!(rows[1].contains(EVIL_WORKER) && rows[1].contains("idle"));
    let alice = read(d, "workers/1.html");
    assert_eq!(text(&alice, "#worker-entries"), "1,000");
    assert_eq!(text(&alice, "#worker-matches"), "5");
    let bob = read(d, "workers/2.html");
    assert_eq!(text(&bob, "#worker-entries"), "556");

    let certs = read(d, "certificates/index.html");
    assert_eq!(text(&certs, "#expiring-count"), "1");
    let validation = text(&certs, "#validation");
    for level in ["DV", "OV", "EV"] {
        assert!(validation.contains(level), "{validation}");
    }
    let cats = text(&certs, "#categories");
    assert!(cats.contains("co.jp") && cats.contains("ac.jp"), "{cats}");
    let issuers = text(&certs, "#issuers");
    assert!(
        issuers.contains("Let's Encrypt") && issuers.contains('4'),
        "{issuers}"
    );

    let dom = read(d, "domains/example.co.jp.html");
    assert_eq!(text(&dom, "h1"), "example.co.jp");
    // A, B, C (example.co.jp + www), D (shop) and F (mail).
    assert_eq!(
        dom.select(&Selector::parse("table.issuances tbody tr").unwrap())
            .count(),
        5
    );

    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["totals"]["certificates"], 8);
    assert_eq!(stats["totals"]["issuances"], 6);
    assert_eq!(stats["totals"]["sightings"], 9);
    assert_eq!(stats["logs"][0]["collected"], 256);
    assert_eq!(stats["logs"][0]["faulty"], 256);
    assert_eq!(stats["logs"][0]["tree_size"], 1000);
    db.drop().await;
}

/// Every relative href/src in every page points at a file of the build.
#[tokio::test]
async fn internal_links_resolve_and_html_parses() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let sel = Selector::parse("a[href], link[href], script[src]").unwrap();
    let mut pages = 0;
    for rel in fixture::files(d) {
        if rel.extension().and_then(|e| e.to_str()) != Some("html") {
            continue;
        }
        pages += 1;
        let src = std::fs::read_to_string(d.join(&rel)).unwrap();
        let doc = Html::parse_document(&src);
        let errors: Vec<_> = doc
            .errors
            .iter()
            .filter(|e| !e.contains("Unexpected token"))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", rel.display());
        assert!(src.starts_with("<!doctype html>"));
        assert_eq!(
            doc.select(&Selector::parse("h1").unwrap()).count(),
            1,
            "{}",
            rel.display()
        );
        for el in doc.select(&sel) {
            let link = el.value().attr("href").or(el.value().attr("src")).unwrap();
            if link.starts_with("http:") || link.starts_with("https:") || link.starts_with('#') {
                continue;
            }
            let path = link.split(['?', '#']).next().unwrap();
            let target = d.join(rel.parent().unwrap()).join(path);
            assert!(
                target.is_file(),
                "{}: link {link} -> {} missing",
                rel.display(),
                target.display()
            );
        }
    }
    // home, logs index + 2, workers index + 2 names + alice's second
    // machine, operations, certificates, 3 domains, search; CAs and
    // issuance, 3 CAs, 3 categories, organisations + 2, lapses; 8
    // certificates (6 issuances).
    assert_eq!(pages, 33);
    db.drop().await;
}

/// Names, DNs, issuers and worker names with markup are shown escaped, and
/// the search index stays valid JSON/JS.
#[tokio::test]
async fn stranger_data_is_escaped_everywhere() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let scripts = Selector::parse("script").unwrap();
    let img = Selector::parse("img, i, b").unwrap();
    for rel in fixture::files(d) {
        let name = rel.display().to_string();
        let src = std::fs::read_to_string(d.join(&rel)).unwrap();
        assert!(!src.contains("<script>alert"), "{name} has a raw script");
        assert!(!src.contains("<img src=x"), "{name} has a raw img");
        if name.ends_with(".html") {
            let doc = Html::parse_document(&src);
            for s in doc.select(&scripts) {
                let srcattr = s.value().attr("src").unwrap_or("(inline)");
                assert!(
                    ["search-index.js", "search.js"].contains(&srcattr),
                    "{name}: unexpected script {srcattr}"
                );
            }
            assert_eq!(doc.select(&img).count(), 0, "{name}: injected element");
        }
    }
    // Shown as text where they belong.
    let certs = read(d, "certificates/index.html");
    let t = all_text(&certs);
    for s in [EVIL_NAME, EVIL_QUOTE, EVIL_ISSUER] {
        assert!(t.contains(s), "certificates page lacks {s}");
    }
    let evil = read(
        d,
        "certs/1717171717171717171717171717171717171717171717171717171717171717.html",
    );
    let fields = all_text(&evil);
    for s in [EVIL_DN, EVIL_NAME, EVIL_QUOTE, EVIL_ISSUER, EVIL_ORG] {
        assert!(fields.contains(s), "certificate page lacks {s}: {fields}");
    }
    let orgs = read(d, "pki/org/index.html");
    assert!(all_text(&orgs).contains(EVIL_ORG));
    let workers = read(d, "workers/index.html");
    assert!(all_text(&workers).contains(EVIL_WORKER));
    // Search index: valid JSON with the exact strings, and no markup in the JS.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("search.json")).unwrap()).unwrap();
    let domains: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["d"].as_str().unwrap())
        .collect();
    assert!(domains.contains(&EVIL_NAME), "{domains:?}");
    assert!(domains.contains(&EVIL_QUOTE), "{domains:?}");
    let js = std::fs::read_to_string(d.join("search-index.js")).unwrap();
    assert!(!js.contains('<') && !js.contains('>'));
    let body = js
        .strip_prefix("window.CTJP_INDEX = ")
        .and_then(|s| s.trim_end().strip_suffix(';'))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        json
    );
    // The evil domain's page exists under a safe file name and shows it escaped.
    let page = json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["d"] == EVIL_NAME)
        .and_then(|e| e["p"].as_str())
        .unwrap()
        .to_owned();
    assert!(page.starts_with("domains/_"), "{page}");
    let doc = read(d, &page);
    assert_eq!(text(&doc, "h1"), EVIL_NAME);
    db.drop().await;
}

#[tokio::test]
async fn empty_database_renders() {
    let db = fixture::TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let site = sitegen::Site::new(sitegen::Config::for_tests());
    site.build_into(&db.pool, dir.path(), fixture::NOW)
        .await
        .unwrap();
    let home = read(dir.path(), "index.html");
    assert_eq!(text(&home, "#total-certificates"), "0");
    assert!(all_text(&home).contains("No logs configured yet."));
    db.drop().await;
}

#[tokio::test]
async fn templates_can_be_overridden() {
    let (db, _dir) = fixture::rendered().await;
    let over = tempfile::tempdir().unwrap();
    std::fs::write(
        over.path().join("search.html"),
        "{% extends \"base.html\" %}{% block content %}<h1>custom {{ domains }}</h1>{% endblock %}",
    )
    .unwrap();
    std::fs::write(over.path().join("style.css"), "body{}").unwrap();
    let mut cfg = sitegen::Config::for_tests();
    cfg.templates = Some(over.path().to_path_buf());
    let out = tempfile::tempdir().unwrap();
    sitegen::Site::new(cfg)
        .build_into(&db.pool, out.path(), fixture::NOW)
        .await
        .unwrap();
    assert_eq!(text(&read(out.path(), "search.html"), "h1"), "custom 3");
    assert_eq!(
        std::fs::read_to_string(out.path().join("style.css")).unwrap(),
        "body{}"
    );
    db.drop().await;
}
