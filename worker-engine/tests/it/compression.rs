//! Compressed answers: the worker asks for gzip and brotli, decodes
//! gzip-encoded get-entries answers and data tiles, and data tiles that
//! are gzip objects themselves (with or without gzip on the wire too).

use ctlog_sim::{LogConfig, Views};
use tokio_util::sync::CancellationToken;
use worker_engine::source::LogKind;

use crate::support::{Encoding, Front, client, ctx, fetch, pass, root_hash, sim};

/// Fetches the whole log through a front encoding as `encoding`; checks the
/// subtree hash against the log's head and the matches against the truth.
async fn whole_log(kind: LogKind, encoding: Encoding) {
    let mut log = LogConfig::generated(600, 8);
    if kind == LogKind::Static {
        log.views = Views::STATIC;
    }
    let sim = sim(vec![log]).await;
    let info = &sim.logs()[0];
    let front = Front::start(&info.url, encoding, pass()).await;
    let c = ctx(kind, &front.url, client(), 2, 256);
    let (outcome, matches) = fetch(&c, 0, 600, CancellationToken::new()).await;
    assert_eq!(
        outcome.next_index, 600,
        "{encoding:?}: {:?}",
        outcome.failure
    );
    assert!(
        outcome.errors.is_empty(),
        "{encoding:?}: {:?}",
        outcome.errors
    );
    assert_eq!(outcome.subtree_hash, Some(root_hash(kind, &info.url).await));
    assert_eq!(matches, info.truth.matches.len());
    let hits = front.hits();
    assert!(!hits.is_empty());
    for h in &hits {
        assert!(
            h.accept_encoding.contains("gzip") && h.accept_encoding.contains("br"),
            "{} asked with accept-encoding {:?}",
            h.path,
            h.accept_encoding
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_encoded_get_entries_decode() {
    whole_log(LogKind::Rfc6962, Encoding::Wire).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_encoded_data_tiles_decode() {
    whole_log(LogKind::Static, Encoding::Wire).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_tile_objects_decode_with_and_without_gzip_on_the_wire() {
    whole_log(LogKind::Static, Encoding::StoredTiles).await;
    whole_log(LogKind::Static, Encoding::WireAndStoredTiles).await;
    whole_log(LogKind::Static, Encoding::Plain).await;
}
