//! The analysis fields of `CertInfo` on certificates made with rcgen, where
//! every value is known in advance: key identifiers, CRL and AIA URLs, the
//! subject's and issuer's C/ST/L/O/OU, wildcards, the SAN count, the SPKI
//! hash and the validation level (by policy OID and inferred).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ct_core::cert::{CertInfo, ValidationLevel, extract};
use ct_core::entry::{Depth, Examiner};
use ct_core::hash::Hash32;
use ct_core::leaf::{EntryType, TimestampedEntry, encode_extra_data, encode_leaf};
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DnType, IsCa,
    KeyIdMethod, KeyPair, PublicKeyData, SanType,
};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

const ISSUER_KEY_ID: [u8; 20] = [
    0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90,
    0x01, 0x12, 0x23, 0x34,
];
const SUBJECT_KEY_ID: [u8; 8] = [0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78];

const OID_EV: &[u64] = &[2, 23, 140, 1, 1];
const OID_OV: &[u64] = &[2, 23, 140, 1, 2, 2];
const OID_DV: &[u64] = &[2, 23, 140, 1, 2, 1];
/// A CA's own policy (ISRG Domain Validated), not a CA/Browser Forum one.
const OID_ISRG: &[u64] = &[1, 3, 6, 1, 4, 1, 44947, 1, 1, 1];
const POISON_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];

/// One DER TLV (definite length, short or long form).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// An OBJECT IDENTIFIER's TLV.
fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut put = |mut v: u64| {
        let mut groups = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        body.extend(groups.into_iter().rev());
    };
    put(arcs[0] * 40 + arcs[1]);
    for &a in &arcs[2..] {
        put(a);
    }
    tlv(0x06, &body)
}

/// A certificatePolicies extension (2.5.29.32) with these policy OIDs.
fn policies(oids: &[&[u64]]) -> CustomExtension {
    let infos: Vec<u8> = oids.iter().flat_map(|o| tlv(0x30, &oid(o))).collect();
    CustomExtension::from_oid_content(&[2, 5, 29, 32], tlv(0x30, &infos))
}

/// An authorityInfoAccess extension (1.3.6.1.5.5.7.1.1): (method arc, URI).
fn aia(descs: &[(u64, &str)]) -> CustomExtension {
    let body: Vec<u8> = descs
        .iter()
        .flat_map(|(method, uri)| {
            let mut d = oid(&[1, 3, 6, 1, 5, 5, 7, 48, *method]);
            d.extend(tlv(0x86, uri.as_bytes()));
            tlv(0x30, &d)
        })
        .collect();
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &body))
}

/// A test CA with a full DN and a known key identifier.
fn issuer() -> (CertificateParams, KeyPair) {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in [
        (DnType::CountryName, "US"),
        (DnType::StateOrProvinceName, "California"),
        (DnType::LocalityName, "San Francisco"),
        (DnType::OrganizationName, "Analysis Test CA Inc."),
        (DnType::OrganizationalUnitName, "Issuing"),
        (DnType::CommonName, "Analysis Test Issuing CA"),
    ] {
        p.distinguished_name.push(t, v);
    }
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_identifier_method = KeyIdMethod::PreSpecified(ISSUER_KEY_ID.to_vec());
    (p, KeyPair::generate().expect("key"))
}

/// A leaf certificate with every analysed extension.
fn full_params(subject_o: Option<&str>, policy_oids: &[&[u64]]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "JP");
    p.distinguished_name
        .push(DnType::StateOrProvinceName, "Tokyo");
    p.distinguished_name
        .push(DnType::LocalityName, "Shibuya-ku");
    if let Some(o) = subject_o {
        p.distinguished_name.push(DnType::OrganizationName, o);
    }
    // rcgen keeps one value per attribute type; the real data has DNs with
    // repeated types (real_analysis.rs).
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, "Web");
    p.distinguished_name
        .push(DnType::CommonName, "www.example.co.jp");
    let dns = |s: &str| SanType::DnsName(s.try_into().expect("ia5"));
    p.subject_alt_names = vec![
        dns("www.example.co.jp"),
        dns("*.Example.co.jp"),
        // The same name again once normalized: counted once.
        dns("WWW.EXAMPLE.CO.JP."),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
        // Neither counts.
        SanType::Rfc822Name("admin@example.co.jp".try_into().expect("ia5")),
        SanType::URI("https://example.co.jp/".try_into().expect("ia5")),
    ];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_identifier_method = KeyIdMethod::PreSpecified(SUBJECT_KEY_ID.to_vec());
    p.use_authority_key_identifier_extension = true;
    p.crl_distribution_points = vec![
        CrlDistributionPoint {
            uris: vec!["http://crl.example-ca.test/a.crl".into()],
        },
        CrlDistributionPoint {
            uris: vec!["http://crl2.example-ca.test/b.crl".into()],
        },
    ];
    p.custom_extensions.push(aia(&[
        (1, "http://ocsp.example-ca.test"),
        (2, "http://certs.example-ca.test/ca.der"),
    ]));
    if !policy_oids.is_empty() {
        p.custom_extensions.push(policies(policy_oids));
    }
    p
}

