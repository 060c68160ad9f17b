//! The `--suffix` option every command shares.

use anyhow::{Context, Result};
use ct_core::matcher::Matcher;

/// Which names count as matches.
#[derive(Debug, Clone, clap::Args)]
pub struct MatchArgs {
    /// Suffixes to match, comma separated.
    #[arg(
        long = "suffix",
        env = "CT_MATCH_SUFFIXES",
        value_delimiter = ',',
        default_value = "jp"
    )]
    suffixes: Vec<String>,
}

impl MatchArgs {
    pub fn matcher(&self) -> Result<Matcher> {
        Matcher::new(&self.suffixes).context("bad --suffix")
    }
}
