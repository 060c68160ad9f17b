//! The pages about the certificates themselves, from the analysis layer:
//! issuances by CT log time and CA, CA shares, validity periods, the JST
//! heat map, lapses, one page per CA, name category and organisation, the
//! registered domains' timelines and the certificate pages they link to.
//!
//! Loading reads the rollups whole (they are small) and everything else
//! through indexes, bounded by the configuration: the latest issuances,
//! the largest domains and organisations, and the certificates of the
//! issuances those pages list.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use futures_util::{StreamExt, TryStreamExt, stream};
use minijinja::{Value, context};
use serde::Serialize;
use sqlx::MySqlPool;

use super::{DAY_MS, Site, domain_path};
use crate::charts::{self, Bar, Stack};
use crate::db::Count;
use crate::db::pki::{
    self as q, CategoryCell, CertDetail, CertName, DayCell, DomainRow, HeatCell, IssuanceRow,
    MonthCell, NameRow, NameSetRow, OrgCell, OrgTotal, SightingRow,
};
use crate::error::Result;
use crate::pki::{self, BUCKETS, Scope, share};
use crate::templates;

/// Days of the per-day issuance charts.
const CHART_DAYS: i64 = 90;
/// Months of the share and validity tables.
const TABLE_MONTHS: usize = 24;
/// CAs named in share charts (the rest is "other").
const TOP_CAS: usize = 7;
/// Issuances of a domain its timeline reads (the latest).
const DOMAIN_TIMELINE: i64 = 2_000;
/// Issuances of a name set a certificate page shows in its renewal chain.
const CHAIN: i64 = 20;
/// Issuances listed per organisation page.
const ORG_ISSUANCES: i64 = 20;
/// Rows of the lapse and expiry lists.
const LAPSES_LISTED: i64 = 100;
/// Names listed per domain page.
const DOMAIN_NAMES: i64 = 100;
/// Domains listed per category page.
const CATEGORY_DOMAINS: i64 = 50;

/// A registered domain's page: its rollup row, its latest issuances, its
/// names and the name sets they form.
#[derive(Debug, Clone)]
pub struct DomainData {
    pub domain: DomainRow,
    pub issuances: Vec<IssuanceRow>,
    pub names: Vec<NameRow>,
    pub names_total: i64,
    pub sets: Vec<NameSetRow>,
}

/// An organisation's page.
#[derive(Debug, Clone)]
pub struct OrgData {
    pub org: OrgTotal,
    pub cells: Vec<OrgCell>,
    pub issuances: Vec<IssuanceRow>,
}

/// The certificates that get pages, with everything those pages show.
#[derive(Debug, Clone, Default)]
pub struct CertData {
    /// The issuances whose certificates get pages (latest and domain pages').
    pub issuances: Vec<IssuanceRow>,
    pub details: HashMap<i64, CertDetail>,
    pub sightings: HashMap<i64, Vec<SightingRow>>,
    pub names: HashMap<i64, Vec<CertName>>,
    /// Renewal chains by names_key (hex), oldest first.
    pub chains: HashMap<String, Vec<IssuanceRow>>,
}

