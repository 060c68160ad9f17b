//! The domain matcher: does a name end in a configured suffix on a label
//! boundary? Also the category of a matching `.jp` name, and a byte-level
//! prefilter that rules out certificates without a full X.509 parse.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Matches names against suffixes such as `jp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Lowercase suffixes without leading or trailing dots.
    suffixes: Vec<String>,
    /// For the prefilter: each suffix as ASCII bytes.
    needles: Vec<Vec<u8>>,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher::new(["jp"]).unwrap_or_else(|_| unreachable!("jp is a valid suffix"))
    }
}

impl Matcher {
    /// Builds a matcher; suffixes are ASCII labels separated by dots (`jp`, `co.jp`).
    pub fn new<S: AsRef<str>>(suffixes: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut list = Vec::new();
        for s in suffixes {
            let s = s.as_ref().trim().trim_matches('.').to_ascii_lowercase();
            let valid = !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !valid {
                return Err(Error::invalid("suffix", s));
            }
            if !list.contains(&s) {
                list.push(s);
            }
        }
        if list.is_empty() {
            return Err(Error::invalid("suffix", "no suffix given"));
        }
        let needles = list.iter().map(|s| s.as_bytes().to_vec()).collect();
        Ok(Matcher {
            suffixes: list,
            needles,
        })
    }

    pub fn suffixes(&self) -> &[String] {
        &self.suffixes
    }

    /// Whether an already normalized name (see [`normalize_name`]) matches.
    pub fn matches_normalized(&self, name: &str) -> bool {
        self.suffixes.iter().any(|s| {
            name.len() > s.len() + 1
                && name.ends_with(s.as_str())
                && name.as_bytes()[name.len() - s.len() - 1] == b'.'
        })
    }

    /// Whether a name as stored in a certificate matches.
    pub fn matches(&self, name: &str) -> bool {
        self.matches_normalized(&normalize_name(name))
    }

    /// Conservative byte scan: `false` means no name in `der` can match, so a
    /// full parse can be skipped. It looks for `.` followed by a suffix
    /// (ASCII case-insensitively) in 8-bit, UTF-16BE and UTF-32BE encodings,
    /// which covers every ASN.1 string type a name can be stored in. In the
    /// 8-bit case a matching name must also end there (see [`may_end_name`]),
    /// which rules out URLs such as `http://crl.example.jp/` and look-alikes
    /// such as `x.jpmchase.net` without a parse.
    pub fn may_match(&self, der: &[u8]) -> bool {
        memchr::memchr_iter(b'.', der).any(|dot| {
            self.needles.iter().any(|needle| {
                (followed_by(der, dot, needle, 1) && may_end_name(der, dot + 1 + needle.len()))
                    || (dot >= 1 && followed_by(der, dot, needle, 2))
                    || (dot >= 3 && followed_by(der, dot, needle, 4))
            })
        })
    }
}

/// Whether an 8-bit name string may end just before `at`: the buffer ends,
/// a trailing dot follows, or the next byte can start a DER element of a
/// certificate. Letters, digits other than `0`/`1` (SEQUENCE and SET are
/// 0x30 and 0x31), `-`, `_`, `/` and `:` cannot: they continue the string.
fn may_end_name(der: &[u8], at: usize) -> bool {
    match der.get(at) {
        None | Some(b'.') => true,
        Some(&b) => {
            !(b.is_ascii_alphabetic()
                || (b'2'..=b'9').contains(&b)
                || matches!(b, b'-' | b'_' | b'/' | b':'))
        }
    }
}

/// Whether `needle` follows position `dot` in `width`-byte code units whose
/// high bytes are zero (width 1: plain bytes).
fn followed_by(der: &[u8], dot: usize, needle: &[u8], width: usize) -> bool {
    let start = dot + 1;
    let end = start + needle.len() * width;
    if end > der.len() {
        return false;
    }
    let units = &der[start..end];
    needle.iter().enumerate().all(|(i, &want)| {
        let unit = &units[i * width..(i + 1) * width];
        let (high, low) = unit.split_at(width - 1);
        high.iter().all(|&b| b == 0) && low[0] | 0x20 == want | 0x20
    })
}

/// Lowercases a name and removes one trailing dot.
pub fn normalize_name(name: &str) -> String {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        trimmed.to_lowercase()
    }
}

