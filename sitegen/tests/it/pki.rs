//! The pages about the certificates, on the constructed history of
//! `fixture::history`: issuances counted once per precertificate and
//! certificate, CA shares, validity buckets, the heat map's holiday night,
//! renewal chains, a lapse, domain timelines, certificate pages, and every
//! page's counts agreeing with each other.

use std::path::Path;

use scraper::{ElementRef, Html, Selector};

use crate::fixture::{self, EVIL_ISSUER};
use crate::pages::{all_text, read, rows, text};

fn sel(css: &str) -> Selector {
    Selector::parse(css).unwrap()
}

fn num(s: &str) -> i64 {
    s.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn cert_page(fp: u8) -> String {
    format!("certs/{}.html", format!("{fp:02x}").repeat(32))
}

fn links(el: ElementRef<'_>) -> Vec<String> {
    el.select(&sel("a[href]"))
        .map(|a| a.value().attr("href").unwrap().to_owned())
        .collect()
}

/// The page a CA's row links to.
fn ca_page(d: &Path, ca: &str) -> Html {
    let pki = read(d, "pki/index.html");
    let row = pki
        .select(&sel("#cas tbody tr"))
        .find(|tr| tr.text().collect::<String>().contains(ca))
        .unwrap_or_else(|| panic!("no row for {ca}"));
    let href = links(row).remove(0);
    read(
        d,
        &format!("pki/{href}", href = href.trim_start_matches("../pki/")),
    )
}

#[tokio::test]
async fn counts_agree_on_every_page() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let home = read(d, "index.html");
    // Six issuances; A and C each a precertificate and a certificate.
    assert_eq!(text(&home, "#total-issuances"), "6");
    assert_eq!(text(&home, "#total-certificates"), "8");
    assert_eq!(text(&home, "#analysed"), "8");
    // A's certificate is in two logs: 9 sightings.
    assert_eq!(text(&home, "#total-sightings"), "9");

    let pki = read(d, "pki/index.html");
    assert_eq!(text(&pki, "#pki-issuances"), "6");
    assert_eq!(text(&pki, "#cas-total"), "6");
    let cas = rows(&pki, "#cas");
    assert_eq!(cas.len(), 3, "{cas:?}");
    assert_eq!(cas[0], vec!["Let's Encrypt", "4", "66.7%"]);
    assert!(
        cas.iter().any(|r| r == &vec![EVIL_ISSUER, "1", "16.7%"]),
        "{cas:?}"
    );
    assert!(
        cas.iter()
            .any(|r| r == &vec!["Example Trust", "1", "16.7%"]),
        "{cas:?}"
    );
    assert_eq!(cas.iter().map(|r| num(&r[1])).sum::<i64>(), 6);
    // Validity: D 47 days; A, B, F 90; C 398; E 825.
    let validity = rows(&pki, "#validity");
    let by: Vec<(&str, i64)> = validity
        .iter()
        .map(|r| (r[0].as_str(), num(&r[1])))
        .collect();
    assert_eq!(
        by,
        vec![
            ("under 90 days", 1),
            ("90 days", 3),
            ("91 to 398 days", 1),
            ("over 398 days", 1),
            ("unknown", 0)
        ]
    );
    // CA share per month (newest first): August 2026 holds D and F, both
    // Let's Encrypt; November only E.
    let share = rows(&pki, "#ca-share");
    let aug = share.iter().find(|r| r[0] == "2026-08").unwrap();
    assert_eq!(aug[1], "2");
    assert_eq!(aug[2], "100.0%", "{aug:?}");
    let nov = share.iter().find(|r| r[0] == "2026-11").unwrap();
    assert_eq!(nov[1], "1");
    assert_eq!(nov[2], "0.0%", "{nov:?}");
    assert_eq!(share[0][0], "2026-11", "newest month first");
    // Every month's row sums to its total.
    for r in &share {
        let total = num(&r[1]);
        assert!(total > 0 || r[2..].iter().all(|c| c == "0.0%"), "{r:?}");
    }
    let months = rows(&pki, "#validity-months");
    let may = months.iter().find(|r| r[0] == "2026-05").unwrap();
    assert_eq!(may[1], "1");
    assert_eq!(may[3], "100.0%", "A is a 90-day certificate: {may:?}");

    // The heat map: A's precertificate (23:30) and certificate (23:31, log
    // 2) on Greenery Day, a Monday: the holiday row, not Monday's.
    assert_eq!(text(&pki, "#heat-hol-23"), "2");
    assert_eq!(text(&pki, "#heat-0-23"), "0");
    assert_eq!(text(&pki, "#heat-0-20"), "1"); // D, an ordinary Monday evening
    assert_eq!(text(&pki, "#heat-1-23"), "2"); // C's pair, a Tuesday
    assert_eq!(text(&pki, "#heat-6-20"), "1"); // F, a Sunday
    assert_eq!(text(&pki, "#heat-total"), "8");
    assert_eq!(text(&pki, "#heat-hol-all"), "2");
    let cell = pki.select(&sel("#heat-hol-23")).next().unwrap();
    assert_eq!(cell.value().attr("class"), Some("n l5"));
    let row_totals: i64 = rows(&pki, "#heat")
        .iter()
        .map(|r| num(r.last().unwrap()))
        .sum();
    assert_eq!(row_totals, 8, "the heat map counts certificates");

    // Categories: E names an ac.jp and a jp name, so it counts in both.
    let cats = rows(&pki, "#categories");
    assert_eq!(cats[0], vec!["co.jp", "5", "1"]);
    assert!(cats.contains(&vec!["ac.jp".to_owned(), "1".to_owned(), "1".to_owned()]));
    let co = read(
        d,
        &format!("pki/category/{}.html", sitegen::pki::slug("co.jp")),
    );
    assert_eq!(text(&co, "#category-issuances"), "5");
    assert_eq!(text(&co, "#cas-total"), "5");
    assert_eq!(
        rows(&co, "#category-domain-list")[0][..2],
        ["example.co.jp", "5"]
    );

    // Per CA.
    let le = ca_page(d, "Let's Encrypt");
    assert_eq!(text(&le, "#ca-issuances"), "4");
    assert_eq!(text(&le, "#cas-total"), "4");
    let trust = ca_page(d, "Example Trust");
    assert_eq!(text(&trust, "#ca-issuances"), "1");

    // Organisations: C and D for Example K.K. (C OV at Example Trust, D EV at
    // Let's Encrypt); E for the stranger's.
    let orgs = read(d, "pki/org/index.html");
    assert_eq!(text(&orgs, "#org-count"), "2");
    let org_rows = rows(&orgs, "#orgs");
    assert_eq!(org_rows[0][1..3], ["Example K.K.", "2"]);
    let org = read(
        d,
        &format!("pki/org/{}.html", sitegen::pki::slug("Example K.K.")),
    );
    assert_eq!(text(&org, "#org-issuances"), "2");
    assert_eq!(rows(&org, "#org-latest").len(), 2);
    let v = rows(&org, "#org-validation");
    assert!(v.contains(&vec!["EV".to_owned(), "1".to_owned()]), "{v:?}");

    // The certificates page: the same totals, validation levels over issuances.
    let certs = read(d, "certificates/index.html");
    assert_eq!(text(&certs, "#cert-issuances"), "6");
    let levels = rows(&certs, "#validation");
    assert_eq!(levels.iter().map(|r| num(&r[1])).sum::<i64>(), 6);
    assert_eq!(levels[0][..2], ["DV", "3"]);
    let issuers = rows(&certs, "#issuers");
    assert_eq!(issuers[0], vec!["Let's Encrypt", "4", "66.7%"]);

    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["totals"]["issuances"], 6);
    assert_eq!(stats["issuances_by_ca"][0]["issuances"], 4);
    db.drop().await;
}

