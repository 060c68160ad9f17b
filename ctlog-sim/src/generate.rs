//! Generated logs: a pool of real rcgen certificates and precertificates
//! (matching `.jp` names and look-alikes that must not match), and entries
//! that each pick one pool template and get a unique serial patched into the
//! DER (same length, so the DER stays valid). Which template each entry uses is
//! drawn from a seeded RNG; keys and signatures come from the system RNG.

use std::sync::Arc;

use ct_core::entry::{Depth, Examiner};
use ct_core::leaf::{EntryType, encode_leaf_index_extension};
use ct_core::merkle::{Hash, leaf_hash};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Chain, Parts};

/// Timestamp of entry 0; entry i is `BASE_TIMESTAMP + 7 * i` ms.
pub const BASE_TIMESTAMP: u64 = 1_700_000_000_000;
/// Templates per kind (matching, not matching).
pub const POOL_PER_KIND: usize = 160;
/// The CT poison extension.
const POISON_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];
/// A private extension of random bytes that gives certificates realistic sizes.
const FILLER_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 55738, 7, 1];
/// Placeholder for the per-entry part of a serial.
const SERIAL_MARK: [u8; 8] = [0xa5; 8];

const CATEGORIES: &[&str] = &[
    "co.jp",
    "ac.jp",
    "go.jp",
    "or.jp",
    "ne.jp",
    "gr.jp",
    "ed.jp",
    "lg.jp",
    "ad.jp",
    "tokyo.jp",
    "osaka.jp",
    "kyoto.jp",
    "hokkaido.jp",
    "fukuoka.jp",
    "jp",
];
const WORDS: &[&str] = &[
    "sakura", "fuji", "hikari", "midori", "sora", "umi", "yama", "kawa", "hoshi", "tsuki", "kaze",
    "mori", "shop", "mail", "portal", "cloud", "bank", "city", "school", "news",
];
const OTHER_TLDS: &[&str] = &[
    "com", "net", "org", "io", "de", "fr", "co.uk", "com.au", "dev",
];
const LOOKALIKES: &[&str] = &[
    "examplejp.com",
    "jp.example.com",
    "foo.jp.example.com",
    "jpmchase.net",
    "www.jpmchase.net",
    "jp",
    "shop.jpn.com",
    "nihon-jp.org",
];

/// One pool certificate, ready to be patched.
#[derive(Debug)]
struct Template {
    entry_type: EntryType,
    signed: Vec<u8>,
    signed_serial_at: usize,
    pre: Option<(Vec<u8>, usize)>,
    issuer_key_hash: Option<Hash>,
    chain: Arc<Chain>,
    matched: bool,
}

/// The shared certificates of a generated log.
#[derive(Debug)]
pub struct Pool {
    templates: Vec<Template>,
    matching: Vec<u32>,
    other: Vec<u32>,
    roots: Vec<Vec<u8>>,
    chains: Vec<Arc<Chain>>,
}

impl Pool {
    /// Every issuer certificate any entry's chain holds.
    pub fn chains(&self) -> &[Arc<Chain>] {
        &self.chains
    }

    pub fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }
}

/// A generated log's entries: one template number per entry.
#[derive(Debug)]
pub struct Generated {
    pool: Arc<Pool>,
    picks: Vec<u32>,
    rng: StdRng,
    match_share: f64,
    leaf_index: bool,
}

fn rcgen_err(e: rcgen::Error) -> Error {
    Error::Generate(e.to_string())
}

fn issuer_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::OrganizationName, "ctjp Simulated Trust");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

/// What names one template carries.
struct Names {
    cn: String,
    sans: Vec<String>,
}

fn matching_names(rng: &mut StdRng, t: usize) -> Names {
    let cat = CATEGORIES[t % CATEGORIES.len()];
    let word = WORDS[rng.random_range(0..WORDS.len())];
    let base = format!("{word}{}.{cat}", rng.random_range(1..10_000));
    let variant = (t / CATEGORIES.len() + t) % 7;
    let primary = match variant {
        1 => base.to_ascii_uppercase(),
        2 => format!("{base}."),
        3 => format!("*.{base}"),
        4 => format!("xn--{}-{}.{cat}", word, rng.random_range(100..999)),
        _ => base.clone(),
    };
    if variant == 5 {
        // CN only, no SAN.
        return Names {
            cn: primary,
            sans: Vec::new(),
        };
    }
    let mut sans = vec![primary.clone(), format!("www.{base}")];
    if variant == 6 {
        // A mixed certificate: mostly other names, one .jp name.
        sans.insert(0, format!("{word}-global.com"));
    }
    Names { cn: primary, sans }
}

