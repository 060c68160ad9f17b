//! `worker-tui`: the ctjp worker. The [`engine`] fetches, decodes, matches and
//! uploads; the binary `ct-worker` puts a frontend on it (headless or TUI).

pub mod engine;
