//! The JSON types of the worker <-> manager protocol (`/v1`), shared by
//! `ct-worker` and `ct-manager` so both compile against one definition.
//!
//! Conventions: indexes are 0-based log indexes, ranges are half-open
//! `[start, end)`, times are Unix milliseconds, hashes are lowercase hex,
//! raw entries are standard base64 as in RFC 6962 `get-entries`. Counts in
//! [`TaskProgress`] and [`CompleteRequest`] are cumulative for the current
//! lease (since the `next_index` the claim returned), so a replayed report is
//! harmless.

use serde::{Deserialize, Serialize};

/// The API kind of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// RFC 6962 `get-entries` under `log_url`.
    Rfc6962,
    /// static-ct-api tiles under `monitoring_url`.
    Static,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Rfc6962 => "rfc6962",
            LogKind::Static => "static",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rfc6962" => Some(LogKind::Rfc6962),
            "static" => Some(LogKind::Static),
            _ => None,
        }
    }
}

/// `POST /v1/workers/register`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Public name shown on the dashboard; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The worker's software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Answer to [`RegisterRequest`]. The token is shown once; the manager keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub worker_id: u64,
    pub name: String,
    /// Bearer token for every later call.
    pub token: String,
}

/// `POST /v1/tasks/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// How many tasks at most (default 1; the manager caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<u32>,
}

/// Answer to [`ClaimRequest`]: possibly no task at all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub tasks: Vec<TaskLease>,
}

/// One leased task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLease {
    pub task_id: u64,
    /// The manager's id of the log.
    pub log_id: u64,
    /// RFC 6962 base URL, or the submission URL of a static log.
    pub log_url: String,
    pub kind: LogKind,
    /// Monitoring prefix of a static log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_url: Option<String>,
    /// Range `[start, end)`.
    pub start: u64,
    pub end: u64,
    /// Where to start fetching (the last reported index when resumed).
    pub next_index: u64,
    /// Unix ms; heartbeats extend it.
    pub lease_expires_at: u64,
    /// Fetchers this worker may use for this log now.
    pub fetchers: u32,
    /// Set when this lease is a hidden-entry check: the same range was
    /// already done by another worker and the two sets of matches are
    /// compared. Work it exactly like any other task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_of: Option<u64>,
}

/// `POST /v1/heartbeat`: progress of every task the worker holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    #[serde(default)]
    pub tasks: Vec<TaskProgress>,
}

/// Progress of one task, counts cumulative for the current lease.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskProgress {
    pub task_id: u64,
    /// First index not yet fetched and processed.
    pub next_index: u64,
    /// Entries fetched and examined.
    #[serde(default)]
    pub entries: u64,
    /// Entries that matched.
    #[serde(default)]
    pub matches: u64,
    /// Entries that failed to decode.
    #[serde(default)]
    pub errors: u64,
    /// 429 (and 503) answers received from the log.
    #[serde(default)]
    pub rate_limited: u64,
}

/// What became of a task named in a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Still leased to you; the lease was extended.
    Active,
    /// Finished.
    Done,
    /// No longer yours (expired, revoked or never leased): stop working on it.
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    pub task_id: u64,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<u64>,
}

/// Scaling advice for one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFetchers {
    pub log_id: u64,
    pub log_url: String,
    pub fetchers: u32,
    pub reason: String,
}

/// Answer to [`HeartbeatRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub tasks: Vec<TaskState>,
    pub fetchers: Vec<LogFetchers>,
}

/// One raw entry as fetched.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UploadEntry {
    pub index: u64,
    /// base64 `MerkleTreeLeaf`.
    pub leaf_input: String,
    /// base64 `extra_data`.
    #[serde(default)]
    pub extra_data: String,
    /// The entry's audit path inside the task range's subtree (leaf
    /// `index - start` of a tree of `end - start` leaves), lowercase hex
    /// hashes, leaf to root. Empty when the worker sends none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_path: Vec<String>,
}

/// `POST /v1/tasks/{id}/entries`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UploadRequest {
    pub entries: Vec<UploadEntry>,
    /// Lowercase hex subtree hash of the task's whole range, which every
    /// entry's `audit_path` leads to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree_hash: Option<String>,
}

/// Why one uploaded entry was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub index: u64,
    /// HTTP-like status for this entry (422 undecodable or not matching, 409 conflicting).
    pub status: u16,
    pub code: String,
    pub reason: String,
}

/// Answer to [`UploadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UploadResponse {
    /// Stored now.
    pub new: u64,
    /// Already stored (identical): harmless.
    pub duplicate: u64,
    pub rejected: u64,
    pub rejections: Vec<Rejection>,
}

/// `POST /v1/tasks/{id}/complete`: totals for the current lease.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub next_index: u64,
    pub entries: u64,
    #[serde(default)]
    pub matches: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default)]
    pub rate_limited: u64,
    /// Hex Merkle hash of the whole task range (when the worker computed it).
    /// Without it the range can only be `unproven`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree_hash: Option<String>,
    /// Hex leaf hash of the range's first entry (index `start`). Optional:
    /// lets the manager use `get-proof-by-hash` on RFC 6962 logs that lack
    /// `get-entry-and-proof`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_leaf_hash: Option<String>,
}

/// `POST /v1/tasks/{id}/fail`: give the task back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailRequest {
    pub error: String,
    /// The first index not processed.
    pub index: u64,
}

/// Answer to complete and fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAck {
    pub task_id: u64,
    /// `pending`, `leased` or `done`.
    pub state: String,
    pub next_index: u64,
    /// For a completed task: `verified` (the subtree hash is proven against
    /// a signed tree head), `unproven` (the log offers no proof, it failed
    /// for now, or uploads came without audit paths). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trip() {
        for k in [LogKind::Rfc6962, LogKind::Static] {
            assert_eq!(LogKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn defaults_when_absent() {
        let p: TaskProgress =
            serde_json::from_str(r#"{"task_id":1,"next_index":5}"#).unwrap_or_default();
        assert_eq!(p.next_index, 5);
        assert_eq!(p.entries, 0);
        let r: RegisterRequest = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(r.name, None);
    }
}