fn other_names(rng: &mut StdRng, t: usize) -> Names {
    let word = WORDS[rng.random_range(0..WORDS.len())];
    let n: u32 = rng.random_range(1..10_000);
    let primary = if t % 3 == 0 {
        let look = LOOKALIKES[(t / 3) % LOOKALIKES.len()];
        if look == "jp" {
            // A single-label name is not a .jp domain.
            "jp".to_owned()
        } else if (t / (3 * LOOKALIKES.len())) % 2 == 0 {
            look.to_owned()
        } else {
            format!("{word}{n}.{look}")
        }
    } else {
        format!("{word}{n}.{}", OTHER_TLDS[t % OTHER_TLDS.len()])
    };
    if t % 11 == 5 {
        return Names {
            cn: primary,
            sans: Vec::new(),
        };
    }
    Names {
        cn: primary.clone(),
        sans: vec![primary, format!("api.{word}{n}.com")],
    }
}

fn filler(rng: &mut StdRng) -> Vec<u8> {
    let len: usize = rng.random_range(700..1500);
    let mut out = vec![0x04, 0x82, (len >> 8) as u8, len as u8];
    let start = out.len();
    out.resize(start + len, 0);
    rng.fill_bytes(&mut out[start..]);
    out
}

/// The first element of a DER SEQUENCE (a certificate's TBSCertificate).
fn first_child(der: &[u8]) -> Option<&[u8]> {
    let (_, body) = der_element(der)?;
    let (len, _) = der_element(body)?;
    body.get(..len)
}

/// Length of the whole element at the start of `b` and its contents.
fn der_element(b: &[u8]) -> Option<(usize, &[u8])> {
    let first = *b.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (2 + n, len)
    };
    let contents = b.get(header..header + len)?;
    Some((header + len, contents))
}

fn serial_offset(der: &[u8], serial: &[u8]) -> Result<usize> {
    let mut needle = vec![0x02, serial.len() as u8];
    needle.extend_from_slice(serial);
    memchr::memmem::find(der, &needle)
        .map(|at| at + 2 + 8)
        .ok_or_else(|| Error::Generate("serial not found in generated DER".into()))
}

impl Pool {
    /// Builds the pool: a root, two intermediates and `2 * per_kind` leaf templates.
    pub fn build(seed: u64, per_kind: usize) -> Result<Pool> {
        let mut rng = StdRng::seed_from_u64(seed);
        let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
        let root_key = KeyPair::generate_for(alg).map_err(rcgen_err)?;
        let root_params = issuer_params("ctjp Sim Root CA");
        let root_cert = root_params.self_signed(&root_key).map_err(rcgen_err)?;
        let root_issuer = Issuer::new(root_params, root_key);
        let mut issuers = Vec::new();
        let mut chains = Vec::new();
        for (i, cn) in ["ctjp Sim Issuing CA 1", "ctjp Sim Issuing CA 2"]
            .iter()
            .enumerate()
        {
            let key = KeyPair::generate_for(alg).map_err(rcgen_err)?;
            let params = issuer_params(cn);
            let cert = params.signed_by(&key, &root_issuer).map_err(rcgen_err)?;
            let key_hash: Hash = Sha256::digest(key.subject_public_key_info()).into();
            let chain = if i == 0 {
                vec![cert.der().to_vec(), root_cert.der().to_vec()]
            } else {
                vec![cert.der().to_vec()]
            };
            chains.push(Arc::new(Chain::new(chain)));
            issuers.push((Issuer::new(params, key), key_hash));
        }
        let examiner = Examiner::default();
        let mut templates = Vec::with_capacity(per_kind * 2);
        let mut matching = Vec::new();
        let mut other = Vec::new();
        let seed_tag: [u8; 3] = rng.random();
        for t in 0..per_kind * 2 {
            let want_match = t % 2 == 0;
            let names = if want_match {
                matching_names(&mut rng, t / 2)
            } else {
                other_names(&mut rng, t / 2)
            };
            let which = t % issuers.len();
            let (issuer, key_hash) = &issuers[which];
            let precert = (t / 2) % 2 == 1;
            let mut serial = vec![0x3c, seed_tag[0], seed_tag[1], seed_tag[2]];
            serial.extend_from_slice(&(t as u32).to_be_bytes());
            serial.extend_from_slice(&SERIAL_MARK);
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            if t % 4 == 1 {
                dn.push(DnType::OrganizationName, "Example Org K.K.");
                dn.push(DnType::CountryName, "JP");
            }
            dn.push(DnType::CommonName, names.cn.as_str());
            params.distinguished_name = dn;
            for san in &names.sans {
                let ia5 = rcgen::string::Ia5String::try_from(san.as_str()).map_err(rcgen_err)?;
                params.subject_alt_names.push(SanType::DnsName(ia5));
            }
            params.serial_number = Some(SerialNumber::from(serial.clone()));
            let start = 1_690_000_000 + rng.random_range(0..20_000_000i64);
            params.not_before = time::OffsetDateTime::from_unix_timestamp(start)
                .map_err(|e| Error::Generate(e.to_string()))?;
            params.not_after = time::OffsetDateTime::from_unix_timestamp(start + 90 * 86_400)
                .map_err(|e| Error::Generate(e.to_string()))?;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.use_authority_key_identifier_extension = true;
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    FILLER_OID,
                    filler(&mut rng),
                ));
            let key = KeyPair::generate_for(alg).map_err(rcgen_err)?;
            let final_cert = params.signed_by(&key, issuer).map_err(rcgen_err)?;
            let template = if precert {
                let tbs = first_child(final_cert.der())
                    .ok_or_else(|| Error::Generate("no TBSCertificate".into()))?
                    .to_vec();
                let mut poison = CustomExtension::from_oid_content(POISON_OID, vec![0x05, 0x00]);
                poison.set_criticality(true);
                params.custom_extensions.push(poison);
                let pre = params.signed_by(&key, issuer).map_err(rcgen_err)?;
                let pre = pre.der().to_vec();
                Template {
                    entry_type: EntryType::Precert,
                    signed_serial_at: serial_offset(&tbs, &serial)?,
                    signed: tbs,
                    pre: Some((pre.clone(), serial_offset(&pre, &serial)?)),
                    issuer_key_hash: Some(*key_hash),
                    chain: chains[which].clone(),
                    matched: false,
                }
            } else {
                let der = final_cert.der().to_vec();
                Template {
                    entry_type: EntryType::X509,
                    signed_serial_at: serial_offset(&der, &serial)?,
                    signed: der,
                    pre: None,
                    issuer_key_hash: None,
                    chain: chains[which].clone(),
                    matched: false,
                }
            };
            templates.push(template);
            let index = templates.len() - 1;
            // The truth is what ct-core finds, not what we meant.
            let parts = build_parts(&templates[index], 0, false);
            let found = examiner
                .examine(&parts.leaf_input(), &parts.extra_data(), Depth::MatchOnly)
                .matched();
            templates[index].matched = found;
            if want_match {
                matching.push(index as u32);
            } else {
                other.push(index as u32);
            }
        }
        Ok(Pool {
            templates,
            matching,
            other,
            roots: vec![root_cert.der().to_vec(), chains[1].certs[0].clone()],
            chains,
        })
    }
}

