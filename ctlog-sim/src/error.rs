//! The library's error type.

/// What can go wrong while building or serving logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("generating certificates: {0}")]
    Generate(String),
    #[error("replaying {path}: {message}")]
    Replay { path: String, message: String },
    #[error("signing: {0}")]
    Sign(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Core(#[from] ct_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
