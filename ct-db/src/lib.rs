//! `ct-db`: the schema of ctjp (the migrations in the workspace's
//! `migrations/`, embedded here), row types, typed states, the
//! [`TaskStore`] that owns every transition of a task,
//! [`progress::progress_all`], the one definition of a log's progress (read
//! from the [`counters`] the database keeps as rows change), and
//! [`workers`]: registrations, identities and the totals per public name,
//! and [`ops`]: how leases end hour by hour, progress over time and the
//! daily leaderboard; [`bulk`] writes multi-row inserts as literals.
//!
//! Only the manager writes; sitegen reads through [`progress`] and [`rows`].

pub mod bulk;
pub mod counters;
pub mod error;
pub mod limits;
pub mod migrate;
pub mod ops;
pub mod progress;
pub mod rows;
pub mod states;
pub mod store;
pub mod workers;

pub use error::{Error, Refusal, Result};
pub use limits::{clip, now_ms, placeholders};
pub use migrate::{MIGRATOR, connect, create_if_missing, migrate};
pub use states::{AuditState, CheckState, LogKind, ProofState, TaskOutcome, TaskState};
pub use store::TaskStore;
