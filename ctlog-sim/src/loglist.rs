//! The served logs as a Chrome v3 log list, so the manager imports exactly
//! what the simulator serves: one operator entry per operator (in the order
//! of their first log), RFC 6962 logs under `logs`, static ones under
//! `tiled_logs`, each with certspotter's optional per-log download settings
//! (`certspotter_download_size` = batch cap, or 256 for a log listed as
//! tiled; with a rate limit also `certspotter_download_jobs`, 1 for a few
//! requests per second, and the rate a client may spend on the log, as
//! `certspotter_qps` and, in [`log_list_json`], also as
//! `certspotter_download_qps`, the name certspotter itself reads).

use std::collections::BTreeMap;

use ct_core::b64;
use ct_core::loglist::{Log as ListedLog, LogList, Operator};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::log::Log;

fn rfc3339(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// The logs grouped by operator name, in the order of each operator's first log.
fn by_operator<'a>(logs: impl IntoIterator<Item = &'a Log>) -> Vec<(&'a Log, Vec<&'a Log>)> {
    let mut groups: Vec<(&Log, Vec<&Log>)> = Vec::new();
    for log in logs {
        match groups
            .iter_mut()
            .find(|(first, _)| first.operator_name() == log.operator_name())
        {
            Some((_, members)) => members.push(log),
            None => groups.push((log, vec![log])),
        }
    }
    groups
}

fn listed(log: &Log, now: u64) -> ListedLog {
    let mut state = BTreeMap::new();
    state.insert(
        "usable".to_owned(),
        serde_json::json!({ "timestamp": rfc3339(now) }),
    );
    let tiled = log.config.views.list_as_tiled;
    let qps = log.client_qps();
    ListedLog {
        description: log
            .config
            .description
            .clone()
            .unwrap_or_else(|| format!("ctlog-sim log{}", log.number)),
        log_id: b64::encode(&log.log_id),
        key: b64::encode(&log.spki),
        url: (!tiled).then(|| log.url.clone()),
        submission_url: tiled.then(|| log.url.clone()),
        monitoring_url: tiled.then(|| log.url.clone()),
        mmd: 86_400,
        state: Some(state),
        temporal_interval: None,
        // A tiled log is read a tile (256 entries) per request.
        certspotter_download_size: Some(if tiled {
            ct_core::tiles::TILE_WIDTH
        } else {
            log.config.batch_cap
        }),
        certspotter_download_jobs: qps.map(|q| download_jobs(q, log.config.faults.latency_ms)),
        certspotter_qps: qps,
        certspotter_download_qps: None,
    }
}

/// Concurrent downloads that spend `qps` when a request takes its latency
/// plus 100 ms: 1 for a few requests per second, at most 4.
fn download_jobs(qps: f64, latency_ms: u64) -> u32 {
    let in_flight = qps * (latency_ms as f64 + 100.0) / 1000.0;
    in_flight.ceil().clamp(1.0, 4.0) as u32
}

/// Builds the list.
pub fn log_list<'a>(logs: impl IntoIterator<Item = &'a Log>) -> LogList {
    let now = crate::log::now_ms();
    let operators = by_operator(logs)
        .into_iter()
        .map(|(first, members)| {
            let (tiled, plain): (Vec<&Log>, Vec<&Log>) = members
                .into_iter()
                .partition(|l| l.config.views.list_as_tiled);
            let email = match &first.operator {
                Some(o) if !o.config.email.is_empty() => o.config.email.clone(),
                _ => vec!["ctlog-sim@example.invalid".to_owned()],
            };
            Operator {
                name: first.operator_name().to_owned(),
                email,
                logs: plain.into_iter().map(|l| listed(l, now)).collect(),
                tiled_logs: tiled.into_iter().map(|l| listed(l, now)).collect(),
            }
        })
        .collect();
    LogList {
        version: Some("1.0".to_owned()),
        log_list_timestamp: Some(rfc3339(now)),
        operators,
    }
}

/// certspotter's name for the rate ([`Log::client_qps`]).
fn certspotter_fields(log: &Log, entry: &mut serde_json::Map<String, Value>) {
    if let Some(qps) = log.client_qps() {
        entry.insert("certspotter_download_qps".to_owned(), Value::from(qps));
    }
}

/// [`log_list`] as JSON, each rate-limited log also with `certspotter_download_qps`.
pub fn log_list_json<'a>(logs: impl IntoIterator<Item = &'a Log> + Clone) -> Value {
    let list = log_list(logs.clone());
    let mut json = serde_json::to_value(&list).unwrap_or(Value::Null);
    let groups = by_operator(logs);
    let Some(operators) = json.get_mut("operators").and_then(Value::as_array_mut) else {
        return json;
    };
    for (op, (_, members)) in operators.iter_mut().zip(groups) {
        let (tiled, plain): (Vec<&Log>, Vec<&Log>) = members
            .into_iter()
            .partition(|l| l.config.views.list_as_tiled);
        for (key, logs) in [("logs", plain), ("tiled_logs", tiled)] {
            let Some(entries) = op.get_mut(key).and_then(Value::as_array_mut) else {
                continue;
            };
            for (entry, log) in entries.iter_mut().zip(logs) {
                if let Some(entry) = entry.as_object_mut() {
                    certspotter_fields(log, entry);
                }
            }
        }
    }
    json
}
