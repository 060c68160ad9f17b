//! Integration tests of ct-worker.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod e2e;
mod fakes;
mod fleet;
mod identity;
mod inspect;
mod log_traffic;
mod spool;
mod standing;
mod tui;
