//! The one error type of `ct-core`.

/// Everything that can go wrong while decoding or verifying CT data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended before a field was complete.
    #[error("truncated {what}: need {need} more bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// Bytes were left over after a complete structure.
    #[error("{count} trailing bytes after {what}")]
    Trailing { what: &'static str, count: usize },
    /// A field holds a value the format does not allow.
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    /// Base64 that does not decode.
    #[error("bad base64 in {what}")]
    Base64 { what: &'static str },
    /// A signature did not verify.
    #[error("signature does not verify: {0}")]
    Signature(String),
    /// A Merkle proof or hash did not match.
    #[error("merkle proof does not verify: {0}")]
    Proof(String),
}

impl Error {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