/// Everything the PKI pages show.
#[derive(Debug, Clone, Default)]
pub struct PkiData {
    pub days: Vec<DayCell>,
    pub months: Vec<MonthCell>,
    pub categories: Vec<CategoryCell>,
    pub heat: Vec<HeatCell>,
    pub validation: Vec<Count>,
    pub domains_per_category: HashMap<String, i64>,
    pub orgs: Vec<OrgData>,
    pub org_count: i64,
    /// The largest registered domains (at least 20; the first
    /// `domain_pages` get pages).
    pub top_domains: Vec<DomainRow>,
    pub category_domains: HashMap<String, Vec<DomainRow>>,
    /// Every registered domain and its issuances (the search index).
    pub search: Vec<(String, i64)>,
    pub domains: Vec<DomainData>,
    pub latest: Vec<IssuanceRow>,
    pub lapsed: Vec<NameSetRow>,
    pub lapsed_count: i64,
    pub lapse_days: Vec<(i64, i64)>,
    pub expiring: Vec<NameSetRow>,
    pub expiring_count: i64,
    pub certs: CertData,
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Site {
    /// Reads the analysis layer.
    pub(super) async fn load_pki(&self, pool: &MySqlPool, now_ms: i64) -> Result<PkiData> {
        let now_s = now_ms.div_euclid(1000);
        let since_day = pki::jst_day(now_ms) - CHART_DAYS + 1;
        let (days, months, categories, heat) = tokio::try_join!(
            q::issuance_days(pool, since_day),
            q::issuance_months(pool),
            q::category_months(pool),
            q::heat(pool),
        )?;
        let (validation, domains_per_category, (top_orgs, org_count), search) = tokio::try_join!(
            q::validation_levels(pool),
            q::domains_per_category(pool),
            q::top_orgs(pool, limit(self.cfg.org_pages)),
            q::all_domains(pool),
        )?;
        let top_domains = q::top_domains(pool, limit(self.cfg.domain_pages.max(20))).await?;
        let mut category_names: Vec<String> =
            categories.iter().map(|c| c.category.clone()).collect();
        category_names.sort();
        category_names.dedup();
        let mut category_domains = HashMap::new();
        for c in &category_names {
            category_domains.insert(
                c.clone(),
                q::category_domains(pool, c, CATEGORY_DOMAINS).await?,
            );
        }
        let cells = q::org_cells(
            pool,
            &top_orgs.iter().map(|o| o.org.clone()).collect::<Vec<_>>(),
        )
        .await?;
        let mut cells_by_org: HashMap<String, Vec<OrgCell>> = HashMap::new();
        for c in cells {
            cells_by_org.entry(c.org.clone()).or_default().push(c);
        }
        let orgs: Vec<OrgData> = stream::iter(top_orgs.into_iter().map(|org| {
            let cells = cells_by_org.remove(&org.org).unwrap_or_default();
            async move {
                let issuances = q::org_issuances(pool, &org.org, ORG_ISSUANCES).await?;
                Ok::<_, crate::Error>(OrgData {
                    org,
                    cells,
                    issuances,
                })
            }
        }))
        .buffered(4)
        .try_collect()
        .await?;
        let domains: Vec<DomainData> =
            stream::iter(top_domains.iter().take(self.cfg.domain_pages).cloned().map(
                |domain| async move {
                    let issuances =
                        q::domain_issuances(pool, &domain.registered_domain, DOMAIN_TIMELINE)
                            .await?;
                    let (names, names_total) =
                        q::domain_names(pool, &domain.registered_domain, DOMAIN_NAMES).await?;
                    let mut keys: Vec<Vec<u8>> =
                        issuances.iter().map(|i| i.names_key_raw.clone()).collect();
                    keys.sort();
                    keys.dedup();
                    let mut sets = q::name_sets(pool, &keys).await?;
                    sets.sort_by_key(|s| std::cmp::Reverse(s.latest_not_after_ms));
                    Ok::<_, crate::Error>(DomainData {
                        domain,
                        issuances,
                        names,
                        names_total,
                        sets,
                    })
                },
            ))
            .buffered(4)
            .try_collect()
            .await?;
        let latest = q::latest_issuances(pool, limit(self.cfg.latest)).await?;
        let (lapsed, lapsed_count) =
            q::name_sets_expiring(pool, i64::MIN, now_s, true, LAPSES_LISTED).await?;
        let lapse_days = q::lapse_days(pool, now_s - 400 * 86_400, now_s).await?;
        let (expiring, expiring_count) = q::name_sets_expiring(
            pool,
            now_s,
            now_s + self.cfg.expiring_ms / 1000,
            false,
            LAPSES_LISTED,
        )
        .await?;
        let certs = self.load_certs(pool, &latest, &domains).await?;
        Ok(PkiData {
            days,
            months,
            categories,
            heat,
            validation,
            domains_per_category,
            orgs,
            org_count,
            top_domains,
            category_domains,
            search,
            domains,
            latest,
            lapsed,
            lapsed_count,
            lapse_days,
            expiring,
            expiring_count,
            certs,
        })
    }

    /// The certificates of the latest issuances and of those each domain
    /// page lists, with their sightings, names and renewal chains.
    async fn load_certs(
        &self,
        pool: &MySqlPool,
        latest: &[IssuanceRow],
        domains: &[DomainData],
    ) -> Result<CertData> {
        let mut seen = HashSet::new();
        let issuances: Vec<IssuanceRow> = latest
            .iter()
            .chain(
                domains
                    .iter()
                    .flat_map(|d| d.issuances.iter().take(self.cfg.domain_issuances)),
            )
            .filter(|i| seen.insert(i.id))
            .cloned()
            .collect();
        let ids: Vec<i64> = issuances
            .iter()
            .flat_map(|i| [i.precert_id, i.cert_id])
            .flatten()
            .collect();
        let (details, sightings, names) = q::certificates(pool, &ids).await?;
        let mut keys: Vec<Vec<u8>> = issuances.iter().map(|i| i.names_key_raw.clone()).collect();
        keys.sort();
        keys.dedup();
        let chains = q::chains(pool, &keys, CHAIN).await?;
        let mut by_cert_sightings: HashMap<i64, Vec<SightingRow>> = HashMap::new();
        for s in sightings {
            by_cert_sightings
                .entry(s.certificate_id)
                .or_default()
                .push(s);
        }
        let mut by_cert_names: HashMap<i64, Vec<CertName>> = HashMap::new();
        for n in names {
            by_cert_names.entry(n.certificate_id).or_default().push(n);
        }
        Ok(CertData {
            issuances,
            details: details.into_iter().map(|c| (c.id, c)).collect(),
            sightings: by_cert_sightings,
            names: by_cert_names,
            chains,
        })
    }
}

/// Path of a certificate's page (fingerprints are lowercase hex from the
/// database; anything else gets no page).
pub fn cert_path(fingerprint: &str) -> Option<String> {
    let ok = fingerprint.len() == 64
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| format!("certs/{fingerprint}.html"))
}

