//! The analysis job (`ct-manager analyse` and a loop of `serve`): reads the
//! sightings stored since it last ran, computes every analysis field of each
//! new certificate from its stored raw entry with `ct-core`, links a
//! precertificate and its certificate into one issuance, rebuilds the
//! renewal chains of the name sets it touched, and keeps the site's rollups.
//! Incremental: a run with nothing new reads one index entry. Everything it
//! writes is derived, so `--backfill` throws it away and starts over.

pub mod chain;
mod chains;
mod issuances;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use ct_core::cert::{CertInfo, extract};
use ct_core::jst::LogTime;
use ct_core::leaf::{EntryType, decode_leaf};
use ct_core::matcher::{Matcher, registered_domain};
use ct_db::bulk::Insert;
use sha2::{Digest, Sha256};
use sqlx::{MySqlConnection, MySqlPool, QueryBuilder};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Sightings read per transaction.
pub const DEFAULT_BATCH: u32 = 5_000;
/// Clipped lengths of the analysis columns.
const SHORT: usize = 255;
const KEY_ID: usize = 128;

/// Every table the analysis writes (and [`Analyser::reset`] empties).
pub const DERIVED_TABLES: [&str; 10] = [
    "renewals",
    "name_sets",
    "rollup_issuances",
    "rollup_jst",
    "rollup_categories",
    "rollup_domains",
    "rollup_names",
    "rollup_orgs",
    "cert_analysis",
    "issuances",
];

/// How one run went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub sightings: u64,
    pub certificates: u64,
    pub issuances_touched: u64,
    pub name_sets: u64,
    pub renewals: u64,
    pub names_updated: u64,
    pub batches: u64,
}

impl Report {
    fn add(&mut self, o: &Report) {
        self.sightings += o.sightings;
        self.certificates += o.certificates;
        self.issuances_touched += o.issuances_touched;
        self.name_sets += o.name_sets;
        self.renewals += o.renewals;
        self.names_updated += o.names_updated;
        self.batches += o.batches;
    }
}

/// The analysis settings.
#[derive(Debug, Clone)]
pub struct Analyser {
    pub matcher: Matcher,
    /// Sightings per transaction.
    pub batch: u32,
    /// Only sightings stored at least this long ago: an ingest transaction
    /// that took an id earlier but committed later is not skipped.
    pub settle: Duration,
}

/// A batch read and parsed, not yet written.
pub struct Prepared {
    after: u64,
    newest: u64,
    sightings: u64,
    earliest: BTreeMap<u64, u64>,
    /// Its certificates analysed already, as read without a lock.
    known: HashMap<u64, (Option<u64>, u64)>,
    facts: Vec<Facts>,
}

/// What one certificate's analysis yields.
struct Facts {
    certificate_id: u64,
    entry_type: EntryType,
    info: CertInfo,
    /// The .jp names, sorted and unique.
    names: Vec<String>,
    first_logged_ms: u64,
    /// That moment in Japan (computed here, on every core, once for both
    /// the per-certificate row and the heat map).
    logged: Option<LogTime>,
}

/// Computes the facts of stored raw entries (CPU work, on every core).
fn facts_of(matcher: &Matcher, rows: Vec<(u64, Vec<u8>, u64)>) -> Vec<Facts> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    let one = |(certificate_id, leaf, first_logged_ms): (u64, Vec<u8>, u64)| {
        let (entry_type, info) = match decode_leaf(&leaf) {
            Ok(entry) => {
                let tbs_only = entry.entry_type == EntryType::Precert;
                let info = extract(entry.signed, tbs_only).unwrap_or_else(|e| CertInfo {
                    parse_error: Some(e),
                    ..CertInfo::default()
                });
                (entry.entry_type, info)
            }
            Err(e) => (
                EntryType::X509,
                CertInfo {
                    parse_error: Some(e.to_string()),
                    ..CertInfo::default()
                },
            ),
        };
        let mut names: Vec<String> = info
            .candidate_names()
            .into_iter()
            .filter(|n| matcher.matches_normalized(n))
            .collect();
        names.sort();
        names.dedup();
        Facts {
            certificate_id,
            entry_type,
            info,
            names,
            first_logged_ms,
            logged: LogTime::from_ms(first_logged_ms),
        }
    };
    let mut rows = rows;
    let mut parts = Vec::new();
    while rows.len() > chunk {
        let rest = rows.split_off(chunk);
        parts.push(std::mem::replace(&mut rows, rest));
    }
    parts.push(rows);
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || part.into_iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn names_key(names: &[String]) -> [u8; 32] {
    Sha256::digest(names.join("\n").as_bytes()).into()
}

