//! Standard base64 (with padding), as CT's JSON APIs use it, via SIMD.

use base64_simd::STANDARD;

use crate::error::{Error, Result};
use crate::merkle::Hash;

/// Decodes standard base64.
pub fn decode(text: &str, what: &'static str) -> Result<Vec<u8>> {
    STANDARD
        .decode_to_vec(text.as_bytes())
        .map_err(|_| Error::Base64 { what })
}

/// Decodes standard base64 into a reusable buffer.
pub fn decode_into(text: &str, out: &mut Vec<u8>, what: &'static str) -> Result<()> {
    let len = STANDARD
        .decoded_length(text.as_bytes())
        .map_err(|_| Error::Base64 { what })?;
    out.clear();
    out.resize(len, 0);
    let written = STANDARD
        .decode(text.as_bytes(), base64_simd::Out::from_slice(out))
        .map_err(|_| Error::Base64 { what })?
        .len();
    out.truncate(written);
    Ok(())
}

/// Decodes a base64 SHA-256 hash.
pub fn decode_hash(text: &str, what: &'static str) -> Result<Hash> {
    let bytes = decode(text, what)?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| Error::invalid(what, format!("{} bytes, want 32", v.len())))
}

/// Encodes standard base64.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode_to_string(bytes)
}
