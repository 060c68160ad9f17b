//! A throw-away database with the migrations applied and known rows.

use std::path::{Path, PathBuf};

use ct_core::matcher::{categorize, registered_domain};
use sitegen::{Config, Site};
use sqlx::{Connection, MySqlPool};

pub const SERVER: &str = "mysql://root@127.0.0.1:3306";

pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: MySqlPool,
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!(
            "sitegen_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000_000
        );
        let mut admin = sqlx::MySqlConnection::connect(SERVER).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE `{name}`"))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = format!("{SERVER}/{name}");
        let pool = MySqlPool::connect(&url).await.unwrap();
        sqlx::migrate!("../migrations").run(&pool).await.unwrap();
        Self { name, url, pool }
    }

    pub async fn drop(self) {
        self.pool.close().await;
        let mut admin = sqlx::MySqlConnection::connect(SERVER).await.unwrap();
        sqlx::query(&format!("DROP DATABASE `{}`", self.name))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

pub const NOW: i64 = 1_795_000_000_000; // 2026-11-18T... UTC
pub const EVIL_NAME: &str = "<script>alert(1)</script>.jp";
pub const EVIL_QUOTE: &str = "evil\"quote'.ac.jp";
pub const EVIL_DN: &str = "CN=\"><script>alert('dn')</script>";
pub const EVIL_ISSUER: &str = "Evil \"CA\" <img src=x onerror=alert(2)>";
pub const EVIL_WORKER: &str = "bob\"<i>x</i>";

pub const EVIL_ORG: &str = "<b>Evil</b> K.K.";
pub const DAY_S: i64 = 86_400;

/// Seconds of the constructed history (see [`history`]).
pub const A_LOGGED_MS: i64 = 1_777_905_000_000; // 2026-05-04 23:30 JST, Greenery Day (a Monday)
pub const A_NB: i64 = A_LOGGED_MS / 1000 - 60;
pub const B_NB: i64 = A_NB + 60 * DAY_S;
pub const C_NB: i64 = B_NB + 90 * DAY_S + 5 * DAY_S;
pub const D_NB: i64 = NOW / 1000 - 100 * DAY_S;
pub const E_LOGGED_MS: i64 = NOW - 2 * 3_600_000;
pub const F_NB: i64 = NOW / 1000 - 80 * DAY_S;

/// One certificate of an issuance: id, fingerprint byte, and its sightings
/// `(log, index, CT timestamp ms, stored at ms)`.
pub struct Cert {
    pub id: u64,
    pub fp: u8,
    pub sightings: &'static [(u64, u64, i64, i64)],
}

/// An issuance: a precertificate and/or its final certificate.
pub struct Issuance {
    pub id: u64,
    pub serial: &'static str,
    pub names: &'static [&'static str],
    pub issuer_o: &'static str,
    pub subject_o: Option<&'static str>,
    pub subject_dn: &'static str,
    pub validation: &'static str,
    pub not_before: i64,
    pub days: i64,
    pub key: u8,
    pub precert: Option<Cert>,
    pub cert: Option<Cert>,
}

const S1: &[&str] = &["example.co.jp", "www.example.co.jp"];
pub const LE: &str = "Let's Encrypt";
pub const TRUST: &str = "Example Trust";

