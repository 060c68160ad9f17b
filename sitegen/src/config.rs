//! Command-line options (every one also an environment variable) and the
//! validated configuration the build runs with.

use std::path::PathBuf;

use clap::Parser;

use crate::error::{Error, Result};

/// Renders the ctjp dashboards from the database into a static folder.
/// The crate version and the git revision it was built from.
const VERSION: &str = git_version::git_version!(
    prefix = concat!(env!("CARGO_PKG_VERSION"), " ("),
    suffix = ")",
    args = ["--always", "--dirty=-modified"],
    fallback = concat!(env!("CARGO_PKG_VERSION"), " (unknown revision)")
);

#[derive(Debug, Clone, Parser)]
#[command(name = "ct-sitegen", version = VERSION, about)]
pub struct Args {
    /// MySQL/MariaDB URL (read-only access is enough), e.g. mysql://ro@db/ctjp.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Where the site is published: a symlink to the current build, swapped atomically.
    #[arg(long, env = "CT_SITE_OUT")]
    pub out: PathBuf,
    /// Public base URL of the site (used in stats.json and the page footer).
    #[arg(long, env = "CT_SITE_BASE_URL", default_value = "")]
    pub base_url: String,
    /// IANA time zone pages show times in (UTC is in each time's tooltip).
    #[arg(long, env = "CT_SITE_TIMEZONE", default_value = "Asia/Tokyo")]
    pub timezone: String,
    /// A folder whose files override the embedded templates (same names).
    #[arg(long, env = "CT_SITE_TEMPLATES")]
    pub templates: Option<PathBuf>,
    /// Re-render every SECONDS, forever (0 = render once and exit).
    #[arg(long, env = "CT_SITE_WATCH", default_value_t = 0)]
    pub watch: u64,
    /// A worker counts as active when seen within this many minutes.
    #[arg(long, env = "CT_SITE_ACTIVE_MINUTES", default_value_t = 15)]
    pub active_minutes: u64,
    /// How many registered domains (the largest) get a page of their own.
    #[arg(long, env = "CT_SITE_DOMAIN_PAGES", default_value_t = 1000)]
    pub domain_pages: usize,
    /// Issuances listed per registered-domain page (their certificates get pages).
    #[arg(long, env = "CT_SITE_DOMAIN_ISSUANCES", default_value_t = 10)]
    pub domain_issuances: usize,
    /// How many of the latest issuances (by CT log time) are listed, their
    /// certificates with pages of their own.
    #[arg(long, env = "CT_SITE_LATEST", default_value_t = 100)]
    pub latest: usize,
    /// How many organisations (subject O, most issuances first) get a page.
    #[arg(long, env = "CT_SITE_ORG_PAGES", default_value_t = 200)]
    pub org_pages: usize,
    /// "Expiring soon" means within this many days.
    #[arg(long, env = "CT_SITE_EXPIRING_DAYS", default_value_t = 30)]
    pub expiring_days: u64,
}

/// The validated configuration of one build.
#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    pub timezone: jiff::tz::TimeZone,
    pub timezone_name: String,
    pub templates: Option<PathBuf>,
    pub active_ms: i64,
    pub domain_pages: usize,
    pub domain_issuances: usize,
    pub latest: usize,
    pub org_pages: usize,
    pub expiring_ms: i64,
}

impl Config {
    /// Checks the options that can be wrong (time zone, limits).
    pub fn from_args(a: &Args) -> Result<Self> {
        let timezone = jiff::tz::TimeZone::get(&a.timezone)
            .map_err(|e| Error::Config(format!("unknown time zone {:?}: {e}", a.timezone)))?;
        if let Some(t) = &a.templates {
            if !t.is_dir() {
                return Err(Error::Config(format!(
                    "--templates {} is not a directory",
                    t.display()
                )));
            }
        }
        let minutes = i64::try_from(a.active_minutes)
            .map_err(|_| Error::Config("--active-minutes is too large".into()))?;
        let days = i64::try_from(a.expiring_days)
            .ok()
            .filter(|d| *d <= 36_500)
            .ok_or_else(|| Error::Config("--expiring-days is too large".into()))?;
        Ok(Self {
            base_url: a.base_url.trim_end_matches('/').to_owned(),
            timezone,
            timezone_name: a.timezone.clone(),
            templates: a.templates.clone(),
            active_ms: minutes.saturating_mul(60_000),
            domain_pages: a.domain_pages,
            domain_issuances: a.domain_issuances.clamp(1, 1_000),
            latest: a.latest.clamp(1, 10_000),
            org_pages: a.org_pages.min(100_000),
            expiring_ms: days * 86_400_000,
        })
    }

    /// Defaults for tests: UTC+9 Tokyo, no overrides.
    pub fn for_tests() -> Self {
        Self {
            base_url: String::new(),
            timezone: jiff::tz::TimeZone::get("Asia/Tokyo").unwrap_or(jiff::tz::TimeZone::UTC),
            timezone_name: "Asia/Tokyo".into(),
            templates: None,
            active_ms: 15 * 60_000,
            domain_pages: 1000,
            domain_issuances: 10,
            latest: 100,
            org_pages: 200,
            expiring_ms: 30 * 86_400_000,
        }
    }
}
