//! The manager's HTTP API as the worker uses it: bearer token, JSON bodies
//! from `ct_core::protocol`, and jittered backoff on 429 and 5xx.

use std::time::Duration;

use ct_core::protocol::{
    ClaimRequest, ClaimResponse, CompleteRequest, ErrorBody, FailRequest, HeartbeatRequest,
    HeartbeatResponse, RegisterRequest, RegisterResponse, TaskAck, UploadRequest, UploadResponse,
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
        code: String,
        message: String,
    },
    /// The manager could not be reached or kept failing; retry later.
    #[error("manager unavailable: {0}")]
    Unavailable(String),
    #[error("stopped")]
    Cancelled,
}

/// A connection to the manager.
#[derive(Debug, Clone)]
pub struct ManagerClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl ManagerClient {
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        ManagerClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
            token: None,
        }
    }

    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// One attempt.
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, (bool, ClientError)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| (true, ClientError::Unavailable(e.to_string())))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| (true, ClientError::Unavailable(e.to_string())))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| {
                (
                    false,
                    ClientError::Unavailable(format!("bad answer to {path}: {e}")),
                )
            });
        }
        if status == 429 || status >= 500 {
            return Err((
                true,
                ClientError::Unavailable(format!("{path} answered {status}")),
            ));
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => (
                "unknown".into(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err((
            false,
            ClientError::Refused {
                status,
                code,
                message,
            },
        ))
    }

    /// Retries transient failures with jittered backoff until `patience` runs
    /// out or `cancel` fires.
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        patience: Duration,
        cancel: &CancellationToken,
    ) -> Result<R, ClientError> {
        let give_up = tokio::time::Instant::now() + patience;
        let mut failures = 0;
        loop {
            match self.call(path, body).await {
                Ok(r) => return Ok(r),
                Err((false, e)) => return Err(e),
                Err((true, e)) => {
                    failures += 1;
                    let delay = backoff(failures).min(Duration::from_secs(10));
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

    pub async fn heartbeat(
        &self,
        req: &HeartbeatRequest,
        cancel: &CancellationToken,
    ) -> Result<HeartbeatResponse, ClientError> {
        self.post("/v1/heartbeat", req, Duration::from_secs(10), cancel)
            .await
    }

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
