//! ct-sitegen: renders the ctjp dashboards (static HTML, inline SVG charts,
//! a static search index and `stats.json`) from the database, read-only,
//! into a fresh folder that is then published atomically.

pub mod charts;
pub mod config;
pub mod db;
pub mod error;
pub mod pki;
pub mod search;
pub mod site;
pub mod swap;
pub mod templates;

pub use config::{Args, Config};
pub use error::{Error, Result};
pub use site::Site;
