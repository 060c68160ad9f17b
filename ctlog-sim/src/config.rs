//! What the simulator serves: one [`SimConfig`] holding a [`LogConfig`] per
//! log (its entries, its views, its batch cap, growth and faults), the
//! operators the logs belong to ([`OperatorConfig`]) and whether to serve
//! HTTPS.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where a log's entries come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Generated from a seed: `entries` certificates, `match_share` of them
    /// naming `.jp` domains.
    Generated {
        entries: u64,
        seed: u64,
        match_share: f64,
    },
    /// Replayed from a directory of get-entries JSON files (sorted by name,
    /// entries laid end to end).
    Replay(PathBuf),
}

/// Which read APIs a log serves and how the log list names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Views {
    /// RFC 6962 `ct/v1/...` endpoints.
    pub rfc6962: bool,
    /// static-ct-api `checkpoint`, `tile/...`, `issuer/...`.
    pub tiles: bool,
    /// List the log under `tiled_logs` (else under `logs`).
    pub list_as_tiled: bool,
}

impl Views {
    pub const RFC6962: Views = Views {
        rfc6962: true,
        tiles: false,
        list_as_tiled: false,
    };
    pub const STATIC: Views = Views {
        rfc6962: false,
        tiles: true,
        list_as_tiled: true,
    };

    /// Whether entries carry the `leaf_index` extension (any log with tiles).
    pub fn leaf_index_extension(&self) -> bool {
        self.tiles
    }
}

/// Misbehaviour, per log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultConfig {
    /// Token bucket per client address: tokens per second (None: no limit).
    pub rate_limit: Option<f64>,
    /// Bucket size.
    pub burst: u32,
    /// Share of answers replaced by 500 or 503 (half each).
    pub error_rate: f64,
    /// Added latency per request.
    pub latency_ms: u64,
    /// Share of answers cut mid-body (connection aborted).
    pub cut_rate: f64,
    /// Share of get-entries answers shorter than the batch cap allows.
    pub short_rate: f64,
}

/// One log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub source: Source,
    pub views: Views,
    /// Most entries one get-entries answer holds.
    pub batch_cap: u64,
    /// Entries appended per second (0: the log does not grow).
    pub grow_per_sec: u64,
    /// Indices served malformed by get-entries (bad base64, truncated leaf,
    /// garbage DER, in turn).
    pub malformed: Vec<u64>,
    /// Indices whose entry in the log itself (its tree, get-entries, data
    /// tiles, proofs) is an X.509 entry whose certificate is not DER: the
    /// log is consistent, the entry does not decode. Left out of the truth.
    pub garbage: Vec<u64>,
    pub faults: FaultConfig,
    /// The operator the log belongs to: the name of one of
    /// [`SimConfig::operators`] (None: the default operator, "ctjp simulator").
    pub operator: Option<String>,
    /// The log list's description (None: `ctlog-sim log<N>`).
    pub description: Option<String>,
    /// gzip-encode get-entries answers for clients that send
    /// `Accept-Encoding: gzip` (as real logs do; costly in debug builds).
    pub gzip: bool,
}

impl LogConfig {
    /// A generated RFC 6962 log of `entries` entries, 1% matching, no faults.
    pub fn generated(entries: u64, seed: u64) -> Self {
        LogConfig {
            source: Source::Generated {
                entries,
                seed,
                match_share: 0.01,
            },
            views: Views::RFC6962,
            batch_cap: 256,
            grow_per_sec: 0,
            malformed: Vec::new(),
            garbage: Vec::new(),
            faults: FaultConfig::default(),
            operator: None,
            description: None,
            gzip: true,
        }
    }
}

/// The whole simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Address to bind; port 0 picks a free one.
    pub listen: SocketAddr,
    pub logs: Vec<LogConfig>,
    /// The operators logs name in [`LogConfig::operator`].
    pub operators: Vec<OperatorConfig>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with a certificate made at start by
    /// a CA of its own ([`crate::Simulator::ca_pem`]).
    pub tls: bool,
}

impl SimConfig {
    pub fn new(logs: Vec<LogConfig>) -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs,
            operators: Vec::new(),
            tls: false,
        }
    }
}

/// An operator of logs: its name in the log list and, optionally, a token
/// bucket per client address shared by all its logs (on top of each log's own).
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorConfig {
    pub name: String,
    pub email: Vec<String>,
    /// Requests per second per client address over all the operator's logs
    /// (None: no operator-wide limit).
    pub rate_limit: Option<f64>,
    /// Bucket size of `rate_limit`.
    pub burst: u32,
}

impl OperatorConfig {
    /// An operator without an operator-wide limit.
    pub fn new(name: impl Into<String>) -> Self {
        OperatorConfig {
            name: name.into(),
            email: Vec::new(),
            rate_limit: None,
            burst: 1,
        }
    }
}