fn patch(der: &[u8], at: usize, index: u64) -> Vec<u8> {
    let mut out = der.to_vec();
    out[at..at + 8].copy_from_slice(&index.to_be_bytes());
    out
}

fn build_parts(t: &Template, index: u64, leaf_index: bool) -> Parts {
    Parts {
        timestamp: BASE_TIMESTAMP + 7 * index,
        entry_type: t.entry_type,
        issuer_key_hash: t.issuer_key_hash,
        signed: patch(&t.signed, t.signed_serial_at, index),
        extensions: if leaf_index {
            encode_leaf_index_extension(index)
        } else {
            Vec::new()
        },
        pre_certificate: t.pre.as_ref().map(|(der, at)| patch(der, *at, index)),
        chain: t.chain.clone(),
    }
}

impl Generated {
    /// An empty generated log over `pool`; call [`Generated::append`] to fill it.
    pub fn new(pool: Arc<Pool>, seed: u64, match_share: f64, leaf_index: bool) -> Result<Self> {
        if !(0.0..=1.0).contains(&match_share) {
            return Err(Error::Config(format!(
                "match share {match_share} not in 0..=1"
            )));
        }
        if pool.matching.is_empty() || pool.other.is_empty() {
            return Err(Error::Config("empty certificate pool".into()));
        }
        Ok(Generated {
            pool,
            picks: Vec::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x0005_eed0_fe47_u64),
            match_share,
            leaf_index,
        })
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    pub fn len(&self) -> u64 {
        self.picks.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// Entry `index`.
    pub fn parts(&self, index: u64) -> Option<Parts> {
        let pick = *self.picks.get(usize::try_from(index).ok()?)?;
        let t = self.pool.templates.get(pick as usize)?;
        Some(build_parts(t, index, self.leaf_index))
    }

    /// Whether entry `index` matches (as ct-core's Examiner found for its template).
    pub fn matched(&self, index: u64) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.picks.get(i))
            .and_then(|&p| self.pool.templates.get(p as usize))
            .is_some_and(|t| t.matched)
    }

    /// Appends `count` entries and returns their leaf hashes, computed on
    /// `threads` threads.
    pub fn append(&mut self, count: u64, threads: usize) -> Vec<Hash> {
        let first = self.len();
        for _ in 0..count {
            let list = if self.rng.random_bool(self.match_share) {
                &self.pool.matching
            } else {
                &self.pool.other
            };
            let pick = list[self.rng.random_range(0..list.len())];
            self.picks.push(pick);
        }
        let indices: Vec<u64> = (first..first + count).collect();
        let threads = threads.max(1);
        let chunk = indices.len().div_ceil(threads).max(1);
        let this = &*self;
        std::thread::scope(|s| {
            let handles: Vec<_> = indices
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|&i| {
                                this.parts(i)
                                    .map(|p| leaf_hash(&p.leaf_input()))
                                    .unwrap_or_default()
                            })
                            .collect::<Vec<Hash>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }
}
