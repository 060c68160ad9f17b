//! Issuances of one batch: a precertificate and its final certificate (same
//! issuer DN and serial) become one row. Everything is merged in memory and
//! written with one statement per thousand rows; the rollup of issuances per
//! day, CA and validity bucket moves with it (what an issuance was counted
//! under follows from its stored columns, so a move takes it out there and
//! puts it in here). The analysis job is the only writer (it holds `analysis_state`'s
//! row lock), so new rows take ids it assigns, after `last_issuance_id`;
//! they are written on another connection ([`insert_new`]), which commits
//! before the main one.

use std::collections::{BTreeMap, HashMap};

use ct_core::cert::CertInfo;
use ct_core::leaf::EntryType;
use ct_db::bulk::Insert;
use sha2::{Digest, Sha256};
use sqlx::{MySqlConnection, QueryBuilder};

use super::chain::{self, Link};
use super::{Facts, SHORT, names_key, short};
use crate::error::Result;

const ROWS: usize = 1_000;

/// An issuance's identity: SHA-256 of the issuer DN, a zero byte and the
/// serial (a precertificate's TBS names its final certificate's issuer).
pub fn issuance_key(info: &CertInfo) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(info.issuer.dn.as_bytes());
    h.update([0]);
    h.update(info.serial.as_bytes());
    h.finalize().to_vec()
}

/// A new issuance of a set of .jp names.
pub struct Fresh {
    pub names_key: Vec<u8>,
    /// JSON array of the names.
    pub names: String,
    pub link: Link,
}

/// Where the rollup counts an issuance: (JST day, CA, validity bucket).
/// Computed from the issuance's stored columns both where it is counted now
/// and where it was (migration 09's generated columns say the same); a
/// change to this rule needs `analyse --backfill`.
type Counted = (i64, String, String);

fn counted(
    first_logged: Option<u64>,
    issuer_o: &Option<String>,
    days: Option<i64>,
) -> Option<Counted> {
    Some((
        chain::jst_day(first_logged?),
        crate::db::clip(issuer_o.as_deref().unwrap_or_default(), SHORT).to_owned(),
        chain::validity_bucket(days).to_owned(),
    ))
}

/// A new issuance, merged from this batch's certificates.
struct Draft<'a> {
    info: &'a CertInfo,
    names: &'a [String],
    precert: Option<u64>,
    cert: Option<u64>,
    first_logged: u64,
}

/// What is stored of an existing issuance.
#[derive(sqlx::FromRow)]
struct Stored {
    id: u64,
    issuance_key: Vec<u8>,
    issuer_o: Option<String>,
    validity_days: Option<i32>,
    names: String,
    precert_certificate_id: Option<u64>,
    cert_certificate_id: Option<u64>,
    first_logged_at_ms: Option<u64>,
}

const STORED: &str = "SELECT id, issuance_key, issuer_o, validity_days, names, precert_certificate_id, \
     cert_certificate_id, first_logged_at_ms FROM issuances WHERE ";

/// A new issuance's row, written by [`insert_new`].
pub struct NewRow<'a> {
    id: u64,
    key: Vec<u8>,
    info: &'a CertInfo,
    names_key: Vec<u8>,
    /// JSON array of the names.
    names: String,
    /// Whether it names any .jp name (it then joins a renewal chain).
    chained: bool,
    precert: Option<u64>,
    cert: Option<u64>,
    first_logged: u64,
    days: Option<i64>,
}

/// What [`apply`] decided: each certificate's issuance id, and the new
/// issuances' rows. Sent before anything is written, so that other
/// connections write them meanwhile.
pub struct Planned<'a> {
    pub issuance_of: HashMap<u64, u64>,
    pub new_rows: Vec<NewRow<'a>>,
}

