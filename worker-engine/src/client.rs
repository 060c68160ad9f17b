//! The manager's HTTP API as the worker uses it: bearer token, JSON bodies
//! from `ct_core::protocol`, and jittered backoff on 429 and 5xx. Tests and
//! load generators use it too, one attempt a call
//! ([`ManagerClient::without_retries`]), and read the status and the JSON
//! error code of a failure from [`ClientError`].

use std::time::Duration;

use ct_core::protocol::{
    ClaimRequest, ClaimResponse, CompleteRequest, ErrorBody, ErrorCode, FailRequest,
    HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse, TaskAck, UploadRequest,
    UploadResponse, WorkerStanding,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::adapt::backoff;

/// How a call to the manager failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The manager refused the request (4xx other than 429); retrying will not help.
    #[error("manager refused ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The manager answered 429 or 5xx (and kept answering so while retries
    /// were allowed); retry later.
    #[error("manager unavailable: {path} answered {status}")]
    Transient {
        path: String,
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The manager could not be reached, or its answer was not what the
    /// protocol says; retry later.
    #[error("manager unavailable: {0}")]
    Unavailable(String),
    #[error("stopped")]
    Cancelled,
}

impl ClientError {
    /// The HTTP status the manager answered, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } | ClientError::Transient { status, .. } => {
                Some(*status)
            }
            ClientError::Unavailable(_) | ClientError::Cancelled => None,
        }
    }

    /// The `error.code` of the manager's JSON error body (`Other` when
    /// the body was not one), if it answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Refused { code, .. } | ClientError::Transient { code, .. } => Some(*code),
            ClientError::Unavailable(_) | ClientError::Cancelled => None,
        }
    }
}

/// A connection to the manager.
#[derive(Debug, Clone)]
pub struct ManagerClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    retries: bool,
}

