//! Queries over the analysis layer (`migrations/*_analysis.sql` and
//! `*_site.sql`): the rollups the analysis job keeps, and bounded, indexed
//! reads of issuances, name sets and certificates for the pages that list
//! them. Nothing here scans `certificates`, `names` or `issuances` whole.
//!
//! Units: `issuances.not_before`/`not_after` and `name_sets.*_not_*` are Unix
//! seconds in the database; every `*_ms` field here is Unix milliseconds.

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use sqlx::{FromRow, MySqlPool, QueryBuilder};

use super::parse_names;
use crate::error::Result;

/// Rows bound per `IN (…)` list.
const CHUNK: usize = 1_000;

/// Issuances of one JST day (days since 1970-01-01), CA and validity bucket.
#[derive(Debug, Clone, FromRow)]
pub struct DayCell {
    pub day: i64,
    pub ca: String,
    pub bucket: String,
    pub n: i64,
}

/// Issuances of one JST month (`yyyymm`), CA and validity bucket.
#[derive(Debug, Clone, FromRow)]
pub struct MonthCell {
    pub month: i64,
    pub ca: String,
    pub bucket: String,
    pub n: i64,
}

/// Issuances of one name category, JST month, CA and validity bucket.
#[derive(Debug, Clone, FromRow)]
pub struct CategoryCell {
    pub category: String,
    pub month: i64,
    pub ca: String,
    pub bucket: String,
    pub n: i64,
}

/// Certificates first logged in one JST weekday (0 = Monday) and hour,
/// on a holiday or not.
#[derive(Debug, Clone, Copy, FromRow)]
pub struct HeatCell {
    pub weekday: i64,
    pub hour: i64,
    pub holiday: i64,
    pub n: i64,
}

/// One row of `rollup_orgs`.
#[derive(Debug, Clone, FromRow)]
pub struct OrgCell {
    pub org: String,
    pub ca: String,
    pub bucket: String,
    pub validation: String,
    pub n: i64,
    pub first_logged_at_ms: Option<i64>,
    pub last_logged_at_ms: Option<i64>,
}

/// An organisation (subject O) and its issuances.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct OrgTotal {
    pub org: String,
    pub issuances: i64,
}

/// A registered domain and its issuances.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct DomainRow {
    pub registered_domain: String,
    pub category: String,
    pub issuances: i64,
    pub first_logged_at_ms: Option<i64>,
    pub last_logged_at_ms: Option<i64>,
}

/// A .jp name and its issuances.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct NameRow {
    pub name: String,
    pub issuances: i64,
    pub first_logged_at_ms: Option<i64>,
    pub last_logged_at_ms: Option<i64>,
}

/// A set of .jp names with its latest issuance.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct NameSetRow {
    pub names_key: String,
    #[serde(skip)]
    pub names_json: String,
    pub issuances: i64,
    pub first_not_before_ms: Option<i64>,
    pub latest_issuance_id: i64,
    pub latest_not_after_ms: Option<i64>,
    pub latest_issuer_o: Option<String>,
    #[sqlx(skip)]
    pub names: Vec<String>,
}

/// One issuance (a precertificate and its certificate), with the renewal
/// that links it to the previous issuance of its name set, if any.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct IssuanceRow {
    pub id: i64,
    pub issuer_o: Option<String>,
    pub subject_o: Option<String>,
    pub serial: String,
    #[serde(skip)]
    pub names_json: String,
    pub not_before_ms: Option<i64>,
    pub not_after_ms: Option<i64>,
    pub validity_days: Option<i64>,
    pub first_logged_at_ms: Option<i64>,
    #[serde(skip)]
    pub names_key_raw: Vec<u8>,
    pub names_key: String,
    pub precert_id: Option<i64>,
    pub cert_id: Option<i64>,
    pub precert_fp: Option<String>,
    pub cert_fp: Option<String>,
    pub previous_id: Option<i64>,
    pub gap_days: Option<i64>,
    pub same_key: Option<i64>,
    pub ca_changed: Option<i64>,
    #[sqlx(skip)]
    pub names: Vec<String>,
}