/// Files `facts` under their issuances and applies `moved` (an issuance's
/// certificate was seen earlier than before: issuance id, new time).
/// `last` is the last issuance id a committed batch handed out: rows above
/// it were left by a failed batch and do not count. What is decided goes to
/// `planned` before anything is written; the new rows are not written here
/// (see [`insert_new`]). Writes the changed issuances and every rollup;
/// returns how many issuances changed, the new issuances of a set of .jp
/// names (for the renewal chains) and the last id handed out.
pub async fn apply<'a>(
    conn: &mut MySqlConnection,
    facts: &'a [Facts],
    moved: &[(u64, u64)],
    last: u64,
    planned: tokio::sync::oneshot::Sender<Planned<'a>>,
) -> Result<(u64, Vec<Fresh>, u64)> {
    let mut drafts: BTreeMap<Vec<u8>, Draft<'a>> = BTreeMap::new();
    for f in facts {
        let d = drafts
            .entry(issuance_key(&f.info))
            .or_insert_with(|| Draft {
                info: &f.info,
                names: &f.names,
                precert: None,
                cert: None,
                first_logged: f.first_logged_ms,
            });
        let slot = if f.entry_type == EntryType::Precert {
            &mut d.precert
        } else {
            &mut d.cert
        };
        slot.get_or_insert(f.certificate_id);
        d.first_logged = d.first_logged.min(f.first_logged_ms);
    }
    // What is stored already, by key and by id.
    let keys: Vec<&Vec<u8>> = drafts.keys().collect();
    let mut stored: HashMap<Vec<u8>, Stored> = HashMap::new();
    for chunk in keys.chunks(ROWS) {
        let mut q = QueryBuilder::new(STORED);
        q.push("id <= ");
        q.push_bind(last);
        q.push(" AND issuance_key IN (");
        let mut sep = q.separated(", ");
        for k in chunk {
            sep.push_bind(k.to_vec());
        }
        q.push(")");
        for s in q.build_query_as::<Stored>().fetch_all(&mut *conn).await? {
            stored.insert(s.issuance_key.clone(), s);
        }
    }
    let mut moved_to: HashMap<u64, u64> = HashMap::new();
    for (id, ts) in moved {
        moved_to
            .entry(*id)
            .and_modify(|t| *t = (*t).min(*ts))
            .or_insert(*ts);
    }
    let moved_ids: Vec<u64> = moved_to.keys().copied().collect();
    for chunk in moved_ids.chunks(ROWS) {
        let mut q = QueryBuilder::new(STORED);
        q.push("id <= ");
        q.push_bind(last);
        q.push(" AND id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        for s in q.build_query_as::<Stored>().fetch_all(&mut *conn).await? {
            stored.entry(s.issuance_key.clone()).or_insert(s);
        }
    }

    let mut deltas: BTreeMap<Counted, i64> = BTreeMap::new();
    let mut site = SiteRollups::default();
    let mut of_cert = HashMap::new();
    // Existing issuances: merge, recount.
    let mut updates = Vec::new();
    for s in stored.values() {
        let d = drafts.get(&s.issuance_key);
        let precert = s.precert_certificate_id.or(d.and_then(|d| d.precert));
        let cert = s.cert_certificate_id.or(d.and_then(|d| d.cert));
        let first = [
            s.first_logged_at_ms,
            d.map(|d| d.first_logged),
            moved_to.get(&s.id).copied(),
        ]
        .into_iter()
        .flatten()
        .min();
        // Where it was counted follows from its stored columns, as where
        // it is counted now does.
        let days = s.validity_days.map(i64::from);
        let old = counted(s.first_logged_at_ms, &s.issuer_o, days);
        let new = counted(first, &s.issuer_o, days);
        if let Some(d) = d {
            for c in [d.precert, d.cert].into_iter().flatten() {
                of_cert.insert(c, s.id);
            }
        }
        let unchanged = precert == s.precert_certificate_id
            && cert == s.cert_certificate_id
            && first == s.first_logged_at_ms
            && old == new;
        if unchanged {
            continue;
        }
        let names: Vec<String> = serde_json::from_str(&s.names).unwrap_or_default();
        if let Some(o) = &old {
            *deltas.entry(o.clone()).or_default() -= 1;
            site.category(&names, o, -1);
        }
        if let Some(n) = &new {
            *deltas.entry(n.clone()).or_default() += 1;
            site.category(&names, n, 1);
        }
        if let Some(first) = first {
            site.logged(&names, first);
        }
        updates.push((s.id, precert, cert, first));
    }
    let mut changed = updates.len() as u64;

    // New issuances take the next ids.
    let mut next = last;
    let mut new_rows = Vec::new();
    for (key, d) in &drafts {
        if stored.contains_key(key) {
            continue;
        }
        next += 1;
        for c in [d.precert, d.cert].into_iter().flatten() {
            of_cert.insert(c, next);
        }
        let days = chain::validity_days(d.info.not_before, d.info.not_after);
        let c = counted(Some(d.first_logged), &d.info.issuer.o, days);
        if let Some(c) = &c {
            *deltas.entry(c.clone()).or_default() += 1;
            site.counted(d, c);
        }
        new_rows.push(NewRow {
            id: next,
            key: key.clone(),
            info: d.info,
            names_key: names_key(d.names).to_vec(),
            names: serde_json::to_string(d.names).unwrap_or_else(|_| "[]".into()),
            chained: !d.names.is_empty(),
            precert: d.precert,
            cert: d.cert,
            first_logged: d.first_logged,
            days,
        });
    }
    changed += new_rows.len() as u64;
    let fresh = new_rows
        .iter()
        .filter(|r| r.chained)
        .map(|r| Fresh {
            names_key: r.names_key.clone(),
            names: r.names.clone(),
            link: Link {
                id: r.id,
                not_before: r.info.not_before,
                not_after: r.info.not_after,
                spki_sha256: r.info.spki_sha256.map(|h| h.0.to_vec()),
                issuer_o: short(&r.info.issuer.o, SHORT).map(str::to_owned),
            },
        })
        .collect();
    // The receiver is gone only when another connection failed, which the
    // caller reports.
    let _ = planned.send(Planned {
        issuance_of: of_cert,
        new_rows,
    });
    // One statement per row: an upsert would lock the gaps of the unique
    // key that the new rows go into on the other connection.
    for (id, precert, cert, first) in &updates {
        sqlx::query(
            "UPDATE issuances SET precert_certificate_id = ?, cert_certificate_id = ?, first_logged_at_ms = ? \
             WHERE id = ?",
        )
        .bind(*precert)
        .bind(*cert)
        .bind(*first)
        .bind(*id)
        .execute(&mut *conn)
        .await?;
    }
    site.write(conn).await?;

    deltas.retain(|_, n| *n != 0);
    let shrank = deltas.values().any(|n| *n < 0);
    let mut ins = Insert::new(
        "INSERT INTO rollup_issuances (day, ca, bucket, issuances)",
        " ON DUPLICATE KEY UPDATE issuances = issuances + VALUES(issuances)",
    );
    for ((day, ca, bucket), n) in &deltas {
        ins.row(|b| {
            b.push(*day).push(ca).push(bucket).push(*n);
        });
    }
    ins.execute(conn).await?;
    if shrank {
        sqlx::query("DELETE FROM rollup_issuances WHERE issuances = 0")
            .execute(&mut *conn)
            .await?;
    }
    Ok((changed, fresh, next))
}

