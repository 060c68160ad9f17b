//! Certificates made with rcgen cover the matcher's edge cases: CN-only
//! certificates, uppercase and trailing-dot names, IDN, wildcards, precerts
//! with the poison extension, CNs that are not domain names and look-alikes.
//! Each is examined in full and through the fast path, which must agree.

use ct_core::entry::{Depth, Examined, Examiner};
use ct_core::leaf::{EntryType, TimestampedEntry, encode_extra_data, encode_leaf};
use rcgen::{CertificateParams, CustomExtension, DnType, DnValue, KeyPair};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

const POISON_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];

pub struct Made {
    pub cert: Vec<u8>,
    pub issuer: Vec<u8>,
}

fn params(cn: Option<DnValue>, sans: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        p.distinguished_name.push(DnType::CommonName, cn);
    }
    p
}

fn issuer() -> (CertificateParams, KeyPair) {
    let mut p = params(Some(DnValue::Utf8String("Test Issuing CA".into())), &[]);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (p, KeyPair::generate().expect("key"))
}

/// An end-entity certificate signed by a test CA.
pub fn make_cert(cn: Option<DnValue>, sans: &[&str], poison: bool) -> Made {
    let (ip, ikey) = issuer();
    let issuer_cert = ip.self_signed(&ikey).expect("issuer cert");
    let issuer = rcgen::Issuer::new(ip, ikey);
    let mut p = params(cn, sans);
    if poison {
        let mut ext = CustomExtension::from_oid_content(POISON_OID, vec![0x05, 0x00]);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    }
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, &issuer).expect("sign");
    Made {
        cert: cert.der().to_vec(),
        issuer: issuer_cert.der().to_vec(),
    }
}

/// Builds an x509 entry (leaf_input, extra_data).
pub fn x509_entry(made: &Made, timestamp: u64) -> (Vec<u8>, Vec<u8>) {
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp,
        entry_type: EntryType::X509,
        issuer_key_hash: None,
        signed: &made.cert,
        extensions: &[],
    });
    (leaf, encode_extra_data(None, &[&made.issuer]))
}

/// Builds a precert entry: the leaf holds the TBSCertificate of the same
/// certificate without poison, extra_data the poisoned precertificate.
pub fn precert_entry(cn: Option<DnValue>, sans: &[&str]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (ip, ikey) = issuer();
    let issuer_cert = ip.self_signed(&ikey).expect("issuer cert");
    let issuer_spki_hash: [u8; 32] = {
        let (_, c) = X509Certificate::from_der(issuer_cert.der()).expect("issuer parses");
        Sha256::digest(c.public_key().raw).into()
    };
    let issuer = rcgen::Issuer::new(ip, ikey);
    let key = KeyPair::generate().expect("key");
    let mut p = params(cn, sans);
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x23, 0x45]));
    let plain = p.signed_by(&key, &issuer).expect("sign");
    let mut ext = CustomExtension::from_oid_content(POISON_OID, vec![0x05, 0x00]);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let pre = p.signed_by(&key, &issuer).expect("sign");
    let (_, parsed) = X509Certificate::from_der(plain.der()).expect("parses");
    let tbs = parsed.tbs_certificate.as_ref().to_vec();
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: 1,
        entry_type: EntryType::Precert,
        issuer_key_hash: Some(issuer_spki_hash),
        signed: &tbs,
        extensions: &[],
    });
    let extra = encode_extra_data(Some(pre.der()), &[issuer_cert.der()]);
    (leaf, extra, pre.der().to_vec())
}

/// Examines in full and through the fast path; both must agree.
pub fn examine(leaf: &[u8], extra: &[u8]) -> Examined {
    let ex = Examiner::default();
    let full = ex.examine(leaf, extra, Depth::Full);
    let quick = ex.examine(leaf, extra, Depth::MatchOnly);
    assert_eq!(
        full.matched_names(),
        quick.matched_names(),
        "fast path disagrees"
    );
    assert_eq!(full.leaf_hash, quick.leaf_hash);
    full
}

fn utf8(s: &str) -> Option<DnValue> {
    Some(DnValue::Utf8String(s.into()))
}

fn matched(cn: Option<DnValue>, sans: &[&str]) -> Vec<String> {
    let made = make_cert(cn, sans, false);
    let (leaf, extra) = x509_entry(&made, 1);
    let e = examine(&leaf, &extra);
    assert!(e.error.is_none(), "{:?}", e.error);
    e.matched_names().to_vec()
}

#[test]
fn cn_only_without_san() {
    assert_eq!(
        matched(utf8("www.example.co.jp"), &[]),
        ["www.example.co.jp"]
    );
    assert!(matched(utf8("www.example.com"), &[]).is_empty());
}

#[test]
fn uppercase_and_trailing_dot() {
    assert_eq!(matched(None, &["WWW.EXAMPLE.JP."]), ["www.example.jp"]);
    assert_eq!(
        matched(utf8("Shop.Example.Tokyo.JP"), &[]),
        ["shop.example.tokyo.jp"]
    );
}

