//! Signed tree heads: the `TreeHeadSignature` bytes, `DigitallySigned`, and
//! signature verification from a log's DER SubjectPublicKeyInfo (ECDSA P-256
//! or RSA), with the log ID (SHA-256 of that key).

use ring::signature;
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::codec::{Reader, put_opaque, put_uint};
use crate::error::{Error, Result};
use crate::merkle::Hash;

/// SHA-256 of the DER SubjectPublicKeyInfo.
pub fn log_id(spki_der: &[u8]) -> Hash {
    Sha256::digest(spki_der).into()
}

/// The bytes a log signs for a tree head (RFC 6962 section 3.5).
pub fn tree_head_signed_bytes(timestamp: u64, tree_size: u64, root: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(50);
    out.push(0); // version v1
    out.push(1); // signature_type tree_hash
    put_uint(&mut out, timestamp, 8);
    put_uint(&mut out, tree_size, 8);
    out.extend_from_slice(root);
    out
}

/// Hash algorithm byte of `DigitallySigned` for SHA-256.
pub const HASH_SHA256: u8 = 4;
/// Signature algorithm bytes of `DigitallySigned`.
pub const SIG_RSA: u8 = 1;
pub const SIG_ECDSA: u8 = 3;

/// A TLS `DigitallySigned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitallySigned {
    pub hash_alg: u8,
    pub sig_alg: u8,
    pub signature: Vec<u8>,
}

impl DigitallySigned {
    pub fn decode(raw: &[u8]) -> Result<Self> {
        let mut r = Reader::new(raw);
        let ds = Self::read(&mut r)?;
        r.finish("digitally_signed")?;
        Ok(ds)
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(DigitallySigned {
            hash_alg: r.u8("hash algorithm")?,
            sig_alg: r.u8("signature algorithm")?,
            signature: r.opaque(2, "signature")?.to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.signature.len() + 4);
        out.push(self.hash_alg);
        out.push(self.sig_alg);
        put_opaque(&mut out, &self.signature, 2);
        out
    }
}

/// A log's public key, parsed once and ready to verify.
#[derive(Debug, Clone)]
pub struct LogKey {
    spki_der: Vec<u8>,
    kind: KeyKind,
    /// The key bytes ring wants: an EC point or a PKCS#1 RSAPublicKey.
    raw: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    EcdsaP256,
    Rsa,
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

impl LogKey {
    /// Parses a DER SubjectPublicKeyInfo (ECDSA P-256 or RSA).
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::invalid("log public key", e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::Trailing {
                what: "log public key",
                count: rest.len(),
            });
        }
        let alg = spki.algorithm.algorithm.to_id_string();
        let kind = match alg.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                if curve.as_deref() != Some(OID_P256) {
                    return Err(Error::invalid(
                        "log public key",
                        format!("unsupported curve {curve:?}"),
                    ));
                }
                KeyKind::EcdsaP256
            }
            OID_RSA => KeyKind::Rsa,
            other => {
                return Err(Error::invalid(
                    "log public key",
                    format!("unsupported algorithm {other}"),
                ));
            }
        };
        Ok(LogKey {
            spki_der: spki_der.to_vec(),
            kind,
            raw: spki.subject_public_key.data.to_vec(),
        })
    }

    /// SHA-256 of the DER key.
    pub fn log_id(&self) -> Hash {
        log_id(&self.spki_der)
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Verifies a bare signature over `message`: RSA PKCS#1 v1.5 with
    /// SHA-256 for an RSA key, ECDSA P-256 SHA-256 (ASN.1) for an EC key (as
    /// Google signs its log list).
    pub fn verify_raw(&self, message: &[u8], sig: &[u8]) -> Result<()> {
        let alg: &dyn signature::VerificationAlgorithm = match self.kind {
            KeyKind::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyKind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, sig)
            .map_err(|_| Error::Signature("bad signature".into()))
    }

    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &str) -> Result<Self> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PUBLIC KEY-----")
            .collect();
        if body.is_empty() {
            return Err(Error::invalid(
                "PEM public key",
                "no -----BEGIN PUBLIC KEY----- block".to_string(),
            ));
        }
        Self::from_spki_der(&crate::b64::decode(&body, "PEM public key")?)
    }

    /// Verifies a `DigitallySigned` over `message`.
    pub fn verify(&self, message: &[u8], ds: &DigitallySigned) -> Result<()> {
        if ds.hash_alg != HASH_SHA256 {
            return Err(Error::Signature(format!(
                "hash algorithm {} is not SHA-256",
                ds.hash_alg
            )));
        }
        let (want, alg): (u8, &dyn signature::VerificationAlgorithm) = match self.kind {
            KeyKind::EcdsaP256 => (SIG_ECDSA, &signature::ECDSA_P256_SHA256_ASN1),
            KeyKind::Rsa => (SIG_RSA, &signature::RSA_PKCS1_2048_8192_SHA256),
        };
        if ds.sig_alg != want {
            return Err(Error::Signature(format!(
                "signature algorithm {} does not fit the key",
                ds.sig_alg
            )));
        }
        signature::UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, &ds.signature)
            .map_err(|_| Error::Signature("bad signature".into()))
    }

    /// Verifies a tree head signature (the `tree_head_signature` of get-sth).
    pub fn verify_tree_head(
        &self,
        timestamp: u64,
        tree_size: u64,
        root: &Hash,
        signature: &DigitallySigned,
    ) -> Result<()> {
        self.verify(
            &tree_head_signed_bytes(timestamp, tree_size, root),
            signature,
        )
    }
}

/// DER prefix of a P-256 SubjectPublicKeyInfo before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Wraps an uncompressed P-256 point (65 bytes, as ring gives it) in a DER
/// SubjectPublicKeyInfo.
pub fn p256_spki_der(point: &[u8]) -> Result<Vec<u8>> {
    if point.len() != 65 || point[0] != 4 {
        return Err(Error::invalid(
            "P-256 point",
            format!("{} bytes", point.len()),
        ));
    }
    let mut out = P256_SPKI_PREFIX.to_vec();
    out.extend_from_slice(point);
    Ok(out)
}