fn short(s: &Option<String>, max: usize) -> Option<&str> {
    s.as_deref().map(|s| crate::db::clip(s, max))
}

fn flag(b: bool) -> i8 {
    i8::from(b)
}

impl Analyser {
    pub fn new(matcher: Matcher) -> Self {
        Analyser {
            matcher,
            batch: DEFAULT_BATCH,
            settle: Duration::from_secs(30),
        }
    }

    /// Analyses everything stored since the last run, batch by batch, until
    /// caught up.
    pub async fn run(&self, pool: &MySqlPool) -> Result<Report> {
        let mut total = Report::default();
        let mut from = self.watermark(pool).await?;
        let mut next = self.prefetch(pool, from);
        // The certificates the batch before wrote (its reads may have
        // missed them); None: everything is read again.
        let mut written: Option<HashSet<u64>> = None;
        loop {
            let prepared = next
                .await
                .map_err(|e| Error::Internal(format!("analysis prefetch: {e}")))??;
            let Some(prepared) = prepared else {
                return Ok(total);
            };
            // The next batch is read and parsed while this one is written.
            let newest = prepared.newest;
            next = self.prefetch(pool, newest);
            match self.apply(pool, prepared, written.as_ref()).await? {
                Some((r, w)) => {
                    total.add(&r);
                    written = Some(w);
                }
                None => {
                    written = None;
                    // Someone else moved the analysis on: start from there.
                    next.abort();
                    from = self.watermark(pool).await?;
                    next = self.prefetch(pool, from);
                }
            }
        }
    }

    async fn watermark(&self, pool: &MySqlPool) -> Result<u64> {
        let (last,): (u64,) =
            sqlx::query_as("SELECT last_sighting_id FROM analysis_state WHERE id = 1")
                .fetch_one(pool)
                .await?;
        Ok(last)
    }

    fn prefetch(
        &self,
        pool: &MySqlPool,
        after: u64,
    ) -> tokio::task::JoinHandle<Result<Option<Prepared>>> {
        let (me, pool) = (self.clone(), pool.clone());
        tokio::spawn(async move { me.prepare(&pool, after).await })
    }

    /// Throws away every derived row, recomputes the registered domain of
    /// every stored name with the Public Suffix List, and analyses
    /// everything again.
    pub async fn backfill(&self, pool: &MySqlPool) -> Result<Report> {
        Self::reset(pool).await?;
        let names_updated = self.redo_registered_domains(pool).await?;
        let mut report = self.run(pool).await?;
        report.names_updated = names_updated;
        Ok(report)
    }

