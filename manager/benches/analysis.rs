//! The analysis job over generated stored certificates (issue 14): fills a
//! throw-away database with N certificates (rcgen templates with their names
//! and serials patched in place: name sets of four issuances, each a renewal
//! of the one before, half of them a precertificate and its certificate),
//! then times, in one run:
//!
//! - the baseline: reading every stored leaf and parsing it with ct-core
//!   (what any analysis must at least do), on every core;
//! - the first `Analyser::run` over everything (analysis fields, issuances, renewal
//!   chains, rollups, all written);
//! - a rerun with nothing new.
//!
//! `scripts/bench-analysis` runs it; env BENCH_CERTS (1,000,000), BENCH_DB
//! (ctjp_bench_analysis), DATABASE_URL (mysql://root@127.0.0.1:3306),
//! BENCH_KEEP=1 keeps a filled database and reuses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use ct_core::leaf::{EntryType, TimestampedEntry, decode_leaf, encode_leaf};
use ct_core::matcher::Matcher;
use manager::analyse::Analyser;
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, Issuer, KeyPair, PublicKeyData,
    SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use sqlx::{MySqlPool, QueryBuilder};

const DAY: i64 = 86_400;
const NAME_MARK: &[u8] = b"n00000000.bench";
const SERIAL_MARK: [u8; 8] = [0x5a, 0xa5, 0x3c, 0xc3, 0x69, 0x96, 0x0f, 0xf0];

struct Template {
    entry_type: EntryType,
    signed: Vec<u8>,
    name_at: Vec<usize>,
    serial_at: usize,
    issuer_key_hash: [u8; 32],
    issuer_dn: String,
    issuer_o: String,
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

fn ca(o: &str) -> (Issuer<'static, KeyPair>, [u8; 32], String) {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::OrganizationName, o);
    dn.push(DnType::CommonName, format!("{o} R1"));
    p.distinguished_name = dn;
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let hash = Sha256::digest(key.subject_public_key_info()).into();
    (Issuer::new(p, key), hash, format!("C=JP, O={o}, CN={o} R1"))
}

/// Templates by (step 0..4, precert): steps 60 days apart with 90 days of
/// validity (30 days of overlap), a new key from step 2, another CA at step 3.
fn templates() -> Vec<Template> {
    let cas = [ca("Alpha CA"), ca("Beta CA")];
    let keys = [KeyPair::generate().unwrap(), KeyPair::generate().unwrap()];
    let mut out = Vec::new();
    for step in 0..4i64 {
        for precert in [false, true] {
            let name = std::str::from_utf8(NAME_MARK).unwrap();
            let mut p = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, format!("{name}.jp"));
            p.distinguished_name = dn;
            for n in [format!("{name}.jp"), format!("www.{name}.jp")] {
                p.subject_alt_names
                    .push(SanType::DnsName(n.as_str().try_into().unwrap()));
            }
            let mut serial = vec![0x3c];
            serial.extend_from_slice(&SERIAL_MARK);
            p.serial_number = Some(SerialNumber::from(serial));
            let nb = 1_700_000_000 + step * 60 * DAY;
            p.not_before = time::OffsetDateTime::from_unix_timestamp(nb).unwrap();
            p.not_after = time::OffsetDateTime::from_unix_timestamp(nb + 90 * DAY - 1).unwrap();
            p.use_authority_key_identifier_extension = true;
            let (issuer, hash, dn) = &cas[usize::from(step == 3)];
            let key = &keys[usize::from(step >= 2)];
            if precert {
                let mut poison = CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3],
                    vec![0x05, 0x00],
                );
                poison.set_criticality(true);
                p.custom_extensions.push(poison);
            }
            let der = p.signed_by(key, issuer).unwrap().der().to_vec();
            let signed = if precert {
                use x509_parser::prelude::FromDer;
                let (_, c) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
                c.tbs_certificate.as_ref().to_vec()
            } else {
                der
            };
            let name_at = find_all(&signed, NAME_MARK);
            let serial_at = find_all(&signed, &SERIAL_MARK)[0];
            out.push(Template {
                entry_type: if precert {
                    EntryType::Precert
                } else {
                    EntryType::X509
                },
                signed,
                name_at,
                serial_at,
                issuer_key_hash: *hash,
                issuer_dn: dn.clone(),
                issuer_o: if step == 3 { "Beta CA" } else { "Alpha CA" }.into(),
            });
        }
    }
    out
}

struct Row {
    fingerprint: [u8; 32],
    entry_type: &'static str,
    serial: String,
    issuer_dn: String,
    issuer_o: String,
    names: [String; 2],
    leaf: Vec<u8>,
    leaf_hash: [u8; 32],
    timestamp_ms: u64,
}

