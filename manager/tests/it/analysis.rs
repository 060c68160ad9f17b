//! The analysis layer on a constructed history, collected from two real
//! ctlog-sim logs through the whole protocol: a precertificate and its
//! final certificate (in different logs, the earlier sighting in the second
//! log collected later), a renewal with the same key overlapping by 30 days,
//! a renewal with a new key at another CA after a 5-day gap, then a lapse; a
//! wildcard and a Tokyo ward name; log times on a holiday night, a Saturday
//! and a weekday. Every view column the analysis fills is checked, then a
//! rerun does nothing and a backfill gives the same answer.

use std::path::Path;

use ct_core::leaf::{EntryType, TimestampedEntry, encode_extra_data, encode_leaf};
use ct_core::matcher::Matcher;
use ctlog_sim::{LogConfig, Source};
use manager::analyse::Analyser;
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, Issuer, KeyPair, PublicKeyData,
    SanType, SerialNumber,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::harness::TestApp;
use crate::integrity::{drain, setup};

const DAY: i64 = 86_400;
/// 2021-07-20T00:00:00Z.
const NB1: i64 = 1_626_739_200;

/// A DER TLV.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if body.len() < 128 {
        out.push(body.len() as u8);
    } else {
        out.push(0x82);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// certificatePolicies with the CA/B Forum DV OID 2.23.140.1.2.1.
fn dv_policy() -> CustomExtension {
    let oid = tlv(0x06, &[0x67, 0x81, 0x0c, 0x01, 0x02, 0x01]);
    CustomExtension::from_oid_content(&[2, 5, 29, 32], tlv(0x30, &tlv(0x30, &oid)))
}

/// authorityInfoAccess with one OCSP URL.
fn ocsp(url: &str) -> CustomExtension {
    let method = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]);
    let mut desc = method;
    desc.extend(tlv(0x86, url.as_bytes()));
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &tlv(0x30, &desc)))
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
    spki_hash: [u8; 32],
}

fn ca(o: &str, cn: &str) -> Ca {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::OrganizationName, o);
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let spki_hash = Sha256::digest(key.subject_public_key_info()).into();
    Ca {
        der: cert.der().to_vec(),
        issuer: Issuer::new(p, key),
        spki_hash,
    }
}

struct Leaf {
    params: CertificateParams,
}

fn leaf(names: &[&str], serial: u64, not_before: i64, days: i64) -> Leaf {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0]);
    p.distinguished_name = dn;
    p.subject_alt_names = names
        .iter()
        .map(|n| SanType::DnsName((*n).try_into().unwrap()))
        .collect();
    p.serial_number = Some(SerialNumber::from(serial.to_be_bytes().to_vec()));
    p.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
    p.not_after = time::OffsetDateTime::from_unix_timestamp(not_before + days * DAY - 1).unwrap();
    p.use_authority_key_identifier_extension = true;
    // rcgen writes a subject key identifier for CAs and explicit non-CAs.
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    Leaf { params: p }
}

/// The TBSCertificate inside a certificate's DER.
fn tbs_of(der: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    cert.tbs_certificate.as_ref().to_vec()
}

/// A get-entries entry of a final certificate.
fn x509_entry(der: &[u8], ts_ms: u64, ca: &Ca) -> serde_json::Value {
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: ts_ms,
        entry_type: EntryType::X509,
        issuer_key_hash: None,
        signed: der,
        extensions: &[],
    });
    let extra = encode_extra_data(None, &[&ca.der]);
    json!({"leaf_input": ct_core::b64::encode(&leaf), "extra_data": ct_core::b64::encode(&extra)})
}

