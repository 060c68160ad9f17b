//! `ct-core`: everything ctjp knows about Certificate Transparency data, with
//! no IO. Wire formats (RFC 6962 and static-ct-api), Merkle hashing and
//! proofs, tree head signatures, certificate extraction, the `.jp` matcher,
//! log timestamps in Japan Standard Time and the JSON types of the
//! worker-manager protocol.

pub mod b64;
pub mod cert;
pub mod checkpoint;
pub mod codec;
pub mod der;
pub mod entry;
pub mod error;
pub mod hash;
pub mod jst;
pub mod leaf;
pub mod loglist;
pub mod matcher;
pub mod merkle;
pub mod protocol;
pub mod rfc6962;
pub mod sth;
pub mod tiles;

pub use error::{Error, Result};