/// The `n`-th generated certificate: issuance `n / 2` or so (see below).
fn row(templates: &[Template], issuance: u64, precert: bool) -> Row {
    let set = issuance / 4;
    let step = (issuance % 4) as usize;
    let t = &templates[step * 2 + usize::from(precert)];
    let mut signed = t.signed.clone();
    let label = format!("n{:08x}", set & 0xffff_ffff);
    for at in &t.name_at {
        signed[*at..*at + 9].copy_from_slice(label.as_bytes());
    }
    signed[t.serial_at..t.serial_at + 8].copy_from_slice(&issuance.to_be_bytes());
    let ts = 1_700_000_000_000 + step as u64 * 60 * 86_400_000 + set * 7_000 + u64::from(precert);
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: ts,
        entry_type: t.entry_type,
        issuer_key_hash: precert.then_some(t.issuer_key_hash),
        signed: &signed,
        extensions: &[],
    });
    let mut h = Sha256::new();
    h.update([0]);
    h.update(&leaf);
    Row {
        fingerprint: Sha256::digest(&signed).into(),
        entry_type: t.entry_type.as_str(),
        serial: format!("3c{issuance:016x}"),
        issuer_dn: t.issuer_dn.clone(),
        issuer_o: t.issuer_o.clone(),
        names: [format!("{label}.bench.jp"), format!("www.{label}.bench.jp")],
        leaf,
        leaf_hash: h.finalize().into(),
        timestamp_ms: ts,
    }
}

