//! One bounded GET to a log, shared by tree-head polls, range proofs and
//! audits: no redirects (the client follows none), a status check, and a
//! body read chunk by chunk that stops at `max` bytes.

/// GETs `url`; `Err((status, message))` with status 0 when there was no
/// HTTP answer (or the body was too large or cut).
pub async fn get_bounded(
    http: &reqwest::Client,
    url: &str,
    max: usize,
) -> Result<Vec<u8>, (u16, String)> {
    let mut resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| (0, format!("GET {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err((status.as_u16(), format!("GET {url}: HTTP {status}")));
    }
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err((0, format!("GET {url}: answer over {max} bytes")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| (0, format!("GET {url}: {e}")))?
    {
        if body.len() + chunk.len() > max {
            return Err((0, format!("GET {url}: answer over {max} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