#[tokio::test]
async fn precertificate_and_certificate_are_one_issuance() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    // The latest issuances: one row per issuance (six), not per certificate.
    let certs = read(d, "certificates/index.html");
    let latest = rows(&certs, "#latest");
    assert_eq!(latest.len(), 6);
    // Newest by CT log time first: E (2 hours ago), then C (logged 43 days
    // ago, collected 3 hours ago).
    assert!(latest[0][1].contains(fixture::EVIL_NAME), "{:?}", latest[0]);
    assert!(latest[1][2].contains("Example Trust"), "{:?}", latest[1]);
    let a_row = certs.select(&sel("#latest tbody tr")).next_back().unwrap();
    let hrefs = links(a_row);
    assert!(
        hrefs.contains(&format!("../{}", cert_page(0x11))),
        "{hrefs:?}"
    );
    assert!(
        hrefs.contains(&format!("../{}", cert_page(0x12))),
        "{hrefs:?}"
    );

    // A's certificate: its precertificate twin, two sightings, the chain.
    let a = read(d, &cert_page(0x12));
    let fp12 = "12".repeat(32);
    assert_eq!(text(&a, "#fingerprint"), fp12);
    let crtsh = a.select(&sel("#crtsh")).next().unwrap();
    assert_eq!(
        crtsh.value().attr("href"),
        Some(format!("https://crt.sh/?sha256={fp12}").as_str())
    );
    let twin = a.select(&sel("#twin")).next().unwrap();
    assert!(all_text(&a).contains("Its precertificate"));
    assert!(links(twin).contains(&format!("../{}", cert_page(0x11))));
    assert_eq!(text(&a, "#sighting-count"), "2");
    let sightings = rows(&a, "#sightings");
    assert_eq!(sightings.len(), 2);
    assert!(
        sightings[0][0].contains("Log <b>B</b>"),
        "the earliest first: {sightings:?}"
    );
    assert!(sightings[1][0].contains("Test Log A"), "{sightings:?}");
    assert!(all_text(&a).contains("a national holiday, at night"));
    let chain = rows(&a, "#chain");
    assert_eq!(chain.len(), 3, "{chain:?}");
    assert!(chain[0][4].contains("this certificate"), "{chain:?}");
    assert!(
        chain[1][3].contains("renewed 30 days before the previous expired, same key"),
        "{chain:?}"
    );
    assert!(
        chain[2][3].contains(
            "renewed 5 days after the previous expired, new key, CA changed from Let's Encrypt"
        ),
        "{chain:?}"
    );
    assert_eq!(chain[2][2], "Example Trust");
    let current = a.select(&sel("#chain tr.current")).count();
    assert_eq!(current, 1);

    // The precertificate's page points back; it was logged once.
    let pre = read(d, &cert_page(0x11));
    assert!(all_text(&pre).contains("Its certificate"));
    assert_eq!(text(&pre, "#sighting-count"), "1");
    assert!(text(&pre, "h1").starts_with("Precertificate"));
    // B was logged as a final certificate only.
    let b = read(d, &cert_page(0x13));
    assert!(text(&b, "#twin").contains("No precertificate of this issuance has been seen"));
    let chain_b = rows(&b, "#chain");
    assert!(chain_b[1][4].contains("this certificate"), "{chain_b:?}");
    // Every field is there.
    let fields = text(&a, "#fields");
    for f in [
        "ecdsa-with-SHA256",
        "2.23.140.1.2.1",
        "aa:bb",
        "cc:dd",
        "90 days",
    ] {
        assert!(fields.contains(f), "{f} missing from {fields}");
    }
    assert!(fields.contains(&"a1".repeat(32)), "the key hash: {fields}");
    db.drop().await;
}