/// Whether a subject CN looks like a domain name: labels of letters, digits,
/// `-`, `_` or `*` (any script), separated by dots, at least two labels, no
/// spaces.
pub fn is_domain_name(cn: &str) -> bool {
    let name = cn.strip_suffix('.').unwrap_or(cn);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '*')
        {
            return false;
        }
    }
    labels >= 2
}

/// What kind of `.jp` name a matching name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    #[serde(rename = "co.jp")]
    Co,
    #[serde(rename = "ac.jp")]
    Ac,
    #[serde(rename = "go.jp")]
    Go,
    #[serde(rename = "or.jp")]
    Or,
    #[serde(rename = "ne.jp")]
    Ne,
    #[serde(rename = "gr.jp")]
    Gr,
    #[serde(rename = "ed.jp")]
    Ed,
    #[serde(rename = "lg.jp")]
    Lg,
    #[serde(rename = "ad.jp")]
    Ad,
    /// Under a prefecture or designated city name (`tokyo.jp`, `sapporo.jp`).
    #[serde(rename = "geographic")]
    Geographic,
    /// A plain second-level name (`example.jp`).
    #[serde(rename = "jp")]
    SecondLevel,
    /// Anything else (a suffix other than `jp`).
    #[serde(rename = "other")]
    Other,
}

impl Category {
    pub const ALL: [Category; 12] = [
        Category::Co,
        Category::Ac,
        Category::Go,
        Category::Or,
        Category::Ne,
        Category::Gr,
        Category::Ed,
        Category::Lg,
        Category::Ad,
        Category::Geographic,
        Category::SecondLevel,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Co => "co.jp",
            Category::Ac => "ac.jp",
            Category::Go => "go.jp",
            Category::Or => "or.jp",
            Category::Ne => "ne.jp",
            Category::Gr => "gr.jp",
            Category::Ed => "ed.jp",
            Category::Lg => "lg.jp",
            Category::Ad => "ad.jp",
            Category::Geographic => "geographic",
            Category::SecondLevel => "jp",
            Category::Other => "other",
        }
    }

    /// Parses the string [`Category::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The 47 prefectures and the 20 designated cities, as `.jp` second-level labels.
pub const GEOGRAPHIC_LABELS: &[&str] = &[
    "hokkaido",
    "aomori",
    "iwate",
    "miyagi",
    "akita",
    "yamagata",
    "fukushima",
    "ibaraki",
    "tochigi",
    "gunma",
    "saitama",
    "chiba",
    "tokyo",
    "kanagawa",
    "niigata",
    "toyama",
    "ishikawa",
    "fukui",
    "yamanashi",
    "nagano",
    "gifu",
    "shizuoka",
    "aichi",
    "mie",
    "shiga",
    "kyoto",
    "osaka",
    "hyogo",
    "nara",
    "wakayama",
    "tottori",
    "shimane",
    "okayama",
    "hiroshima",
    "yamaguchi",
    "tokushima",
    "kagawa",
    "ehime",
    "kochi",
    "fukuoka",
    "saga",
    "nagasaki",
    "kumamoto",
    "oita",
    "miyazaki",
    "kagoshima",
    "okinawa",
    "sapporo",
    "sendai",
    "yokohama",
    "kawasaki",
    "sagamihara",
    "hamamatsu",
    "nagoya",
    "sakai",
    "kobe",
    "kitakyushu",
];

/// The category of a normalized name.
pub fn categorize(name: &str) -> Category {
    let Some(rest) = name.strip_suffix(".jp") else {
        return Category::Other;
    };
    let second = rest.rsplit('.').next().unwrap_or(rest);
    match second {
        "co" => Category::Co,
        "ac" => Category::Ac,
        "go" => Category::Go,
        "or" => Category::Or,
        "ne" => Category::Ne,
        "gr" => Category::Gr,
        "ed" => Category::Ed,
        "lg" => Category::Lg,
        "ad" => Category::Ad,
        s if GEOGRAPHIC_LABELS.contains(&s) => Category::Geographic,
        _ => Category::SecondLevel,
    }
}