const ISSUANCE_COLUMNS: &str = "CAST(i.id AS SIGNED) AS id, i.issuer_o, i.subject_o, i.serial, \
    LEFT(i.names, 4000) AS names_json, CAST(i.not_before * 1000 AS SIGNED) AS not_before_ms, \
    CAST(i.not_after * 1000 AS SIGNED) AS not_after_ms, CAST(i.validity_days AS SIGNED) AS validity_days, \
    CAST(i.first_logged_at_ms AS SIGNED) AS first_logged_at_ms, i.names_key AS names_key_raw, \
    LOWER(HEX(i.names_key)) AS names_key, CAST(i.precert_certificate_id AS SIGNED) AS precert_id, \
    CAST(i.cert_certificate_id AS SIGNED) AS cert_id, LOWER(HEX(p.fingerprint)) AS precert_fp, \
    LOWER(HEX(f.fingerprint)) AS cert_fp, CAST(r.previous_issuance_id AS SIGNED) AS previous_id, \
    CAST(r.gap_days AS SIGNED) AS gap_days, CAST(r.same_key AS SIGNED) AS same_key, \
    CAST(r.ca_changed AS SIGNED) AS ca_changed";

const ISSUANCE_JOINS: &str = "LEFT JOIN certificates p ON p.id = i.precert_certificate_id \
    LEFT JOIN certificates f ON f.id = i.cert_certificate_id \
    LEFT JOIN renewals r ON r.issuance_id = i.id";

fn fill_issuance_names(rows: &mut [IssuanceRow]) {
    for r in rows {
        r.names = parse_names(&r.names_json);
    }
}

fn fill_set_names(rows: &mut [NameSetRow]) {
    for r in rows {
        r.names = parse_names(&r.names_json);
    }
}

/// `(month expression)`: the JST month `yyyymm` of a rollup day number.
const MONTH_SQL: &str = "EXTRACT(YEAR_MONTH FROM FROM_DAYS(day + 719528))";

/// Issuances per day, CA and bucket from day `since_day` on.
pub async fn issuance_days(pool: &MySqlPool, since_day: i64) -> Result<Vec<DayCell>> {
    Ok(sqlx::query_as::<_, DayCell>(
        "SELECT CAST(day AS SIGNED) AS day, ca, bucket, CAST(issuances AS SIGNED) AS n \
         FROM rollup_issuances WHERE day >= ? AND issuances <> 0",
    )
    .bind(since_day)
    .fetch_all(pool)
    .await?)
}

/// Issuances per month, CA and bucket, all time.
pub async fn issuance_months(pool: &MySqlPool) -> Result<Vec<MonthCell>> {
    Ok(sqlx::query_as::<_, MonthCell>(&format!(
        "SELECT CAST({MONTH_SQL} AS SIGNED) AS month, ca, bucket, CAST(SUM(issuances) AS SIGNED) AS n \
         FROM rollup_issuances GROUP BY 1, 2, 3 HAVING n <> 0"
    ))
    .fetch_all(pool)
    .await?)
}

/// Issuances per category, month, CA and bucket, all time.
pub async fn category_months(pool: &MySqlPool) -> Result<Vec<CategoryCell>> {
    Ok(sqlx::query_as::<_, CategoryCell>(&format!(
        "SELECT category, CAST({MONTH_SQL} AS SIGNED) AS month, ca, bucket, \
         CAST(SUM(issuances) AS SIGNED) AS n FROM rollup_categories GROUP BY 1, 2, 3, 4 HAVING n <> 0"
    ))
    .fetch_all(pool)
    .await?)
}