struct Signed {
    der: Vec<u8>,
    issuer_der: Vec<u8>,
    spki_der: Vec<u8>,
}

fn sign(p: CertificateParams) -> Signed {
    let (ip, ikey) = issuer();
    let issuer_cert = ip.self_signed(&ikey).expect("issuer");
    let issuer = rcgen::Issuer::new(ip, ikey);
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, &issuer).expect("sign");
    Signed {
        der: cert.der().to_vec(),
        issuer_der: issuer_cert.der().to_vec(),
        spki_der: key.subject_public_key_info(),
    }
}

fn info(der: &[u8]) -> CertInfo {
    let info = extract(der, false).expect("extracts");
    assert_eq!(info.parse_error, None, "x509-parser reads it");
    info
}

#[test]
fn every_analysis_field_of_a_full_certificate() {
    let made = sign(full_params(Some("Example K.K."), &[OID_OV]));
    let c = info(&made.der);

    let want_spki: [u8; 32] = Sha256::digest(&made.spki_der).into();
    assert_eq!(c.spki_sha256, Some(Hash32(want_spki)));
    // The same bytes as x509-parser's view of the SPKI, and not the certificate's hash.
    let (_, parsed) = X509Certificate::from_der(&made.der).expect("parses");
    assert_eq!(parsed.public_key().raw, made.spki_der.as_slice());
    assert_ne!(
        c.spki_sha256,
        Some(Hash32(Sha256::digest(&made.der).into()))
    );

    assert_eq!(c.authority_key_id, Some(hex::encode(ISSUER_KEY_ID)));
    assert_eq!(
        c.authority_key_id.as_deref(),
        Some("a1b2c3d4e5f60718293a4b5c6d7e8f9001122334")
    );
    assert_eq!(c.subject_key_id.as_deref(), Some("0f1e2d3c4b5a6978"));

    assert_eq!(
        c.crl_urls,
        [
            "http://crl.example-ca.test/a.crl",
            "http://crl2.example-ca.test/b.crl"
        ]
    );
    assert_eq!(c.ocsp_urls, ["http://ocsp.example-ca.test"]);
    assert_eq!(c.ca_issuers_urls, ["http://certs.example-ca.test/ca.der"]);

    let s = &c.subject;
    assert_eq!(s.c.as_deref(), Some("JP"));
    assert_eq!(s.st.as_deref(), Some("Tokyo"));
    assert_eq!(s.l.as_deref(), Some("Shibuya-ku"));
    assert_eq!(s.o.as_deref(), Some("Example K.K."));
    assert_eq!(s.ou.as_deref(), Some("Web"));
    assert_eq!(s.cn.as_deref(), Some("www.example.co.jp"));
    let i = &c.issuer;
    assert_eq!(i.c.as_deref(), Some("US"));
    assert_eq!(i.st.as_deref(), Some("California"));
    assert_eq!(i.l.as_deref(), Some("San Francisco"));
    assert_eq!(i.o.as_deref(), Some("Analysis Test CA Inc."));
    assert_eq!(i.ou.as_deref(), Some("Issuing"));
    assert_eq!(i.cn.as_deref(), Some("Analysis Test Issuing CA"));

    assert_eq!(c.dns_names, ["*.example.co.jp", "www.example.co.jp"]);
    assert_eq!(c.ip_addresses, ["192.0.2.7", "2001:db8::1"]);
    assert_eq!(c.san_count, 4, "two names and two addresses, once each");
    assert!(c.is_wildcard);

    assert_eq!(c.policies, ["2.23.140.1.2.2"]);
    assert_eq!(c.validation, ValidationLevel::Ov);
    assert!(!c.validation_inferred);
    assert!(!c.is_ca);

    // The entry path gives the same CertInfo.
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: 1_700_000_000_000,
        entry_type: EntryType::X509,
        issuer_key_hash: None,
        signed: &made.der,
        extensions: &[],
    });
    let extra = encode_extra_data(None, &[&made.issuer_der]);
    let e = Examiner::default().examine(&leaf, &extra, Depth::Full);
    assert_eq!(e.cert.as_ref(), Some(&c));
    assert!(e.matched());
}

