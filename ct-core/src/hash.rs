//! [`Hash32`]: a SHA-256 hash as it travels in JSON (64 lowercase hex
//! digits). Deserializing rejects anything that is not exactly 32 bytes of
//! hex, so a bad hash is refused once, at the edge, and never reaches code
//! that compares hashes.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::merkle::Hash;

/// A 32-byte hash with hex serde.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub Hash);

/// Why a text is not a [`Hash32`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("a hash is 64 hex digits, got {0} characters")]
    Length(usize),
    #[error("a hash is 64 hex digits, got a character that is not hex")]
    NotHex,
}

impl Hash32 {
    pub fn as_bytes(&self) -> &Hash {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From raw bytes (a database column); `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Hash::try_from(bytes).ok().map(Hash32)
    }
}

impl From<Hash> for Hash32 {
    fn from(h: Hash) -> Self {
        Hash32(h)
    }
}

impl From<Hash32> for Hash {
    fn from(h: Hash32) -> Self {
        h.0
    }
}

impl AsRef<[u8]> for Hash32 {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for Hash32 {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, HashError> {
        if s.len() != 64 {
            // 64 characters that are not 64 bytes are not all hex digits.
            let chars = s.chars().count();
            return Err(if chars == 64 {
                HashError::NotHex
            } else {
                HashError::Length(chars)
            });
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| HashError::NotHex)?;
        Ok(Hash32(out))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = Hash32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 hex digits")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Hash32, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(HexVisitor)
    }
}

/// The OpenAPI schema of a hash: a string of 64 hex digits (answers are
/// lowercase; requests may use either case).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Hash32 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-fA-F]{64}$"))
            .min_length(Some(64))
            .max_length(Some(64))
            .description(Some(
                "A SHA-256 hash: 64 hex digits (lowercase in answers).",
            ))
            .examples(["00".repeat(32)])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Hash32 {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Hash32")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_lengths() {
        let h = Hash32([0xab; 32]);
        let json = serde_json::to_string(&h).unwrap_or_default();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Hash32>(&json).ok(), Some(h));
        for bad in [
            "\"ab\"",
            &format!("\"{}\"", "ab".repeat(33)),
            &format!("\"{}\"", "zz".repeat(32)),
            "5",
        ] {
            assert!(serde_json::from_str::<Hash32>(bad).is_err(), "{bad}");
        }
        assert_eq!("AB".repeat(32).parse::<Hash32>().ok(), Some(h));
        // 64 characters, not all ASCII: not hex, whatever its byte length.
        let wide = format!("é{}", "0".repeat(63));
        assert_eq!(wide.parse::<Hash32>(), Err(HashError::NotHex));
        assert_eq!("0".repeat(63).parse::<Hash32>(), Err(HashError::Length(63)));
    }
}