/// The crt.sh search for a certificate's SHA-256.
pub fn crtsh(fingerprint: &str) -> String {
    format!("https://crt.sh/?sha256={fingerprint}")
}

pub fn ca_path(ca: &str) -> String {
    format!("pki/ca/{}.html", pki::slug(ca))
}

pub fn org_path(org: &str) -> String {
    format!("pki/org/{}.html", pki::slug(org))
}

pub fn category_path(category: &str) -> String {
    format!("pki/category/{}.html", pki::slug(category))
}

fn ca_name(ca: &str) -> String {
    if ca.is_empty() {
        "(no issuer organisation)".to_owned()
    } else {
        ca.to_owned()
    }
}

/// An issuance as the tables show it, with the pages it links to.
#[derive(Debug, Clone, Serialize)]
pub struct IssuanceView {
    pub row: IssuanceRow,
    pub ca: String,
    pub ca_path: Option<String>,
    pub precert_path: Option<String>,
    pub cert_path: Option<String>,
    pub bucket: String,
    /// For a renewal that moved to another CA: the previous CA.
    pub previous_ca: Option<String>,
}

/// What every page needs to link issuances and domains.
pub(super) struct Links {
    /// Fingerprints with a page.
    pub certs: HashSet<String>,
    /// Registered domains with a page, and its path.
    pub domains: HashMap<String, String>,
    /// CAs with a page.
    pub cas: HashSet<String>,
    /// Organisations with a page.
    pub orgs: HashSet<String>,
}

impl Links {
    pub fn domain(&self, d: &str) -> Option<String> {
        self.domains.get(d).cloned()
    }

    /// A CA's display name and page.
    pub fn ca(&self, ca: &str) -> (String, Option<String>) {
        (ca_name(ca), self.cas.contains(ca).then(|| ca_path(ca)))
    }

    fn cert(&self, fp: Option<&String>) -> Option<String> {
        fp.filter(|f| self.certs.contains(*f))
            .and_then(|f| cert_path(f))
    }

    pub fn issuance(&self, row: &IssuanceRow, previous_ca: Option<String>) -> IssuanceView {
        let ca = row.issuer_o.clone().unwrap_or_default();
        IssuanceView {
            ca_path: self.cas.contains(&ca).then(|| ca_path(&ca)),
            ca: ca_name(&ca),
            precert_path: self.cert(row.precert_fp.as_ref()),
            cert_path: self.cert(row.cert_fp.as_ref()),
            bucket: pki::bucket_label(bucket_of(row.validity_days)).to_owned(),
            previous_ca,
            row: row.clone(),
        }
    }
}

/// The bucket of a validity period, as the analysis job files it.
pub fn bucket_of(days: Option<i64>) -> &'static str {
    ct_core::cert::validity_bucket(days)
}

/// Series names and legend entries of a CA share chart.
fn ca_series(top: &[String]) -> Vec<String> {
    let mut s: Vec<String> = top.iter().map(|c| ca_name(c)).collect();
    s.push("other CAs".to_owned());
    s
}

