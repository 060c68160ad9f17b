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

pub use crate::hash::Hash32;

/// The API kind of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// Public name shown on the dashboard; generated when absent. 1 to 64
    /// characters, no control characters, no leading or trailing spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: Option<String>,
    /// The worker's software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The manager's registration secret, when it is run with one (closed
    /// deployments); ignored otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_secret: Option<String>,
    /// The volunteer's own secret for `name` (16 to 256 bytes; `name` is
    /// then required). The first registration of a name with a secret
    /// claims the name; each later one with the same secret is another
    /// machine of that volunteer, with its own token, under the same public
    /// name. The manager stores only its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, min_length = 16, max_length = 256)
    )]
    pub secret: Option<Secret>,
    /// The token of the registration this one replaces (the worker's
    /// previous one, from its state directory; at most 128 bytes): its
    /// leases return to the pool at once and its token stops working. A
    /// token the manager does not know (or no longer accepts) is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, max_length = 128)
    )]
    pub replaces: Option<Secret>,
}

/// Bytes of a volunteer's [`RegisterRequest::secret`], at least and at most.
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=256;
/// Bytes of a [`RegisterRequest::replaces`] token at most (a token is 64).
pub const TOKEN_MAX_BYTES: usize = 128;

/// A credential (a volunteer's secret, a token) in a request: serialized as
/// the plain string, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The credential itself: to hash or to send, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is long enough and not too long for a volunteer's secret.
    pub fn is_valid_secret(&self) -> bool {
        SECRET_BYTES.contains(&self.0.len())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Answer to [`RegisterRequest`]. The token is shown once; the manager keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterResponse {
    pub worker_id: u64,
    pub name: String,
    /// Bearer token for every later call.
    pub token: String,
    /// The registration this one replaced ([`RegisterRequest::replaces`]):
    /// its leases were returned to the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<u64>,
}

/// `POST /v1/tasks/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimRequest {
    /// How many tasks at most (default 1; the manager caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<u32>,
}

/// Answer to [`ClaimRequest`]: possibly no task at all.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimResponse {
    pub tasks: Vec<TaskLease>,
    /// When no task was given: how long to wait before claiming again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Why (no work, every log at its budget, cooling down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How fast one worker (one client address) may fetch from one log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FetchBudget {
    /// Requests per second to this log.
    pub requests_per_sec: f64,
    /// Entries asked per get-entries request (the log's batch cap).
    pub entries_per_request: u64,
    /// Concurrent fetchers at most.
    pub fetchers: u32,
    /// Requests per second to all logs of this log's operator together, when
    /// the operator limits per address across its logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_requests_per_sec: Option<f64>,
}

/// One leased task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Where matches are required from: always `start`, since a lease
    /// that ended without `complete` returns its task whole.
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
    /// The log's operator (workers pace the operator's logs together when
    /// `budget.operator_requests_per_sec` is set).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator: String,
    /// How fast this worker may fetch from this log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<FetchBudget>,
}

/// `POST /v1/heartbeat`: progress of every task the worker holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatRequest {
    /// Each task at most once; at most 1,024 tasks.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1024))]
    pub tasks: Vec<TaskProgress>,
}

/// Progress of one task, counts cumulative for the current lease.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskState {
    pub task_id: u64,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<u64>,
}

/// Scaling advice for one log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogFetchers {
    pub log_id: u64,
    pub log_url: String,
    pub fetchers: u32,
    pub reason: String,
    /// The log's current budget for this worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<FetchBudget>,
}

/// A log a worker is kept off for a while (after repeated failures there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cooldown {
    pub log_id: u64,
    /// Unix ms.
    pub until: u64,
    pub reason: String,
}

/// Answer to [`HeartbeatRequest`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatResponse {
    pub tasks: Vec<TaskState>,
    pub fetchers: Vec<LogFetchers>,
    /// Logs this worker is kept off for now, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cooldowns: Vec<Cooldown>,
}

/// Logs a worker may ask about in one `GET /v1/workers/me` at most.
pub const STANDING_MAX_LOGS: usize = 64;

/// Answer to `GET /v1/workers/me`: the caller's public name with the
/// lifetime totals of all its machines (as the leaderboard, `GET
/// /v1/workers`, sums them), its place on that leaderboard, and how the logs
/// it asked about stand.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerStanding {
    /// The calling machine.
    pub worker_id: u64,
    /// Its public name.
    pub name: String,
    /// Machines registered under the name and not replaced.
    pub machines: u64,
    /// Entries examined by all the name's machines.
    pub entries: u64,
    /// Of those, entries that matched.
    pub matches: u64,
    /// Tasks the name's machines completed.
    pub tasks_done: u64,
    /// The name's place on the leaderboard (1: most entries; of two with as
    /// many, the one registered first). Absent when the name is not ranked:
    /// a machine of it was flagged or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u64>,
    /// The name's place in the latest daily rank snapshot taken before
    /// today (UTC): yesterday's, or the latest before it when the manager
    /// took none yesterday. Absent when there is no such snapshot or the
    /// name is not in it (and from managers older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank_yesterday: Option<u64>,
    /// Names on the leaderboard.
    pub of: u64,
    /// The calling machine's page on the static site, relative to the site's
    /// root (e.g. `workers/12.html`).
    pub page_path: String,
    /// The logs asked for (`?logs=`) that the manager knows, by id.
    #[serde(default)]
    pub logs: Vec<LogOutlook>,
}

