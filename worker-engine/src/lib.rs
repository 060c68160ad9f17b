//! `worker-engine`: the ctjp worker's engine. It fetches ranges of CT logs
//! (both API kinds), adapts to rate limits, decodes and matches off the async
//! reactor, spools and uploads the matches, and talks to the manager through
//! [`client::ManagerClient`]. It knows nothing of terminals: the TUI and the
//! headless mode of `ct-worker` (crate `worker-tui`) are frontends over it.

pub mod adapt;
pub mod client;
pub mod decode;
pub mod pace;
pub mod range;
pub mod source;
pub mod spool;
pub mod stats;
pub mod view;
pub mod worker;
