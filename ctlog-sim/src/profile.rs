//! A fleet profile: many logs grouped by operator, each with its own kind,
//! size, batch cap, rate limit, latency, error mix and growth, read from a
//! JSON file (`ctlog-sim --profile FILE`). Unknown fields are errors, so a
//! typo does not silently leave a limit out. See the crate README for the
//! format.
//!
//! ```
//! # fn demo() -> ctlog_sim::Result<()> {
//! let profile = ctlog_sim::Profile::parse(r#"{"operators": [
//!     {"name": "A", "rate_limit": 20.0,
//!      "logs": [{"entries": 1000, "rate_limit": 8.0}, {"entries": 500, "kind": "static"}]}
//! ]}"#)?;
//! let config = profile.sim_config(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
//! assert_eq!(config.logs.len(), 2);
//! assert_eq!(config.operators[0].rate_limit, Some(20.0));
//! # Ok(()) }
//! # demo().unwrap();
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{FaultConfig, LogConfig, OperatorConfig, SimConfig, Source, Views};
use crate::error::{Error, Result};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub operators: Vec<ProfileOperator>,
}

/// One operator and its logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileOperator {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email: Vec<String>,
    /// Requests per second per client address over all its logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// Bucket size of `rate_limit` (default: one second's worth, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    pub logs: Vec<ProfileLog>,
}

/// Which views a log serves and how it is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// RFC 6962 only, listed under `logs`.
    #[default]
    Rfc6962,
    /// static-ct-api only, listed under `tiled_logs`.
    Static,
    /// Both views, listed under `logs`.
    Both,
    /// Both views, listed under `tiled_logs`.
    BothTiled,
}

impl Kind {
    pub fn views(self) -> Views {
        match self {
            Kind::Rfc6962 => Views::RFC6962,
            Kind::Static => Views::STATIC,
            Kind::Both | Kind::BothTiled => Views {
                rfc6962: true,
                tiles: true,
                list_as_tiled: self == Kind::BothTiled,
            },
        }
    }
}

/// One log. Every field has a default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub kind: Kind,
    /// Generated entries (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// Seed of the generated entries (default 1; each log also mixes in its number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Share of generated entries naming `.jp` domains (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_share: Option<f64>,
    /// Replay get-entries JSON files from this directory instead of
    /// generating (relative to the profile file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<PathBuf>,
    /// Most entries per get-entries answer (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_cap: Option<u64>,
    /// Requests per second per client address (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// Bucket size of `rate_limit` (default: one second's worth, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of answers replaced by 500 or 503 (half each).
    #[serde(default)]
    pub error_rate: f64,
    /// Share of answers cut mid-body.
    #[serde(default)]
    pub cut_rate: f64,
    /// Share of get-entries answers shorter than the batch cap allows.
    #[serde(default)]
    pub short_rate: f64,
    /// Entries appended per second.
    #[serde(default)]
    pub grow: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub malformed: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub garbage: Vec<u64>,
    /// gzip-encode get-entries answers for clients that accept it (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<bool>,
}

fn cfg_err(at: &str, msg: impl std::fmt::Display) -> Error {
    Error::Config(format!("{at}: {msg}"))
}

fn check_rate(at: &str, rate: Option<f64>, burst: Option<u32>) -> Result<u32> {
    match (rate, burst) {
        (Some(r), _) if !(r > 0.0 && r.is_finite()) => {
            Err(cfg_err(at, format!("rate_limit {r} must be positive")))
        }
        (None, Some(_)) => Err(cfg_err(at, "burst without rate_limit")),
        (_, Some(0)) => Err(cfg_err(at, "burst must be at least 1")),
        (_, Some(b)) => Ok(b),
        (Some(r), None) => Ok(r.ceil().clamp(1.0, f64::from(u32::MAX)) as u32),
        (None, None) => Ok(1),
    }
}

fn check_share(at: &str, name: &str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(cfg_err(at, format!("{name} {v} not in 0..=1")))
    }
}