#[test]
fn idn_and_punycode() {
    // Punycode stays punycode.
    assert_eq!(matched(None, &["xn--wgv71a119e.jp"]), ["xn--wgv71a119e.jp"]);
    // A Unicode CN is a domain name too.
    assert_eq!(matched(utf8("日本語.jp"), &[]), ["日本語.jp"]);
}

#[test]
fn bmp_string_cn_is_found_by_the_fast_path() {
    let e = matched(
        Some(DnValue::BmpString("ex.co.jp".try_into().expect("bmp"))),
        &[],
    );
    assert_eq!(e, ["ex.co.jp"]);
}

#[test]
fn wildcards() {
    assert_eq!(matched(None, &["*.example.ne.jp"]), ["*.example.ne.jp"]);
}

#[test]
fn cn_that_is_not_a_domain_name() {
    assert!(matched(utf8("Example Corp .jp"), &[]).is_empty());
    assert!(matched(utf8("admin@example.jp"), &[]).is_empty());
}

#[test]
fn look_alikes_do_not_match() {
    for name in [
        "examplejp.com",
        "jp.example.com",
        "foo.jp.example.com",
        "jpmchase.net",
    ] {
        assert!(matched(utf8(name), &[name]).is_empty(), "{name}");
    }
}

#[test]
fn mixed_sans_report_only_matching_names() {
    assert_eq!(
        matched(
            utf8("example.com"),
            &[
                "example.com",
                "b.example.jp",
                "a.example.jp",
                "jp.example.org"
            ]
        ),
        ["a.example.jp", "b.example.jp"]
    );
}

#[test]
fn precert_with_poison() {
    let (leaf, extra, pre) = precert_entry(utf8("pre.example.go.jp"), &["pre.example.go.jp"]);
    let e = examine(&leaf, &extra);
    assert_eq!(e.entry_type, Some(EntryType::Precert));
    assert_eq!(e.matched_names(), ["pre.example.go.jp"]);
    assert_eq!(e.cert.as_ref().map(|c| c.serial.as_str()), Some("12345"));
    // The fingerprint is the precertificate's.
    let want: [u8; 32] = Sha256::digest(&pre).into();
    assert_eq!(e.fingerprint, Some(want));
}

#[test]
fn broken_validity_falls_back_to_the_lenient_parse() {
    let made = make_cert(
        utf8("broken.example.jp"),
        &["broken.example.jp", "other.example.jp"],
        false,
    );
    let mut der = made.cert.clone();
    // Overwrite the first UTCTime/GeneralizedTime's digits with letters.
    let pos = der
        .windows(2)
        .position(|w| (w[0] == 0x17 && w[1] == 13) || (w[0] == 0x18 && w[1] == 15))
        .expect("a time");
    for b in &mut der[pos + 2..pos + 6] {
        *b = b'Z';
    }
    let broken = Made {
        cert: der,
        issuer: made.issuer,
    };
    let (leaf, extra) = x509_entry(&broken, 1);
    let e = examine(&leaf, &extra);
    let cert = e.cert.clone().expect("lenient fields");
    assert!(cert.parse_error.is_some(), "x509-parser should reject it");
    assert!(e.error.is_none());
    assert_eq!(e.matched_names(), ["broken.example.jp", "other.example.jp"]);
    assert_eq!(cert.subject.cn.as_deref(), Some("broken.example.jp"));
}

#[test]
fn garbage_der_is_an_error_not_a_panic() {
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: 5,
        entry_type: EntryType::X509,
        issuer_key_hash: None,
        signed: b"\x30\x03garbage.jp",
        extensions: &[],
    });
    let e = Examiner::default().examine(&leaf, &[], Depth::Full);
    assert!(e.error.is_some());
    assert_eq!(e.timestamp, Some(5));
    assert!(e.leaf_hash.is_some());
}

mod generated {
    use super::*;
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("jp".to_owned()),
            Just("JP".to_owned()),
            Just("Jp".to_owned()),
            Just("co".to_owned()),
            Just("tokyo".to_owned()),
            Just("*".to_owned()),
            Just("xn--wgv71a".to_owned()),
            Just("jpmchase".to_owned()),
            Just("examplejp".to_owned()),
            "[a-z0-9-]{1,10}",
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        (proptest::collection::vec(label(), 1..5), any::<bool>()).prop_map(|(labels, dot)| {
            let mut n = labels.join(".");
            if dot {
                n.push('.');
            }
            n
        })
    }

    /// The rule of design.md, written independently of the matcher.
    fn reference(name: &str) -> bool {
        let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        n.len() > 3 && n.ends_with(".jp")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn fast_path_and_full_parse_agree_on_generated_names(
            sans in proptest::collection::vec(name(), 0..4),
            cn in proptest::option::of(name()),
        ) {
            let made = make_cert(cn.clone().map(DnValue::Utf8String), &sans.iter().map(String::as_str).collect::<Vec<_>>(), false);
            let (leaf, extra) = x509_entry(&made, 1);
            // examine() asserts that the fast path agrees with the full parse.
            let e = examine(&leaf, &extra);
            let want = sans.iter().any(|s| reference(s)) || cn.as_deref().is_some_and(reference);
            prop_assert_eq!(e.matched(), want, "{:?} {:?} -> {:?}", sans, cn, e.matched_names());
        }
    }
}