fn bucket_series() -> Vec<String> {
    BUCKETS
        .iter()
        .map(|b| pki::bucket_label(b).to_owned())
        .collect()
}

/// Bars of one value per month.
fn month_bars(scope: &Scope, months: &[i64], what: &str) -> Vec<Bar> {
    months
        .iter()
        .map(|&m| {
            let n = scope.month(m);
            Bar {
                label: pki::month_label(m),
                tooltip: format!(
                    "{}: {} {what}",
                    pki::month_label(m),
                    templates::num(Value::from(n))
                ),
                value: n as f64,
            }
        })
        .collect()
}

/// Charts and tables of one scope (all issuances, a CA's, a category's).
fn scope_context(scope: &Scope, name: &str, months_shown: usize) -> Value {
    let months = scope.recent_months(months_shown);
    let all_months = match (scope.first_month(), scope.last_month()) {
        (Some(a), Some(b)) => pki::months_between(a, b),
        _ => Vec::new(),
    };
    let every = (all_months.len() / 12).max(1);
    let chart_months = charts::bar_chart(
        &format!("Issuances per month (JST) {name}"),
        &month_bars(scope, &all_months, "issuances"),
        every,
    );
    let top = scope.top_cas(TOP_CAS);
    let share_rows = pki::ca_share_rows(scope, &top, &months);
    let share_cols: Vec<Stack> = share_rows
        .iter()
        .map(|r| Stack {
            label: r.label.clone(),
            tooltip: r.label.clone(),
            values: r.cells.iter().map(|c| c.n as f64).collect(),
        })
        .collect();
    let series = ca_series(&top);
    let chart_share = charts::stacked_chart(
        &format!("Share of each CA in the issuances of each month {name}"),
        &series,
        &share_cols,
        true,
        3,
    );
    let bucket_rows = pki::bucket_rows(scope, &months);
    let bucket_cols: Vec<Stack> = bucket_rows
        .iter()
        .map(|r| Stack {
            label: r.label.clone(),
            tooltip: r.label.clone(),
            values: r.cells.iter().map(|c| c.n as f64).collect(),
        })
        .collect();
    let chart_validity = charts::stacked_chart(
        &format!("Issuances per month by validity period {name}"),
        &bucket_series(),
        &bucket_cols,
        false,
        3,
    );
    let cas: Vec<Value> = scope
        .by_ca
        .iter()
        .map(|(ca, n)| {
            context! { ca => ca_name(ca), path => ca_path(ca), n => *n, pct => templates::pct(*n as f64, scope.total as f64) }
        })
        .collect();
    let buckets: Vec<Value> = BUCKETS
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let s = share(scope.by_bucket[i], scope.total);
            context! { key => *b, label => pki::bucket_label(b), n => s.n, pct => s.pct }
        })
        .collect();
    context! {
        total => scope.total,
        chart_months => Value::from_safe_string(chart_months),
        chart_share => Value::from_safe_string(chart_share),
        chart_validity => Value::from_safe_string(chart_validity),
        ca_series => series,
        bucket_series => bucket_series(),
        share_rows => share_rows,
        bucket_rows => bucket_rows,
        cas => cas,
        buckets => buckets,
        months_shown => months.len(),
    }
}

/// A name set as the lapse and domain tables show it.
fn set_view(s: &NameSetRow, now_ms: i64, links: &Links) -> Value {
    let ca = s.latest_issuer_o.clone().unwrap_or_default();
    context! {
        names => s.names.clone(),
        issuances => s.issuances,
        first_not_before_ms => s.first_not_before_ms,
        latest_not_after_ms => s.latest_not_after_ms,
        lapsed => s.latest_not_after_ms.is_some_and(|t| t < now_ms),
        ca => ca_name(&ca),
        ca_path => links.cas.contains(&ca).then(|| ca_path(&ca)),
    }
}

impl Site {
    pub(super) fn scope_all(data: &PkiData) -> Scope {
        Scope::from_cells(
            data.months
                .iter()
                .map(|c| (c.month, c.ca.as_str(), c.bucket.as_str(), c.n)),
        )
    }

