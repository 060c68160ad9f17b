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

/// A certificate row to insert, with its names.
struct Cert<'a> {
    fp: u8,
    cn: &'a str,
    dn: &'a str,
    names: &'a [&'a str],
    issuer_o: &'a str,
    validation: &'a str,
    not_after: i64,
    first_seen: i64,
}

async fn cert(pool: &MySqlPool, c: Cert<'_>) -> u64 {
    let Cert {
        fp,
        cn,
        dn,
        names,
        issuer_o,
        validation,
        not_after,
        first_seen,
    } = c;
    let id = sqlx::query(
        "INSERT INTO certificates (fingerprint, entry_type, serial, subject_dn, subject_cn, issuer_dn, issuer_cn, \
         issuer_o, not_before, not_after, dns_names, ip_addresses, policies, validation, leaf_input, extra_data, first_seen) \
         VALUES (?, 'x509', '01', ?, ?, ?, 'Issuer CN', ?, ?, ?, ?, '[]', '[]', ?, x'00', x'00', ?)",
    )
    .bind(vec![fp; 32])
    .bind(dn)
    .bind(cn)
    .bind(format!("O={issuer_o}"))
    .bind(issuer_o)
    .bind(NOW - 80 * 86_400_000)
    .bind(not_after)
    .bind(serde_json::to_string(names).unwrap())
    .bind(validation)
    .bind(first_seen)
    .execute(pool)
    .await
    .unwrap()
    .last_insert_id();
    for n in names {
        sqlx::query("INSERT INTO names (certificate_id, name, category, registered_domain) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(n)
            .bind(categorize(n).as_str())
            .bind(registered_domain(n))
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO sightings (log_id, idx, certificate_id, leaf_hash, timestamp_ms, worker_id, task_id, created_at) \
         VALUES (1, ?, ?, ?, ?, 1, 1, ?)",
    )
    .bind(u64::from(fp))
    .bind(id)
    .bind(vec![fp; 32])
    .bind(first_seen)
    .bind(first_seen)
    .execute(pool)
    .await
    .unwrap();
    id
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
    sqlx::query(
        "INSERT INTO workers (id, name, token_hash, version, first_seen, last_seen, entries, matches, tasks_done) VALUES \
         (1, 'alice', 'a', '0.1.0', ?, ?, 700, 3, 2), (2, ?, 'b', NULL, ?, ?, 300, 1, 1)",
    )
    .bind(NOW - 10 * 86_400_000)
    .bind(NOW - 60_000)
    .bind(EVIL_WORKER)
    .bind(NOW - 10 * 86_400_000)
    .bind(NOW - 2 * 86_400_000)
    .execute(pool)
    .await
    .unwrap();
    for (minute, worker, log, entries, matches) in [
        ((NOW - 1_800_000) / 1000 / 60 * 60, 1, 1, 500, 2),
        ((NOW - 2 * 86_400_000) / 1000 / 60 * 60, 2, 2, 300, 1),
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
    cert(
        pool,
        Cert {
            fp: 1,
            cn: "www.example.co.jp",
            dn: "CN=www.example.co.jp",
            names: &["www.example.co.jp", "example.co.jp"],
            issuer_o: "Let's Encrypt",
            validation: "dv",
            not_after: NOW + 10 * 86_400_000,
            first_seen: NOW - 3_600_000,
        },
    )
    .await;
    cert(
        pool,
        Cert {
            fp: 2,
            cn: EVIL_NAME,
            dn: EVIL_DN,
            names: &[EVIL_NAME, EVIL_QUOTE],
            issuer_o: EVIL_ISSUER,
            validation: "ov",
            not_after: NOW + 200 * 86_400_000,
            first_seen: NOW - 2 * 3_600_000,
        },
    )
    .await;
    cert(
        pool,
        Cert {
            fp: 3,
            cn: "shop.example.co.jp",
            dn: "CN=shop.example.co.jp, O=Example",
            names: &["shop.example.co.jp"],
            issuer_o: "Let's Encrypt",
            validation: "ev",
            not_after: NOW + 100 * 86_400_000,
            first_seen: NOW - 2 * 86_400_000,
        },
    )
    .await;
    sqlx::query(
        "INSERT INTO failed_entries (log_id, idx, leaf_input, extra_data, error, created_at) VALUES (1, 7, x'00', x'00', 'bad', ?)",
    )
    .bind(NOW)
    .execute(pool)
    .await
    .unwrap();
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
