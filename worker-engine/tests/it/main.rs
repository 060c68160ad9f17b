//! The engine over the real HTTP stack: ctlog-sim logs behind a recording
//! front server, the worker's own HTTP client and `fetch_range`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod compression;
mod pacing;
mod retry_after;
mod support;
mod tls;