/// The registered domain of a normalized name by the Public Suffix List (the
/// copy the `psl` crate embeds, ICANN and private sections alike): the public
/// suffix plus one label (`www.example.co.jp` -> `example.co.jp`,
/// `www.city.shibuya.tokyo.jp` -> `city.shibuya.tokyo.jp`). Leading `*.`
/// labels are dropped first. A name that is itself a public suffix, or that
/// the list cannot split, is its own registered domain.
pub fn registered_domain(name: &str) -> String {
    let name = name.trim_start_matches("*.");
    match psl::domain_str(name) {
        // An empty label (`a..jp`) would leave a leading dot.
        Some(domain) if !domain.starts_with('.') => domain.to_owned(),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_design_examples() {
        let m = Matcher::default();
        for yes in [
            "example.jp",
            "WWW.Example.JP.",
            "*.foo.co.jp",
            "xn--eckwd4c7c.xn--zckzah.jp",
            "a.b.tokyo.jp",
        ] {
            assert!(m.matches(yes), "{yes}");
        }
        for no in [
            "examplejp.com",
            "jp.example.com",
            "foo.jp.example.com",
            "jpmchase.net",
            "jp",
            ".jp",
            "example.jp..",
        ] {
            assert!(!m.matches(no), "{no}");
        }
    }

    #[test]
    fn categories() {
        assert_eq!(categorize("www.example.co.jp"), Category::Co);
        assert_eq!(categorize("u-tokyo.ac.jp"), Category::Ac);
        assert_eq!(categorize("city.shibuya.tokyo.jp"), Category::Geographic);
        assert_eq!(categorize("example.jp"), Category::SecondLevel);
        assert_eq!(categorize("example.com"), Category::Other);
        assert_eq!(registered_domain("www.example.co.jp"), "example.co.jp");
        assert_eq!(registered_domain("*.a.example.jp"), "example.jp");
    }

    #[test]
    fn registered_domains_by_the_public_suffix_list() {
        for (name, want) in [
            ("www.example.co.jp", "example.co.jp"),
            ("example.co.jp", "example.co.jp"),
            ("*.foo.example.jp", "example.jp"),
            ("*.*.example.jp", "example.jp"),
            // shibuya.tokyo.jp is a public suffix.
            ("www.city.shibuya.tokyo.jp", "city.shibuya.tokyo.jp"),
            ("a.b.example.tokyo.jp", "example.tokyo.jp"),
            // *.kawasaki.jp with the exception !city.kawasaki.jp.
            ("city.kawasaki.jp", "city.kawasaki.jp"),
            ("www.city.kawasaki.jp", "city.kawasaki.jp"),
            ("www.shop.kawasaki.jp", "www.shop.kawasaki.jp"),
            // Names that are public suffixes are their own registered domain.
            ("jp", "jp"),
            ("co.jp", "co.jp"),
            ("tokyo.jp", "tokyo.jp"),
            ("shibuya.tokyo.jp", "shibuya.tokyo.jp"),
            ("*.co.jp", "co.jp"),
            // The private section counts too (a hosting provider's suffix).
            ("www.user.sakura.ne.jp", "user.sakura.ne.jp"),
            ("www.example.com", "example.com"),
            // Odd bytes pass through; sitegen escapes them.
            (
                "<script>alert(1)</script>.jp",
                "<script>alert(1)</script>.jp",
            ),
            ("evil\"quote'.ac.jp", "evil\"quote'.ac.jp"),
            ("x.日本語.jp", "日本語.jp"),
            ("a..jp", "a..jp"),
        ] {
            assert_eq!(registered_domain(name), want, "{name}");
        }
    }

    #[test]
    fn prefilter_encodings() {
        let m = Matcher::default();
        assert!(m.may_match(b"\x0c\x0awww.ex.JP"));
        assert!(m.may_match(b"\x82\x06ex.jp.\x30"));
        assert!(m.may_match(b"\x82\x05ex.jp\x82\x06ex.com"));
        assert!(!m.may_match(b"http://crl.ex.jp/x.crl"));
        assert!(!m.may_match(b"\x13\x0fsrv.jpmchase.net"));
        assert!(m.may_match(&[0x1e, 6, 0, b'.', 0, b'j', 0, b'p']));
        assert!(m.may_match(&[0, 0, 0, b'.', 0, 0, 0, b'J', 0, 0, 0, b'p']));
        assert!(!m.may_match(b"example.com jp"));
    }

    #[test]
    fn domain_names() {
        assert!(is_domain_name("例え.jp"));
        assert!(is_domain_name("*.example.jp"));
        assert!(!is_domain_name("Example Inc.jp"));
        assert!(!is_domain_name("localhost"));
        assert!(!is_domain_name("a@b.jp"));
    }
}
