//! Certificate extraction: an owned summary of a certificate or a
//! precertificate's TBSCertificate, parsed with x509-parser, with a lenient
//! fallback ([`crate::der`]) that recovers the names when x509-parser rejects
//! the certificate.
//!
//! Beyond the names it keeps what ctjp analyses per certificate: the SPKI
//! hash, the key identifiers, the CRL and AIA URLs, the SAN count, wildcards,
//! the subject's and issuer's C/ST/L/O/OU and the validation level (from the
//! policy OIDs, or inferred from the subject O when they say nothing).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_parser::certificate::TbsCertificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use crate::der::{self, ip_string, lossy_string, serial_hex};
use crate::hash::Hash32;
use crate::matcher::normalize_name;

/// AIA access methods (RFC 5280 section 4.2.2.1).
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
const OID_AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";

/// The validation level of a certificate: what its policy OIDs say, or what
/// [`ValidationLevel::classify`] infers when they say nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ValidationLevel {
    /// Domain validated (2.23.140.1.2.1, or inferred: no subject O).
    Dv,
    /// Organization validated (2.23.140.1.2.2, or inferred: a subject O).
    Ov,
    /// Extended validation (2.23.140.1.1).
    Ev,
    /// Individual validated (2.23.140.1.2.3).
    Iv,
    /// Not known: only the lenient parse read the certificate.
    #[default]
    Unknown,
}

impl ValidationLevel {
    /// The lowercase name stored in the database and printed by `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationLevel::Dv => "dv",
            ValidationLevel::Ov => "ov",
            ValidationLevel::Ev => "ev",
            ValidationLevel::Iv => "iv",
            ValidationLevel::Unknown => "unknown",
        }
    }

    /// From CA/Browser Forum policy OIDs (EV wins over OV over IV over DV).
    pub fn from_policies<S: AsRef<str>>(oids: &[S]) -> Self {
        let has = |o: &str| oids.iter().any(|p| p.as_ref() == o);
        if has("2.23.140.1.1") {
            ValidationLevel::Ev
        } else if has("2.23.140.1.2.2") {
            ValidationLevel::Ov
        } else if has("2.23.140.1.2.3") {
            ValidationLevel::Iv
        } else if has("2.23.140.1.2.1") {
            ValidationLevel::Dv
        } else {
            ValidationLevel::Unknown
        }
    }

    /// The validation level and whether it was inferred. The CA/Browser Forum
    /// policy OIDs decide when one is present ([`Self::from_policies`]); when
    /// none is, the level is inferred as the system ctjp replaces did: `Ov`
    /// when the subject has a non-blank O, otherwise `Dv`, and the flag is
    /// `true`. Never returns `Unknown`.
    pub fn classify<S: AsRef<str>>(
        policies: &[S],
        subject_o: Option<&str>,
    ) -> (ValidationLevel, bool) {
        match ValidationLevel::from_policies(policies) {
            ValidationLevel::Unknown => {
                let has_o = subject_o.is_some_and(|o| !o.trim().is_empty());
                let level = if has_o {
                    ValidationLevel::Ov
                } else {
                    ValidationLevel::Dv
                };
                (level, true)
            }
            level => (level, false),
        }
    }
}

/// A distinguished name: the whole DN as text and the first value of each of
/// CN, O, C, ST, L and OU (in the DN's order).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DistinguishedName {
    pub dn: String,
    /// commonName (2.5.4.3).
    pub cn: Option<String>,
    /// organizationName (2.5.4.10).
    pub o: Option<String>,
    /// countryName (2.5.4.6).
    #[serde(default)]
    pub c: Option<String>,
    /// stateOrProvinceName (2.5.4.8).
    #[serde(default)]
    pub st: Option<String>,
    /// localityName (2.5.4.7).
    #[serde(default)]
    pub l: Option<String>,
    /// organizationalUnitName (2.5.4.11).
    #[serde(default)]
    pub ou: Option<String>,
}

