//! Integration tests: a fresh database per test (created, migrated, filled
//! with known rows, dropped), a site rendered from it, and checks on the pages.
#![allow(clippy::unwrap_used)]

mod browser;
mod fixture;
mod fleet;
mod nginx;
mod pages;
mod pki;
mod publish;