    /// The links every page can make (which pages exist).
    pub(super) fn links(&self, data: &PkiData) -> Links {
        let mut certs = HashSet::new();
        for i in &data.certs.issuances {
            for (id, fp) in [(i.precert_id, &i.precert_fp), (i.cert_id, &i.cert_fp)] {
                if let (Some(id), Some(fp)) = (id, fp) {
                    if data.certs.details.contains_key(&id) && cert_path(fp).is_some() {
                        certs.insert(fp.clone());
                    }
                }
            }
        }
        Links {
            certs,
            domains: data
                .domains
                .iter()
                .map(|d| {
                    (
                        d.domain.registered_domain.clone(),
                        domain_path(&d.domain.registered_domain),
                    )
                })
                .collect(),
            cas: data.months.iter().map(|c| c.ca.clone()).collect(),
            orgs: data.orgs.iter().map(|o| o.org.org.clone()).collect(),
        }
    }

    /// Issuances per JST day for the last `days` days up to `now_ms`:
    /// `(day, issuances)` with the empty days.
    pub(super) fn issuance_days(data: &PkiData, now_ms: i64, days: i64) -> Vec<(i64, i64)> {
        let last = pki::jst_day(now_ms);
        let mut by_day: HashMap<i64, i64> = HashMap::new();
        for c in &data.days {
            *by_day.entry(c.day).or_default() += c.n;
        }
        (last - days + 1..=last)
            .map(|d| (d, by_day.get(&d).copied().unwrap_or(0)))
            .collect()
    }

    pub(super) fn issuance_day_bars(days: &[(i64, i64)]) -> Vec<Bar> {
        days.iter()
            .map(|&(d, n)| {
                let label = pki::day_label(d);
                Bar {
                    label: label.get(5..).unwrap_or(&label).to_owned(),
                    tooltip: format!("{label}: {} issuances", templates::num(Value::from(n))),
                    value: n as f64,
                }
            })
            .collect()
    }

    /// Renders every PKI page; returns how many.
    pub(super) fn render_pki(
        &self,
        data: &PkiData,
        links: &Links,
        dir: &Path,
        common: &Value,
        now_ms: i64,
    ) -> Result<usize> {
        let mut pages = 0;
        let all = Self::scope_all(data);

        // Overview.
        let days = Self::issuance_days(data, now_ms, CHART_DAYS);
        let chart_days = charts::bar_chart(
            "Issuances per day by CT log time (JST), last 90 days",
            &Self::issuance_day_bars(&days),
            10,
        );
        let top = all.top_cas(TOP_CAS);
        let mut day_ca: HashMap<(i64, &str), i64> = HashMap::new();
        for c in &data.days {
            *day_ca.entry((c.day, c.ca.as_str())).or_default() += c.n;
        }
        let day_cols: Vec<Stack> = days
            .iter()
            .map(|&(d, n)| {
                let mut values: Vec<f64> = top
                    .iter()
                    .map(|ca| day_ca.get(&(d, ca.as_str())).copied().unwrap_or(0) as f64)
                    .collect();
                let named: f64 = values.iter().sum();
                values.push((n as f64 - named).max(0.0));
                let label = pki::day_label(d);
                Stack {
                    label: label.get(5..).unwrap_or(&label).to_owned(),
                    tooltip: label,
                    values,
                }
            })
            .collect();
        let chart_day_ca = charts::stacked_chart(
            "Issuances per day by CA (JST), last 90 days",
            &ca_series(&top),
            &day_cols,
            false,
            10,
        );
        let heat_cells: Vec<(i64, i64, bool, i64)> = data
            .heat
            .iter()
            .map(|h| (h.weekday, h.hour, h.holiday != 0, h.n))
            .collect();
        let heat = pki::heat_rows(&heat_cells);
        let heat_total: i64 = heat.iter().map(|r| r.total).sum();
        let categories = self.category_rows(data);
        self.page(
            dir,
            "pki/index.html",
            "pki.html",
            context! {
                root => "../",
                section => "pki",
                scope => scope_context(&all, "", TABLE_MONTHS),
                chart_days => Value::from_safe_string(chart_days),
                chart_day_ca => Value::from_safe_string(chart_day_ca),
                issuances_90d => days.iter().map(|d| d.1).sum::<i64>(),
                heat => heat,
                heat_total => heat_total,
                hours => (0..24).collect::<Vec<i64>>(),
                categories => categories,
                org_count => data.org_count,
                lapsed_count => data.lapsed_count,
                ..common.clone()
            },
        )?;
        pages += 1;

        // One page per CA.
        for (ca, _) in &all.by_ca {
            let scope = Scope::from_cells(
                data.months
                    .iter()
                    .filter(|c| &c.ca == ca)
                    .map(|c| (c.month, c.ca.as_str(), c.bucket.as_str(), c.n)),
            );
            let mut cats: BTreeMap<&str, i64> = BTreeMap::new();
            for c in data.categories.iter().filter(|c| &c.ca == ca) {
                *cats.entry(c.category.as_str()).or_default() += c.n;
            }
            let cats: Vec<Value> = cats
                .into_iter()
                .map(|(c, n)| context! { category => c, n => n, path => category_path(c) })
                .collect();
            let name = ca_name(ca);
            self.page(
                dir,
                &ca_path(ca),
                "ca.html",
                context! {
                    root => "../../",
                    section => "pki",
                    ca => name.clone(),
                    scope => scope_context(&scope, &format!("by {name}"), TABLE_MONTHS),
                    share_of_all => templates::pct(scope.total as f64, all.total as f64),
                    categories => cats,
                    ..common.clone()
                },
            )?;
            pages += 1;
        }

        // One page per name category.
        for cat in self.category_rows(data) {
            let scope = Scope::from_cells(
                data.categories
                    .iter()
                    .filter(|c| c.category == cat.category)
                    .map(|c| (c.month, c.ca.as_str(), c.bucket.as_str(), c.n)),
            );
            let domains: Vec<Value> = data
                .category_domains
                .get(&cat.category)
                .map(|v| v.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    context! { domain => d.registered_domain.clone(), n => d.issuances, path => links.domain(&d.registered_domain), last => d.last_logged_at_ms }
                })
                .collect();
            self.page(
                dir,
                &category_path(&cat.category),
                "category.html",
                context! {
                    root => "../../",
                    section => "pki",
                    category => cat.category.clone(),
                    domains_total => cat.domains,
                    scope => scope_context(&scope, &format!("naming {}", cat.category), TABLE_MONTHS),
                    domains => domains,
                    ..common.clone()
                },
            )?;
            pages += 1;
        }