impl Profile {
    /// Parses a profile (JSON).
    pub fn parse(text: &str) -> Result<Profile> {
        let profile: Profile = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("profile is not valid: {e}")))?;
        profile.check()?;
        Ok(profile)
    }

    /// Reads and parses `path`; relative `replay` directories are taken
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading profile {}", path.display()),
            source,
        })?;
        let mut profile = Profile::parse(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            e => e,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for op in &mut profile.operators {
            for log in &mut op.logs {
                if let Some(r) = &mut log.replay
                    && r.is_relative()
                {
                    *r = dir.join(&*r);
                }
            }
        }
        Ok(profile)
    }

    /// Checks names, limits and shares, naming the offending entry.
    pub fn check(&self) -> Result<()> {
        if self.operators.is_empty() {
            return Err(Error::Config("profile: no operators".into()));
        }
        let mut names = std::collections::HashSet::new();
        for (i, op) in self.operators.iter().enumerate() {
            let at = format!("operators[{i}] ({:?})", op.name);
            if op.name.trim().is_empty() {
                return Err(cfg_err(&at, "empty name"));
            }
            if !names.insert(op.name.as_str()) {
                return Err(cfg_err(&at, "operator name used twice"));
            }
            if op.logs.is_empty() {
                return Err(cfg_err(&at, "no logs"));
            }
            check_rate(&at, op.rate_limit, op.burst)?;
            for (j, log) in op.logs.iter().enumerate() {
                let at = format!("{at}.logs[{j}]");
                check_rate(&at, log.rate_limit, log.burst)?;
                check_share(&at, "error_rate", log.error_rate)?;
                check_share(&at, "cut_rate", log.cut_rate)?;
                check_share(&at, "short_rate", log.short_rate)?;
                if let Some(m) = log.match_share {
                    check_share(&at, "match_share", m)?;
                }
                if log.batch_cap == Some(0) {
                    return Err(cfg_err(&at, "batch_cap must be at least 1"));
                }
                if log.replay.is_some()
                    && (log.entries.is_some()
                        || log.seed.is_some()
                        || log.match_share.is_some()
                        || log.grow > 0)
                {
                    return Err(cfg_err(
                        &at,
                        "replay excludes entries, seed, match_share and grow",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Number of logs over all operators.
    pub fn log_count(&self) -> usize {
        self.operators.iter().map(|o| o.logs.len()).sum()
    }

    /// The simulator configuration: logs numbered in file order (operator by
    /// operator), each naming its operator.
    pub fn sim_config(&self, listen: SocketAddr) -> Result<SimConfig> {
        self.check()?;
        let mut operators = Vec::new();
        let mut logs = Vec::new();
        for (i, op) in self.operators.iter().enumerate() {
            let at = format!("operators[{i}] ({:?})", op.name);
            operators.push(OperatorConfig {
                name: op.name.clone(),
                email: op.email.clone(),
                rate_limit: op.rate_limit,
                burst: check_rate(&at, op.rate_limit, op.burst)?,
            });
            for (j, l) in op.logs.iter().enumerate() {
                let at = format!("{at}.logs[{j}]");
                let source = match &l.replay {
                    Some(dir) => Source::Replay(dir.clone()),
                    None => Source::Generated {
                        entries: l.entries.unwrap_or(10_000),
                        seed: l.seed.unwrap_or(1),
                        match_share: l.match_share.unwrap_or(0.01),
                    },
                };
                logs.push(LogConfig {
                    source,
                    views: l.kind.views(),
                    batch_cap: l.batch_cap.unwrap_or(256),
                    grow_per_sec: l.grow,
                    malformed: l.malformed.clone(),
                    garbage: l.garbage.clone(),
                    faults: FaultConfig {
                        rate_limit: l.rate_limit,
                        burst: check_rate(&at, l.rate_limit, l.burst)?,
                        error_rate: l.error_rate,
                        latency_ms: l.latency_ms,
                        cut_rate: l.cut_rate,
                        short_rate: l.short_rate,
                    },
                    operator: Some(op.name.clone()),
                    description: l.description.clone(),
                    gzip: l.gzip.unwrap_or(true),
                });
            }
        }
        let mut config = SimConfig::new(logs);
        config.listen = listen;
        config.operators = operators;
        Ok(config)
    }
}