#[test]
fn a_certificate_without_the_extensions_has_none_of_them() {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    // A wildcard CN is not a SAN dNSName: neither counted nor a wildcard.
    p.distinguished_name
        .push(DnType::CommonName, "*.cn-only.example.jp");
    let made = sign(p);
    let c = info(&made.der);
    assert_eq!(c.authority_key_id, None);
    assert_eq!(c.subject_key_id, None);
    assert!(c.crl_urls.is_empty() && c.ocsp_urls.is_empty() && c.ca_issuers_urls.is_empty());
    assert_eq!(c.san_count, 0);
    assert!(!c.is_wildcard);
    assert_eq!(
        (
            c.subject.c.clone(),
            c.subject.st.clone(),
            c.subject.l.clone()
        ),
        (None, None, None)
    );
    assert_eq!((c.subject.o.clone(), c.subject.ou.clone()), (None, None));
    let want: [u8; 32] = Sha256::digest(&made.spki_der).into();
    assert_eq!(c.spki_sha256, Some(Hash32(want)));
    assert_eq!(
        (c.validation, c.validation_inferred),
        (ValidationLevel::Dv, true)
    );
}

/// A subject O, the policy OIDs and the level they should give.
type Case = (
    Option<&'static str>,
    &'static [&'static [u64]],
    ValidationLevel,
);

#[test]
fn validation_by_policy_oids_wins_over_the_subject_o() {
    let cases: [Case; 5] = [
        (None, &[OID_EV], ValidationLevel::Ev),
        (Some("Example K.K."), &[OID_EV, OID_OV], ValidationLevel::Ev),
        // A DV OID says DV even with an O in the subject.
        (Some("Example K.K."), &[OID_DV], ValidationLevel::Dv),
        (None, &[OID_OV], ValidationLevel::Ov),
        (None, &[OID_ISRG, OID_DV], ValidationLevel::Dv),
    ];
    for (o, oids, want) in cases {
        let c = info(&sign(full_params(o, oids)).der);
        assert_eq!(
            (c.validation, c.validation_inferred),
            (want, false),
            "{o:?} {oids:?}"
        );
    }
}

#[test]
fn validation_is_inferred_from_the_subject_o_without_policy_oids() {
    let cases: [Case; 4] = [
        (Some("Example K.K."), &[], ValidationLevel::Ov),
        (None, &[], ValidationLevel::Dv),
        // Only a CA's own policy: still inferred.
        (Some("Example K.K."), &[OID_ISRG], ValidationLevel::Ov),
        (None, &[OID_ISRG], ValidationLevel::Dv),
    ];
    for (o, oids, want) in cases {
        let c = info(&sign(full_params(o, oids)).der);
        assert_eq!(
            (c.validation, c.validation_inferred),
            (want, true),
            "{o:?} {oids:?}"
        );
    }
}

#[test]
fn classify_without_a_certificate() {
    let none: [&str; 0] = [];
    assert_eq!(
        ValidationLevel::classify(&none, Some("Example K.K.")),
        (ValidationLevel::Ov, true)
    );
    assert_eq!(
        ValidationLevel::classify(&none, None),
        (ValidationLevel::Dv, true)
    );
    // A blank O is no O.
    assert_eq!(
        ValidationLevel::classify(&none, Some(" ")),
        (ValidationLevel::Dv, true)
    );
    assert_eq!(
        ValidationLevel::classify(&["2.23.140.1.2.3"], Some("x")),
        (ValidationLevel::Iv, false)
    );
    assert_eq!(
        ValidationLevel::classify(&["2.23.140.1.1".to_owned()], None),
        (ValidationLevel::Ev, false)
    );
}