impl ManagerClient {
    /// A client of the manager at `base` (e.g. `https://ctjp.example.org`)
    /// over `http`, without a token (enough for [`Self::register`]).
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        ManagerClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
            token: None,
            retries: true,
        }
    }

    /// Sends `token` (from [`Self::register`]) as the bearer token of every call.
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// One attempt a call: transient failures (unreachable, 429, 5xx) come
    /// back at once instead of being retried, for tests and load generators
    /// that count them.
    pub fn without_retries(mut self) -> Self {
        self.retries = false;
        self
    }

    /// One attempt: `POST` with `body`, or `GET` without one. A failure
    /// says whether to retry, and after how long at least when the manager
    /// sent `Retry-After`.
    async fn call_once<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, (bool, Option<Duration>, ClientError)> {
        let url = format!("{}{path}", self.base);
        let mut req = match body {
            Some(body) => self.http.post(url).json(body),
            None => self.http.get(url),
        };
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| (true, None, ClientError::Unavailable(e.to_string())))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::source::parse_retry_after(v, std::time::SystemTime::now()));
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| (true, None, ClientError::Unavailable(e.to_string())))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| {
                (
                    false,
                    None,
                    ClientError::Unavailable(format!("bad answer to {path}: {e}")),
                )
            });
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => (
                ErrorCode::Other,
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        if status == 429 || status >= 500 {
            return Err((
                true,
                retry_after,
                ClientError::Transient {
                    path: path.to_owned(),
                    status,
                    code,
                    message,
                },
            ));
        }
        Err((
            false,
            None,
            ClientError::Refused {
                status,
                code,
                message,
            },
        ))
    }

    /// Retries transient failures with jittered backoff (at least the
    /// manager's `Retry-After`) until `patience` runs out or `cancel` fires
    /// (no retries after [`Self::without_retries`]).
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        patience: Duration,
        cancel: &CancellationToken,
    ) -> Result<R, ClientError> {
        self.call(path, Some(body), patience, cancel).await
    }

    /// `GET path` (with its query), retried like [`Self::post`].
    pub async fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        patience: Duration,
        cancel: &CancellationToken,
    ) -> Result<R, ClientError> {
        self.call::<(), R>(path, None, patience, cancel).await
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
        patience: Duration,
        cancel: &CancellationToken,
    ) -> Result<R, ClientError> {
        let give_up = tokio::time::Instant::now() + patience;
        let mut failures = 0;
        loop {
            match self.call_once(path, body).await {
                Ok(r) => return Ok(r),
                Err((false, _, e)) => return Err(e),
                Err((true, _, e)) if !self.retries => return Err(e),
                Err((true, retry_after, e)) => {
                    failures += 1;
                    let delay = backoff(failures).min(Duration::from_secs(10));
                    let delay = retry_after.map_or(delay, |r| r.max(delay));
                    if tokio::time::Instant::now() + delay > give_up {
                        return Err(e);
                    }
                    tracing::debug!(path, error = %e, delay_ms = delay.as_millis() as u64, "manager call failed, retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => return Err(ClientError::Cancelled),
                    }
                }
            }
        }
    }

    /// `POST /v1/workers/register` (no token needed).
    pub async fn register(
        &self,
        req: &RegisterRequest,
        cancel: &CancellationToken,
    ) -> Result<RegisterResponse, ClientError> {
        self.post(
            "/v1/workers/register",
            req,
            Duration::from_secs(3600),
            cancel,
        )
        .await
    }

    /// `POST /v1/tasks/claim` for up to `max_tasks` leases.
    pub async fn claim(
        &self,
        max_tasks: u32,
        cancel: &CancellationToken,
    ) -> Result<ClaimResponse, ClientError> {
        let req = ClaimRequest {
            max_tasks: Some(max_tasks),
        };
        self.post("/v1/tasks/claim", &req, Duration::from_secs(30), cancel)
            .await
    }

    /// `POST /v1/heartbeat`: progress of the tasks held; the answer says
    /// which leases are lost and how many fetchers each log allows.
    pub async fn heartbeat(
        &self,
        req: &HeartbeatRequest,
        cancel: &CancellationToken,
    ) -> Result<HeartbeatResponse, ClientError> {
        self.post("/v1/heartbeat", req, Duration::from_secs(10), cancel)
            .await
    }

    /// `GET /v1/workers/me?logs=...`: this worker's name with its lifetime
    /// totals and rank, and how the logs `log_ids` stand (at most
    /// [`ct_core::protocol::STANDING_MAX_LOGS`] of them are sent).
    pub async fn standing(
        &self,
        log_ids: &[u64],
        cancel: &CancellationToken,
    ) -> Result<WorkerStanding, ClientError> {
        let ids: Vec<String> = log_ids
            .iter()
            .take(ct_core::protocol::STANDING_MAX_LOGS)
            .map(u64::to_string)
            .collect();
        let path = if ids.is_empty() {
            "/v1/workers/me".to_owned()
        } else {
            format!("/v1/workers/me?logs={}", ids.join(","))
        };
        self.get(&path, Duration::from_secs(10), cancel).await
    }

    /// `POST /v1/tasks/{task_id}/entries`: a batch of matching entries.
    pub async fn upload(
        &self,
        task_id: u64,
        req: &UploadRequest,
        cancel: &CancellationToken,
    ) -> Result<UploadResponse, ClientError> {
        self.post(
            &format!("/v1/tasks/{task_id}/entries"),
            req,
            Duration::from_secs(30),
            cancel,
        )
        .await
    }

    /// `POST /v1/tasks/{task_id}/complete`.
    pub async fn complete(
        &self,
        task_id: u64,
        req: &CompleteRequest,
        cancel: &CancellationToken,
    ) -> Result<TaskAck, ClientError> {
        self.post(
            &format!("/v1/tasks/{task_id}/complete"),
            req,
            Duration::from_secs(600),
            cancel,
        )
        .await
    }

    /// `POST /v1/tasks/{task_id}/fail`.
    pub async fn fail(
        &self,
        task_id: u64,
        req: &FailRequest,
        cancel: &CancellationToken,
    ) -> Result<TaskAck, ClientError> {
        self.post(
            &format!("/v1/tasks/{task_id}/fail"),
            req,
            Duration::from_secs(60),
            cancel,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::task::JoinHandle;

    use super::*;

    /// A server that answers one request with `status` and `body`: its base
    /// URL and its task.
    async fn answering(status: u16, body: &'static str) -> (String, JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let _ = conn.read(&mut buf).await.unwrap();
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).await.unwrap();
        });
        (format!("http://{addr}"), server)
    }

    /// What one claim without retries makes of the answer `status`, `body`.
    async fn claim_error(status: u16, body: &'static str) -> ClientError {
        let (base, server) = answering(status, body).await;
        let e = ManagerClient::new(&base, reqwest::Client::new())
            .with_token("t".into())
            .without_retries()
            .claim(1, &CancellationToken::new())
            .await
            .unwrap_err();
        server.await.unwrap();
        e
    }

    #[tokio::test]
    async fn a_refusal_carries_its_status_and_code() {
        let e = claim_error(409, r#"{"error":{"code":"not_leased","message":"gone"}}"#).await;
        assert!(matches!(e, ClientError::Refused { .. }), "{e:?}");
        assert_eq!(
            (e.status(), e.code()),
            (Some(409), Some(ErrorCode::NotLeased))
        );
    }

    #[tokio::test]
    async fn without_retries_a_503_comes_back_at_once() {
        let e = claim_error(503, r#"{"error":{"code":"unavailable","message":"later"}}"#).await;
        assert_eq!(
            (e.status(), e.code()),
            (Some(503), Some(ErrorCode::Unavailable))
        );
        assert_eq!(
            e.to_string(),
            "manager unavailable: /v1/tasks/claim answered 503"
        );
    }

    /// The manager's `Retry-After` on a 503 is waited for before the retry.
    #[tokio::test]
    async fn a_retry_waits_for_the_managers_retry_after() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut times = Vec::new();
            let answers = [
                "HTTP/1.1 503 X\r\nretry-after: 1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_owned(),
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\nconnection: close\r\n\r\n{\"tasks\":[]}".to_owned(),
            ];
            for answer in answers {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let _ = conn.read(&mut buf).await.unwrap();
                times.push(tokio::time::Instant::now());
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
            times
        });
        let resp = ManagerClient::new(&format!("http://{addr}"), reqwest::Client::new())
            .with_token("t".into())
            .claim(1, &CancellationToken::new())
            .await
            .unwrap();
        assert!(resp.tasks.is_empty());
        let times = server.await.unwrap();
        assert!(times[1] - times[0] >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_body_that_is_not_an_error_body_is_code_other() {
        let e = claim_error(400, "not json").await;
        assert_eq!((e.status(), e.code()), (Some(400), Some(ErrorCode::Other)));
    }
}