#[tokio::test]
async fn domain_timeline_and_lapses() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let dom = read(d, "domains/example.co.jp.html");
    assert_eq!(text(&dom, "#domain-issuances"), "5");
    assert_eq!(text(&dom, "#domain-renewals"), "2");
    assert_eq!(text(&dom, "#domain-ca-changes"), "1");
    let changes = rows(&dom, "#ca-changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0][2..], ["Let's Encrypt", "Example Trust", "5"]);
    let cas = rows(&dom, "#domain-cas");
    assert_eq!(
        cas,
        vec![vec!["Let's Encrypt", "4"], vec!["Example Trust", "1"]]
    );
    // Three sets of names: S1 (valid through C), shop (lapsed), mail (valid).
    let sets = rows(&dom, "#domain-sets");
    assert_eq!(sets.len(), 3, "{sets:?}");
    assert_eq!(text(&dom, "#domain-lapsed"), "1");
    let shop = sets.iter().find(|r| r[0] == "shop.example.co.jp").unwrap();
    assert_eq!(shop[4], "lapsed");
    let s1 = sets
        .iter()
        .find(|r| r[0].contains("www.example.co.jp"))
        .unwrap();
    assert_eq!(s1[1], "3");
    assert_eq!(s1[4], "valid");
    let names = rows(&dom, "#domain-names");
    assert_eq!(names.len(), 4);
    // The listed issuances link to their certificates' pages.
    let listed = dom.select(&sel("#domain-latest")).next().unwrap();
    assert!(links(listed).contains(&format!("../{}", cert_page(0x16))));

    let lapses = read(d, "pki/lapses.html");
    assert_eq!(text(&lapses, "#lapsed-count"), "1");
    assert_eq!(text(&lapses, "#lapsed-12m"), "1");
    let lapsed = rows(&lapses, "#lapses");
    assert_eq!(lapsed.len(), 1);
    assert_eq!(lapsed[0][0], "shop.example.co.jp");
    assert_eq!(lapsed[0][2], "Let's Encrypt");
    // F (mail) expires in 10 days.
    assert_eq!(text(&lapses, "#expiring-count"), "1");
    assert_eq!(rows(&lapses, "#lapsing")[0][0], "mail.example.co.jp");
    let home = read(d, "index.html");
    assert_eq!(text(&home, "#lapsed"), "1");
    let certs = read(d, "certificates/index.html");
    assert_eq!(text(&certs, "#expiring-count"), "1");
    db.drop().await;
}

