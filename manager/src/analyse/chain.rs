//! Renewal chains: the issuances of one set of .jp names in order of
//! not_before, each linked to the one before it. Pure: the job reads a
//! group's issuances and writes what this returns.

/// One issuance of a name set, as the chain needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: u64,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub spki_sha256: Option<Vec<u8>>,
    pub issuer_o: Option<String>,
}

/// An issuance and the one it renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub issuance_id: u64,
    pub previous_issuance_id: u64,
    /// This not_before minus the previous not_after, in whole days rounded
    /// down; negative is an overlap.
    pub gap_days: i64,
    pub same_key: bool,
    pub ca_changed: bool,
}

const DAY_SECS: i64 = 86_400;

/// The renewals of one name set. Issuances without a not_before (only the
/// lenient parse read them) take no part.
pub fn renewals(mut group: Vec<Link>) -> Vec<Renewal> {
    group.retain(|l| l.not_before.is_some());
    group.sort_by_key(|l| (l.not_before, l.id));
    group
        .windows(2)
        .filter_map(|w| {
            let (prev, this) = (&w[0], &w[1]);
            let gap = this.not_before? - prev.not_after?;
            Some(Renewal {
                issuance_id: this.id,
                previous_issuance_id: prev.id,
                gap_days: gap.div_euclid(DAY_SECS),
                same_key: prev.spki_sha256.is_some() && prev.spki_sha256 == this.spki_sha256,
                ca_changed: prev.issuer_o != this.issuer_o,
            })
        })
        .collect()
}

/// The latest issuance of a name set (by not_before, then id).
pub fn latest(group: &[Link]) -> Option<&Link> {
    group.iter().max_by_key(|l| (l.not_before, l.id))
}

pub use ct_core::cert::{validity_bucket, validity_days};

pub use ct_core::jst::jst_day;

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: u64, nb: i64, na: i64, key: u8, o: &str) -> Link {
        Link {
            id,
            not_before: Some(nb),
            not_after: Some(na),
            spki_sha256: Some(vec![key; 32]),
            issuer_o: Some(o.into()),
        }
    }

    #[test]
    fn chains_in_not_before_order_with_gaps_and_overlaps() {
        let d = DAY_SECS;
        let r = renewals(vec![
            link(3, 200 * d, 290 * d - 1, 2, "B"),
            link(1, 0, 90 * d - 1, 1, "A"),
            link(2, 60 * d, 150 * d - 1, 1, "A"),
        ]);
        assert_eq!(
            r,
            vec![
                Renewal {
                    issuance_id: 2,
                    previous_issuance_id: 1,
                    gap_days: -30,
                    same_key: true,
                    ca_changed: false
                },
                Renewal {
                    issuance_id: 3,
                    previous_issuance_id: 2,
                    gap_days: 50,
                    same_key: false,
                    ca_changed: true
                },
            ]
        );
    }

    #[test]
    fn validity_is_inclusive_and_bucketed() {
        let nb = 1_700_000_000;
        let lets_encrypt = validity_days(Some(nb), Some(nb + 90 * DAY_SECS - 1));
        assert_eq!(lets_encrypt, Some(90));
        assert_eq!(validity_bucket(lets_encrypt), "90");
        assert_eq!(validity_bucket(Some(398)), "91-398");
        assert_eq!(validity_bucket(Some(6)), "short");
        assert_eq!(validity_bucket(Some(825)), "over-398");
        assert_eq!(validity_bucket(None), "unknown");
    }
}