/// The whole JST heat map (at most 7 × 24 × 2 rows).
pub async fn heat(pool: &MySqlPool) -> Result<Vec<HeatCell>> {
    Ok(sqlx::query_as::<_, HeatCell>(
        "SELECT CAST(weekday AS SIGNED) AS weekday, CAST(hour AS SIGNED) AS hour, \
         CAST(holiday AS SIGNED) AS holiday, CAST(certificates AS SIGNED) AS n FROM rollup_jst",
    )
    .fetch_all(pool)
    .await?)
}

/// Issuances per validation level (over `rollup_orgs`, which holds every
/// counted issuance once).
pub async fn validation_levels(pool: &MySqlPool) -> Result<Vec<super::Count>> {
    Ok(sqlx::query_as::<_, super::Count>(
        "SELECT validation AS `key`, CAST(SUM(issuances) AS SIGNED) AS n FROM rollup_orgs \
         GROUP BY validation HAVING n <> 0 ORDER BY n DESC, validation",
    )
    .fetch_all(pool)
    .await?)
}

/// The `limit` organisations (subject O) with most issuances, and how many
/// organisations there are.
pub async fn top_orgs(pool: &MySqlPool, limit: i64) -> Result<(Vec<OrgTotal>, i64)> {
    let top = sqlx::query_as::<_, OrgTotal>(
        "SELECT org, CAST(SUM(issuances) AS SIGNED) AS issuances FROM rollup_orgs WHERE org <> '' \
         GROUP BY org HAVING issuances > 0 ORDER BY issuances DESC, org LIMIT ?",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT org) FROM rollup_orgs WHERE org <> '' AND issuances > 0",
    )
    .fetch_one(pool)
    .await?;
    Ok((top, n))
}

/// Every `rollup_orgs` row of `orgs`.
pub async fn org_cells(pool: &MySqlPool, orgs: &[String]) -> Result<Vec<OrgCell>> {
    let mut out = Vec::new();
    for chunk in orgs.chunks(CHUNK) {
        let mut q = QueryBuilder::new(
            "SELECT org, ca, bucket, validation, CAST(issuances AS SIGNED) AS n, \
             CAST(first_logged_at_ms AS SIGNED) AS first_logged_at_ms, \
             CAST(last_logged_at_ms AS SIGNED) AS last_logged_at_ms FROM rollup_orgs WHERE org IN (",
        );
        let mut sep = q.separated(", ");
        for o in chunk {
            sep.push_bind(o.as_str());
        }
        q.push(") AND issuances <> 0");
        out.extend(q.build_query_as::<OrgCell>().fetch_all(pool).await?);
    }
    Ok(out)
}

/// The latest `limit` issuances (by CT log time) of an organisation.
pub async fn org_issuances(pool: &MySqlPool, org: &str, limit: i64) -> Result<Vec<IssuanceRow>> {
    let mut rows = sqlx::query_as::<_, IssuanceRow>(&format!(
        "SELECT {ISSUANCE_COLUMNS} FROM issuances i {ISSUANCE_JOINS} \
         WHERE i.subject_o = ? ORDER BY i.first_logged_at_ms DESC, i.id DESC LIMIT ?"
    ))
    .bind(org)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    fill_issuance_names(&mut rows);
    Ok(rows)
}