/// A get-entries entry of a precertificate: `final_der`'s TBS in the leaf,
/// the poisoned pre-certificate in extra_data. Returns it and the
/// pre-certificate's DER.
fn precert_entry(
    l: &Leaf,
    key: &KeyPair,
    ca: &Ca,
    ts_ms: u64,
) -> (serde_json::Value, Vec<u8>, Vec<u8>) {
    let final_der = l.params.signed_by(key, &ca.issuer).unwrap().der().to_vec();
    let tbs = tbs_of(&final_der);
    let mut params = l.params.clone();
    let mut poison =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3], vec![0x05, 0x00]);
    poison.set_criticality(true);
    params.custom_extensions.push(poison);
    let pre = params.signed_by(key, &ca.issuer).unwrap().der().to_vec();
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: ts_ms,
        entry_type: EntryType::Precert,
        issuer_key_hash: Some(ca.spki_hash),
        signed: &tbs,
        extensions: &[],
    });
    let extra = encode_extra_data(Some(&pre), &[&ca.der]);
    (
        json!({"leaf_input": ct_core::b64::encode(&leaf), "extra_data": ct_core::b64::encode(&extra)}),
        pre,
        final_der,
    )
}

fn write_log(dir: &Path, entries: &[serde_json::Value]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("0000.json"),
        serde_json::to_vec(&json!({ "entries": entries })).unwrap(),
    )
    .unwrap();
}

/// Unix ms of a UTC time given as seconds.
fn ms(secs: i64) -> u64 {
    u64::try_from(secs).unwrap() * 1000
}

fn fp(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

async fn one<T>(app: &TestApp, sql: &str, fingerprint: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql> + Send + Unpin,
{
    sqlx::query_scalar(sql)
        .bind(fingerprint)
        .fetch_one(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql} {fingerprint}: {e}"))
}

async fn analyse(app: &TestApp, backfill: bool) -> manager::analyse::Report {
    let mut a = Analyser::new(Matcher::default());
    a.settle = std::time::Duration::ZERO;
    a.batch = 3;
    if backfill {
        a.backfill(&app.pool).await.unwrap()
    } else {
        a.run(&app.pool).await.unwrap()
    }
}

/// Every certificate's analysed columns, for comparing runs.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let rows = sqlx::query(
        "SELECT c.*, i.precert_fingerprint, i.cert_fingerprint, r.previous_issuance_id, r.gap_days, r.same_key \
         FROM v_certificates c JOIN v_issuances i ON i.issuance_id = c.issuance_id \
         LEFT JOIN v_renewals r ON r.issuance_id = c.issuance_id ORDER BY c.fingerprint",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {:?} {:?} {:?} {:?} {:?} {:?}",
                r.get::<String, _>("fingerprint"),
                r.get::<String, _>("entry_type"),
                r.get::<Option<String>, _>("precert_fingerprint"),
                r.get::<Option<String>, _>("cert_fingerprint"),
                r.get::<Option<u64>, _>("first_logged_at_ms"),
                r.get::<Option<i32>, _>("gap_days"),
                r.get::<Option<i8>, _>("same_key"),
                r.get::<Option<i8>, _>("jst_holiday"),
            )
        })
        .collect()
}