/// Writes the new issuances' rows, first deleting those a failed batch
/// left above `last` (their ids are handed out again).
pub async fn insert_new(conn: &mut MySqlConnection, rows: &[NewRow<'_>], last: u64) -> Result<()> {
    sqlx::query("DELETE FROM issuances WHERE id > ?")
        .bind(last)
        .execute(&mut *conn)
        .await?;
    let mut ins = Insert::new(
        "INSERT INTO issuances (id, issuance_key, serial, issuer_dn, issuer_o, precert_certificate_id, \
         cert_certificate_id, names_key, names, not_before, not_after, validity_days, spki_sha256, \
         first_logged_at_ms, subject_o)",
        "",
    );
    for r in rows {
        let i = r.info;
        ins.row(|b| {
            b.push(r.id)
                .push(&r.key)
                .push(crate::db::clip(&i.serial, ct_db::limits::SERIAL))
                .push(crate::db::clip(&i.issuer.dn, ct_db::limits::TEXT))
                .push(short(&i.issuer.o, SHORT))
                .push(r.precert)
                .push(r.cert)
                .push(&r.names_key)
                .push(&r.names)
                .push(i.not_before)
                .push(i.not_after)
                .push(r.days)
                .push(i.spki_sha256.map(|h| h.0))
                .push(r.first_logged)
                .push(short(&i.subject.o, SHORT).filter(|o| !o.is_empty()));
        });
    }
    ins.execute(conn).await?;
    Ok(())
}

/// First and last CT log time of a rollup row.
#[derive(Default, Clone, Copy)]
struct Seen {
    issuances: i64,
    first: Option<u64>,
    last: Option<u64>,
}

impl Seen {
    fn add(&mut self, n: i64, at: u64) {
        self.issuances += n;
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }
}

/// The site's rollups (migration 20261201000005_site.sql defines each
/// column): per category, registered domain, name and organisation.
#[derive(Default)]
struct SiteRollups {
    categories: BTreeMap<(String, i64, String, String), i64>,
    domains: BTreeMap<String, (String, Seen)>,
    names: BTreeMap<String, (String, Seen)>,
    orgs: BTreeMap<(String, String, String, String), Seen>,
}

fn categories_of(names: &[String]) -> std::collections::BTreeSet<&'static str> {
    names
        .iter()
        .map(|n| ct_core::matcher::categorize(n).as_str())
        .collect()
}