/// How one log's collection stands, for an estimate of when it is done.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogOutlook {
    pub log_id: u64,
    /// Size of the log's largest verified signed tree head (0 before the first).
    pub tree_size: u64,
    /// Entries up to `tree_size` not collected yet: in tasks waiting or
    /// leased, and not planned yet.
    pub remaining: u64,
    /// Entries of this log the whole fleet reported per second over the last
    /// ten minutes (since the first report in them, counted as one minute at
    /// least); 0 when none.
    pub entries_per_sec: f64,
}

/// One raw entry as fetched.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadEntry {
    pub index: u64,
    /// base64 `MerkleTreeLeaf`.
    pub leaf_input: String,
    /// base64 `extra_data`.
    #[serde(default)]
    pub extra_data: String,
    /// The entry's audit path inside the task range's subtree (leaf
    /// `index - start` of a tree of `end - start` leaves), leaf to root.
    /// Required: it is empty only in a range of one entry.
    #[serde(default)]
    pub audit_path: Vec<Hash32>,
}

/// `POST /v1/tasks/{id}/entries`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadRequest {
    /// Matching entries, and entries that do not decode (the manager records
    /// those as the log's malformed entries once they are proven).
    pub entries: Vec<UploadEntry>,
    /// Subtree hash of the task's whole range, which every entry's
    /// `audit_path` leads to; the manager proves it against a signed tree head.
    pub subtree_hash: Hash32,
    /// Leaf hash of the range's first entry: lets the manager use
    /// `get-proof-by-hash` on RFC 6962 logs that lack `get-entry-and-proof`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_leaf_hash: Option<Hash32>,
}

/// Why one uploaded entry was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rejection {
    pub index: u64,
    /// HTTP-like status for this entry (422 not matching or bad proof, 409 conflicting).
    pub status: u16,
    pub code: RejectionCode,
    pub reason: String,
}

/// Why an uploaded entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// Its audit path does not lead to the upload's subtree hash.
    BadProof,
    /// It is not valid base64.
    Undecodable,
    /// It decodes but names no matching domain.
    NoMatch,
    /// A different entry is stored at this index.
    Conflict,
    /// A code of a newer manager.
    #[serde(other)]
    Other,
}

/// Answer to [`UploadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadResponse {
    /// Stored now.
    pub new: u64,
    /// Already stored (identical): harmless.
    pub duplicate: u64,
    /// Proven entries that do not decode, recorded as the log's malformed entries.
    #[serde(default)]
    pub failed: u64,
    pub rejected: u64,
    pub rejections: Vec<Rejection>,
}

/// `POST /v1/tasks/{id}/complete`: totals for the current lease.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteRequest {
    pub next_index: u64,
    pub entries: u64,
    #[serde(default)]
    pub matches: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default)]
    pub rate_limited: u64,
    /// Merkle hash of the whole task range; the manager proves it against a
    /// signed tree head before the task counts as done.
    pub subtree_hash: Hash32,
    /// Leaf hash of the range's first entry (index `start`). Optional:
    /// lets the manager use `get-proof-by-hash` on RFC 6962 logs that lack
    /// `get-entry-and-proof`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_leaf_hash: Option<Hash32>,
}

/// `POST /v1/tasks/{id}/fail`: give the task back. It returns to the pool
/// whole: the next worker fetches the whole range.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailRequest {
    pub error: String,
    /// The first index not processed; informational only (logged).
    #[serde(default)]
    pub index: u64,
}

/// The state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskPhase {
    /// Waiting for a worker.
    Pending,
    /// Leased to a worker.
    Leased,
    /// Collected and proven against a signed tree head.
    Done,
    /// Two independent workers got bytes that do not hash into the log's
    /// tree: the log's fault, shown on the site; not handed out again.
    LogFault,
}

/// How a range's subtree hash stands against the log's signed tree heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProofState {
    /// Proven to be part of a verified signed tree head.
    Verified,
    /// Not provable yet (no fitting head, the log's proof API failed).
    Unproven,
    /// Not the log's.
    Mismatch,
}