        // Organisations.
        let orgs: Vec<Value> = data
            .orgs
            .iter()
            .map(|o| context! { org => o.org.org.clone(), n => o.org.issuances, path => org_path(&o.org.org) })
            .collect();
        self.page(
            dir,
            "pki/org/index.html",
            "orgs.html",
            context! {
                root => "../../",
                section => "pki",
                orgs => orgs,
                org_count => data.org_count,
                total => all.total,
                ..common.clone()
            },
        )?;
        pages += 1;
        for o in &data.orgs {
            let mut by_ca: BTreeMap<&str, i64> = BTreeMap::new();
            let mut by_bucket = [0i64; 5];
            let mut by_validation: BTreeMap<&str, i64> = BTreeMap::new();
            for c in &o.cells {
                *by_ca.entry(c.ca.as_str()).or_default() += c.n;
                if let Some(b) = BUCKETS.iter().position(|b| *b == c.bucket) {
                    by_bucket[b] += c.n;
                }
                *by_validation.entry(c.validation.as_str()).or_default() += c.n;
            }
            let mut cas: Vec<(&str, i64)> = by_ca.into_iter().collect();
            cas.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let total = o.org.issuances;
            let first = o.cells.iter().filter_map(|c| c.first_logged_at_ms).min();
            let last = o.cells.iter().filter_map(|c| c.last_logged_at_ms).max();
            let issuances: Vec<IssuanceView> = o
                .issuances
                .iter()
                .map(|i| links.issuance(i, None))
                .collect();
            self.page(
                dir,
                &org_path(&o.org.org),
                "org.html",
                context! {
                    root => "../../",
                    section => "pki",
                    org => o.org.org.clone(),
                    total => total,
                    first => first,
                    last => last,
                    cas => cas.iter().map(|(c, n)| context! { ca => ca_name(c), path => ca_path(c), n => *n, pct => templates::pct(*n as f64, total as f64) }).collect::<Vec<_>>(),
                    buckets => BUCKETS.iter().enumerate().map(|(i, b)| context! { label => pki::bucket_label(b), n => by_bucket[i] }).collect::<Vec<_>>(),
                    validation => by_validation.into_iter().map(|(v, n)| context! { key => v, n => n }).collect::<Vec<_>>(),
                    issuances => issuances,
                    ..common.clone()
                },
            )?;
            pages += 1;
        }

