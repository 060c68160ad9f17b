//! The worker's engine: fetching ranges of CT logs (both API kinds), adapting
//! to rate limits, decoding and matching off the async reactor. It knows
//! nothing of terminals: the TUI and the headless mode are frontends over it.

pub mod adapt;
pub mod client;
pub mod decode;
pub mod range;
pub mod source;
pub mod spool;
pub mod stats;
pub mod view;
pub mod worker;