#[tokio::test]
async fn constructed_history() {
    let alpha = ca("Alpha CA", "Alpha R1");
    let beta = ca("Beta CA", "Beta E1");
    let k1 = KeyPair::generate().unwrap();
    let k2 = KeyPair::generate().unwrap();
    let set = ["example.co.jp", "www.example.co.jp"];

    // Issuance 1: precert (log 0, 2021-07-23 21:30 JST, Sports Day) and its
    // final certificate (log 0 on 07-24, and log 1 at 22:00 on the holiday).
    let mut l1 = leaf(&set, 0x1001, NB1, 90);
    l1.params.custom_extensions.push(dv_policy());
    l1.params
        .custom_extensions
        .push(ocsp("http://ocsp.alpha.test"));
    l1.params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec!["http://crl.alpha.test/r1.crl".into()],
    }];
    let holiday_night = 1_627_043_400; // 2021-07-23T12:30:00Z
    let (pre1_entry, pre1, cert1) = precert_entry(&l1, &k1, &alpha, ms(holiday_night));
    // Issuance 2: same key, 30 days of overlap; Saturday 2021-09-18 15:00 JST.
    let nb2 = NB1 + 90 * DAY - 30 * DAY;
    let mut l2 = leaf(&set, 0x1002, nb2, 90);
    l2.params.custom_extensions.push(dv_policy());
    let cert2 = l2
        .params
        .signed_by(&k1, &alpha.issuer)
        .unwrap()
        .der()
        .to_vec();
    let saturday = 1_631_944_800; // 2021-09-18T06:00:00Z
    // Issuance 3: new key, another CA, 5 days after issuance 2 ended;
    // Wednesday 2021-12-22 10:00 JST. It expired in 2022: a lapse.
    let nb3 = nb2 + 90 * DAY + 5 * DAY;
    let mut l3 = leaf(&set, 0x1003, nb3, 90);
    l3.params.custom_extensions.push(dv_policy());
    let cert3 = l3
        .params
        .signed_by(&k2, &beta.issuer)
        .unwrap()
        .der()
        .to_vec();
    let weekday = 1_640_134_800; // 2021-12-22T01:00:00Z
    // A wildcard and a Tokyo ward, no policy OID but a subject O: inferred OV.
    let mut lw = leaf(
        &["*.foo.example.jp", "www.city.shibuya.tokyo.jp"],
        0x2001,
        NB1,
        398,
    );
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::StateOrProvinceName, "Tokyo");
    dn.push(DnType::LocalityName, "Shibuya-ku");
    dn.push(DnType::OrganizationName, "Shibuya City");
    dn.push(DnType::OrganizationalUnitName, "IT");
    dn.push(DnType::CommonName, "www.city.shibuya.tokyo.jp");
    lw.params.distinguished_name = dn;
    let certw = lw
        .params
        .signed_by(&k2, &alpha.issuer)
        .unwrap()
        .der()
        .to_vec();

    let tmp = tempfile::tempdir().unwrap();
    let later = holiday_night + 12 * 3600; // 2021-07-24T00:30:00Z
    write_log(
        &tmp.path().join("a"),
        &[
            // Issuance 3 before issuance 2: the chain is rebuilt when 2 comes.
            pre1_entry,
            x509_entry(&cert1, ms(later), &alpha),
            x509_entry(&cert3, ms(weekday), &beta),
            x509_entry(&cert2, ms(saturday), &alpha),
            x509_entry(&certw, ms(weekday + 60), &alpha),
        ],
    );
    let earlier_final = holiday_night + 1800; // 22:00 JST on the holiday
    write_log(
        &tmp.path().join("b"),
        &[x509_entry(&cert1, ms(earlier_final), &alpha)],
    );
    let replay = |d: &str| LogConfig {
        source: Source::Replay(tmp.path().join(d)),
        ..LogConfig::generated(0, 0)
    };
    let (app, _sim, ids) = setup(2, vec![replay("a"), replay("b")]).await;
    let (_, token) = app.register(Some("analyst")).await;

    // Log b waits until the first analysis has run.
    let (status, v) = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/v1/admin/logs/{}", ids[1]),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    drain(&app, &[&token], 5).await;
    let first = analyse(&app, false).await;
    assert_eq!((first.sightings, first.certificates), (5, 5), "{first:?}");
    let (status, v) = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/v1/admin/logs/{}", ids[1]),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    drain(&app, &[&token], 1).await;
    let second = analyse(&app, false).await;
    assert_eq!(
        (second.sightings, second.certificates),
        (1, 0),
        "{second:?}"
    );
    // Nothing new: nothing done.
    assert_eq!(analyse(&app, false).await.sightings, 0);

    let (f_pre1, f_cert1, f_cert2, f_cert3, f_certw) =
        (fp(&pre1), fp(&cert1), fp(&cert2), fp(&cert3), fp(&certw));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM v_certificates").await,
        5,
        "one row per certificate"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM v_issuances").await, 4);

    // The precertificate and its certificate are one issuance.
    let q = "SELECT issuance_id FROM v_certificates WHERE fingerprint = ?";
    let i1: u64 = one(&app, q, &f_pre1).await;
    assert_eq!(one::<u64>(&app, q, &f_cert1).await, i1);
    let (i2, i3): (u64, u64) = (one(&app, q, &f_cert2).await, one(&app, q, &f_cert3).await);
    let row = sqlx::query(
        "SELECT precert_fingerprint, cert_fingerprint, serial, issuer_o, names FROM v_issuances WHERE issuance_id = ?",
    )
    .bind(i1)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        row.get::<Option<String>, _>("precert_fingerprint"),
        Some(f_pre1.clone())
    );
    assert_eq!(
        row.get::<Option<String>, _>("cert_fingerprint"),
        Some(f_cert1.clone())
    );
    assert_eq!(row.get::<String, _>("serial"), "1001");
    assert_eq!(
        row.get::<Option<String>, _>("issuer_o").as_deref(),
        Some("Alpha CA")
    );
    assert_eq!(
        row.get::<String, _>("names"),
        r#"["example.co.jp","www.example.co.jp"]"#
    );
    let pre_of_2: Option<String> =
        sqlx::query_scalar("SELECT precert_fingerprint FROM v_issuances WHERE issuance_id = ?")
            .bind(i2)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(pre_of_2, None);

    // Entry types, first log times (the earliest sighting, in log b) and JST facts.
    let facts = "SELECT CONCAT_WS(' ', entry_type, first_logged_at_ms, jst_night, jst_weekend, jst_holiday, \
                 validity_days, validation, validation_inferred, san_count, is_wildcard, has_crl, has_ocsp) \
                 FROM v_certificates WHERE fingerprint = ?";
    let expect = [
        (
            &f_pre1,
            format!("precert {} 1 0 1 90 dv 0 2 0 1 1", ms(holiday_night)),
        ),
        (
            &f_cert1,
            format!("x509 {} 1 0 1 90 dv 0 2 0 1 1", ms(earlier_final)),
        ),
        (
            &f_cert2,
            format!("x509 {} 0 1 0 90 dv 0 2 0 0 0", ms(saturday)),
        ),
        (
            &f_cert3,
            format!("x509 {} 0 0 0 90 dv 0 2 0 0 0", ms(weekday)),
        ),
        (
            &f_certw,
            format!("x509 {} 0 0 0 398 ov 1 2 1 0 0", ms(weekday + 60)),
        ),
    ];
    for (f, want) in expect {
        assert_eq!(one::<String>(&app, facts, f).await, want, "{f}");
    }
    // Keys: the same SubjectPublicKeyInfo hash for issuances 1 and 2, another for 3.
    let spki = "SELECT spki_sha256 FROM v_certificates WHERE fingerprint = ?";
    let (s1, s2, s3): (String, String, String) = (
        one(&app, spki, &f_cert1).await,
        one(&app, spki, &f_cert2).await,
        one(&app, spki, &f_cert3).await,
    );
    assert_eq!(
        s1,
        hex::encode(Sha256::digest(k1.subject_public_key_info()))
    );
    assert_eq!(s1, s2);
    assert_ne!(s2, s3);
    assert_eq!(one::<String>(&app, spki, &f_pre1).await, s1);
    // Subject and issuer parts.
    let parts = "SELECT CONCAT_WS('|', subject_c, subject_st, subject_l, subject_o, subject_ou, issuer_c, issuer_o, \
                 issuer_cn) FROM v_certificates WHERE fingerprint = ?";
    assert_eq!(
        one::<String>(&app, parts, &f_certw).await,
        "JP|Tokyo|Shibuya-ku|Shibuya City|IT|JP|Alpha CA|Alpha R1"
    );
    let keyids = "SELECT CONCAT_WS('|', LENGTH(authority_key_id), LENGTH(subject_key_id)) FROM v_certificates \
                  WHERE fingerprint = ?";
    assert_eq!(one::<String>(&app, keyids, &f_cert1).await, "40|40");

    // Renewals.
    let mut renewals: Vec<(u64, u64, i32, i8, i8)> = sqlx::query_as(
        "SELECT issuance_id, previous_issuance_id, gap_days, same_key, ca_changed FROM v_renewals",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    renewals.sort_by_key(|r| r.1 != i1);
    assert_eq!(renewals, vec![(i2, i1, -30, 1, 0), (i3, i2, 5, 0, 1)]);
    let (count, latest): (u32, u64) = sqlx::query_as(
        "SELECT issuances, latest_issuance_id FROM name_sets WHERE names LIKE '%\"example.co.jp\"%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((count, latest), (3, i3));
    // Lapses: both name sets expired long ago without a successor.
    let lapses: Vec<(String, u64)> =
        sqlx::query_as("SELECT names, latest_issuance_id FROM v_lapses ORDER BY names")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(lapses.len(), 2, "{lapses:?}");
    let of_set = lapses
        .iter()
        .find(|(names, _)| names.contains("\"example.co.jp\""));
    assert_eq!(of_set.map(|l| l.1), Some(i3), "{lapses:?}");

    // Registered domains by the Public Suffix List.
    let names: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, category, registered_domain FROM v_names WHERE fingerprint = ? ORDER BY name",
    )
    .bind(&f_certw)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let domains: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, _, d)| (n.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        domains,
        vec![
            ("*.foo.example.jp", "example.jp"),
            ("www.city.shibuya.tokyo.jp", "city.shibuya.tokyo.jp")
        ]
    );

    // Rollups: four issuances by day and CA, five certificates in the heat map.
    assert_eq!(
        app.count("SELECT CAST(SUM(issuances) AS SIGNED) FROM rollup_issuances")
            .await,
        4
    );
    assert_eq!(
        app.count("SELECT CAST(SUM(certificates) AS SIGNED) FROM rollup_jst")
            .await,
        5
    );
    assert_eq!(
        app.count("SELECT CAST(SUM(certificates) AS SIGNED) FROM rollup_jst WHERE holiday = 1")
            .await,
        2
    );
    assert_eq!(
        app.count(
            "SELECT CAST(SUM(issuances) AS SIGNED) FROM rollup_issuances WHERE ca = 'Beta CA' AND bucket = '90'"
        )
        .await,
        1
    );

    rollups_match_their_rows(&app).await;

    // The site's rollups: one row per name, per registered domain, every
    // issuance once per organisation row.
    assert_eq!(app.count("SELECT COUNT(*) FROM rollup_names").await, 4);
    assert_eq!(
        app.count("SELECT CAST(SUM(issuances) AS SIGNED) FROM rollup_orgs")
            .await,
        4
    );
    assert_eq!(
        app.count(
            "SELECT CAST(issuances AS SIGNED) FROM rollup_domains WHERE registered_domain = 'example.co.jp'"
        )
        .await,
        3
    );
    assert_eq!(
        app.count(
            "SELECT CAST(issuances AS SIGNED) FROM rollup_domains WHERE registered_domain = 'city.shibuya.tokyo.jp'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT CAST(SUM(issuances) AS SIGNED) FROM rollup_categories WHERE category = 'co.jp'"
        )
        .await,
        3
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM issuances WHERE subject_o = 'Shibuya City'")
            .await,
        1
    );

    // Export: every analysis column, in both formats.
    let mut out = Vec::new();
    let n = manager::export::export_as(&app.pool, 0, manager::export::Format::Csv, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 6, "one record per sighting");
    let text = String::from_utf8(out).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    for col in [
        "spki_sha256",
        "jst_holiday",
        "jst_night",
        "jst_weekend",
        "issuance_id",
        "validation_inferred",
        "subject_ou",
        "first_logged_at_ms",
    ] {
        assert!(header.iter().any(|h| h == col), "{col} in {header:?}");
    }
    assert_eq!(reader.records().count(), 6);

    // A backfill throws the derived rows away and finds the same.
    let before = snapshot(&app).await;
    let redo = analyse(&app, true).await;
    assert_eq!(redo.certificates, 5, "{redo:?}");
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(
        app.count("SELECT CAST(SUM(certificates) AS SIGNED) FROM rollup_jst")
            .await,
        5
    );

    // A batch whose main transaction fails after the other two committed
    // (the database refuses the watermark here) leaves per-certificate and
    // issuance rows behind. They do not count: the next run does the batch
    // again and finds the same.
    let renewals = app.count("SELECT COUNT(*) FROM renewals").await;
    Analyser::reset(&app.pool).await.unwrap();
    sqlx::raw_sql(
        "CREATE TRIGGER analysis_fails BEFORE UPDATE ON analysis_state FOR EACH ROW \
         BEGIN IF NEW.last_sighting_id > 0 THEN \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF; END",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let mut one_batch = Analyser::new(Matcher::default());
    one_batch.settle = std::time::Duration::ZERO;
    one_batch.batch = 100;
    let failed = one_batch.run(&app.pool).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM cert_analysis").await, 5);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM renewals").await,
        0,
        "renewals go with the main transaction"
    );
    assert!(app.count("SELECT COUNT(*) FROM issuances").await > 0);
    assert_eq!(
        app.count("SELECT CAST(last_sighting_id + last_issuance_id AS SIGNED) FROM analysis_state")
            .await,
        0,
        "the watermark stays"
    );
    sqlx::raw_sql("DROP TRIGGER analysis_fails")
        .execute(&app.pool)
        .await
        .unwrap();
    let again = one_batch.run(&app.pool).await.unwrap();
    assert_eq!(again.certificates, 5, "{again:?}");
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(app.count("SELECT COUNT(*) FROM renewals").await, renewals);
    assert_eq!(
        app.count("SELECT CAST(SUM(certificates) AS SIGNED) FROM rollup_jst")
            .await,
        5
    );
    rollups_match_their_rows(&app).await;
    app.cleanup().await;
}

