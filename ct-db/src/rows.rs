//! Row types read from the database.

use ct_core::protocol::Hash32;
use sqlx::FromRow;

use crate::states::{AuditState, CheckState, LogKind, ProofState, TaskState};

/// Every column of a task that a transition looks at.
#[derive(Debug, Clone, FromRow)]
pub struct TaskRow {
    pub id: u64,
    pub log_id: u64,
    pub start_index: u64,
    pub end_index: u64,
    pub state: TaskState,
    pub next_index: u64,
    pub enabled: bool,
    pub priority: i32,
    pub lease_holder: Option<u64>,
    pub lease_expires_at: Option<i64>,
    /// When the current lease began (Unix ms); `None` when not leased, or
    /// leased before the time was recorded.
    pub leased_at: Option<i64>,
    pub lease_entries: u64,
    pub lease_matches: u64,
    pub lease_errors: u64,
    pub lease_rate_limited: u64,
    pub check_of: u64,
    pub completed_by: Option<u64>,
    pub proof_state: Option<ProofState>,
    pub proof_hash: Option<Vec<u8>>,
    pub proof_tree_size: Option<u64>,
    pub check_state: Option<CheckState>,
    pub audit_state: Option<AuditState>,
    pub fault_hash: Option<Vec<u8>>,
    pub fault_worker: Option<u64>,
    pub fault_address: Option<String>,
}

/// The column list of [`TaskRow`].
pub const TASK_COLUMNS: &str = "id, log_id, start_index, end_index, state, next_index, enabled, priority, \
    lease_holder, lease_expires_at, leased_at, lease_entries, lease_matches, lease_errors, lease_rate_limited, \
    check_of, completed_by, proof_state, proof_hash, proof_tree_size, check_state, audit_state, \
    fault_hash, fault_worker, fault_address";

impl TaskRow {
    /// Entries in the range.
    pub fn span(&self) -> u64 {
        self.end_index.saturating_sub(self.start_index)
    }

    /// Whether `worker` holds the current lease.
    pub fn leased_to(&self, worker: u64) -> bool {
        self.state == TaskState::Leased && self.lease_holder == Some(worker)
    }

    /// The subtree hash proven against a verified tree head, if any.
    pub fn proven_hash(&self) -> Option<Hash32> {
        (self.proof_state == Some(ProofState::Verified))
            .then(|| self.proof_hash.as_deref().and_then(Hash32::from_slice))
            .flatten()
    }
}

/// A task as a claim hands it out, with its log.
#[derive(Debug, Clone, FromRow)]
pub struct LeasedTask {
    pub id: u64,
    pub log_id: u64,
    pub url: String,
    pub kind: LogKind,
    pub monitoring_url: Option<String>,
    pub start_index: u64,
    pub end_index: u64,
    pub max_fetchers: u32,
    pub check_of: u64,
    pub lease_expires_at: Option<i64>,
    pub operator: String,
    /// The log's (else its operator's) budget per client address.
    pub requests_per_sec: Option<f64>,
    pub entries_per_request: Option<u32>,
    pub operator_fetchers: Option<u32>,
    pub operator_requests_per_sec: Option<f64>,
}
