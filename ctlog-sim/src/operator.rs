//! A log operator as served: its name and email in the log list, and its
//! optional operator-wide token bucket per client address, shared by all its
//! logs (one bucket per client address, whichever of its logs is asked).

use std::collections::HashSet;

use crate::config::{LogConfig, OperatorConfig};
use crate::error::{Error, Result};
use crate::faults::RateLimiter;

/// The operator of logs that name none.
pub const DEFAULT_OPERATOR: &str = "ctjp simulator";

/// One operator.
#[derive(Debug)]
pub struct Operator {
    pub config: OperatorConfig,
    /// Number of logs that belong to it.
    pub logs: usize,
    pub(crate) limiter: Option<RateLimiter>,
}

impl Operator {
    pub fn new(config: OperatorConfig, logs: usize) -> Result<Self> {
        let limiter = config
            .rate_limit
            .map(|r| RateLimiter::new(r, config.burst))
            .transpose()
            .map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("operator {:?}: {m}", config.name)),
                e => e,
            })?;
        Ok(Operator {
            config,
            logs,
            limiter,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// Checks that operator names are unique and not empty, and that every log
/// names a declared operator.
pub fn check(operators: &[OperatorConfig], logs: &[LogConfig]) -> Result<()> {
    let mut names = HashSet::new();
    for o in operators {
        if o.name.trim().is_empty() {
            return Err(Error::Config("an operator has an empty name".into()));
        }
        if !names.insert(o.name.as_str()) {
            return Err(Error::Config(format!(
                "operator {:?} is declared twice",
                o.name
            )));
        }
    }
    for (number, log) in logs.iter().enumerate() {
        if let Some(name) = &log.operator
            && !names.contains(name.as_str())
        {
            return Err(Error::Config(format!(
                "log {number} names operator {name:?}, which is not declared"
            )));
        }
    }
    Ok(())
}

impl crate::log::Log {
    /// The name of the operator the log belongs to.
    pub fn operator_name(&self) -> &str {
        self.operator
            .as_ref()
            .map_or(DEFAULT_OPERATOR, |o| o.name())
    }

    /// Requests per second one client address can spend on this log when it
    /// fetches from all the operator's logs at once: the log's own limit, or
    /// an even share of the operator's, whichever is lower (None: no limit).
    pub fn client_qps(&self) -> Option<f64> {
        let own = self.config.faults.rate_limit;
        let shared = self
            .operator
            .as_ref()
            .and_then(|o| Some(o.config.rate_limit? / o.logs.max(1) as f64));
        match (own, shared) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
