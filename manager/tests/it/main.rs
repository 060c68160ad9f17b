//! Integration tests of ct-manager against the real MariaDB (DATABASE_URL,
//! default mysql://root@127.0.0.1:3306) through the real HTTP stack: each
//! test gets a fresh database and a server on 127.0.0.1:0.

#![allow(clippy::unwrap_used)]

mod adversary;
mod analysis;
mod fleet;
mod flow;
mod harness;
mod identity;
mod integrity;
mod loglist;
mod openapi;
mod operations;
mod poll;
mod reads;
mod requests;
mod standing;