    /// Throws away every derived row: the next run analyses everything.
    pub async fn reset(pool: &MySqlPool) -> Result<()> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT last_sighting_id FROM analysis_state WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        for table in DERIVED_TABLES {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE analysis_state SET last_sighting_id = 0, last_issuance_id = 0, updated_at = ? WHERE id = 1",
        )
            .bind(crate::db::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Recomputes `names.registered_domain`; returns the rows changed.
    async fn redo_registered_domains(&self, pool: &MySqlPool) -> Result<u64> {
        let mut after: (u64, String) = (0, String::new());
        let mut changed = 0;
        loop {
            let rows: Vec<(u64, String, String)> = sqlx::query_as(
                "SELECT certificate_id, name, registered_domain FROM names \
                 WHERE (certificate_id, name) > (?, ?) ORDER BY certificate_id, name LIMIT 5000",
            )
            .bind(after.0)
            .bind(&after.1)
            .fetch_all(pool)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(changed);
            };
            after = (last.0, last.1.clone());
            let mut tx = pool.begin().await?;
            for (id, name, old) in &rows {
                let new = registered_domain(name);
                let new = crate::db::clip(&new, ct_db::limits::NAME);
                if new != old {
                    sqlx::query(
                        "UPDATE names SET registered_domain = ? WHERE certificate_id = ? AND name = ?",
                    )
                    .bind(new)
                    .bind(id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                    changed += 1;
                }
            }
            tx.commit().await?;
        }
    }

    /// Reads and parses the `batch` settled sightings after `after`,
    /// without locks (CPU and reads, overlapping the previous batch's writes).
    pub async fn prepare(&self, pool: &MySqlPool, after: u64) -> Result<Option<Prepared>> {
        let settled_before = crate::db::now_ms()
            .saturating_sub(i64::try_from(self.settle.as_millis()).unwrap_or(i64::MAX));
        let mut conn = pool.acquire().await?;
        let sightings: Vec<(u64, u64, u64)> = sqlx::query_as(
            "SELECT id, certificate_id, timestamp_ms FROM sightings \
             WHERE id > ? AND created_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(settled_before)
        .bind(self.batch.max(1))
        .fetch_all(&mut *conn)
        .await?;
        let Some(&(newest, _, _)) = sightings.last() else {
            return Ok(None);
        };
        // The earliest CT timestamp per certificate in this batch.
        let mut earliest: BTreeMap<u64, u64> = BTreeMap::new();
        for (_, cert, ts) in &sightings {
            earliest
                .entry(*cert)
                .and_modify(|t| *t = (*t).min(*ts))
                .or_insert(*ts);
        }
        let ids: Vec<u64> = earliest.keys().copied().collect();
        let known = analysed(&mut conn, after, &ids).await?;
        let new: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| !known.contains_key(id))
            .collect();
        let raw: Vec<(u64, Vec<u8>)> = select_in(
            &mut conn,
            "SELECT id, leaf_input FROM certificates WHERE ",
            "id",
            &new,
        )
        .await?;
        drop(conn);
        let rows: Vec<(u64, Vec<u8>, u64)> = raw
            .into_iter()
            .map(|(id, leaf)| (id, leaf, earliest.get(&id).copied().unwrap_or(0)))
            .collect();
        let matcher = self.matcher.clone();
        let facts = tokio::task::spawn_blocking(move || facts_of(&matcher, rows))
            .await
            .map_err(|e| Error::Internal(format!("analysis task: {e}")))?;
        Ok(Some(Prepared {
            after,
            newest,
            sightings: sightings.len() as u64,
            earliest,
            known,
            facts,
        }))
    }

    /// Writes a prepared batch, if the analysis is still where it was
    /// prepared from (else `None`: prepare again). `recheck`: the only
    /// certificates whose analysis may have changed since the batch was
    /// read (None: all of them). Returns the certificates it wrote.
    async fn apply(
        &self,
        pool: &MySqlPool,
        p: Prepared,
        recheck: Option<&HashSet<u64>>,
    ) -> Result<Option<(Report, HashSet<u64>)>> {
        let mut tx = pool.begin().await?;
        let (last, last_issuance): (u64, u64) = sqlx::query_as(
            "SELECT last_sighting_id, last_issuance_id FROM analysis_state WHERE id = 1 FOR UPDATE",
        )
        .fetch_one(&mut *tx)
        .await?;
        if last != p.after {
            return Ok(None);
        }
        let Prepared {
            newest,
            earliest,
            mut known,
            mut facts,
            sightings,
            ..
        } = p;
        let mut report = Report {
            sightings,
            batches: 1,
            ..Report::default()
        };
        let mut clock = Instant::now();
        let mut lap = |what: &'static str| {
            let ms = clock.elapsed().as_millis() as u64;
            clock = Instant::now();
            tracing::debug!(phase = what, ms, "analysis batch");
        };
        // Certificates analysed meanwhile (by the batch before) are known now.
        let ids: Vec<u64> = earliest
            .keys()
            .copied()
            .filter(|id| recheck.is_none_or(|r| r.contains(id)))
            .collect();
        for id in &ids {
            known.remove(id);
        }
        known.extend(analysed(&mut tx, last, &ids).await?);
        facts.retain(|f| !known.contains_key(&f.certificate_id));
        report.certificates = facts.len() as u64;
        lap("known");

        // Certificates seen again, earlier than before, in another log.
        let mut moved = Vec::new();
        let mut moved_certs = Vec::new();
        for (cert, ts) in &earliest {
            if let Some(&(Some(old), issuance)) = known.get(cert)
                && *ts < old
            {
                move_first_logged(&mut tx, *cert, old, *ts).await?;
                moved.push((issuance, *ts));
                moved_certs.push(*cert);
            }
        }
        // The new issuances and the per-certificate rows are written on two
        // more connections while this one writes the changed issuances, the
        // rollups and the chains (the server works on all three at once).
        // Those two commit first: if this one then fails, the watermark has
        // not moved and the batch is done again. What they left does not
        // count meanwhile (ids above `last_issuance_id`; see `analysed`)
        // and is deleted or overwritten then.
        let (plan_to, plan_from) = tokio::sync::oneshot::channel::<issuances::Planned<'_>>();
        let first = async {
            let (changed, fresh, next) =
                issuances::apply(&mut tx, &facts, &moved, last_issuance, plan_to).await?;
            add_heat(&mut tx, &heat_of(&facts)).await?;
            let (sets, renewals) = chains::extend(&mut tx, fresh, last_issuance).await?;
            chains::write_renewals(&mut tx, &renewals).await?;
            Ok::<_, Error>((changed, sets, next, renewals.len() as u64))
        };
        let others = async {
            let plan = plan_from
                .await
                .map_err(|_| Error::Internal("analysis: the main connection failed".into()))?;
            let new_issuances = async {
                let mut c = pool.begin().await?;
                issuances::insert_new(&mut c, &plan.new_rows, last_issuance).await?;
                c.commit().await?;
                Ok::<_, Error>(())
            };
            let per_certificate = async {
                let mut c = pool.begin().await?;
                insert_analysis(&mut c, &facts, &plan.issuance_of).await?;
                c.commit().await?;
                Ok::<_, Error>(())
            };
            tokio::try_join!(new_issuances, per_certificate)?;
            Ok::<_, Error>(())
        };
        let ((changed, sets, next, renewals), ()) = tokio::try_join!(first, others)?;
        report.issuances_touched = changed;
        report.name_sets = sets;
        report.renewals = renewals;
        lap("written");
        sqlx::query(
            "UPDATE analysis_state SET last_sighting_id = ?, last_issuance_id = ?, updated_at = ? WHERE id = 1",
        )
        .bind(newest)
        .bind(next)
        .bind(crate::db::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        lap("commit");
        let mut written: HashSet<u64> = facts.iter().map(|f| f.certificate_id).collect();
        written.extend(moved_certs);
        Ok(Some((report, written)))
    }
}

/// Rows of `sql` (ending in `WHERE ` or `AND `) for the rows whose `column`
/// is one of `ids`, in chunks the server takes. Runs of consecutive ids
/// (a batch of new certificates usually is one) are asked for as ranges: a
/// range is one index dive where an `IN` list costs the server one per id.
async fn select_in<T>(
    conn: &mut MySqlConnection,
    sql: &str,
    column: &str,
    ids: &[u64],
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::mysql::MySqlRow> + Send + Unpin,
{
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    for chunk in sorted.chunks(5_000) {
        let (runs, singles) = id_runs(chunk);
        let mut q = QueryBuilder::new(sql);
        q.push("(");
        for (i, (lo, hi)) in runs.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push(format_args!("{column} BETWEEN "));
            q.push_bind(*lo);
            q.push(" AND ");
            q.push_bind(*hi);
        }
        if !singles.is_empty() {
            if !runs.is_empty() {
                q.push(" OR ");
            }
            q.push(format_args!("{column} IN ("));
            let mut sep = q.separated(", ");
            for id in singles {
                sep.push_bind(id);
            }
            q.push(")");
        }
        q.push(")");
        out.extend(q.build_query_as::<T>().fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Sorted unique ids as runs of at least [`RUN`] consecutive ids (first,
/// last) and the ids between them.
fn id_runs(sorted: &[u64]) -> (Vec<(u64, u64)>, Vec<u64>) {
    const RUN: usize = 8;
    let (mut runs, mut singles) = (Vec::new(), Vec::new());
    let mut start = 0;
    for i in 1..=sorted.len() {
        if i < sorted.len() && sorted[i] == sorted[i - 1] + 1 {
            continue;
        }
        let run = &sorted[start..i];
        if run.len() >= RUN {
            runs.push((run[0], run[run.len() - 1]));
        } else {
            singles.extend_from_slice(run);
        }
        start = i;
    }
    (runs, singles)
}

/// The certificates among `ids` analysed by a committed batch, up to the
/// watermark `last`: their earliest log time and issuance. A
/// `cert_analysis` row whose certificate has no sighting up to the
/// watermark was left by a batch whose main transaction failed after the
/// other connections committed: the batch is done again, so it does not
/// count.
async fn analysed(
    conn: &mut MySqlConnection,
    last: u64,
    ids: &[u64],
) -> Result<HashMap<u64, (Option<u64>, u64)>> {
    let rows: Vec<(u64, Option<u64>, u64)> = select_in(
        conn,
        "SELECT certificate_id, first_logged_at_ms, issuance_id FROM cert_analysis WHERE ",
        "certificate_id",
        ids,
    )
    .await?;
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let committed: Vec<(u64,)> = select_in(
        conn,
        &format!("SELECT DISTINCT certificate_id FROM sightings WHERE id <= {last} AND "),
        "certificate_id",
        &found,
    )
    .await?;
    let committed: HashSet<u64> = committed.into_iter().map(|(c,)| c).collect();
    Ok(rows
        .into_iter()
        .filter(|r| committed.contains(&r.0))
        .map(|(c, t, i)| (c, (t, i)))
        .collect())
}

/// The JST heat map cells of new certificates.
fn heat_of(facts: &[Facts]) -> BTreeMap<(u8, u8, bool), i64> {
    let mut heat = BTreeMap::new();
    for t in facts.iter().filter_map(|f| f.logged) {
        *heat.entry((t.weekday, t.hour, t.holiday)).or_default() += 1;
    }
    heat
}

/// Writes the per-certificate rows (an upsert: a batch done again
/// overwrites what a failed attempt left).
async fn insert_analysis(
    conn: &mut MySqlConnection,
    facts: &[Facts],
    issuance_of: &HashMap<u64, u64>,
) -> Result<()> {
    let mut ins = Insert::new(
        "INSERT INTO cert_analysis (certificate_id, issuance_id, spki_sha256, authority_key_id, \
         subject_key_id, san_count, is_wildcard, has_crl, has_ocsp, subject_c, subject_st, subject_l, \
         subject_ou, issuer_c, issuer_st, issuer_l, issuer_ou, validation, validation_inferred, \
         validity_days, first_logged_at_ms, jst_holiday)",
        UPSERT_ANALYSIS,
    );
    for f in facts {
        let i = &f.info;
        ins.row(|r| {
            r.push(f.certificate_id)
                .push(issuance_of.get(&f.certificate_id).copied().unwrap_or(0))
                .push(i.spki_sha256.map(|h| h.0))
                .push(short(&i.authority_key_id, KEY_ID))
                .push(short(&i.subject_key_id, KEY_ID))
                .push(i.san_count)
                .push(i.is_wildcard)
                .push(!i.crl_urls.is_empty())
                .push(!i.ocsp_urls.is_empty())
                .push(short(&i.subject.c, SHORT))
                .push(short(&i.subject.st, SHORT))
                .push(short(&i.subject.l, SHORT))
                .push(short(&i.subject.ou, SHORT))
                .push(short(&i.issuer.c, SHORT))
                .push(short(&i.issuer.st, SHORT))
                .push(short(&i.issuer.l, SHORT))
                .push(short(&i.issuer.ou, SHORT))
                .push(i.validation.as_str())
                .push(i.validation_inferred)
                .push(chain::validity_days(i.not_before, i.not_after))
                .push(f.first_logged_ms)
                .push(f.logged.map(|t| t.holiday));
        });
    }
    ins.execute(conn).await?;
    Ok(())
}

const UPSERT_ANALYSIS: &str = " ON DUPLICATE KEY UPDATE issuance_id = VALUES(issuance_id), \
     spki_sha256 = VALUES(spki_sha256), authority_key_id = VALUES(authority_key_id), \
     subject_key_id = VALUES(subject_key_id), san_count = VALUES(san_count), is_wildcard = VALUES(is_wildcard), \
     has_crl = VALUES(has_crl), has_ocsp = VALUES(has_ocsp), subject_c = VALUES(subject_c), \
     subject_st = VALUES(subject_st), subject_l = VALUES(subject_l), subject_ou = VALUES(subject_ou), \
     issuer_c = VALUES(issuer_c), issuer_st = VALUES(issuer_st), issuer_l = VALUES(issuer_l), \
     issuer_ou = VALUES(issuer_ou), validation = VALUES(validation), validation_inferred = VALUES(validation_inferred), \
     validity_days = VALUES(validity_days), first_logged_at_ms = VALUES(first_logged_at_ms), \
     jst_holiday = VALUES(jst_holiday)";

async fn add_heat(conn: &mut MySqlConnection, heat: &BTreeMap<(u8, u8, bool), i64>) -> Result<()> {
    if heat.is_empty() {
        return Ok(());
    }
    let mut ins = Insert::new(
        "INSERT INTO rollup_jst (weekday, hour, holiday, certificates)",
        " ON DUPLICATE KEY UPDATE certificates = certificates + VALUES(certificates)",
    );
    for ((weekday, hour, holiday), n) in heat {
        ins.row(|b| {
            b.push(*weekday).push(*hour).push(*holiday).push(*n);
        });
    }
    ins.execute(conn).await?;
    Ok(())
}

/// A certificate's earliest sighting moved from `old` to `new`: its JST
/// fields and the heat map follow (its issuance follows in
/// [`issuances::apply`]).
async fn move_first_logged(
    conn: &mut MySqlConnection,
    certificate_id: u64,
    old: u64,
    new: u64,
) -> Result<()> {
    let mut heat = BTreeMap::new();
    if let Some(t) = LogTime::from_ms(old) {
        *heat.entry((t.weekday, t.hour, t.holiday)).or_default() -= 1;
    }
    let t = LogTime::from_ms(new);
    if let Some(t) = &t {
        *heat.entry((t.weekday, t.hour, t.holiday)).or_default() += 1;
    }
    // The other JST columns are computed from first_logged_at_ms.
    sqlx::query(
        "UPDATE cert_analysis SET first_logged_at_ms = ?, jst_holiday = ? WHERE certificate_id = ?",
    )
    .bind(new)
    .bind(t.as_ref().map(|t| flag(t.holiday)))
    .bind(certificate_id)
    .execute(&mut *conn)
    .await?;
    add_heat(conn, &heat).await
}

/// The loop of `serve`: analyses what is new every `every`.
pub async fn analyse_loop(
    pool: MySqlPool,
    analyser: Analyser,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let started = Instant::now();
        match analyser.run(&pool).await {
            Ok(r) if r.sightings > 0 => tracing::info!(
                sightings = r.sightings,
                certificates = r.certificates,
                renewals = r.renewals,
                ms = started.elapsed().as_millis() as u64,
                "analysed"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "analysis failed; retrying next round"),
        }
        if crate::sleep_or_stop(every, &mut stop).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::id_runs;

    #[test]
    fn consecutive_ids_become_ranges_and_the_rest_a_list() {
        let mut ids: Vec<u64> = (100..200).collect();
        ids.extend([3, 5, 6, 7, 250, 251, 252, 253, 254, 255, 256, 257, 900]);
        ids.sort_unstable();
        let (runs, singles) = id_runs(&ids);
        assert_eq!(runs, vec![(100, 199), (250, 257)]);
        assert_eq!(singles, vec![3, 5, 6, 7, 900]);
        assert_eq!(id_runs(&[]), (vec![], vec![]));
        assert_eq!(id_runs(&[42]), (vec![], vec![42]));
    }
}
