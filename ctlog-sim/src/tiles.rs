//! static-ct-api read endpoints under the log's monitoring prefix:
//! `checkpoint`, hash tiles `tile/<L>/<N>[.p/<W>]`, data tiles
//! `tile/data/<N>[.p/<W>]` and `issuer/<hex sha256>`. A tile is served when
//! the current tree holds at least the requested width.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ct_core::tiles::{TILE_WIDTH, TileId, TileKind, tile_width};

use crate::log::Log;

/// The routes, relative to the log's monitoring prefix.
pub fn routes() -> Router<Arc<Log>> {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/issuer/{fingerprint}", get(issuer))
}

fn not_found(msg: impl Into<String>) -> Response {
    (StatusCode::NOT_FOUND, format!("{}\n", msg.into())).into_response()
}

async fn checkpoint(State(log): State<Arc<Log>>) -> Response {
    let text = log.head().checkpoint;
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

async fn tile(State(log): State<Arc<Log>>, Path(path): Path<String>) -> Response {
    let Ok(id) = TileId::parse(&format!("tile/{path}")) else {
        return (StatusCode::BAD_REQUEST, "bad tile path\n").into_response();
    };
    let state = log.read_state();
    let size = state.head.tree_size;
    let level = match id.kind {
        TileKind::Data => 0,
        TileKind::Hash(l) => l,
    };
    let available = tile_width(level, id.index, size);
    if available < id.width {
        return not_found(format!("tile {} not in a tree of {size}", id.path()));
    }
    let first = id.index * TILE_WIDTH;
    let mut body = Vec::new();
    match id.kind {
        TileKind::Data => {
            for i in first..first + id.width {
                let Some(parts) = state.parts(i) else {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                };
                parts.write_tile_leaf(&mut body);
            }
        }
        TileKind::Hash(l) => {
            let span = TILE_WIDTH.pow(u32::from(l));
            body.reserve(32 * id.width as usize);
            for k in first..first + id.width {
                match state.tree.range_hash(k * span, (k + 1) * span) {
                    Ok(h) => body.extend_from_slice(&h),
                    Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }
    }
    let immutable = "public, max-age=604800, immutable";
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, immutable),
        ],
        body,
    )
        .into_response()
}

async fn issuer(State(log): State<Arc<Log>>, Path(fp): Path<String>) -> Response {
    let Ok(bytes) = hex::decode(&fp) else {
        return not_found("bad fingerprint");
    };
    let Ok(hash) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        return not_found("bad fingerprint");
    };
    if fp.chars().any(|c| c.is_ascii_uppercase()) {
        return not_found("fingerprints are lowercase hex");
    }
    match log.issuers.get(&hash) {
        Some(der) => (
            [
                (header::CONTENT_TYPE, "application/pkix-cert"),
                (header::CACHE_CONTROL, "public, max-age=604800, immutable"),
            ],
            der.clone(),
        )
            .into_response(),
        None => not_found("no such issuer"),
    }
}