        // Lapses.
        let now_day = pki::jst_day(now_ms);
        let mut by_month: BTreeMap<i64, i64> = BTreeMap::new();
        for &(d, n) in &data.lapse_days {
            *by_month.entry(pki::month_of_day(d)).or_default() += n;
        }
        let lapse_months = pki::last_months(pki::month_of_day(now_day), 12);
        let bars: Vec<Bar> = lapse_months
            .iter()
            .map(|m| {
                let n = by_month.get(m).copied().unwrap_or(0);
                Bar {
                    label: pki::month_label(*m),
                    tooltip: format!(
                        "{}: {} name sets lapsed",
                        pki::month_label(*m),
                        templates::num(Value::from(n))
                    ),
                    value: n as f64,
                }
            })
            .collect();
        let chart_lapses = charts::bar_chart(
            "Name sets whose latest certificate expired, per month, last 12 months",
            &bars,
            1,
        );
        self.page(
            dir,
            "pki/lapses.html",
            "lapses.html",
            context! {
                root => "../",
                section => "pki",
                lapsed_count => data.lapsed_count,
                lapsed => data.lapsed.iter().map(|s| set_view(s, now_ms, links)).collect::<Vec<_>>(),
                expiring_count => data.expiring_count,
                expiring => data.expiring.iter().map(|s| set_view(s, now_ms, links)).collect::<Vec<_>>(),
                expiring_days => self.cfg.expiring_ms / DAY_MS,
                chart_lapses => Value::from_safe_string(chart_lapses),
                lapsed_12m => lapse_months.iter().map(|m| by_month.get(m).copied().unwrap_or(0)).sum::<i64>(),
                ..common.clone()
            },
        )?;
        pages += 1;