/// The latest `limit` issuances by CT log time.
pub async fn latest_issuances(pool: &MySqlPool, limit: i64) -> Result<Vec<IssuanceRow>> {
    let mut rows = sqlx::query_as::<_, IssuanceRow>(&format!(
        "SELECT {ISSUANCE_COLUMNS} FROM issuances i {ISSUANCE_JOINS} \
         WHERE i.first_logged_at_ms IS NOT NULL ORDER BY i.first_logged_at_ms DESC, i.id DESC LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    fill_issuance_names(&mut rows);
    Ok(rows)
}

/// The latest `limit` issuances (by CT log time) naming something under
/// `domain`, through `names` and `cert_analysis` (bounded by the domain's
/// own rows).
pub async fn domain_issuances(
    pool: &MySqlPool,
    domain: &str,
    limit: i64,
) -> Result<Vec<IssuanceRow>> {
    let mut rows = sqlx::query_as::<_, IssuanceRow>(&format!(
        "SELECT {ISSUANCE_COLUMNS} FROM issuances i {ISSUANCE_JOINS} \
         WHERE i.id IN (SELECT a.issuance_id FROM names n JOIN cert_analysis a ON a.certificate_id = n.certificate_id \
                        WHERE n.registered_domain = ?) \
         ORDER BY i.first_logged_at_ms DESC, i.id DESC LIMIT ?"
    ))
    .bind(domain)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    fill_issuance_names(&mut rows);
    Ok(rows)
}

/// The issuances of the name sets `keys`: the latest `per_set` of each by
/// not_before (a certificate page's renewal chain).
pub async fn chains(
    pool: &MySqlPool,
    keys: &[Vec<u8>],
    per_set: i64,
) -> Result<HashMap<String, Vec<IssuanceRow>>> {
    let mut out: HashMap<String, Vec<IssuanceRow>> = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let mut q = QueryBuilder::new(format!(
            "SELECT * FROM (SELECT {ISSUANCE_COLUMNS}, ROW_NUMBER() OVER \
               (PARTITION BY i.names_key ORDER BY i.not_before DESC, i.id DESC) AS rn \
             FROM issuances i {ISSUANCE_JOINS} WHERE i.names_key IN ("
        ));
        let mut sep = q.separated(", ");
        for k in chunk {
            sep.push_bind(k.as_slice());
        }
        q.push(")) t WHERE rn <= ");
        q.push_bind(per_set);
        let mut rows = q.build_query_as::<IssuanceRow>().fetch_all(pool).await?;
        fill_issuance_names(&mut rows);
        for r in rows {
            out.entry(r.names_key.clone()).or_default().push(r);
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|r| (r.not_before_ms, r.id));
    }
    Ok(out)
}

/// The name sets `keys` (hex) of `name_sets`.
pub async fn name_sets(pool: &MySqlPool, keys: &[Vec<u8>]) -> Result<Vec<NameSetRow>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        let mut q = QueryBuilder::new(format!(
            "SELECT {SET_COLUMNS} FROM name_sets s WHERE s.names_key IN ("
        ));
        let mut sep = q.separated(", ");
        for k in chunk {
            sep.push_bind(k.as_slice());
        }
        q.push(")");
        out.extend(q.build_query_as::<NameSetRow>().fetch_all(pool).await?);
    }
    fill_set_names(&mut out);
    Ok(out)
}

const SET_COLUMNS: &str = "LOWER(HEX(s.names_key)) AS names_key, LEFT(s.names, 4000) AS names_json, \
    CAST(s.issuances AS SIGNED) AS issuances, CAST(s.first_not_before * 1000 AS SIGNED) AS first_not_before_ms, \
    CAST(s.latest_issuance_id AS SIGNED) AS latest_issuance_id, \
    CAST(s.latest_not_after * 1000 AS SIGNED) AS latest_not_after_ms, s.latest_issuer_o";

/// Name sets whose latest issuance expires in `[from_s, until_s)` (Unix
/// seconds): the `limit` nearest `now` (latest first when `newest_first`),
/// and how many there are.
pub async fn name_sets_expiring(
    pool: &MySqlPool,
    from_s: i64,
    until_s: i64,
    newest_first: bool,
    limit: i64,
) -> Result<(Vec<NameSetRow>, i64)> {
    let order = if newest_first { "DESC" } else { "ASC" };
    let mut rows = sqlx::query_as::<_, NameSetRow>(&format!(
        "SELECT {SET_COLUMNS} FROM name_sets s WHERE s.latest_not_after >= ? AND s.latest_not_after < ? \
         ORDER BY s.latest_not_after {order}, s.names_key LIMIT ?"
    ))
    .bind(from_s)
    .bind(until_s)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    fill_set_names(&mut rows);
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM name_sets WHERE latest_not_after >= ? AND latest_not_after < ?",
    )
    .bind(from_s)
    .bind(until_s)
    .fetch_one(pool)
    .await?;
    Ok((rows, n))
}

