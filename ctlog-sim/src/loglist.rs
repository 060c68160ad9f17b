//! The served logs as a Chrome v3 log list, so the manager imports exactly
//! what the simulator serves.

use std::collections::BTreeMap;

use ct_core::b64;
use ct_core::loglist::{Log as ListedLog, LogList, Operator};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::log::Log;

fn rfc3339(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Builds the list: one operator, RFC 6962 logs under `logs`, static ones under `tiled_logs`.
pub fn log_list<'a>(logs: impl IntoIterator<Item = &'a Log>) -> LogList {
    let now = crate::log::now_ms();
    let mut operator = Operator {
        name: "ctjp simulator".to_owned(),
        email: vec!["ctlog-sim@example.invalid".to_owned()],
        logs: Vec::new(),
        tiled_logs: Vec::new(),
    };
    for log in logs {
        let mut state = BTreeMap::new();
        state.insert(
            "usable".to_owned(),
            serde_json::json!({ "timestamp": rfc3339(now) }),
        );
        let tiled = log.config.views.list_as_tiled;
        let entry = ListedLog {
            description: format!("ctlog-sim log{}", log.number),
            log_id: b64::encode(&log.log_id),
            key: b64::encode(&log.spki),
            url: (!tiled).then(|| log.url.clone()),
            submission_url: tiled.then(|| log.url.clone()),
            monitoring_url: tiled.then(|| log.url.clone()),
            mmd: 86_400,
            state: Some(state),
            temporal_interval: None,
        };
        if tiled {
            operator.tiled_logs.push(entry);
        } else {
            operator.logs.push(entry);
        }
    }
    LogList {
        version: Some("1.0".to_owned()),
        log_list_timestamp: Some(rfc3339(now)),
        operators: vec![operator],
    }
}