        pages += self.render_domains(data, links, dir, common, now_ms)?;
        pages += self.render_certs(data, links, dir, common)?;
        Ok(pages)
    }

    /// Issuances and registered domains per name category.
    pub(super) fn category_rows(&self, data: &PkiData) -> Vec<CategoryRow> {
        let mut by: BTreeMap<&str, i64> = BTreeMap::new();
        for c in &data.categories {
            *by.entry(c.category.as_str()).or_default() += c.n;
        }
        let mut rows: Vec<CategoryRow> = by
            .into_iter()
            .map(|(c, n)| CategoryRow {
                category: c.to_owned(),
                issuances: n,
                domains: data.domains_per_category.get(c).copied().unwrap_or(0),
                path: category_path(c),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.issuances
                .cmp(&a.issuances)
                .then_with(|| a.category.cmp(&b.category))
        });
        rows
    }

    fn render_domains(
        &self,
        data: &PkiData,
        links: &Links,
        dir: &Path,
        common: &Value,
        now_ms: i64,
    ) -> Result<usize> {
        super::on_all_cores(&data.domains, |d| {
            self.render_domain(d, links, dir, common, now_ms)
        })
    }

    fn render_domain(
        &self,
        d: &DomainData,
        links: &Links,
        dir: &Path,
        common: &Value,
        now_ms: i64,
    ) -> Result<usize> {
        let by_id: HashMap<i64, &IssuanceRow> = d.issuances.iter().map(|i| (i.id, i)).collect();
        let previous_ca = |i: &IssuanceRow| {
            i.previous_id
                .and_then(|p| by_id.get(&p))
                .map(|p| ca_name(p.issuer_o.as_deref().unwrap_or("")))
        };
        let views: Vec<IssuanceView> = d
            .issuances
            .iter()
            .map(|i| links.issuance(i, previous_ca(i)))
            .collect();
        let renewals = d
            .issuances
            .iter()
            .filter(|i| i.previous_id.is_some())
            .count();
        let overlaps = d
            .issuances
            .iter()
            .filter(|i| i.gap_days.is_some_and(|g| g < 0))
            .count();
        let changes: Vec<&IssuanceView> = views
            .iter()
            .filter(|v| v.row.ca_changed == Some(1))
            .collect();
        let scope = Scope::from_cells(d.issuances.iter().filter_map(|i| {
            i.first_logged_at_ms.map(|t| {
                (
                    pki::month_of_day(pki::jst_day(t)),
                    i.issuer_o.as_deref().unwrap_or(""),
                    bucket_of(i.validity_days),
                    1,
                )
            })
        }));
        let months = match (scope.first_month(), scope.last_month()) {
            (Some(a), Some(b)) => pki::months_between(a, b),
            _ => Vec::new(),
        };
        let chart = charts::bar_chart(
            &format!("Issuances per month naming {}", d.domain.registered_domain),
            &month_bars(&scope, &months, "issuances"),
            (months.len() / 12).max(1),
        );
        let mut cas: Vec<(String, i64)> = scope.by_ca.clone();
        cas.truncate(20);
        self.page(
            dir,
            &domain_path(&d.domain.registered_domain),
            "domain.html",
            context! {
                root => "../",
                section => "certificates",
                domain => d.domain.clone(),
                total => d.domain.issuances,
                loaded => d.issuances.len(),
                listed => views.iter().take(self.cfg.domain_issuances).cloned().collect::<Vec<_>>(),
                changes => changes,
                renewals => renewals,
                overlaps => overlaps,
                cas => cas.iter().map(|(c, n)| context! { ca => ca_name(c), path => ca_path(c), n => *n }).collect::<Vec<_>>(),
                names => d.names.clone(),
                names_total => d.names_total,
                sets => d.sets.iter().map(|s| set_view(s, now_ms, links)).collect::<Vec<_>>(),
                lapsed_sets => d.sets.iter().filter(|s| s.latest_not_after_ms.is_some_and(|t| t < now_ms)).count(),
                chart => Value::from_safe_string(chart),
                category_path => category_path(&d.domain.category),
                ..common.clone()
            },
        )?;
        Ok(1)
    }

    fn render_certs(
        &self,
        data: &PkiData,
        links: &Links,
        dir: &Path,
        common: &Value,
    ) -> Result<usize> {
        let c = &data.certs;
        super::on_all_cores(&c.issuances, |i| {
            self.render_issuance_certs(i, c, links, dir, common)
        })
    }

    /// The pages of an issuance's precertificate and certificate.
    fn render_issuance_certs(
        &self,
        i: &IssuanceRow,
        c: &CertData,
        links: &Links,
        dir: &Path,
        common: &Value,
    ) -> Result<usize> {
        let mut pages = 0;
        let chain = c
            .chains
            .get(&i.names_key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let by_id: HashMap<i64, &IssuanceRow> = chain.iter().map(|r| (r.id, r)).collect();
        let chain_views: Vec<IssuanceView> = chain
            .iter()
            .map(|r| {
                let prev = r
                    .previous_id
                    .and_then(|p| by_id.get(&p))
                    .map(|p| ca_name(p.issuer_o.as_deref().unwrap_or("")));
                links.issuance(r, prev)
            })
            .collect();
        let view = links.issuance(i, None);
        let pair = [
            (i.precert_id, i.precert_fp.as_ref()),
            (i.cert_id, i.cert_fp.as_ref()),
        ];
        for (k, (id, fp)) in pair.iter().enumerate() {
            let (Some(id), Some(fp)) = (id, fp) else {
                continue;
            };
            let (Some(detail), Some(path)) = (c.details.get(id), cert_path(fp)) else {
                continue;
            };
            let (twin_id, twin_fp) = pair[1 - k];
            let twin = twin_fp.map(|f| {
                context! {
                    fingerprint => f.clone(),
                    kind => if k == 0 { "certificate" } else { "precertificate" },
                    path => links.cert(Some(f)),
                    crtsh => crtsh(f),
                    id => twin_id,
                }
            });
            let names: Vec<Value> = c
                .names
                .get(id)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|n| {
                    context! { name => n.name.clone(), category => n.category.clone(), domain => n.registered_domain.clone(), domain_path => links.domain(&n.registered_domain), category_path => category_path(&n.category) }
                })
                .collect();
            self.page(
                dir,
                &path,
                "cert.html",
                context! {
                    root => "../",
                    section => "certificates",
                    cert => detail.clone(),
                    weekday => detail.jst_weekday.and_then(|w| usize::try_from(w).ok()).and_then(|w| ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"].get(w).copied()),
                    issuance => view.clone(),
                    twin => twin,
                    sightings => c.sightings.get(id).cloned().unwrap_or_default(),
                    names => names,
                    chain => chain_views.clone(),
                    chain_limit => CHAIN,
                    crtsh => crtsh(fp),
                    org_path => detail.subject_o.as_ref().filter(|o| links.orgs.contains(*o)).map(|o| org_path(o)),
                    ..common.clone()
                },
            )?;
            pages += 1;
        }
        Ok(pages)
    }
}

/// A name category's line in the tables.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryRow {
    pub category: String,
    pub issuances: i64,
    pub domains: i64,
    pub path: String,
}