/// Lapsed name sets per day of expiry (days since 1970-01-01, UTC+9) in
/// `[from_s, until_s)`.
pub async fn lapse_days(pool: &MySqlPool, from_s: i64, until_s: i64) -> Result<Vec<(i64, i64)>> {
    Ok(sqlx::query_as::<_, (i64, i64)>(
        "SELECT CAST(FLOOR((latest_not_after + 32400) / 86400) AS SIGNED) AS day, COUNT(*) \
         FROM name_sets WHERE latest_not_after >= ? AND latest_not_after < ? GROUP BY 1 ORDER BY 1",
    )
    .bind(from_s)
    .bind(until_s)
    .fetch_all(pool)
    .await?)
}

/// The `limit` largest registered domains (by issuances).
pub async fn top_domains(pool: &MySqlPool, limit: i64) -> Result<Vec<DomainRow>> {
    Ok(sqlx::query_as::<_, DomainRow>(&format!(
        "SELECT {DOMAIN_COLUMNS} FROM rollup_domains WHERE issuances > 0 \
         ORDER BY issuances DESC, registered_domain LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

const DOMAIN_COLUMNS: &str = "registered_domain, category, CAST(issuances AS SIGNED) AS issuances, \
    CAST(first_logged_at_ms AS SIGNED) AS first_logged_at_ms, CAST(last_logged_at_ms AS SIGNED) AS last_logged_at_ms";

/// The `limit` largest registered domains of one category.
pub async fn category_domains(
    pool: &MySqlPool,
    category: &str,
    limit: i64,
) -> Result<Vec<DomainRow>> {
    Ok(sqlx::query_as::<_, DomainRow>(&format!(
        "SELECT {DOMAIN_COLUMNS} FROM rollup_domains WHERE category = ? AND issuances > 0 \
         ORDER BY issuances DESC, registered_domain LIMIT ?"
    ))
    .bind(category)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Registered domains per category.
pub async fn domains_per_category(pool: &MySqlPool) -> Result<HashMap<String, i64>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT category, COUNT(*) FROM rollup_domains WHERE issuances > 0 GROUP BY category",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect())
}

/// Every registered domain and its issuances (the search index), largest first.
pub async fn all_domains(pool: &MySqlPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT registered_domain, CAST(issuances AS SIGNED) FROM rollup_domains WHERE issuances > 0 \
         ORDER BY issuances DESC, registered_domain",
    )
    .fetch_all(pool)
    .await?)
}

/// The `limit` names with most issuances under `domain`, and how many names it has.
pub async fn domain_names(
    pool: &MySqlPool,
    domain: &str,
    limit: i64,
) -> Result<(Vec<NameRow>, i64)> {
    let rows = sqlx::query_as::<_, NameRow>(
        "SELECT name, CAST(issuances AS SIGNED) AS issuances, \
         CAST(first_logged_at_ms AS SIGNED) AS first_logged_at_ms, \
         CAST(last_logged_at_ms AS SIGNED) AS last_logged_at_ms \
         FROM rollup_names WHERE registered_domain = ? ORDER BY issuances DESC, name LIMIT ?",
    )
    .bind(domain)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM rollup_names WHERE registered_domain = ?")
            .bind(domain)
            .fetch_one(pool)
            .await?;
    Ok((rows, n))
}

/// Every stored and analysed field of a certificate, without its raw bytes.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct CertDetail {
    pub id: i64,
    pub fingerprint: String,
    pub entry_type: String,
    pub serial: String,
    pub subject_dn: Option<String>,
    pub subject_cn: Option<String>,
    pub subject_o: Option<String>,
    pub issuer_dn: Option<String>,
    pub issuer_cn: Option<String>,
    pub issuer_o: Option<String>,
    pub not_before_ms: Option<i64>,
    pub not_after_ms: Option<i64>,
    #[serde(skip)]
    pub dns_names_json: String,
    #[serde(skip)]
    pub ip_json: String,
    #[serde(skip)]
    pub policies_json: String,
    pub key_algorithm: Option<String>,
    pub key_bits: Option<i64>,
    pub signature_algorithm: Option<String>,
    pub is_ca: i64,
    pub parse_error: Option<String>,
    pub leaf_bytes: i64,
    pub extra_bytes: i64,
    pub first_seen: i64,
    // cert_analysis
    pub issuance_id: Option<i64>,
    pub spki_sha256: Option<String>,
    pub authority_key_id: Option<String>,
    pub subject_key_id: Option<String>,
    pub san_count: Option<i64>,
    pub is_wildcard: Option<i64>,
    pub has_crl: Option<i64>,
    pub has_ocsp: Option<i64>,
    pub subject_c: Option<String>,
    pub subject_st: Option<String>,
    pub subject_l: Option<String>,
    pub subject_ou: Option<String>,
    pub issuer_c: Option<String>,
    pub issuer_st: Option<String>,
    pub issuer_l: Option<String>,
    pub issuer_ou: Option<String>,
    pub validation: Option<String>,
    pub validation_inferred: Option<i64>,
    pub validity_days: Option<i64>,
    pub first_logged_at_ms: Option<i64>,
    pub jst_night: Option<i64>,
    pub jst_weekend: Option<i64>,
    pub jst_holiday: Option<i64>,
    pub jst_hour: Option<i64>,
    pub jst_weekday: Option<i64>,
    #[sqlx(skip)]
    pub dns_names: Vec<String>,
    #[sqlx(skip)]
    pub ip_addresses: Vec<String>,
    #[sqlx(skip)]
    pub policies: Vec<String>,
}

/// A sighting of a certificate: which log, at which index and CT time.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct SightingRow {
    pub certificate_id: i64,
    pub log_id: i64,
    pub log: String,
    pub log_url: String,
    pub idx: i64,
    pub timestamp_ms: i64,
    pub created_at: i64,
}

/// A stored name of a certificate.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct CertName {
    pub certificate_id: i64,
    pub name: String,
    pub category: String,
    pub registered_domain: String,
}