#[test]
fn a_precert_tbs_gives_the_same_fields_as_the_certificate() {
    let (ip, ikey) = issuer();
    let issuer_cert = ip.self_signed(&ikey).expect("issuer");
    let issuer_spki_hash: [u8; 32] = {
        let (_, c) = X509Certificate::from_der(issuer_cert.der()).expect("issuer parses");
        Sha256::digest(c.public_key().raw).into()
    };
    let issuer = rcgen::Issuer::new(ip, ikey);
    let key = KeyPair::generate().expect("key");
    let mut p = full_params(None, &[OID_DV]);
    let plain = p.signed_by(&key, &issuer).expect("sign");
    let mut poison = CustomExtension::from_oid_content(POISON_OID, vec![0x05, 0x00]);
    poison.set_criticality(true);
    p.custom_extensions.push(poison);
    let pre = p.signed_by(&key, &issuer).expect("sign");
    let (_, parsed) = X509Certificate::from_der(plain.der()).expect("parses");
    let tbs = parsed.tbs_certificate.as_ref().to_vec();

    let from_tbs = extract(&tbs, true).expect("extracts");
    assert_eq!(from_tbs.parse_error, None);
    assert_eq!(from_tbs, info(plain.der()));
    let want: [u8; 32] = Sha256::digest(key.subject_public_key_info()).into();
    assert_eq!(from_tbs.spki_sha256, Some(Hash32(want)));
    assert_eq!(from_tbs.subject_key_id.as_deref(), Some("0f1e2d3c4b5a6978"));
    assert_eq!(from_tbs.san_count, 4);
    assert_eq!(
        (from_tbs.validation, from_tbs.validation_inferred),
        (ValidationLevel::Dv, false)
    );

    // And through a precert entry.
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: 1,
        entry_type: EntryType::Precert,
        issuer_key_hash: Some(issuer_spki_hash),
        signed: &tbs,
        extensions: &[],
    });
    let extra = encode_extra_data(Some(pre.der()), &[issuer_cert.der()]);
    let e = Examiner::default().examine(&leaf, &extra, Depth::Full);
    assert_eq!(e.cert.as_ref(), Some(&from_tbs));
}

#[test]
fn the_lenient_path_keeps_names_only() {
    let made = crate::certs::make_cert(
        Some(rcgen::DnValue::Utf8String("broken.example.jp".into())),
        &[
            "*.broken.example.jp",
            "broken.example.jp",
            "BROKEN.example.jp",
        ],
        false,
    );
    let mut der = made.cert;
    // Break the first time value so that x509-parser rejects the certificate.
    let pos = der
        .windows(2)
        .position(|w| (w[0] == 0x17 && w[1] == 13) || (w[0] == 0x18 && w[1] == 15))
        .expect("a time");
    for b in &mut der[pos + 2..pos + 6] {
        *b = b'Z';
    }
    let c = extract(&der, false).expect("lenient");
    assert!(c.parse_error.is_some());
    assert_eq!(c.spki_sha256, None);
    assert_eq!(
        (c.validation, c.validation_inferred),
        (ValidationLevel::Unknown, false)
    );
    assert_eq!(c.san_count, 2);
    assert!(c.is_wildcard);
    assert_eq!(c.authority_key_id, None);
    assert_eq!(c.subject.c, None);
}

#[test]
fn old_json_without_the_new_fields_still_reads() {
    let old = r#"{"serial":"1","subject":{"dn":"CN=a.jp","cn":"a.jp","o":null},
        "issuer":{"dn":"","cn":null,"o":null},"not_before":null,"not_after":null,
        "dns_names":["a.jp"],"ip_addresses":[],"key_algorithm":null,"key_bits":null,
        "signature_algorithm":null,"policies":[],"validation":"unknown","is_ca":false,
        "parse_error":null}"#;
    let c: CertInfo = serde_json::from_str(old).expect("reads");
    assert_eq!(c.spki_sha256, None);
    assert_eq!(c.san_count, 0);
    assert_eq!(c.subject.c, None);
    let round: CertInfo =
        serde_json::from_str(&serde_json::to_string(&c).expect("writes")).expect("reads");
    assert_eq!(round, c);
}