/// `rollup_issuances` and `rollup_jst`, kept as batches go, hold what the
/// rows they count say now (the generated columns of `issuances` and
/// `cert_analysis`), in both directions.
async fn rollups_match_their_rows(app: &TestApp) {
    for (kept, now) in [
        (
            "SELECT day, ca, bucket, issuances FROM rollup_issuances WHERE issuances <> 0",
            "SELECT rollup_day, rollup_ca, rollup_bucket, COUNT(*) FROM issuances \
             WHERE rollup_day IS NOT NULL GROUP BY 1, 2, 3",
        ),
        (
            "SELECT weekday, hour, holiday, certificates FROM rollup_jst WHERE certificates <> 0",
            "SELECT jst_weekday, jst_hour, jst_holiday, COUNT(*) FROM cert_analysis \
             WHERE jst_hour IS NOT NULL GROUP BY 1, 2, 3",
        ),
    ] {
        let differ = app
            .count(&format!(
                "SELECT COUNT(*) FROM (({kept}) EXCEPT ({now}) UNION ALL (({now}) EXCEPT ({kept}))) d"
            ))
            .await;
        assert_eq!(differ, 0, "{kept}");
    }
}

/// The analysis writes its rows as literals ([`ct_db::bulk`]): whatever a
/// value holds comes back as it was, under any `sql_mode`.
#[tokio::test]
async fn bulk_literals_come_back_as_written() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    sqlx::query(
        "CREATE TEMPORARY TABLE lit (id BIGINT NOT NULL PRIMARY KEY, big BIGINT UNSIGNED NULL, \
         t VARCHAR(255) NULL, m MEDIUMTEXT NULL, b VARBINARY(64) NULL, f TINYINT(1) NULL) \
         DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES,ANSI_QUOTES')")
        .execute(&mut *conn)
        .await
        .unwrap();
    let texts = [
        "it's \\ \"quoted\" ' --",
        "東京都渋谷区 🎌",
        "",
        "x'00'); DROP TABLE lit; --",
        "\0nul\n\ttab",
    ];
    let bytes: Vec<u8> = (0..=63).collect();
    let mut ins = ct_db::bulk::Insert::new("INSERT INTO lit (id, big, t, m, b, f)", "");
    for (i, t) in texts.iter().enumerate() {
        ins.row(|r| {
            r.push(i as i64 - 2)
                .push(u64::MAX - i as u64)
                .push(*t)
                .push(t.repeat(3))
                .push(&bytes[i..])
                .push(i % 2 == 0);
        });
    }
    ins.row(|r| {
        r.push(i64::MIN)
            .push(None::<u64>)
            .push(None::<&str>)
            .push(None::<String>)
            .push(None::<Vec<u8>>)
            .push(None::<bool>);
    });
    assert_eq!(
        ins.execute(&mut conn).await.unwrap(),
        texts.len() as u64 + 1
    );
    type Back = (
        i64,
        Option<u64>,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
        Option<i8>,
    );
    let rows: Vec<Back> = sqlx::query_as("SELECT id, big, t, m, b, f FROM lit ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(rows[0], (i64::MIN, None, None, None, None, None));
    for (i, t) in texts.iter().enumerate() {
        let want: Back = (
            i as i64 - 2,
            Some(u64::MAX - i as u64),
            Some((*t).to_owned()),
            Some(t.repeat(3)),
            Some(bytes[i..].to_vec()),
            Some(i8::from(i % 2 == 0)),
        );
        assert_eq!(rows[i + 1], want, "row {i}");
    }
    drop(conn);
    app.cleanup().await;
}