/// The certificates `ids` with their analysis, sightings and names. Each
/// is a few random reads; chunks go to all the pool's connections at once,
/// so that the disk has several reads to serve at a time.
pub async fn certificates(
    pool: &MySqlPool,
    ids: &[i64],
) -> Result<(Vec<CertDetail>, Vec<SightingRow>, Vec<CertName>)> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let parts: Vec<_> = stream::iter(ids.chunks(CERT_CHUNK))
        .map(|chunk| certificate_chunk(pool, chunk))
        .buffer_unordered(4)
        .try_collect()
        .await?;
    let (mut certs, mut sightings, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for (c, s, n) in parts {
        certs.extend(c);
        sightings.extend(s);
        names.extend(n);
    }
    for c in &mut certs {
        c.dns_names = parse_names(&c.dns_names_json);
        c.ip_addresses = parse_names(&c.ip_json);
        c.policies = parse_names(&c.policies_json);
    }
    sightings.sort_by_key(|s| (s.certificate_id, s.timestamp_ms, s.log_id, s.idx));
    names.sort_by(|a, b| (a.certificate_id, &a.name).cmp(&(b.certificate_id, &b.name)));
    Ok((certs, sightings, names))
}

/// Certificates read per chunk of [`certificates`].
const CERT_CHUNK: usize = 250;

type CertChunk = (Vec<CertDetail>, Vec<SightingRow>, Vec<CertName>);

