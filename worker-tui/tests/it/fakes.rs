//! Small servers for the log-traffic tests, over plain tokio sockets: a
//! manager that hands out given leases and records what the worker does, a
//! forward HTTP proxy that counts what goes through it, and a log that
//! answers every request 429.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ct_core::protocol::{
    ClaimRequest, ClaimResponse, Cooldown, HeartbeatRequest, HeartbeatResponse, LogFetchers,
    ProofState, TaskAck, TaskLease, TaskPhase, TaskState, TaskStatus, UploadRequest,
    UploadResponse,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One HTTP/1.1 request as read off a socket.
pub struct RawRequest {
    pub method: String,
    /// As on the request line: origin-form or, to a proxy, absolute-form.
    pub target: String,
    /// Header lines, as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads one request (`None` at the end of the connection).
pub async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
) -> Option<RawRequest> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    Some(RawRequest {
        method,
        target,
        headers,
        body,
    })
}

async fn answer(w: &mut TcpStream, status: u16, extra: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
        body.len()
    );
    w.write_all(head.as_bytes()).await.is_ok() && w.write_all(body).await.is_ok()
}

/// What the fake manager was told and does.
#[derive(Debug, Default)]
pub struct ManagerState {
    /// Leases still to hand out.
    pub pending: VecDeque<TaskLease>,
    /// Every claim: when, and how many tasks it gave.
    pub claims: Vec<(Instant, usize)>,
    /// Completed tasks, with when.
    pub completed: Vec<(u64, Instant)>,
    pub failed: Vec<(u64, String)>,
    pub uploaded: usize,
    /// What an empty claim answers.
    pub retry_after_ms: Option<u64>,
    pub reason: Option<String>,
    /// What every heartbeat answers besides the tasks.
    pub fetchers: Vec<LogFetchers>,
    pub cooldowns: Vec<Cooldown>,
}

/// A manager that hands out `pending` leases, accepts every upload and
/// completes every task.
pub struct FakeManager {
    pub url: String,
    pub state: Arc<Mutex<ManagerState>>,
    task: JoinHandle<()>,
}

impl FakeManager {
    pub async fn start(state: ManagerState) -> FakeManager {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve_manager(conn, shared.clone()));
            }
        });
        FakeManager {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// Waits until `done` holds of the state, at most `limit`.
    pub async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&ManagerState) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.state.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn completed_at(&self, task_id: u64) -> Option<Instant> {
        let s = self.state.lock().unwrap();
        s.completed
            .iter()
            .find(|(t, _)| *t == task_id)
            .map(|(_, at)| *at)
    }
}

impl Drop for FakeManager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn task_id_of(path: &str) -> u64 {
    path.split('/')
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn serve_manager(conn: TcpStream, state: Arc<Mutex<ManagerState>>) {
    let mut conn = BufReader::new(conn);
    while let Some(req) = read_request(&mut conn).await {
        let (status, body) = manager_answer(&state, &req);
        let close = req
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        let extra = if close { "connection: close\r\n" } else { "" };
        if !answer(conn.get_mut(), status, extra, &body).await || close {
            let _ = conn.get_mut().shutdown().await;
            return;
        }
    }
}

/// What the manager answers to one request.
fn manager_answer(state: &Mutex<ManagerState>, req: &RawRequest) -> (u16, Vec<u8>) {
    let path = req.target.as_str();
    let mut s = state.lock().unwrap();
    let body = if path == "/v1/workers/register" {
        br#"{"worker_id":1,"name":"tester","token":"token"}"#.to_vec()
    } else if path == "/v1/tasks/claim" {
        let max = serde_json::from_slice::<ClaimRequest>(&req.body)
            .ok()
            .and_then(|c| c.max_tasks)
            .unwrap_or(1) as usize;
        let n = max.min(s.pending.len());
        let tasks: Vec<TaskLease> = s.pending.drain(..n).collect();
        s.claims.push((Instant::now(), tasks.len()));
        let empty = tasks.is_empty();
        serde_json::to_vec(&ClaimResponse {
            tasks,
            retry_after_ms: if empty { s.retry_after_ms } else { None },
            reason: if empty { s.reason.clone() } else { None },
        })
        .unwrap()
    } else if path == "/v1/heartbeat" {
        let req: HeartbeatRequest = serde_json::from_slice(&req.body).unwrap_or_default();
        serde_json::to_vec(&HeartbeatResponse {
            tasks: req
                .tasks
                .iter()
                .map(|t| TaskState {
                    task_id: t.task_id,
                    status: TaskStatus::Active,
                    lease_expires_at: None,
                })
                .collect(),
            fetchers: s.fetchers.clone(),
            cooldowns: s.cooldowns.clone(),
        })
        .unwrap()
    } else if path.ends_with("/entries") {
        let up: UploadRequest = serde_json::from_slice(&req.body).unwrap_or_default();
        s.uploaded += up.entries.len();
        serde_json::to_vec(&UploadResponse {
            new: up.entries.len() as u64,
            ..UploadResponse::default()
        })
        .unwrap()
    } else if path.ends_with("/complete") {
        let id = task_id_of(path);
        s.completed.push((id, Instant::now()));
        serde_json::to_vec(&TaskAck {
            task_id: id,
            state: TaskPhase::Done,
            next_index: 0,
            proof: Some(ProofState::Verified),
        })
        .unwrap()
    } else if path.ends_with("/fail") {
        let id = task_id_of(path);
        s.failed
            .push((id, String::from_utf8_lossy(&req.body).into_owned()));
        serde_json::to_vec(&TaskAck {
            task_id: id,
            state: TaskPhase::Pending,
            next_index: 0,
            proof: None,
        })
        .unwrap()
    } else {
        return (
            404,
            br#"{"error":{"code":"not_found","message":"no"}}"#.to_vec(),
        );
    };
    (200, body)
}

/// One request that went through the proxy.
#[derive(Debug, Clone)]
pub struct Proxied {
    pub at: Instant,
    pub method: String,
    /// The absolute URL asked for.
    pub url: String,
}

/// A forward HTTP proxy: reads absolute-form requests, forwards each to its
/// target (one connection a request) and streams the answer back.
pub struct ForwardProxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Proxied>>>,
    task: JoinHandle<()>,
}

