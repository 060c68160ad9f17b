//! Shapes the analysis rollups into what the PKI pages show: JST days and
//! months, totals per CA and validity bucket, shares per month, the heat
//! map, and stable file names for CAs, organisations and categories. No IO.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// The validity buckets of `rollup_issuances`, in display order.
pub const BUCKETS: [&str; 5] = ["short", "90", "91-398", "over-398", "unknown"];

const DAY_MS: i64 = 86_400_000;
/// Japan Standard Time is UTC+9 all year.
const JST_MS: i64 = 9 * 3_600_000;

/// What a validity bucket means, for people.
pub fn bucket_label(bucket: &str) -> &'static str {
    match bucket {
        "short" => "under 90 days",
        "90" => "90 days",
        "91-398" => "91 to 398 days",
        "over-398" => "over 398 days",
        _ => "unknown",
    }
}

fn bucket_index(bucket: &str) -> usize {
    BUCKETS
        .iter()
        .position(|b| *b == bucket)
        .unwrap_or(BUCKETS.len() - 1)
}

/// The JST day number (days since 1970-01-01 in Japan) of Unix milliseconds,
/// as the analysis job counts issuances.
pub fn jst_day(ms: i64) -> i64 {
    (ms + JST_MS).div_euclid(DAY_MS)
}

/// The calendar date of a JST day number.
pub fn date_of_day(day: i64) -> Option<jiff::civil::Date> {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().try_days(day).ok()?)
        .ok()
}

/// `2026-11-18` for a JST day number.
pub fn day_label(day: i64) -> String {
    date_of_day(day).map_or_else(|| format!("day {day}"), |d| d.to_string())
}

/// The month (`yyyymm`) of a JST day number.
pub fn month_of_day(day: i64) -> i64 {
    date_of_day(day).map_or(0, |d| i64::from(d.year()) * 100 + i64::from(d.month()))
}

/// `2026-11` for `202611`.
pub fn month_label(month: i64) -> String {
    format!("{:04}-{:02}", month / 100, month % 100)
}

fn next_month(month: i64) -> i64 {
    if month % 100 >= 12 {
        (month / 100 + 1) * 100 + 1
    } else {
        month + 1
    }
}

/// Every month from `first` to `last` inclusive (at most 1,200).
pub fn months_between(first: i64, last: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut m = first;
    while m <= last && out.len() < 1_200 {
        out.push(m);
        m = next_month(m);
    }
    out
}

/// The last `count` months up to and including `last`.
pub fn last_months(last: i64, count: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(count);
    let mut m = last;
    for _ in 0..count {
        out.push(m);
        m = if m % 100 <= 1 {
            (m / 100 - 1) * 100 + 12
        } else {
            m - 1
        };
    }
    out.reverse();
    out
}

/// A file name for a CA, an organisation or a category: its ASCII letters
/// and digits, then a hash of the whole name so that two names never share
/// a file.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 48 {
            break;
        }
    }
    let s = s.trim_end_matches('-');
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    if s.is_empty() {
        format!("_{h:08x}")
    } else {
        format!("{s}-{h:08x}")
    }
}

/// Issuances of one scope (everything, one CA, one category) by month, CA
/// and validity bucket.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub total: i64,
    pub by_month: BTreeMap<i64, i64>,
    /// Largest first, then by name.
    pub by_ca: Vec<(String, i64)>,
    pub by_bucket: [i64; 5],
    month_ca: HashMap<(i64, String), i64>,
    month_bucket: HashMap<(i64, usize), i64>,
}