/// The constructed history:
/// - A: precertificate (log 1) and certificate (logs 2 and 1) of
///   example.co.jp + www, first logged on a holiday night; 90 days.
/// - B: renews A's names 30 days before A expires, same key, same CA.
/// - C: renews B 5 days after B expired, new key, another CA (OV), 398 days;
///   collected only 3 hours ago (a backfill), though logged 43 days ago.
/// - D: shop.example.co.jp, 47 days (EV), expired 53 days ago unrenewed: a lapse.
/// - E: the stranger's names, logged 2 hours ago, 825 days.
/// - F: mail.example.co.jp, 90 days, expires in 10 days.
pub fn history() -> Vec<Issuance> {
    let h = 3_600_000;
    let a = A_LOGGED_MS;
    let b = (B_NB + 120) * 1000;
    let c = (C_NB + 60) * 1000;
    let d = (D_NB + 60) * 1000;
    let f = (F_NB + 60) * 1000;
    vec![
        Issuance {
            id: 1,
            serial: "0a01",
            names: S1,
            issuer_o: LE,
            subject_o: None,
            subject_dn: "CN=example.co.jp",
            validation: "dv",
            not_before: A_NB,
            days: 90,
            key: 0xa1,
            precert: Some(Cert {
                id: 1,
                fp: 0x11,
                sightings: leak(vec![(1, 11, a, a + h)]),
            }),
            cert: Some(Cert {
                id: 2,
                fp: 0x12,
                sightings: leak(vec![
                    (1, 12, a + 300_000, a + h),
                    (2, 5, a + 60_000, a + 2 * h),
                ]),
            }),
        },
        Issuance {
            id: 2,
            serial: "0b02",
            names: S1,
            issuer_o: LE,
            subject_o: None,
            subject_dn: "CN=example.co.jp",
            validation: "dv",
            not_before: B_NB,
            days: 90,
            key: 0xa1,
            precert: None,
            cert: Some(Cert {
                id: 3,
                fp: 0x13,
                sightings: leak(vec![(1, 13, b, b + h)]),
            }),
        },
        Issuance {
            id: 3,
            serial: "0c03",
            names: S1,
            issuer_o: TRUST,
            subject_o: Some("Example K.K."),
            subject_dn: "CN=example.co.jp, O=Example K.K.",
            validation: "ov",
            not_before: C_NB,
            days: 398,
            key: 0xc3,
            precert: Some(Cert {
                id: 4,
                fp: 0x14,
                sightings: leak(vec![(1, 14, c, NOW - 3 * h)]),
            }),
            cert: Some(Cert {
                id: 5,
                fp: 0x15,
                sightings: leak(vec![(1, 15, c + 120_000, NOW - 3 * h)]),
            }),
        },
        Issuance {
            id: 4,
            serial: "0d04",
            names: &["shop.example.co.jp"],
            issuer_o: LE,
            subject_o: Some("Example K.K."),
            subject_dn: "CN=shop.example.co.jp, O=Example K.K.",
            validation: "ev",
            not_before: D_NB,
            days: 47,
            key: 0xd4,
            precert: None,
            cert: Some(Cert {
                id: 6,
                fp: 0x16,
                sightings: leak(vec![(1, 16, d, d + h)]),
            }),
        },
        Issuance {
            id: 5,
            serial: "0e05",
            names: &[EVIL_NAME, EVIL_QUOTE],
            issuer_o: EVIL_ISSUER,
            subject_o: Some(EVIL_ORG),
            subject_dn: EVIL_DN,
            validation: "ov",
            not_before: E_LOGGED_MS / 1000 - 60,
            days: 825,
            key: 0xe5,
            precert: None,
            cert: Some(Cert {
                id: 7,
                fp: 0x17,
                sightings: leak(vec![(2, 17, E_LOGGED_MS, NOW - h)]),
            }),
        },
        Issuance {
            id: 6,
            serial: "0f06",
            names: &["mail.example.co.jp"],
            issuer_o: LE,
            subject_o: None,
            subject_dn: "CN=mail.example.co.jp",
            validation: "dv",
            not_before: F_NB,
            days: 90,
            key: 0xf6,
            precert: None,
            cert: Some(Cert {
                id: 8,
                fp: 0x18,
                sightings: leak(vec![(1, 18, f, f + h)]),
            }),
        },
    ]
}

fn leak(v: Vec<(u64, u64, i64, i64)>) -> &'static [(u64, u64, i64, i64)] {
    Box::leak(v.into_boxed_slice())
}

/// Whether a CT timestamp falls on a holiday in JST. The holidays are the
/// fixture's dates only (the other JST columns are generated from the
/// timestamp).
pub fn jst_holiday(ms: i64) -> bool {
    let day = (ms + 9 * 3_600_000).div_euclid(86_400_000);
    let epoch = jiff::civil::date(1970, 1, 1);
    let holidays = [
        jiff::civil::date(2026, 5, 4),
        jiff::civil::date(2026, 5, 5),
        jiff::civil::date(2026, 5, 6),
        jiff::civil::date(2026, 11, 3),
        jiff::civil::date(2026, 11, 23),
    ];
    holidays
        .iter()
        .any(|d| (*d - epoch).get_days() as i64 == day)
}

