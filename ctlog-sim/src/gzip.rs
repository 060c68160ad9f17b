//! gzip content encoding of get-entries answers, for clients that send
//! `Accept-Encoding: gzip` (as real logs do), unless the log is configured
//! without ([`crate::LogConfig::gzip`]). The fault middleware counts the
//! bytes before and after ([`IdentityLength`]).

use std::io::Write;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::faults::IdentityLength;

/// Whether `Accept-Encoding` allows gzip (listed, or `*`, with a q above 0).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for item in value.split(',') {
            let mut params = item.split(';');
            let coding = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(q > 0.0),
                "*" => any = Some(q > 0.0),
                _ => {}
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

fn compress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    enc.write_all(body)?;
    enc.finish()
}

/// A JSON answer, gzip-encoded when `enabled` and the client accepts it.
pub async fn json_answer(enabled: bool, request: &HeaderMap, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if !enabled {
        return (headers, body).into_response();
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if !accepts_gzip(request) {
        return (headers, body).into_response();
    }
    let identity = body.len() as u64;
    let encoded = match tokio::task::spawn_blocking(move || compress(&body)).await {
        Ok(Ok(e)) => e,
        _ => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let mut resp = (headers, Body::from(encoded)).into_response();
    resp.extensions_mut().insert(IdentityLength(identity));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for s in v {
            h.append(header::ACCEPT_ENCODING, HeaderValue::from_static(s));
        }
        h
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip(&headers(&["gzip"])));
        assert!(accepts_gzip(&headers(&["br, GZIP;q=0.5"])));
        assert!(accepts_gzip(&headers(&["identity", "*"])));
        assert!(!accepts_gzip(&headers(&[])));
        assert!(!accepts_gzip(&headers(&["br, deflate"])));
        assert!(!accepts_gzip(&headers(&["gzip;q=0"])));
        assert!(!accepts_gzip(&headers(&["*, gzip;q=0"])));
    }
}