async fn certificate_chunk(pool: &MySqlPool, chunk: &[i64]) -> Result<CertChunk> {
    let push_ids = |q: &mut QueryBuilder<'_, sqlx::MySql>| {
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
    };
    let mut conn = pool.acquire().await?;
    let mut q = QueryBuilder::new(
        "SELECT CAST(c.id AS SIGNED) AS id, LOWER(HEX(c.fingerprint)) AS fingerprint, c.entry_type, c.serial, \
         c.subject_dn, c.subject_cn, c.subject_o, c.issuer_dn, c.issuer_cn, c.issuer_o, \
         CAST(c.not_before * 1000 AS SIGNED) AS not_before_ms, CAST(c.not_after * 1000 AS SIGNED) AS not_after_ms, \
         LEFT(c.dns_names, 20000) AS dns_names_json, LEFT(c.ip_addresses, 4000) AS ip_json, \
         LEFT(c.policies, 4000) AS policies_json, c.key_algorithm, CAST(c.key_bits AS SIGNED) AS key_bits, \
         c.signature_algorithm, CAST(c.is_ca AS SIGNED) AS is_ca, c.parse_error, \
         CAST(LENGTH(c.leaf_input) AS SIGNED) AS leaf_bytes, CAST(LENGTH(c.extra_data) AS SIGNED) AS extra_bytes, \
         c.first_seen, CAST(a.issuance_id AS SIGNED) AS issuance_id, LOWER(HEX(a.spki_sha256)) AS spki_sha256, \
         a.authority_key_id, a.subject_key_id, CAST(a.san_count AS SIGNED) AS san_count, \
         CAST(a.is_wildcard AS SIGNED) AS is_wildcard, CAST(a.has_crl AS SIGNED) AS has_crl, \
         CAST(a.has_ocsp AS SIGNED) AS has_ocsp, a.subject_c, a.subject_st, a.subject_l, a.subject_ou, \
         a.issuer_c, a.issuer_st, a.issuer_l, a.issuer_ou, a.validation, \
         CAST(a.validation_inferred AS SIGNED) AS validation_inferred, \
         CAST(a.validity_days AS SIGNED) AS validity_days, \
         CAST(a.first_logged_at_ms AS SIGNED) AS first_logged_at_ms, CAST(a.jst_night AS SIGNED) AS jst_night, \
         CAST(a.jst_weekend AS SIGNED) AS jst_weekend, CAST(a.jst_holiday AS SIGNED) AS jst_holiday, \
         CAST(a.jst_hour AS SIGNED) AS jst_hour, CAST(a.jst_weekday AS SIGNED) AS jst_weekday \
         FROM certificates c LEFT JOIN cert_analysis a ON a.certificate_id = c.id WHERE c.id IN (",
    );
    push_ids(&mut q);
    let certs = q
        .build_query_as::<CertDetail>()
        .fetch_all(&mut *conn)
        .await?;

    let mut q = QueryBuilder::new(
        "SELECT CAST(s.certificate_id AS SIGNED) AS certificate_id, CAST(s.log_id AS SIGNED) AS log_id, \
         COALESCE(NULLIF(l.description, ''), l.url) AS log, l.url AS log_url, CAST(s.idx AS SIGNED) AS idx, \
         CAST(s.timestamp_ms AS SIGNED) AS timestamp_ms, s.created_at \
         FROM sightings s JOIN logs l ON l.id = s.log_id WHERE s.certificate_id IN (",
    );
    push_ids(&mut q);
    let sightings = q
        .build_query_as::<SightingRow>()
        .fetch_all(&mut *conn)
        .await?;

    let mut q = QueryBuilder::new(
        "SELECT CAST(certificate_id AS SIGNED) AS certificate_id, name, category, registered_domain \
         FROM names WHERE certificate_id IN (",
    );
    push_ids(&mut q);
    let names = q.build_query_as::<CertName>().fetch_all(&mut *conn).await?;
    Ok((certs, sightings, names))
}
