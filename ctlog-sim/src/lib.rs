//! `ctlog-sim`: a Certificate Transparency log server of our own for tests,
//! demos and benchmarks. It serves generated or replayed logs over RFC 6962
//! and static-ct-api with real ECDSA signatures and Merkle trees, grows them,
//! and misbehaves on purpose (rate limits, 5xx, latency, cut bodies, short
//! answers, malformed entries).
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
pub mod log;
pub mod loglist;
pub mod replay;
pub mod rfc6962;
pub mod server;
pub mod store;
pub mod tiles;
pub mod truth;

pub use config::{FaultConfig, LogConfig, SimConfig, Source, Views};
pub use error::{Error, Result};
pub use server::{LogInfo, Simulator};
pub use truth::{Truth, TruthLog, TruthMatch};