async fn fill(pool: &MySqlPool, n: u64) {
    let templates = templates();
    sqlx::query(
        "INSERT INTO logs (id, url, kind, public_key, log_id, description, operator, state, created_at, updated_at) \
         VALUES (1, 'https://bench.example/log/', 'rfc6962', x'00', x'00', 'bench', 'bench', 'usable', 0, 0)",
    )
    .execute(pool)
    .await
    .unwrap();
    let started = Instant::now();
    let (mut made, mut issuance) = (0u64, 0u64);
    while made < n {
        let mut rows = Vec::with_capacity(2_000);
        while rows.len() < 2_000 && made < n {
            // Even name sets are logged as a precertificate and its certificate.
            if (issuance / 4) % 2 == 0 && made + 1 < n {
                rows.push(row(&templates, issuance, true));
                made += 1;
            }
            rows.push(row(&templates, issuance, false));
            made += 1;
            issuance += 1;
        }
        let first_id: u64 = made - rows.len() as u64 + 1;
        let mut q = QueryBuilder::new(
            "INSERT INTO certificates (id, fingerprint, entry_type, serial, issuer_dn, issuer_o, dns_names, \
             ip_addresses, policies, leaf_input, extra_data, first_seen) ",
        );
        q.push_values(rows.iter().enumerate(), |mut b, (i, r)| {
            b.push_bind(first_id + i as u64)
                .push_bind(r.fingerprint.to_vec())
                .push_bind(r.entry_type)
                .push_bind(&r.serial)
                .push_bind(&r.issuer_dn)
                .push_bind(&r.issuer_o)
                .push_bind(serde_json::to_string(&r.names).unwrap())
                .push_bind("[]")
                .push_bind("[]")
                .push_bind(&r.leaf)
                .push_bind(Vec::<u8>::new())
                .push_bind(0i64);
        });
        let mut tx = pool.begin().await.unwrap();
        q.build().execute(&mut *tx).await.unwrap();
        let mut q = QueryBuilder::new(
            "INSERT INTO sightings (log_id, idx, certificate_id, leaf_hash, timestamp_ms, created_at) ",
        );
        q.push_values(rows.iter().enumerate(), |mut b, (i, r)| {
            let id = first_id + i as u64;
            b.push_bind(1u64)
                .push_bind(id)
                .push_bind(id)
                .push_bind(r.leaf_hash.to_vec())
                .push_bind(r.timestamp_ms)
                .push_bind(0i64);
        });
        q.build().execute(&mut *tx).await.unwrap();
        let mut q = QueryBuilder::new(
            "INSERT INTO names (certificate_id, name, category, registered_domain) ",
        );
        let names: Vec<(u64, &String)> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.names.iter().map(move |n| (first_id + i as u64, n)))
            .collect();
        q.push_values(names, |mut b, (id, name)| {
            b.push_bind(id)
                .push_bind(name)
                .push_bind("jp")
                .push_bind(ct_core::matcher::registered_domain(name));
        });
        q.build().execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    println!(
        "filled {n} certificates ({issuance} issuances) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Waits (at most two minutes) until InnoDB has written the fill's dirty
/// pages, so that neither timed run pays for the fill's deferred writes.
async fn settle(pool: &MySqlPool) {
    let was: f64 = sqlx::query_scalar("SELECT @@innodb_max_dirty_pages_pct")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("SET GLOBAL innodb_max_dirty_pages_pct = 0")
        .execute(pool)
        .await
        .unwrap();
    let started = Instant::now();
    let dirty = || async {
        let (_, n): (String, String) =
            sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                .fetch_one(pool)
                .await
                .unwrap();
        n.parse::<u64>().unwrap_or(0)
    };
    let before = dirty().await;
    while dirty().await > 1_000 && started.elapsed().as_secs() < 120 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    sqlx::query(&format!("SET GLOBAL innodb_max_dirty_pages_pct = {was}"))
        .execute(pool)
        .await
        .unwrap();
    println!(
        "settled: {before} dirty pages written in {:.1} s, {} left",
        started.elapsed().as_secs_f64(),
        dirty().await
    );
}

/// The baseline: read every stored leaf and parse it, on every core.
async fn read_and_parse(pool: &MySqlPool) -> u64 {
    let mut last = 0u64;
    let mut parsed = 0u64;
    loop {
        let rows: Vec<(u64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, leaf_input FROM certificates WHERE id > ? ORDER BY id LIMIT 5000",
        )
        .bind(last)
        .fetch_all(pool)
        .await
        .unwrap();
        let Some(&(end, _)) = rows.last() else {
            return parsed;
        };
        last = end;
        parsed += tokio::task::spawn_blocking(move || {
            let half = rows.len() / 2;
            let (a, b) = rows.split_at(half);
            let parse = |part: &[(u64, Vec<u8>)]| {
                part.iter()
                    .filter(|(_, leaf)| {
                        decode_leaf(leaf).is_ok_and(|e| {
                            ct_core::cert::extract(e.signed, e.entry_type == EntryType::Precert)
                                .is_ok()
                        })
                    })
                    .count() as u64
            };
            std::thread::scope(|s| {
                let h = s.spawn(|| parse(a));
                parse(b) + h.join().unwrap()
            })
        })
        .await
        .unwrap();
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error")),
        )
        .init();
    let n: u64 = std::env::var("BENCH_CERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = std::env::var("BENCH_DB").unwrap_or_else(|_| "ctjp_bench_analysis".into());
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
        .trim_end_matches('/')
        .to_owned();
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    let admin = MySqlPool::connect(&server).await.unwrap();
    let exists: Option<String> = sqlx::query_scalar(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
    )
    .bind(&db)
    .fetch_optional(&admin)
    .await
    .unwrap();
    let url = format!("{server}/{db}");
    let reuse = keep && exists.is_some();
    if !reuse {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&admin)
            .await
            .unwrap();
    }
    let pool = manager::db::connect(&url, 4).await.unwrap();
    manager::db::migrate(&pool).await.unwrap();
    if !reuse {
        fill(&pool, n).await;
    }
    settle(&pool).await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certificates")
        .fetch_one(&pool)
        .await
        .unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let t = Instant::now();
    let parsed = read_and_parse(&pool).await;
    let baseline = t.elapsed().as_secs_f64();
    println!("baseline: read and parse {parsed} of {stored} stored leaves: {baseline:.1} s");

    let mut analyser = Analyser::new(Matcher::default());
    analyser.settle = std::time::Duration::ZERO;
    if reuse {
        // TRUNCATE rather than the job's DELETE: nothing left to purge
        // while the analysis is timed.
        for table in manager::analyse::DERIVED_TABLES {
            sqlx::query(&format!("TRUNCATE TABLE {table}"))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query(
            "UPDATE analysis_state SET last_sighting_id = 0, last_issuance_id = 0 WHERE id = 1",
        )
        .execute(&pool)
        .await
        .unwrap();
    }
    let t = Instant::now();
    let report = analyser.run(&pool).await.unwrap();
    let full = t.elapsed().as_secs_f64();
    println!(
        "analysis of everything stored (first run): {full:.1} s for {} certificates ({:.0}/s), {} renewals, {} name sets; {:.2}x the baseline",
        report.certificates,
        report.certificates as f64 / full,
        report.renewals,
        report.name_sets,
        full / baseline
    );
    let t = Instant::now();
    let again = analyser.run(&pool).await.unwrap();
    println!(
        "rerun with nothing new: {:.3} s ({} sightings read)",
        t.elapsed().as_secs_f64(),
        again.sightings
    );
    pool.close().await;
    if !keep {
        sqlx::query(&format!("DROP DATABASE {db}"))
            .execute(&admin)
            .await
            .unwrap();
    }
}