/// "736 matches in the last 24 hours" next to "429 matching certificates":
/// the matches came from the workers' counters, which a check task
/// increments again for a range already stored. The home page counts stored
/// sightings instead.
#[tokio::test]
async fn home_counts_stored_sightings_not_task_matches() {
    let (db, dir) = fixture::rendered().await;
    let d = dir.path();
    let home = read(d, "index.html");
    // Stored in the last 24 hours: C's pair (collected 3 hours ago) and E.
    assert_eq!(text(&home, "#sightings-24h"), "3");
    assert_eq!(text(&home, "#certificates-24h"), "3");
    let t = all_text(&home);
    // The workers' counters say 2 + 3 matches in that hour; never shown as stored.
    assert!(!t.contains("matches"), "a match counter leaked: {t}");
    // Sightings never exceed what is stored, certificates never exceed sightings.
    let (s24, c24, s, c) = (
        num(&text(&home, "#sightings-24h")),
        num(&text(&home, "#certificates-24h")),
        num(&text(&home, "#total-sightings")),
        num(&text(&home, "#total-certificates")),
    );
    assert!(c24 <= s24 && s24 <= s && c <= s, "{c24} {s24} {s} {c}");
    let issuances = num(&text(&home, "#total-issuances"));
    assert!(issuances <= c, "an issuance is one or two certificates");
    // The same figures in stats.json.
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["totals"]["sightings_24h"], 3);
    assert_eq!(stats["totals"]["entries_collected"], 512);
    db.drop().await;
}
