//! `ct-manager export`: every stored matching entry (one sighting: a log
//! and an index) with its certificate's analysis columns, as JSON lines or
//! CSV. Analysis columns are empty (null) for a certificate the analysis job
//! has not reached yet.

use std::io::Write;

use serde::Serialize;
use sqlx::{FromRow, MySqlPool};

use crate::error::{Error, Result};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// RFC 4180 CSV with a header line; lists are space-separated.
    Csv,
}

#[derive(Debug, FromRow)]
struct Row {
    id: u64,
    log_url: String,
    idx: u64,
    leaf_hash: Vec<u8>,
    timestamp_ms: u64,
    fingerprint: Vec<u8>,
    entry_type: String,
    serial: String,
    dns_names: String,
    subject_dn: Option<String>,
    subject_cn: Option<String>,
    subject_o: Option<String>,
    issuer_dn: Option<String>,
    issuer_cn: Option<String>,
    issuer_o: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    key_algorithm: Option<String>,
    key_bits: Option<u32>,
    created_at: i64,
    issuance_id: Option<u64>,
    spki_sha256: Option<Vec<u8>>,
    authority_key_id: Option<String>,
    subject_key_id: Option<String>,
    san_count: Option<u32>,
    is_wildcard: Option<bool>,
    has_crl: Option<bool>,
    has_ocsp: Option<bool>,
    subject_c: Option<String>,
    subject_st: Option<String>,
    subject_l: Option<String>,
    subject_ou: Option<String>,
    issuer_c: Option<String>,
    issuer_st: Option<String>,
    issuer_l: Option<String>,
    issuer_ou: Option<String>,
    validation: Option<String>,
    validation_inferred: Option<bool>,
    validity_days: Option<i32>,
    first_logged_at_ms: Option<u64>,
    jst_night: Option<bool>,
    jst_weekend: Option<bool>,
    jst_holiday: Option<bool>,
}

/// One exported line.
#[derive(Debug, Serialize)]
pub struct ExportLine {
    pub log_url: String,
    pub index: u64,
    pub leaf_hash: String,
    pub fingerprint: String,
    pub entry_type: String,
    pub serial: String,
    pub dns_names: Vec<String>,
    /// Log timestamp, Unix ms.
    pub timestamp: u64,
    pub subject_dn: Option<String>,
    pub subject_cn: Option<String>,
    pub subject_o: Option<String>,
    pub subject_c: Option<String>,
    pub subject_st: Option<String>,
    pub subject_l: Option<String>,
    pub subject_ou: Option<String>,
    pub issuer_dn: Option<String>,
    pub issuer_cn: Option<String>,
    pub issuer_o: Option<String>,
    pub issuer_c: Option<String>,
    pub issuer_st: Option<String>,
    pub issuer_l: Option<String>,
    pub issuer_ou: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub validity_days: Option<i32>,
    pub key_algorithm: Option<String>,
    pub key_bits: Option<u32>,
    pub issuance_id: Option<u64>,
    pub spki_sha256: Option<String>,
    pub authority_key_id: Option<String>,
    pub subject_key_id: Option<String>,
    pub san_count: Option<u32>,
    pub is_wildcard: Option<bool>,
    pub has_crl: Option<bool>,
    pub has_ocsp: Option<bool>,
    pub validation: Option<String>,
    pub validation_inferred: Option<bool>,
    /// Earliest CT timestamp of the certificate's sightings, Unix ms.
    pub first_logged_at_ms: Option<u64>,
    pub jst_night: Option<bool>,
    pub jst_weekend: Option<bool>,
    pub jst_holiday: Option<bool>,
    /// When the manager stored it, Unix ms.
    pub stored_at: i64,
}

impl From<Row> for ExportLine {
    fn from(r: Row) -> Self {
        ExportLine {
            log_url: r.log_url,
            index: r.idx,
            leaf_hash: hex::encode(r.leaf_hash),
            fingerprint: hex::encode(r.fingerprint),
            entry_type: r.entry_type,
            serial: r.serial,
            dns_names: serde_json::from_str(&r.dns_names).unwrap_or_default(),
            timestamp: r.timestamp_ms,
            subject_dn: r.subject_dn,
            subject_cn: r.subject_cn,
            subject_o: r.subject_o,
            subject_c: r.subject_c,
            subject_st: r.subject_st,
            subject_l: r.subject_l,
            subject_ou: r.subject_ou,
            issuer_dn: r.issuer_dn,
            issuer_cn: r.issuer_cn,
            issuer_o: r.issuer_o,
            issuer_c: r.issuer_c,
            issuer_st: r.issuer_st,
            issuer_l: r.issuer_l,
            issuer_ou: r.issuer_ou,
            not_before: r.not_before,
            not_after: r.not_after,
            validity_days: r.validity_days,
            key_algorithm: r.key_algorithm,
            key_bits: r.key_bits,
            issuance_id: r.issuance_id,
            spki_sha256: r.spki_sha256.map(hex::encode),
            authority_key_id: r.authority_key_id,
            subject_key_id: r.subject_key_id,
            san_count: r.san_count,
            is_wildcard: r.is_wildcard,
            has_crl: r.has_crl,
            has_ocsp: r.has_ocsp,
            validation: r.validation,
            validation_inferred: r.validation_inferred,
            first_logged_at_ms: r.first_logged_at_ms,
            jst_night: r.jst_night,
            jst_weekend: r.jst_weekend,
            jst_holiday: r.jst_holiday,
            stored_at: r.created_at,
        }
    }
}