/// What ctjp keeps about a certificate. Owned: it crosses tasks and channels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertInfo {
    /// Lowercase hex without leading zeros.
    pub serial: String,
    pub subject: DistinguishedName,
    pub issuer: DistinguishedName,
    /// Unix seconds; absent when only the lenient parse succeeded.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// SAN dNSNames: lowercase, trailing dot removed, sorted, unique.
    pub dns_names: Vec<String>,
    /// SAN iPAddresses as text, in certificate order, unique.
    pub ip_addresses: Vec<String>,
    pub key_algorithm: Option<String>,
    pub key_bits: Option<u32>,
    pub signature_algorithm: Option<String>,
    pub policies: Vec<String>,
    /// See [`ValidationLevel::classify`]. `Unknown` only when the lenient
    /// parse filled the fields: it reads neither the policies nor the O.
    pub validation: ValidationLevel,
    /// Whether `validation` was inferred from the subject O because no
    /// CA/Browser Forum policy OID was present.
    #[serde(default)]
    pub validation_inferred: bool,
    pub is_ca: bool,
    /// SHA-256 of the DER SubjectPublicKeyInfo; `None` only when the lenient
    /// parse filled the fields.
    #[serde(default)]
    pub spki_sha256: Option<Hash32>,
    /// The authority key identifier's keyIdentifier, lowercase hex.
    #[serde(default)]
    pub authority_key_id: Option<String>,
    /// The subject key identifier, lowercase hex.
    #[serde(default)]
    pub subject_key_id: Option<String>,
    /// The URIs of the CRL distribution points' full names, in certificate order.
    #[serde(default)]
    pub crl_urls: Vec<String>,
    /// The Authority Information Access OCSP URIs, in certificate order.
    #[serde(default)]
    pub ocsp_urls: Vec<String>,
    /// The Authority Information Access caIssuers URIs, in certificate order.
    #[serde(default)]
    pub ca_issuers_urls: Vec<String>,
    /// The number of SAN entries of type dNSName or iPAddress after
    /// normalisation and dedup: `dns_names.len() + ip_addresses.len()`. Other
    /// GeneralName types (email, URI, ...) are not counted, nor is the CN.
    #[serde(default)]
    pub san_count: u32,
    /// Whether any SAN dNSName starts with `*.`.
    #[serde(default)]
    pub is_wildcard: bool,
    /// Why x509-parser rejected the certificate, when it did; the fields above
    /// then come from the lenient parse.
    pub parse_error: Option<String>,
}

impl CertInfo {
    /// Every name worth matching: the SAN dNSNames and the subject CN (as
    /// stored, normalized), the CN only when it looks like a domain name.
    pub fn candidate_names(&self) -> Vec<String> {
        let mut names = self.dns_names.clone();
        if let Some(cn) = &self.subject.cn
            && crate::matcher::is_domain_name(cn)
        {
            let cn = normalize_name(cn);
            if !names.contains(&cn) {
                names.push(cn);
            }
        }
        names
    }
}

/// Whole days of an inclusive validity period.
pub fn validity_days(not_before: Option<i64>, not_after: Option<i64>) -> Option<i64> {
    let (nb, na) = (not_before?, not_after?);
    Some(na.saturating_sub(nb).saturating_add(1).div_euclid(86_400))
}

/// The validity bucket the site charts: `short` (under 90 days), `90`,
/// `91-398`, `over-398` or `unknown`.
pub fn validity_bucket(days: Option<i64>) -> &'static str {
    match days {
        None => "unknown",
        Some(d) if d < 90 => "short",
        Some(90) => "90",
        Some(d) if d <= 398 => "91-398",
        Some(_) => "over-398",
    }
}

/// Extracts a certificate (DER) or, with `tbs_only`, a bare TBSCertificate
/// (a precert entry's `leaf_input`). Never fails: when x509-parser rejects the
/// input the lenient walk fills in what it can and `parse_error` says why; when
/// even that fails, the error is returned.
pub fn extract(der: &[u8], tbs_only: bool) -> Result<CertInfo, String> {
    let strict = if tbs_only {
        TbsCertificate::from_der(der).map(|(_, tbs)| (tbs, None))
    } else {
        X509Certificate::from_der(der).map(|(_, cert)| {
            let sig = oid_name(&cert.signature_algorithm.algorithm.to_id_string());
            (cert.tbs_certificate, Some(sig))
        })
    };
    match strict {
        Ok((tbs, sig)) => Ok(from_tbs(&tbs, sig, der)),
        Err(e) => {
            let strict_error = e.to_string();
            let lenient = der::lenient_parse(der)
                .map_err(|le| format!("x509: {strict_error}; lenient: {le}"))?;
            let mut info = from_lenient(lenient);
            info.parse_error = Some(format!("x509: {strict_error}"));
            Ok(info)
        }
    }
}