/// Answer to complete and fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskAck {
    pub task_id: u64,
    pub state: TaskPhase,
    pub next_index: u64,
    /// For a completed task: `verified` (its subtree hash is proven against a
    /// signed tree head; a task completes only then). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofState>,
}

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// The stable code of every error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidJson,
    InvalidPath,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    /// The task is not leased to the caller (any more).
    NotLeased,
    /// An index outside the task's range.
    OutOfLease,
    InvalidIndex,
    /// A count over what the range allows.
    InvalidCounts,
    InvalidName,
    /// A volunteer's secret of the wrong length, or without a name.
    InvalidSecret,
    InvalidCap,
    TooManyTasks,
    TooManyEntries,
    /// Complete before the whole range was reported.
    Incomplete,
    /// Complete before every reported match was uploaded and proven.
    UnaccountedMatches,
    /// The subtree hash is not the log's: the lease ends.
    ProofMismatch,
    /// The log cannot prove the range right now: retry later.
    ProofUnavailable,
    /// An upload's hash differs from the one already proven for the task.
    SubtreeConflict,
    /// An entry must come with its audit path.
    ProofRequired,
    NameTaken,
    /// Registration needs the manager's registration secret.
    RegistrationSecret,
    /// Too many registrations from this address.
    RateLimited,
    /// Flagged by a check; gets no tasks.
    Flagged,
    Revoked,
    Internal,
    /// The database is unreachable.
    Unavailable,
    /// A code of a newer manager.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotLeased => "not_leased",
            ErrorCode::OutOfLease => "out_of_lease",
            ErrorCode::InvalidIndex => "invalid_index",
            ErrorCode::InvalidCounts => "invalid_counts",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidSecret => "invalid_secret",
            ErrorCode::InvalidCap => "invalid_cap",
            ErrorCode::TooManyTasks => "too_many_tasks",
            ErrorCode::TooManyEntries => "too_many_entries",
            ErrorCode::Incomplete => "incomplete",
            ErrorCode::UnaccountedMatches => "unaccounted_matches",
            ErrorCode::ProofMismatch => "proof_mismatch",
            ErrorCode::ProofUnavailable => "proof_unavailable",
            ErrorCode::SubtreeConflict => "subtree_conflict",
            ErrorCode::ProofRequired => "proof_required",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::RegistrationSecret => "registration_secret",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Flagged => "flagged",
            ErrorCode::Revoked => "revoked",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

    #[test]
    fn a_standing_without_yesterdays_rank_is_what_older_peers_send() {
        let old = r#"{"worker_id":1,"name":"ivy","machines":1,"entries":5,"matches":1,"tasks_done":1,"rank":2,"of":3,"page_path":"workers/1.html"}"#;
        let s: WorkerStanding = serde_json::from_str(old).unwrap_or_default();
        assert_eq!((s.rank, s.rank_yesterday, s.of), (Some(2), None, 3));
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert!(!json.contains("rank_yesterday"), "{json}");
        let s = WorkerStanding {
            rank_yesterday: Some(4),
            ..s
        };
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert!(json.contains(r#""rank_yesterday":4"#), "{json}");
        let back: WorkerStanding = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, s);
    }

    #[test]
    fn a_secret_is_a_plain_string_that_debug_never_shows() {
        let json = r#"{"name":"ivy","secret":"correct horse battery","replaces":"ab12"}"#;
        let r: RegisterRequest = serde_json::from_str(json).unwrap_or_default();
        assert_eq!(
            r.secret.as_ref().map(Secret::expose),
            Some("correct horse battery")
        );
        assert_eq!(r.replaces.as_ref().map(Secret::expose), Some("ab12"));
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("horse") && !shown.contains("ab12"),
            "{shown}"
        );
        assert_eq!(serde_json::to_string(&r).unwrap_or_default(), json);
        assert!(r.secret.is_some_and(|s| s.is_valid_secret()));
        assert!(!Secret::new("x".repeat(15)).is_valid_secret());
        assert!(Secret::new("x".repeat(256)).is_valid_secret());
        assert!(!Secret::new("x".repeat(257)).is_valid_secret());
    }

    #[test]
    fn hashes_of_a_wrong_length_are_refused() {
        let ok = format!(
            r#"{{"next_index":4,"entries":4,"subtree_hash":"{}"}}"#,
            "00".repeat(32)
        );
        assert!(serde_json::from_str::<CompleteRequest>(&ok).is_ok());
        let short = r#"{"next_index":4,"entries":4,"subtree_hash":"0011"}"#;
        assert!(serde_json::from_str::<CompleteRequest>(short).is_err());
        let missing = r#"{"next_index":4,"entries":4}"#;
        assert!(serde_json::from_str::<CompleteRequest>(missing).is_err());
    }

    #[test]
    fn error_codes_round_trip() {
        for c in [
            ErrorCode::NotLeased,
            ErrorCode::ProofUnavailable,
            ErrorCode::UnaccountedMatches,
        ] {
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        let unknown: ErrorCode =
            serde_json::from_str("\"from_the_future\"").unwrap_or(ErrorCode::Internal);
        assert_eq!(unknown, ErrorCode::Other);
    }
}