/// The JST columns of `cert_analysis` and the rollup columns of `issuances`
/// are generated by SQL from the stored log time (migration 09); they agree
/// with ct-core's `LogTime`, `jst_day` and `validity_bucket`, edges included.
#[tokio::test]
async fn generated_columns_agree_with_ct_core() {
    use ct_core::jst::{LAST_MS, LogTime, jst_day};
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    for t in ["cert_analysis", "issuances"] {
        sqlx::query(&format!("CREATE TEMPORARY TABLE g_{t} LIKE {t}"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    // 2024-01-01T00:00:00Z (a Monday, 09:00 JST), then every 7,919 s, each
    // hour and day boundary of JST, the epoch and the ends of the range.
    let mut times: Vec<u64> = (0..3_000u64)
        .map(|i| 1_704_067_200_000 + i * 7_919_000)
        .collect();
    for h in 0..48u64 {
        let at = 1_704_067_200_000 + h * 3_600_000;
        times.extend([at - 1, at, at + 1]);
    }
    times.extend([
        0,
        1,
        LAST_MS - 1,
        LAST_MS,
        LAST_MS + 1,
        i64::MAX as u64,
        u64::MAX,
    ]);
    let mut ca = ct_db::bulk::Insert::new(
        "INSERT INTO g_cert_analysis (certificate_id, issuance_id, first_logged_at_ms)",
        "",
    );
    let mut iss = ct_db::bulk::Insert::new(
        "INSERT INTO g_issuances (id, issuance_key, serial, names_key, names, issuer_o, validity_days, first_logged_at_ms)",
        "",
    );
    let days = [
        None,
        Some(6),
        Some(89),
        Some(90),
        Some(91),
        Some(398),
        Some(399),
    ];
    for (i, ms) in times.iter().enumerate() {
        ca.row(|r| {
            r.push(i as u64 + 1).push(1u64).push(*ms);
        });
        iss.row(|r| {
            r.push(i as u64 + 1)
                .push((i as u64).to_be_bytes())
                .push("1")
                .push([0u8; 32])
                .push("[]")
                .push((i % 3 != 0).then_some("CA"))
                .push(days[i % days.len()])
                .push(*ms);
        });
    }
    ca.execute(&mut conn).await.unwrap();
    iss.execute(&mut conn).await.unwrap();
    type Jst = (u64, Option<u8>, Option<u8>, Option<i8>, Option<i8>);
    let rows: Vec<Jst> = sqlx::query_as(
        "SELECT first_logged_at_ms, jst_hour, jst_weekday, jst_night, jst_weekend FROM g_cert_analysis \
         ORDER BY certificate_id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), times.len());
    for (ms, hour, weekday, night, weekend) in rows {
        let t = LogTime::from_ms(ms);
        let want: Jst = (
            ms,
            t.map(|t| t.hour),
            t.map(|t| t.weekday),
            t.map(|t| i8::from(t.night)),
            t.map(|t| i8::from(t.weekend)),
        );
        assert_eq!((ms, hour, weekday, night, weekend), want);
    }
    type Counted = (
        u64,
        Option<String>,
        Option<i32>,
        Option<i32>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Counted> = sqlx::query_as(
        "SELECT first_logged_at_ms, issuer_o, validity_days, rollup_day, rollup_ca, rollup_bucket \
         FROM g_issuances ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (ms, issuer_o, validity, day, ca, bucket) in rows {
        let counted = Some((
            i32::try_from(jst_day(ms)).unwrap(),
            issuer_o.clone().unwrap_or_default(),
            ct_core::cert::validity_bucket(validity.map(i64::from)).to_owned(),
        ));
        assert_eq!(
            (day, ca, bucket),
            (
                counted.as_ref().map(|c| c.0),
                counted.as_ref().map(|c| c.1.clone()),
                counted.as_ref().map(|c| c.2.clone())
            ),
            "{ms} {issuer_o:?} {validity:?}"
        );
    }
    drop(conn);
    app.cleanup().await;
}