fn from_tbs(tbs: &TbsCertificate<'_>, sig: Option<String>, der: &[u8]) -> CertInfo {
    let mut info = CertInfo {
        serial: serial_hex(tbs.raw_serial()),
        subject: dn(tbs.subject()),
        issuer: dn(tbs.issuer()),
        not_before: Some(tbs.validity().not_before.timestamp()),
        not_after: Some(tbs.validity().not_after.timestamp()),
        is_ca: tbs.is_ca(),
        signature_algorithm: Some(
            sig.unwrap_or_else(|| oid_name(&tbs.signature.algorithm.to_id_string())),
        ),
        ..CertInfo::default()
    };
    let spki = tbs.public_key();
    info.spki_sha256 = Some(Hash32(Sha256::digest(spki.raw).into()));
    let alg = spki.algorithm.algorithm.to_id_string();
    let (name, bits) = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".to_owned(), Some(bit_len(rsa.modulus))),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| oid_name(&o.to_id_string()));
            (
                format!("EC {}", curve.unwrap_or_else(|| "unknown curve".into())),
                u32::try_from(point.key_size()).ok(),
            )
        }
        Ok(other) => (
            oid_name(&alg),
            u32::try_from(other.key_size()).ok().filter(|b| *b > 0),
        ),
        Err(_) => (oid_name(&alg), None),
    };
    info.key_algorithm = Some(name);
    info.key_bits = bits;

    let mut names_ok = true;
    for ext in tbs.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for gn in &san.general_names {
                    match gn {
                        GeneralName::DNSName(n) => info.dns_names.push(normalize_name(n)),
                        GeneralName::IPAddress(ip) => {
                            if let Some(ip) = ip_string(ip) {
                                info.ip_addresses.push(ip);
                            }
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::CertificatePolicies(policies) => {
                info.policies = policies
                    .iter()
                    .map(|p| p.policy_id.to_id_string())
                    .collect();
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                info.authority_key_id = aki.key_identifier.as_ref().map(|k| hex::encode(k.0));
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => {
                info.subject_key_id = Some(hex::encode(ski.0));
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in &points.points {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        info.crl_urls.extend(uris(names));
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    let GeneralName::URI(uri) = desc.access_location else {
                        continue;
                    };
                    match desc.access_method.to_id_string().as_str() {
                        OID_AD_OCSP => info.ocsp_urls.push(uri.to_owned()),
                        OID_AD_CA_ISSUERS => info.ca_issuers_urls.push(uri.to_owned()),
                        _ => {}
                    }
                }
            }
            ParsedExtension::ParseError { error } if ext.oid.to_id_string() == "2.5.29.17" => {
                names_ok = false;
                info.parse_error = Some(format!("x509: subjectAltName: {error}"));
            }
            _ => {}
        }
    }
    if !names_ok && let Ok(lenient) = der::lenient_parse(der) {
        info.dns_names = lenient
            .dns_names
            .iter()
            .map(|n| normalize_name(n))
            .collect();
        info.ip_addresses = lenient.ip_addresses;
    }
    (info.validation, info.validation_inferred) =
        ValidationLevel::classify(&info.policies, info.subject.o.as_deref());
    finish_names(&mut info);
    info
}

/// Sorts and dedups the dNSNames, dedups the IP addresses, and derives
/// `san_count` and `is_wildcard` from them.
fn finish_names(info: &mut CertInfo) {
    info.dns_names.sort();
    info.dns_names.dedup();
    let mut seen = HashSet::new();
    info.ip_addresses.retain(|ip| seen.insert(ip.clone()));
    info.san_count =
        u32::try_from(info.dns_names.len() + info.ip_addresses.len()).unwrap_or(u32::MAX);
    info.is_wildcard = info.dns_names.iter().any(|n| n.starts_with("*."));
}

/// The URIs among GeneralNames.
fn uris<'a>(names: &'a [GeneralName<'_>]) -> impl Iterator<Item = String> + 'a {
    names.iter().filter_map(|gn| match gn {
        GeneralName::URI(uri) => Some((*uri).to_owned()),
        _ => None,
    })
}

/// The fields of a lenient parse: the serial, the CNs and the SAN names (so
/// also `san_count` and `is_wildcard`). Nothing else was read, so the
/// validation stays `Unknown` (not inferred) and the SPKI hash is `None`.
fn from_lenient(l: der::LenientCert) -> CertInfo {
    let dns: Vec<String> = l.dns_names.iter().map(|n| normalize_name(n)).collect();
    let name = |cns: &[String]| DistinguishedName {
        dn: cns
            .iter()
            .map(|c| format!("CN={c}"))
            .collect::<Vec<_>>()
            .join(", "),
        cn: cns.first().cloned(),
        ..DistinguishedName::default()
    };
    let mut info = CertInfo {
        serial: serial_hex(&l.serial),
        subject: name(&l.subject_cn),
        issuer: name(&l.issuer_cn),
        dns_names: dns,
        ip_addresses: l.ip_addresses,
        ..CertInfo::default()
    };
    finish_names(&mut info);
    info
}

fn bit_len(be: &[u8]) -> u32 {
    let trimmed: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    trimmed.len() as u32 * 8 - trimmed[0].leading_zeros()
}

/// The text of an attribute value, whatever its string type.
fn attr_text(atv: &AttributeTypeAndValue<'_>) -> String {
    let value = atv.attr_value();
    // Tag numbers of universal string types fit in a byte.
    let tag = u8::try_from(value.tag().0).unwrap_or(0);
    lossy_string(tag, value.data)
}

fn dn(name: &X509Name<'_>) -> DistinguishedName {
    let mut parts = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.5" => "serialNumber",
                "1.2.840.113549.1.9.1" => "emailAddress",
                "2.5.4.15" => "businessCategory",
                "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
                _ => "",
            };
            let value = attr_text(atv);
            if key.is_empty() {
                parts.push(format!("{oid}={value}"));
            } else {
                parts.push(format!("{key}={value}"));
            }
        }
    }
    DistinguishedName {
        dn: parts.join(", "),
        cn: name.iter_common_name().next().map(attr_text),
        o: name.iter_organization().next().map(attr_text),
        c: name.iter_country().next().map(attr_text),
        st: name.iter_state_or_province().next().map(attr_text),
        l: name.iter_locality().next().map(attr_text),
        ou: name.iter_organizational_unit().next().map(attr_text),
    }
}

/// A readable name for common algorithm and curve OIDs, else the dotted OID.
pub fn oid_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.2.1" => "EC",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.101.112" => "Ed25519",
        _ => return oid.to_owned(),
    };
    name.to_owned()
}
