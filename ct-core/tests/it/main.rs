//! Integration tests of ct-core.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod certs;
mod fuzz;
mod loglist;
mod merkle;
mod real;
mod signing;
mod tiles;
