//! Chrome's log list, version 3 (JSON): operators, RFC 6962 logs and tiled
//! (static-ct-api) logs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_list_timestamp: Option<String>,
    pub operators: Vec<Operator>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operator {
    pub name: String,
    #[serde(default)]
    pub email: Vec<String>,
    #[serde(default)]
    pub logs: Vec<Log>,
    #[serde(default)]
    pub tiled_logs: Vec<Log>,
}

/// A log: `url` for RFC 6962 logs, `submission_url` and `monitoring_url` for tiled ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Log {
    pub description: String,
    /// Base64 SHA-256 of `key`.
    pub log_id: String,
    /// Base64 DER SubjectPublicKeyInfo.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_url: Option<String>,
    #[serde(default)]
    pub mmd: u64,
    /// One key (`usable`, `readonly`, `retired`, ...) holding its details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal_interval: Option<TemporalInterval>,
    /// certspotter's per-log fetch settings, where a list carries them:
    /// entries per request, concurrent downloads, requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certspotter_download_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certspotter_download_jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certspotter_qps: Option<f64>,
    /// The name certspotter itself reads for the same setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certspotter_download_qps: Option<f64>,
}

/// A read-only log's final tree head, as the list states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinalTreeHead {
    pub tree_size: u64,
    /// Base64.
    pub sha256_root_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemporalInterval {
    pub start_inclusive: String,
    pub end_exclusive: String,
}

impl LogList {
    /// Parses `json` after checking `signature` over its exact bytes with
    /// `key` (Google signs `log_list.json` into `log_list.sig`).
    pub fn verified(
        json: &[u8],
        signature: &[u8],
        key: &crate::sth::LogKey,
    ) -> crate::Result<Self> {
        key.verify_raw(json, signature).map_err(|_| {
            crate::Error::Signature(
                "the log list's signature does not verify with the given key: the file or its .sig \
                 was changed, or they belong to another key"
                    .into(),
            )
        })?;
        serde_json::from_slice(json).map_err(|e| crate::Error::invalid("log list", e.to_string()))
    }
}

impl Log {
    /// The name of the state (`usable`, `readonly`, ...), if any.
    pub fn state_name(&self) -> Option<&str> {
        self.state.as_ref()?.keys().next().map(String::as_str)
    }

    /// The final tree head of a read-only (or retired) log, if the list gives one.
    pub fn final_tree_head(&self) -> Option<FinalTreeHead> {
        let details = self.state.as_ref()?.values().next()?;
        serde_json::from_value(details.get("final_tree_head")?.clone()).ok()
    }
}
