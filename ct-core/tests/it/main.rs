//! Integration tests of ct-core.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod analysis;
mod certs;
mod fuzz;
mod jst;
mod loglist;
mod merkle;
mod real;
mod real_analysis;
mod signing;
mod tiles;