/// Inserts the history: certificates, names, sightings, the analysis rows
/// the job would write, and the rollups (built by the same definitions).
pub async fn fill_history(pool: &MySqlPool) {
    for i in history() {
        let names_json = serde_json::to_string(i.names).unwrap();
        let na = i.not_before + i.days * DAY_S - 1;
        let mut first_logged: Option<i64> = None;
        for (kind, c) in [("precert", &i.precert), ("x509", &i.cert)] {
            let Some(c) = c else { continue };
            let stored = c.sightings.iter().map(|s| s.3).min().unwrap();
            let logged = c.sightings.iter().map(|s| s.2).min().unwrap();
            first_logged = Some(first_logged.map_or(logged, |t: i64| t.min(logged)));
            sqlx::query(
                "INSERT INTO certificates (id, fingerprint, entry_type, serial, subject_dn, subject_cn, subject_o, issuer_dn, \
                 issuer_cn, issuer_o, not_before, not_after, dns_names, ip_addresses, key_algorithm, key_bits, \
                 signature_algorithm, policies, validation, leaf_input, extra_data, first_seen) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'Issuer CN', ?, ?, ?, ?, '[]', 'ECDSA', 256, 'ecdsa-with-SHA256', \
                 '[\"2.23.140.1.2.1\"]', ?, x'00', x'00', ?)",
            )
            .bind(c.id)
            .bind(vec![c.fp; 32])
            .bind(kind)
            .bind(i.serial)
            .bind(i.subject_dn)
            .bind(i.names[0])
            .bind(i.subject_o)
            .bind(format!("C=US, O={}, CN=Issuer CN", i.issuer_o))
            .bind(i.issuer_o)
            .bind(i.not_before)
            .bind(na)
            .bind(&names_json)
            .bind(i.validation)
            .bind(stored)
            .execute(pool)
            .await
            .unwrap();
            for n in i.names {
                sqlx::query("INSERT INTO names (certificate_id, name, category, registered_domain) VALUES (?, ?, ?, ?)")
                    .bind(c.id)
                    .bind(n)
                    .bind(categorize(n).as_str())
                    .bind(registered_domain(n))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            for &(log, idx, ts, created) in c.sightings {
                sqlx::query(
                    "INSERT INTO sightings (log_id, idx, certificate_id, leaf_hash, timestamp_ms, worker_id, task_id, created_at) \
                     VALUES (?, ?, ?, ?, ?, 1, 1, ?)",
                )
                .bind(log)
                .bind(idx)
                .bind(c.id)
                .bind(vec![c.fp; 32])
                .bind(ts)
                .bind(created)
                .execute(pool)
                .await
                .unwrap();
            }
            // The other JST columns are computed from first_logged_at_ms.
            let holiday = jst_holiday(logged);
            sqlx::query(
                "INSERT INTO cert_analysis (certificate_id, issuance_id, spki_sha256, authority_key_id, subject_key_id, \
                 san_count, is_wildcard, has_crl, has_ocsp, subject_c, issuer_c, validation, validation_inferred, \
                 validity_days, first_logged_at_ms, jst_holiday) \
                 VALUES (?, ?, ?, 'aa:bb', 'cc:dd', ?, 0, 1, 1, 'JP', 'US', ?, 0, ?, ?, ?)",
            )
            .bind(c.id)
            .bind(i.id)
            .bind(vec![i.key; 32])
            .bind(i.names.len() as u32)
            .bind(i.validation)
            .bind(i.days)
            .bind(logged)
            .bind(holiday)
            .execute(pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO issuances (id, issuance_key, serial, issuer_dn, issuer_o, subject_o, precert_certificate_id, \
             cert_certificate_id, names_key, names, not_before, not_after, validity_days, spki_sha256, first_logged_at_ms) \
             VALUES (?, UNHEX(SHA2(?, 256)), ?, ?, ?, ?, ?, ?, UNHEX(SHA2(?, 256)), ?, ?, ?, ?, ?, ?)",
        )
        .bind(i.id)
        .bind(format!("C=US, O={}, CN=Issuer CN\0{}", i.issuer_o, i.serial))
        .bind(i.serial)
        .bind(format!("C=US, O={}, CN=Issuer CN", i.issuer_o))
        .bind(i.issuer_o)
        .bind(i.subject_o)
        .bind(i.precert.as_ref().map(|c| c.id))
        .bind(i.cert.as_ref().map(|c| c.id))
        .bind(i.names.join("\n"))
        .bind(&names_json)
        .bind(i.not_before)
        .bind(na)
        .bind(i.days)
        .bind(vec![i.key; 32])
        .bind(first_logged)
        .execute(pool)
        .await
        .unwrap();
    }
    let q = |s: &'static str| sqlx::query(s);
    // The renewal chain of S1: B renews A (30 days of overlap, same key),
    // C renews B (5 days later, new key, another CA).
    q("INSERT INTO renewals (issuance_id, previous_issuance_id, names_key, gap_days, same_key, ca_changed) \
       SELECT 2, 1, names_key, -30, 1, 0 FROM issuances WHERE id = 1 \
       UNION ALL SELECT 3, 2, names_key, 5, 0, 1 FROM issuances WHERE id = 1")
        .execute(pool)
        .await
        .unwrap();
    q("INSERT INTO name_sets (names_key, names, issuances, first_not_before, latest_issuance_id, latest_not_after, latest_issuer_o) \
       SELECT i.names_key, MIN(i.names), COUNT(*), MIN(i.not_before), \
         (SELECT l.id FROM issuances l WHERE l.names_key = i.names_key ORDER BY l.not_before DESC, l.id DESC LIMIT 1), \
         (SELECT l.not_after FROM issuances l WHERE l.names_key = i.names_key ORDER BY l.not_before DESC, l.id DESC LIMIT 1), \
         (SELECT l.issuer_o FROM issuances l WHERE l.names_key = i.names_key ORDER BY l.not_before DESC, l.id DESC LIMIT 1) \
       FROM issuances i GROUP BY i.names_key")
        .execute(pool)
        .await
        .unwrap();
    // The job's rollups, by its definitions (manager::analyse; rollup_day,
    // rollup_ca and rollup_bucket are generated columns).
    q("INSERT INTO rollup_issuances (day, ca, bucket, issuances) \
       SELECT rollup_day, rollup_ca, rollup_bucket, COUNT(*) FROM issuances GROUP BY 1, 2, 3")
    .execute(pool)
    .await
    .unwrap();
    q(
        "INSERT INTO rollup_jst (weekday, hour, holiday, certificates) \
       SELECT jst_weekday, jst_hour, jst_holiday, COUNT(*) FROM cert_analysis GROUP BY 1, 2, 3",
    )
    .execute(pool)
    .await
    .unwrap();
    // The site's rollups: the statements that build them in their migration.
    for stmt in site_rollup_statements() {
        sqlx::query(&stmt).execute(pool).await.unwrap();
    }
}

/// The `INSERT … SELECT` statements at the end of `*_site.sql`.
fn site_rollup_statements() -> Vec<String> {
    let sql = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/20261201000005_site.sql"),
    )
    .unwrap();
    let (_, build) = sql.split_once("-- Build everything").unwrap();
    build
        .split(";\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| s.trim_start().starts_with("INSERT"))
        .collect()
}

/// Fills the known rows every page test asserts on.
pub async fn fill(pool: &MySqlPool) {
    let q = |s: &'static str| sqlx::query(s);
    for (id, url, desc) in [
        (1, "https://ct.example/a/", "Test Log A"),
        (2, "https://ct.example/b/", "Log <b>B</b> \"quoted\""),
    ] {
        sqlx::query(
            "INSERT INTO logs (id, url, kind, public_key, log_id, description, operator, state, created_at, updated_at, last_polled_at) \
             VALUES (?, ?, 'rfc6962', x'00', ?, ?, 'Example Op', 'usable', ?, ?, ?)",
        )
        .bind(id)
        .bind(url)
        .bind(vec![id as u8; 32])
        .bind(desc)
        .bind(NOW)
        .bind(NOW)
        .bind(NOW - 60_000)
        .execute(pool)
        .await
        .unwrap();
    }
    for (log, size, ts, verified) in [
        (1, 900, NOW - 7_200_000, 1),
        (1, 1000, NOW - 3_600_000, 1),
        (2, 500, NOW - 3_600_000, 1),
        (2, 600, NOW - 1_800_000, 0),
    ] {
        sqlx::query(
            "INSERT INTO sths (log_id, tree_size, timestamp_ms, root_hash, signature, verified, fetched_at) \
             VALUES (?, ?, ?, ?, x'00', ?, ?)",
        )
        .bind(log)
        .bind(size)
        .bind(ts)
        .bind(vec![size as u8; 32])
        .bind(verified)
        .bind(ts + 1000)
        .execute(pool)
        .await
        .unwrap();
    }
    // log 1: [0,256) done+verified, [256,512) the log's fault, [512,768) leased
    // at 600, [768,1000) pending, and a check task of [0,256) that must not
    // count twice.
    q("INSERT INTO tasks (log_id, start_index, end_index, state, next_index, entries, errors, rate_limited, subtree_hash, proof_state, check_of, created_at) VALUES \
       (1, 0, 256, 'done', 256, 256, 3, 2, x'0101010101010101010101010101010101010101010101010101010101010101', 'verified', 0, 0), \
       (1, 256, 512, 'log_fault', 256, 256, 0, 0, NULL, NULL, 0, 0), \
       (1, 512, 768, 'leased', 600, 0, 0, 0, NULL, NULL, 0, 0), \
       (1, 768, 1000, 'pending', 768, 0, 0, 0, NULL, NULL, 0, 0), \
       (1, 0, 256, 'pending', 0, 0, 0, 0, NULL, NULL, 1, 0), \
       (2, 0, 256, 'done', 256, 256, 0, 5, NULL, 'verified', 0, 0)")
        .execute(pool)
        .await
        .unwrap();
    fill_fleet(pool).await;
    for (minute, worker, log, entries, matches) in [
        ((NOW - 1_800_000) / 1000 / 60 * 60, 1, 1, 500, 2),
        ((NOW - 2 * 86_400_000) / 1000 / 60 * 60, 2, 2, 300, 1),
        // bob's check task of log 1's [0, 256): the range and its 3 matches
        // again. Stored sightings do not grow.
        ((NOW - 3_000_000) / 1000 / 60 * 60, 2, 1, 256, 3),
        // alice's second machine, five days ago.
        ((NOW - 5 * 86_400_000) / 1000 / 60 * 60, 3, 2, 300, 2),
    ] {
        sqlx::query(
            "INSERT INTO stats_minute (minute, worker_id, log_id, entries, matches, errors, rate_limit_hits) VALUES (?, ?, ?, ?, ?, 1, 1)",
        )
        .bind(minute)
        .bind(worker)
        .bind(log)
        .bind(entries)
        .bind(matches)
        .execute(pool)
        .await
        .unwrap();
    }
    fill_history(pool).await;
    sqlx::query(
        "INSERT INTO failed_entries (log_id, idx, leaf_input, extra_data, error, created_at) VALUES (1, 7, x'00', x'00', 'bad', ?)",
    )
    .bind(NOW)
    .execute(pool)
    .await
    .unwrap();
}

/// The start of the hour holding [`NOW`] (6 min 40 s before it).
pub const HOUR0: i64 = NOW - NOW % 3_600_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// The volunteers and the operations tables:
/// - alice (one identity, a secret) on two machines: 1 (700 entries, 3
///   matches, 2 tasks, seen a minute ago) and 3 (300, 2, 1; registered
///   yesterday, seen 5 minutes ago), which holds log 1's `[512, 768)`;
/// - bob (`EVIL_WORKER`) on machine 2, idle for two days;
/// - mallory on machine 4, flagged: 5,000 entries would put it first, and
///   it holds a lease of log 2; neither is public.
/// - leases ended (`task_outcomes`): in this hour 2 completed (100 s and
///   110 s, on two shards) and 1 failed (20 s) on log 1; 5 hours ago 2
///   expired (600 s and 700 s) on log 2; 30 hours ago 1 refused (40 s) and
///   1 completed check (90 s) on log 1; 50 hours ago, outside the 48 hours
///   shown, 10 completed.
/// - progress snapshots: log 1 now 256 of 1,000 collected (256 faulty) and
///   none 24 hours before; log 2 256 of 500 an hour ago, none 48 hours ago.
/// - daily ranks: today alice 1st and bob 2nd; yesterday bob 1st, mallory
///   2nd, alice 3rd.
pub async fn fill_fleet(pool: &MySqlPool) {
    sqlx::query(
        "INSERT INTO identities (id, name, secret_hash, created_at) VALUES \
         (1, 'alice', REPEAT('a', 64), ?), (2, ?, NULL, ?), (3, 'mallory', NULL, ?)",
    )
    .bind(NOW - 10 * DAY)
    .bind(EVIL_WORKER)
    .bind(NOW - 10 * DAY)
    .bind(NOW - 20 * DAY)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO workers (id, name, identity_id, token_hash, version, first_seen, last_seen, entries, matches, \
         tasks_done, flagged) VALUES \
         (1, 'alice', 1, 'a', '0.1.0', ?, ?, 700, 3, 2, 0), (2, ?, 2, 'b', NULL, ?, ?, 556, 4, 2, 0), \
         (3, 'alice', 1, 'c', '0.2.0', ?, ?, 300, 2, 1, 0), (4, 'mallory', 3, 'd', '0.1.0', ?, ?, 5000, 40, 20, 1)",
    )
    .bind(NOW - 10 * DAY)
    .bind(NOW - 60_000)
    .bind(EVIL_WORKER)
    .bind(NOW - 10 * DAY)
    .bind(NOW - 2 * DAY)
    .bind(NOW - DAY)
    .bind(NOW - 300_000)
    .bind(NOW - 20 * DAY)
    .bind(NOW - 3 * DAY)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE tasks SET lease_holder = 3, leased_at = ?, lease_expires_at = ? \
         WHERE log_id = 1 AND start_index = 512 AND state = 'leased'",
    )
    .bind(NOW - 120_000)
    .bind(NOW + 480_000)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tasks (log_id, start_index, end_index, state, next_index, lease_holder, leased_at, \
         lease_expires_at, check_of, created_at) VALUES (2, 256, 384, 'leased', 300, 4, ?, ?, 0, 0)",
    )
    .bind(NOW - 60_000)
    .bind(NOW + 540_000)
    .execute(pool)
    .await
    .unwrap();
    for (hour, log, outcome, check, bucket, shard, n, entries, sum, max) in [
        (HOUR0, 1, "completed", 0, 7, 0, 1, 256, 100_000, 100_000),
        (HOUR0, 1, "completed", 0, 7, 3, 1, 256, 110_000, 110_000),
        (HOUR0, 1, "failed", 0, 5, 0, 1, 256, 20_000, 20_000),
        (
            HOUR0 - 5 * HOUR,
            2,
            "expired",
            0,
            10,
            0,
            2,
            512,
            1_300_000,
            700_000,
        ),
        (
            HOUR0 - 30 * HOUR,
            1,
            "refused",
            0,
            6,
            0,
            1,
            256,
            40_000,
            40_000,
        ),
        (
            HOUR0 - 30 * HOUR,
            1,
            "completed",
            1,
            7,
            0,
            1,
            256,
            90_000,
            90_000,
        ),
        (
            HOUR0 - 50 * HOUR,
            1,
            "completed",
            0,
            7,
            0,
            10,
            2560,
            1_000_000,
            100_000,
        ),
    ] {
        sqlx::query(
            "INSERT INTO task_outcomes (hour, log_id, outcome, is_check, bucket, shard, n, entries, \
             duration_ms_sum, duration_ms_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(hour)
        .bind(log)
        .bind(outcome)
        .bind(check)
        .bind(bucket)
        .bind(shard)
        .bind(n)
        .bind(entries)
        .bind(sum)
        .bind(max)
        .execute(pool)
        .await
        .unwrap();
    }
    for (log, hour, tree, collected, faulty) in [
        (1, HOUR0, 1000, 256, 256),
        (1, HOUR0 - 24 * HOUR, 900, 0, 0),
        (2, HOUR0 - HOUR, 500, 256, 0),
        (2, HOUR0 - 48 * HOUR, 500, 0, 0),
    ] {
        sqlx::query(
            "INSERT INTO log_progress_history (log_id, hour, taken_at, tree_size, entries_collected, \
             verified_until, entries_faulty, entries_missing) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(log)
        .bind(hour)
        .bind(hour + 60_000)
        .bind(tree)
        .bind(collected)
        .bind(collected)
        .bind(faulty)
        .bind(tree - collected - faulty)
        .execute(pool)
        .await
        .unwrap();
    }
    let today = NOW - NOW % DAY;
    for (day, name, place, entries, machines) in [
        (today, "alice", 1, 1000, 2),
        (today, EVIL_WORKER, 2, 556, 1),
        (today - DAY, EVIL_WORKER, 1, 556, 1),
        (today - DAY, "mallory", 2, 4000, 1),
        (today - DAY, "alice", 3, 400, 1),
    ] {
        sqlx::query(
            "INSERT INTO rank_snapshots (day, name, place, entries, matches, tasks_done, machines, taken_at) \
             VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
        )
        .bind(day)
        .bind(name)
        .bind(place)
        .bind(entries)
        .bind(machines)
        .bind(day + HOUR)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// A database with the known rows, rendered into a temp folder.
pub async fn rendered() -> (TestDb, tempfile::TempDir) {
    let db = TestDb::new().await;
    fill(&db.pool).await;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(Config::for_tests());
    site.build_into(&db.pool, dir.path(), NOW).await.unwrap();
    (db, dir)
}

/// Every file under `dir`, relative paths.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The workspace target folder (screenshots go there).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}
