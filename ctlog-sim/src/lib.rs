//! `ctlog-sim`: a Certificate Transparency log server of our own for tests,
//! demos and benchmarks. It serves generated or replayed logs over RFC 6962
//! and static-ct-api with real ECDSA signatures and Merkle trees, grows them,
//! and misbehaves on purpose (rate limits, 5xx, latency, cut bodies, short
//! answers, malformed entries, undecodable entries in the tree itself).
//! Logs belong to operators, each log with its own limits and optionally an
//! operator-wide limit per client address; a fleet comes from a [`Profile`]
//! file. It serves HTTP or HTTPS (HTTP/2 and HTTP/1.1, a CA of its own:
//! [`SimConfig::tls`], [`Simulator::ca_pem`]) and gzip-encodes get-entries
//! answers for clients that accept it.
//!
//! ```no_run
//! # async fn demo() -> ctlog_sim::Result<()> {
//! use ctlog_sim::{LogConfig, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::new(vec![LogConfig::generated(1000, 7)])).await?;
//! println!("{}", sim.logs()[0].url);
//! sim.shutdown().await
//! # }
//! ```

pub mod config;
pub mod error;
pub mod faults;
pub mod generate;
pub mod gzip;
pub mod log;
pub mod loglist;
pub mod operator;
pub mod profile;
pub mod replay;
pub mod rfc6962;
pub mod server;
pub mod store;
pub mod tiles;
mod tls;
pub mod truth;

pub use config::{FaultConfig, LogConfig, OperatorConfig, SimConfig, Source, Views};
pub use error::{Error, Result};
pub use profile::Profile;
pub use server::{LogInfo, Simulator};
pub use truth::{Truth, TruthLog, TruthMatch};