impl ForwardProxy {
    pub async fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(forward(conn, shared.clone()));
            }
        });
        ForwardProxy {
            url: format!("http://{addr}"),
            seen,
            task,
        }
    }

    pub fn seen(&self) -> Vec<Proxied> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(conn: TcpStream, seen: Arc<Mutex<Vec<Proxied>>>) {
    let mut conn = BufReader::new(conn);
    let Some(req) = read_request(&mut conn).await else {
        return;
    };
    let Some(rest) = req.target.strip_prefix("http://") else {
        let _ = conn
            .get_mut()
            .write_all(b"HTTP/1.1 400 X\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    seen.lock().unwrap().push(Proxied {
        at: Instant::now(),
        method: req.method.clone(),
        url: req.target.clone(),
    });
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        let _ = conn
            .get_mut()
            .write_all(b"HTTP/1.1 502 X\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let mut head = format!("{} {path} HTTP/1.1\r\n", req.method);
    for (k, v) in &req.headers {
        let k_low = k.to_ascii_lowercase();
        if !matches!(
            k_low.as_str(),
            "connection" | "proxy-connection" | "keep-alive"
        ) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    if upstream.write_all(head.as_bytes()).await.is_err()
        || upstream.write_all(&req.body).await.is_err()
    {
        return;
    }
    // The answer as it comes, until the target closes; then this
    // connection closes too (one request a connection).
    let _ = tokio::io::copy(&mut upstream, conn.get_mut()).await;
    let _ = conn.get_mut().shutdown().await;
}

/// A log that answers every request `429` with `Retry-After: secs`, and
/// records when each came.
pub struct RefusingLog {
    pub url: String,
    seen: Arc<Mutex<Vec<Instant>>>,
    task: JoinHandle<()>,
}

impl RefusingLog {
    pub async fn start(secs: u64) -> RefusingLog {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let seen = shared.clone();
                tokio::spawn(async move {
                    let mut conn = BufReader::new(conn);
                    while read_request(&mut conn).await.is_some() {
                        seen.lock().unwrap().push(Instant::now());
                        let extra = format!("retry-after: {secs}\r\n");
                        if !answer(conn.get_mut(), 429, &extra, b"{}").await {
                            return;
                        }
                    }
                });
            }
        });
        RefusingLog {
            url: format!("http://{addr}/"),
            seen,
            task,
        }
    }

    pub fn seen(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for RefusingLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `ct-worker --no-tui` for `manager`, logging to `dir/worker.log`, with
/// no proxy variables of the test's environment but those in `env`.
pub fn worker(manager: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(dir.join("worker.log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ct-worker"));
    cmd.args(["--no-tui", "--manager", manager])
        .args(["--heartbeat-secs", "1", "--drain-secs", "2"])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env("CT_LOG", "info")
        .stdout(log)
        .stderr(Stdio::null());
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "CT_PROXY",
        "CT_LOG_CA",
        "REQUEST_METHOD",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// A fresh directory for one test.
pub fn test_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ctjp-{tag}-{}", std::process::id()))
}

/// Stops a worker (it is only killed: the tests read what it did before).
pub fn stop(mut w: Child) {
    let _ = w.kill();
    let _ = w.wait();
}