fn domain_of(name: &str) -> String {
    crate::db::clip(
        &ct_core::matcher::registered_domain(name),
        ct_db::limits::NAME,
    )
    .to_owned()
}

impl SiteRollups {
    /// An issuance's counts under `c` change by `n`, once per category.
    fn category(&mut self, names: &[String], c: &Counted, n: i64) {
        for cat in categories_of(names) {
            *self
                .categories
                .entry((cat.to_owned(), c.0, c.1.clone(), c.2.clone()))
                .or_default() += n;
        }
    }

    /// An issuance's earliest log time is `at` now (its names' rows follow).
    fn logged(&mut self, names: &[String], at: u64) {
        for name in names {
            let d = domain_of(name);
            let cat = ct_core::matcher::categorize(name).as_str().to_owned();
            self.domains
                .entry(d.clone())
                .or_insert_with(|| (cat, Seen::default()))
                .1
                .add(0, at);
            self.names
                .entry(crate::db::clip(name, ct_db::limits::NAME).to_owned())
                .or_insert_with(|| (d, Seen::default()))
                .1
                .add(0, at);
        }
    }

    /// A new issuance is counted under `c`.
    fn counted(&mut self, d: &Draft<'_>, c: &Counted) {
        self.category(d.names, c, 1);
        let at = d.first_logged;
        let mut domains: BTreeMap<String, &'static str> = BTreeMap::new();
        for name in d.names {
            let cat = ct_core::matcher::categorize(name).as_str();
            domains
                .entry(domain_of(name))
                .and_modify(|c| *c = (*c).min(cat))
                .or_insert(cat);
            self.names
                .entry(crate::db::clip(name, ct_db::limits::NAME).to_owned())
                .or_insert_with(|| (domain_of(name), Seen::default()))
                .1
                .add(1, at);
        }
        for (domain, cat) in domains {
            self.domains
                .entry(domain)
                .or_insert_with(|| (cat.to_owned(), Seen::default()))
                .1
                .add(1, at);
        }
        let org = short(&d.info.subject.o, SHORT)
            .unwrap_or_default()
            .to_owned();
        self.orgs
            .entry((
                org,
                c.1.clone(),
                c.2.clone(),
                d.info.validation.as_str().to_owned(),
            ))
            .or_default()
            .add(1, at);
    }

    async fn write(&self, conn: &mut MySqlConnection) -> Result<()> {
        let mut ins = Insert::new(
            "INSERT INTO rollup_categories (category, day, ca, bucket, issuances)",
            " ON DUPLICATE KEY UPDATE issuances = issuances + VALUES(issuances)",
        );
        for ((cat, day, ca, bucket), n) in self.categories.iter().filter(|(_, n)| **n != 0) {
            ins.row(|b| {
                b.push(cat).push(*day).push(ca).push(bucket).push(*n);
            });
        }
        ins.execute(conn).await?;
        const SEEN: &str = " ON DUPLICATE KEY UPDATE issuances = issuances + VALUES(issuances), \
             first_logged_at_ms = LEAST(COALESCE(first_logged_at_ms, VALUES(first_logged_at_ms)), VALUES(first_logged_at_ms)), \
             last_logged_at_ms = GREATEST(COALESCE(last_logged_at_ms, VALUES(last_logged_at_ms)), VALUES(last_logged_at_ms))";
        for (table, key, rows) in [
            (
                "rollup_domains",
                "registered_domain, category",
                &self.domains,
            ),
            ("rollup_names", "name, registered_domain", &self.names),
        ] {
            let mut ins = Insert::new(
                &format!(
                    "INSERT INTO {table} ({key}, issuances, first_logged_at_ms, last_logged_at_ms)"
                ),
                SEEN,
            );
            for (k, (other, seen)) in rows {
                ins.row(|b| {
                    b.push(k)
                        .push(other)
                        .push(seen.issuances)
                        .push(seen.first)
                        .push(seen.last);
                });
            }
            ins.execute(conn).await?;
        }
        let mut ins = Insert::new(
            "INSERT INTO rollup_orgs (org, ca, bucket, validation, issuances, first_logged_at_ms, last_logged_at_ms)",
            SEEN,
        );
        for ((org, ca, bucket, validation), seen) in &self.orgs {
            ins.row(|b| {
                b.push(org)
                    .push(ca)
                    .push(bucket)
                    .push(validation)
                    .push(seen.issuances)
                    .push(seen.first)
                    .push(seen.last);
            });
        }
        ins.execute(conn).await?;
        Ok(())
    }
}