/// A CSV cell of a JSON value: text as is, lists space-separated, booleans
/// 0/1, null empty.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => u8::from(*b).to_string(),
        serde_json::Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// Writes every sighting stored at or after `since_ms` as JSON lines;
/// returns the number of lines.
pub async fn export(pool: &MySqlPool, since_ms: i64, out: &mut impl Write) -> Result<u64> {
    export_as(pool, since_ms, Format::Jsonl, out).await
}

/// Writes every sighting stored at or after `since_ms` in `format`; returns
/// the number of records.
pub async fn export_as(
    pool: &MySqlPool,
    since_ms: i64,
    format: Format,
    out: &mut impl Write,
) -> Result<u64> {
    let write_err = |e: std::io::Error| Error::Internal(format!("write: {e}"));
    let csv_err = |e: csv::Error| Error::Internal(format!("csv: {e}"));
    let json_err = |e: serde_json::Error| Error::Internal(format!("json: {e}"));
    let mut csv = match format {
        Format::Csv => Some(csv::Writer::from_writer(Vec::new())),
        Format::Jsonl => None,
    };
    let (mut last, mut n) = (0u64, 0u64);
    loop {
        let rows = page(pool, last, since_ms).await?;
        let Some(end) = rows.last().map(|r| r.id) else {
            return Ok(n);
        };
        for r in rows {
            let line = ExportLine::from(r);
            match csv.as_mut() {
                None => {
                    serde_json::to_writer(&mut *out, &line).map_err(json_err)?;
                    out.write_all(b"\n").map_err(write_err)?;
                }
                Some(w) => {
                    let serde_json::Value::Object(map) =
                        serde_json::to_value(&line).map_err(json_err)?
                    else {
                        return Err(Error::Internal("export line is not an object".into()));
                    };
                    if n == 0 {
                        w.write_record(map.keys()).map_err(csv_err)?;
                    }
                    w.write_record(map.values().map(cell)).map_err(csv_err)?;
                }
            }
            n += 1;
        }
        // Hand each page of CSV on so memory stays flat.
        if let Some(w) = csv.take() {
            let bytes = w
                .into_inner()
                .map_err(|e| Error::Internal(format!("csv: {e}")))?;
            out.write_all(&bytes).map_err(write_err)?;
            csv = Some(csv::Writer::from_writer(Vec::new()));
        }
        last = end;
    }
}

/// The next 1,000 sightings after `last`.
async fn page(pool: &MySqlPool, last: u64, since_ms: i64) -> Result<Vec<Row>> {
    Ok(sqlx::query_as(
        "SELECT s.id, l.url AS log_url, s.idx, s.leaf_hash, s.timestamp_ms, c.fingerprint, c.entry_type, \
         c.serial, c.dns_names, c.subject_dn, c.subject_cn, c.subject_o, c.issuer_dn, c.issuer_cn, c.issuer_o, \
         c.not_before, c.not_after, c.key_algorithm, c.key_bits, s.created_at, a.issuance_id, a.spki_sha256, \
         a.authority_key_id, a.subject_key_id, a.san_count, a.is_wildcard, a.has_crl, a.has_ocsp, \
         a.subject_c, a.subject_st, a.subject_l, a.subject_ou, a.issuer_c, a.issuer_st, a.issuer_l, \
         a.issuer_ou, a.validation, a.validation_inferred, a.validity_days, a.first_logged_at_ms, \
         a.jst_night, a.jst_weekend, a.jst_holiday \
         FROM sightings s JOIN logs l ON l.id = s.log_id JOIN certificates c ON c.id = s.certificate_id \
         LEFT JOIN cert_analysis a ON a.certificate_id = c.id \
         WHERE s.id > ? AND s.created_at >= ? ORDER BY s.id LIMIT 1000",
    )
    .bind(last)
    .bind(since_ms)
    .fetch_all(pool)
    .await?)
}
