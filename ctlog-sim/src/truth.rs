//! The truth file: for each log, its size and every index whose certificate
//! matches as ct-core's `Examiner` (default matcher) finds it. Malformed
//! and garbage entries are left out.

use serde::{Deserialize, Serialize};

use crate::log::Log;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    pub logs: Vec<TruthLog>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthLog {
    pub url: String,
    pub entries: u64,
    pub matches: Vec<TruthMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthMatch {
    pub index: u64,
    /// Lowercase hex.
    pub leaf_hash: String,
}

impl TruthLog {
    /// The truth of one log at its current head.
    pub fn of(log: &Log) -> Self {
        let state = log.read_state();
        let size = state.head.tree_size;
        TruthLog {
            url: log.url.clone(),
            entries: size,
            matches: state
                .matches
                .iter()
                .filter(|(i, _)| *i < size)
                .map(|(index, h)| TruthMatch {
                    index: *index,
                    leaf_hash: hex::encode(h),
                })
                .collect(),
        }
    }
}