impl Scope {
    /// From `(month, ca, bucket, issuances)` cells.
    pub fn from_cells<'a>(cells: impl IntoIterator<Item = (i64, &'a str, &'a str, i64)>) -> Self {
        let mut s = Scope::default();
        let mut cas: HashMap<String, i64> = HashMap::new();
        for (month, ca, bucket, n) in cells {
            let b = bucket_index(bucket);
            s.total += n;
            *s.by_month.entry(month).or_default() += n;
            *cas.entry(ca.to_owned()).or_default() += n;
            s.by_bucket[b] += n;
            *s.month_ca.entry((month, ca.to_owned())).or_default() += n;
            *s.month_bucket.entry((month, b)).or_default() += n;
        }
        s.by_ca = cas.into_iter().filter(|(_, n)| *n != 0).collect();
        s.by_ca
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        s
    }

    pub fn first_month(&self) -> Option<i64> {
        self.by_month.keys().next().copied()
    }

    pub fn last_month(&self) -> Option<i64> {
        self.by_month.keys().next_back().copied()
    }

    pub fn month(&self, month: i64) -> i64 {
        self.by_month.get(&month).copied().unwrap_or(0)
    }

    pub fn month_ca(&self, month: i64, ca: &str) -> i64 {
        self.month_ca
            .get(&(month, ca.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub fn month_bucket(&self, month: i64, bucket: usize) -> i64 {
        self.month_bucket
            .get(&(month, bucket))
            .copied()
            .unwrap_or(0)
    }

    /// The `n` largest CAs' names.
    pub fn top_cas(&self, n: usize) -> Vec<String> {
        self.by_ca.iter().take(n).map(|(c, _)| c.clone()).collect()
    }

    /// The months to chart: the last `count` up to the latest month with data.
    pub fn recent_months(&self, count: usize) -> Vec<i64> {
        match (self.first_month(), self.last_month()) {
            (Some(first), Some(last)) => last_months(last, count)
                .into_iter()
                .filter(|m| *m >= first)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A count and its share of a whole, as the tables show it.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    pub n: i64,
    /// Percent with one decimal, e.g. "12.5".
    pub pct: String,
}

pub fn share(n: i64, whole: i64) -> Share {
    Share {
        n,
        pct: crate::templates::pct(n as f64, whole as f64),
    }
}

/// One month of a share table: the whole and each column's part.
#[derive(Debug, Clone, Serialize)]
pub struct ShareRow {
    pub label: String,
    pub total: i64,
    pub cells: Vec<Share>,
}

/// Each month's issuances split by the CAs `top` (and "other").
pub fn ca_share_rows(scope: &Scope, top: &[String], months: &[i64]) -> Vec<ShareRow> {
    months
        .iter()
        .map(|&m| {
            let total = scope.month(m);
            let mut cells: Vec<Share> = top
                .iter()
                .map(|ca| share(scope.month_ca(m, ca), total))
                .collect();
            let named: i64 = cells.iter().map(|c| c.n).sum();
            cells.push(share(total - named, total));
            ShareRow {
                label: month_label(m),
                total,
                cells,
            }
        })
        .collect()
}

/// Each month's issuances split by validity bucket.
pub fn bucket_rows(scope: &Scope, months: &[i64]) -> Vec<ShareRow> {
    months
        .iter()
        .map(|&m| {
            let total = scope.month(m);
            ShareRow {
                label: month_label(m),
                total,
                cells: (0..BUCKETS.len())
                    .map(|b| share(scope.month_bucket(m, b), total))
                    .collect(),
            }
        })
        .collect()
}

/// One cell of the heat map.
#[derive(Debug, Clone, Serialize)]
pub struct HeatView {
    pub id: String,
    pub hour: i64,
    pub n: i64,
    /// 0 (none) to 5 (the busiest cell).
    pub level: i64,
}

/// One row of the heat map: a weekday (days that are not holidays) or the
/// holidays.
#[derive(Debug, Clone, Serialize)]
pub struct HeatRow {
    pub label: String,
    pub id: String,
    pub total: i64,
    pub cells: Vec<HeatView>,
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Rows Monday to Sunday (not holidays), then one row of national holidays
/// (whatever their weekday), 24 JST hours each, from `(weekday, hour,
/// holiday, certificates)`.
pub fn heat_rows(cells: &[(i64, i64, bool, i64)]) -> Vec<HeatRow> {
    let mut grid = [[0i64; 24]; 8];
    for &(weekday, hour, holiday, n) in cells {
        let (Ok(w), Ok(h)) = (usize::try_from(weekday), usize::try_from(hour)) else {
            continue;
        };
        if w > 6 || h > 23 {
            continue;
        }
        grid[if holiday { 7 } else { w }][h] += n;
    }
    let max = grid.iter().flatten().copied().max().unwrap_or(0).max(1);
    grid.iter()
        .enumerate()
        .map(|(row, hours)| {
            let (label, id) = if row == 7 {
                ("Holiday".to_owned(), "hol".to_owned())
            } else {
                (WEEKDAYS[row].to_owned(), row.to_string())
            };
            HeatRow {
                total: hours.iter().sum(),
                cells: hours
                    .iter()
                    .enumerate()
                    .map(|(h, &n)| HeatView {
                        id: format!("heat-{id}-{h}"),
                        hour: h as i64,
                        n,
                        level: if n <= 0 { 0 } else { (1 + n * 4 / max).min(5) },
                    })
                    .collect(),
                label,
                id,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months() {
        // 2024-01-01 is day 19723.
        assert_eq!(day_label(19_723), "2024-01-01");
        assert_eq!(month_of_day(19_723), 202_401);
        // 2024-01-01T14:59:59Z is still Jan 1 in Tokyo; a second later it is Jan 2.
        assert_eq!(jst_day(1_704_121_199_000), 19_723);
        assert_eq!(jst_day(1_704_121_200_000), 19_724);
        assert_eq!(
            months_between(202_311, 202_402),
            vec![202_311, 202_312, 202_401, 202_402]
        );
        assert_eq!(last_months(202_402, 3), vec![202_312, 202_401, 202_402]);
        assert_eq!(month_label(202_401), "2024-01");
    }

    #[test]
    fn slugs_are_plain_and_distinct() {
        let a = slug("Let's Encrypt");
        assert!(a.starts_with("let-s-encrypt-"), "{a}");
        assert_ne!(slug("A B"), slug("A-B"));
        assert!(slug("<script>").starts_with("script-"));
        assert!(slug("").starts_with('_'));
        assert!(slug("日本").starts_with('_'));
    }

    #[test]
    fn scope_totals_and_shares() {
        let s = Scope::from_cells([
            (202_401, "A", "90", 3),
            (202_401, "B", "short", 1),
            (202_402, "A", "91-398", 2),
        ]);
        assert_eq!(s.total, 6);
        assert_eq!(s.by_ca, vec![("A".to_owned(), 5), ("B".to_owned(), 1)]);
        assert_eq!(s.by_bucket, [1, 3, 2, 0, 0]);
        let rows = ca_share_rows(&s, &["A".to_owned()], &[202_401, 202_402]);
        assert_eq!(rows[0].cells[0].pct, "75.0");
        assert_eq!(rows[0].cells[1].n, 1);
        let heat = heat_rows(&[(4, 3, true, 2), (0, 9, false, 8)]);
        assert_eq!(heat[7].cells[3].n, 2);
        assert_eq!(heat[0].cells[9].level, 5);
    }
}
