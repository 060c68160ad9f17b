//! Adversarial tests: dishonest workers on the engine's typed
//! [`ManagerClient`] attack one rule each of the design's trust rules
//! against a real ctlog-sim log, honest workers collect beside them, and
//! each test ends with exactly the simulator's truth stored, no honest
//! worker flagged and the log verified to its tree size.

use std::collections::BTreeSet;

use ct_core::entry::{Depth, Examiner};
use ct_core::leaf::{EntryType, TimestampedEntry, encode_extra_data, encode_leaf};
use ct_core::merkle::{MerkleTree, leaf_hash};
use ct_core::protocol::{
    CompleteRequest, ErrorCode, FailRequest, Hash32, HeartbeatRequest, RegisterRequest,
    RejectionCode, TaskAck, TaskLease, TaskPhase, TaskProgress, TaskStatus, UploadEntry,
    UploadRequest, UploadResponse,
};
use ct_db::progress::Progress;
use ctlog_sim::{LogConfig, SimConfig, Simulator, Source};
use manager::Config;
use manager::integrity::VerifySummary;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use worker_engine::client::{ClientError, ManagerClient};

use crate::harness::{ADMIN, TestApp, test_config};

/// Most claims a drain makes before it gives up (a bound, never reached).
const MAX_CLAIMS: usize = 2_000;

fn go() -> CancellationToken {
    CancellationToken::new()
}

/// A test configuration: tasks of `2^task_log2` entries, no checks, no audits.
fn config(task_log2: u32) -> Config {
    Config {
        task_size_log2: task_log2,
        max_body_bytes: 4 << 20,
        check_share: 0.0,
        check_first: 0,
        audit_share: 0.0,
        ..test_config()
    }
}

/// A generated RFC 6962 log, a fifth of it matching.
fn sim_log(entries: u64, seed: u64) -> LogConfig {
    LogConfig {
        source: Source::Generated {
            entries,
            seed,
            match_share: 0.2,
        },
        ..LogConfig::generated(entries, seed)
    }
}

/// Starts the simulator with `log` and a manager with `config` that knows
/// the log and has verified its head; the log's id.
async fn start(config: Config, log: LogConfig) -> (TestApp, Simulator, u64) {
    let sim = Simulator::start(SimConfig::new(vec![log])).await.unwrap();
    let app = TestApp::spawn_with(config).await;
    let list = serde_json::to_value(sim.log_list()).unwrap();
    let (status, v) = app.post("/v1/admin/logs", Some(ADMIN), &list).await;
    assert_eq!(status, 200, "{v}");
    let (id,): (u64,) = sqlx::query_as("SELECT id FROM logs WHERE url = ?")
        .bind(&sim.logs()[0].url)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let outcome = app.poll(id).await;
    assert!(outcome.verified, "{outcome:?}");
    (app, sim, id)
}

/// A registered worker: its id, its address and a typed client with its token.
struct Worker {
    id: u64,
    client: ManagerClient,
}

impl Worker {
    async fn new(app: &TestApp, name: &str, from: [u8; 4]) -> Worker {
        let (id, token) = app.register_from(Some(name), from).await;
        Worker {
            id,
            client: app.client_from(from).with_token(token),
        }
    }

    /// One lease, if any.
    async fn claim(&self) -> Option<TaskLease> {
        self.claim_up_to(1).await.into_iter().next()
    }

    async fn claim_up_to(&self, n: u32) -> Vec<TaskLease> {
        self.client.claim(n, &go()).await.unwrap().tasks
    }

    async fn upload(
        &self,
        task: u64,
        entries: Vec<UploadEntry>,
        hash: Hash32,
    ) -> Result<UploadResponse, ClientError> {
        let req = UploadRequest {
            entries,
            subtree_hash: hash,
            first_leaf_hash: None,
        };
        self.client.upload(task, &req, &go()).await
    }

    async fn heartbeat(&self, tasks: Vec<TaskProgress>) -> Result<Vec<TaskStatus>, ClientError> {
        let r = self
            .client
            .heartbeat(&HeartbeatRequest { tasks }, &go())
            .await?;
        Ok(r.tasks.iter().map(|t| t.status).collect())
    }

    async fn fail(&self, lease: &TaskLease, index: u64) -> TaskAck {
        let req = FailRequest {
            error: "giving up".into(),
            index,
        };
        self.client.fail(lease.task_id, &req, &go()).await.unwrap()
    }

    /// Completes `r` reporting `matches`, whatever was uploaded.
    async fn complete(&self, r: &Range, matches: u64) -> Result<TaskAck, ClientError> {
        self.client
            .complete(r.lease.task_id, &r.complete_request(matches), &go())
            .await
    }
}

/// The (status, code) of a refusal; anything else (success, a 5xx, no
/// answer) fails the test.
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, ErrorCode) {
    match r {
        Err(e @ (ClientError::Refused { .. } | ClientError::Transient { .. })) => {
            let status = e.status().unwrap();
            assert!(status < 500, "a 5xx: {e}");
            (status, e.code().unwrap())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// One fetched entry.
struct Fetched {
    index: u64,
    leaf: Vec<u8>,
    extra: Vec<u8>,
}

/// A leased range as fetched from the log, with its Merkle tree.
struct Range {
    lease: TaskLease,
    entries: Vec<Fetched>,
    tree: MerkleTree,
}

impl Range {
    /// Fetches the lease's range with get-entries.
    async fn fetch(http: &reqwest::Client, lease: &TaskLease) -> Range {
        let mut entries = Vec::new();
        let mut next = lease.start;
        while next < lease.end {
            let url = format!(
                "{}ct/v1/get-entries?start={next}&end={}",
                lease.log_url,
                lease.end - 1
            );
            let page: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
            let page = page["entries"].as_array().unwrap();
            assert!(!page.is_empty(), "an empty answer below the tree size");
            for e in page {
                entries.push(Fetched {
                    index: next,
                    leaf: ct_core::b64::decode(e["leaf_input"].as_str().unwrap(), "l").unwrap(),
                    extra: ct_core::b64::decode(e["extra_data"].as_str().unwrap(), "e").unwrap(),
                });
                next += 1;
            }
        }
        let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(&e.leaf)));
        Range {
            lease: lease.clone(),
            entries,
            tree,
        }
    }

    fn span(&self) -> u64 {
        self.lease.end - self.lease.start
    }

    fn hash(&self) -> Hash32 {
        Hash32(self.tree.root(self.span()).unwrap())
    }

    fn first_leaf(&self) -> Hash32 {
        Hash32(leaf_hash(&self.entries[0].leaf))
    }

    fn path(&self, index: u64) -> Vec<Hash32> {
        self.tree
            .inclusion_proof(index - self.lease.start, self.span())
            .unwrap()
            .into_iter()
            .map(Hash32)
            .collect()
    }

    fn entry(&self, index: u64) -> &Fetched {
        &self.entries[(index - self.lease.start) as usize]
    }

    /// Entry `index` as uploaded, with its audit path.
    fn upload_entry(&self, index: u64) -> UploadEntry {
        let e = self.entry(index);
        UploadEntry {
            index,
            leaf_input: ct_core::b64::encode(&e.leaf),
            extra_data: ct_core::b64::encode(&e.extra),
            audit_path: self.path(index),
        }
    }

    /// Indices of the matching entries.
    fn matches(&self) -> Vec<u64> {
        let ex = Examiner::default();
        self.entries
            .iter()
            .filter(|e| ex.examine(&e.leaf, &e.extra, Depth::MatchOnly).matched())
            .map(|e| e.index)
            .collect()
    }

    /// Indices of the entries that do not decode.
    fn undecodable(&self) -> Vec<u64> {
        let ex = Examiner::default();
        self.entries
            .iter()
            .filter(|e| ex.examine(&e.leaf, &e.extra, Depth::Full).cert.is_none())
            .map(|e| e.index)
            .collect()
    }

    /// Indices of decodable entries that do not match.
    fn others(&self) -> Vec<u64> {
        let (m, u) = (self.matches(), self.undecodable());
        self.entries
            .iter()
            .map(|e| e.index)
            .filter(|i| !m.contains(i) && !u.contains(i))
            .collect()
    }

    fn complete_request(&self, matches: u64) -> CompleteRequest {
        CompleteRequest {
            next_index: self.lease.end,
            entries: self.span(),
            matches,
            errors: 0,
            rate_limited: 0,
            subtree_hash: self.hash(),
            first_leaf_hash: Some(self.first_leaf()),
        }
    }
}

/// A self-made certificate naming `name`, as the entry at `index` (no audit path).
fn forged(index: u64, name: &str) -> UploadEntry {
    let der = crate::harness::cert(&[name]);
    let leaf = encode_leaf(&TimestampedEntry {
        timestamp: 1_700_000_000_000 + index,
        entry_type: EntryType::X509,
        issuer_key_hash: None,
        signed: &der,
        extensions: &[],
    });
    UploadEntry {
        index,
        leaf_input: ct_core::b64::encode(&leaf),
        extra_data: ct_core::b64::encode(&encode_extra_data(None, &[])),
        audit_path: Vec::new(),
    }
}

/// What an honest worker did with one lease.
struct Worked {
    worker: u64,
    range: Range,
    upload: Option<UploadResponse>,
    result: Result<TaskAck, ClientError>,
}

impl Worked {
    fn assert_done(&self) {
        match &self.result {
            Ok(ack) => assert_eq!(
                (ack.state, ack.proof),
                (TaskPhase::Done, Some(ct_core::protocol::ProofState::Verified)),
                "task {}",
                self.range.lease.task_id
            ),
            Err(e) => panic!(
                "honest worker {} refused on task {}: {e}",
                self.worker, self.range.lease.task_id
            ),
        }
    }
}

/// Works a lease honestly: fetches the range, uploads every match and
/// every undecodable entry with its audit path, completes.
async fn work(app: &TestApp, w: &Worker, lease: &TaskLease) -> Worked {
    let range = Range::fetch(&app.client, lease).await;
    let matches = range.matches();
    let mut indices = matches.clone();
    indices.extend(range.undecodable());
    indices.sort_unstable();
    let mut upload = None;
    if !indices.is_empty() {
        let req = UploadRequest {
            entries: indices.iter().map(|&i| range.upload_entry(i)).collect(),
            subtree_hash: range.hash(),
            first_leaf_hash: Some(range.first_leaf()),
        };
        match w.client.upload(lease.task_id, &req, &go()).await {
            Ok(r) => {
                assert_eq!(r.rejected, 0, "{r:?}");
                upload = Some(r);
            }
            Err(e) => {
                return Worked {
                    worker: w.id,
                    range,
                    upload,
                    result: Err(e),
                };
            }
        }
    }
    let result = w.complete(&range, matches.len() as u64).await;
    Worked {
        worker: w.id,
        range,
        upload,
        result,
    }
}

/// The honest `workers` take turns claiming and working until none gets a
/// task; everything they did.
async fn drain_all(app: &TestApp, workers: &[&Worker]) -> Vec<Worked> {
    let mut out = Vec::new();
    for _ in 0..MAX_CLAIMS {
        let mut any = false;
        for w in workers {
            if let Some(lease) = w.claim().await {
                any = true;
                out.push(work(app, w, &lease).await);
            }
        }
        if !any {
            return out;
        }
    }
    panic!("the honest workers never ran out of tasks");
}

/// As [`drain_all`], every task completing; the number completed.
async fn drain(app: &TestApp, workers: &[&Worker]) -> usize {
    let done = drain_all(app, workers).await;
    for w in &done {
        w.assert_done();
    }
    done.len()
}

/// The stored set: (index, leaf hash) of every sighting of `log`.
async fn stored(app: &TestApp, log: u64) -> BTreeSet<(u64, String)> {
    let rows: Vec<(u64, Vec<u8>)> =
        sqlx::query_as("SELECT idx, leaf_hash FROM sightings WHERE log_id = ?")
            .bind(log)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    rows.into_iter().map(|(i, h)| (i, hex::encode(h))).collect()
}

/// The simulator's truth: every matching (index, leaf hash) below `below`.
fn truth(sim: &Simulator, below: u64) -> BTreeSet<(u64, String)> {
    sim.logs()[0]
        .truth
        .matches
        .iter()
        .filter(|m| m.index < below)
        .map(|m| (m.index, m.leaf_hash.clone()))
        .collect()
}

async fn flagged(app: &TestApp) -> BTreeSet<u64> {
    let rows: Vec<(u64,)> = sqlx::query_as("SELECT id FROM workers WHERE flagged = 1")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    rows.into_iter().map(|(id,)| id).collect()
}

async fn progress(app: &TestApp, log: u64) -> Progress {
    ct_db::progress::progress_of_log(&app.pool, log)
        .await
        .unwrap()
        .unwrap()
}

/// Returns every lease now (admin `leases/expire` with `all`); how many.
async fn expire_all(app: &TestApp) -> u64 {
    let (status, v) = app
        .post("/v1/admin/leases/expire", Some(ADMIN), &json!({"all": true}))
        .await;
    assert_eq!(status, 200, "{v}");
    v["expired"].as_u64().unwrap()
}

/// Runs the manager's due audits now (admin `verify`).
async fn audit(app: &TestApp) -> VerifySummary {
    let (status, v) = app.post("/v1/admin/verify", Some(ADMIN), &json!({})).await;
    assert_eq!(status, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

/// The end of every test: the stored set is the truth, no honest worker is
/// flagged, and the log is verified to its tree size.
async fn assert_collected(app: &TestApp, sim: &Simulator, log: u64, honest: &[&Worker]) {
    let size = sim.logs()[0].entries;
    assert_eq!(stored(app, log).await, truth(sim, size));
    let flagged = flagged(app).await;
    for w in honest {
        assert!(!flagged.contains(&w.id), "honest worker {} flagged", w.id);
    }
    let p = progress(app, log).await;
    assert_eq!((p.tree_size, p.verified_until), (size, size), "{p:?}");
    assert!(p.gaps.is_empty() && p.faults.is_empty(), "{p:?}");
    let (_, logs) = app.get("/v1/logs", None).await;
    let listed = logs
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == log)
        .unwrap();
    assert_eq!(listed["progress"]["verified_until"], size, "{listed}");
}

async fn task_state(app: &TestApp, task: u64) -> (String, Option<u64>) {
    sqlx::query_as("SELECT state, lease_holder FROM tasks WHERE id = ?")
        .bind(task)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn names_like(app: &TestApp, name: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM names WHERE name = ?")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    n
}

/// 1. Forged entries: a self-made certificate with no, a borrowed or a
/// made-up audit path, a real entry at the wrong index, uploads after
/// completion and into another worker's lease.
#[tokio::test]
async fn adversary_forged_entries_are_refused() {
    let (app, sim, log) = start(config(4), sim_log(64, 41)).await;
    let attacker = Worker::new(&app, "forger", [127, 0, 0, 10]).await;
    let honest = Worker::new(&app, "honest", [127, 0, 0, 2]).await;
    let name = "forged.example.jp";

    let lease = attacker.claim().await.unwrap();
    let r = Range::fetch(&app.client, &lease).await;
    let (matches, others) = (r.matches(), r.others());
    assert!(matches.len() >= 2 && !others.is_empty(), "seed: want matches");
    let (i, j) = (others[0], matches[0]);
    let k = matches[1];
    // A forged certificate at an index of the lease: without a path, with
    // the real entry's path, with a path of 65 hashes.
    let mut with_path = forged(i, name);
    with_path.audit_path = r.path(i);
    let mut long_path = forged(i, name);
    long_path.audit_path = vec![Hash32([7; 32]); 65];
    // A real match at another index, with its own path and with that index's path.
    let mut moved = r.upload_entry(j);
    moved.index = i;
    let mut moved_path = r.upload_entry(j);
    moved_path.index = k;
    moved_path.audit_path = r.path(k);
    let batch = vec![forged(i, name), with_path, long_path, moved, moved_path];
    let resp = attacker.upload(lease.task_id, batch, r.hash()).await.unwrap();
    assert_eq!((resp.new, resp.duplicate, resp.failed), (0, 0, 0), "{resp:?}");
    let codes: Vec<RejectionCode> = resp.rejections.iter().map(|x| x.code).collect();
    assert_eq!(codes, vec![RejectionCode::BadProof; 5], "{resp:?}");
    assert_eq!(names_like(&app, name).await, 0);

    // Another worker's lease, and an index outside the attacker's own.
    let theirs = honest.claim().await.unwrap();
    let t = Range::fetch(&app.client, &theirs).await;
    let real = t.upload_entry(theirs.start);
    let r2 = attacker
        .upload(theirs.task_id, vec![real.clone()], t.hash())
        .await;
    assert_eq!(refused(r2), (403, ErrorCode::NotLeased));
    let r2 = attacker
        .upload(theirs.task_id, vec![forged(theirs.start, name)], t.hash())
        .await;
    assert_eq!(refused(r2), (403, ErrorCode::NotLeased));
    let r2 = attacker.upload(lease.task_id, vec![real], t.hash()).await;
    assert_eq!(refused(r2), (403, ErrorCode::OutOfLease));
    work(&app, &honest, &theirs).await.assert_done();

    // The attacker completes its range honestly; uploads after that are not leased.
    let resp = attacker
        .upload(
            lease.task_id,
            matches.iter().map(|&m| r.upload_entry(m)).collect(),
            r.hash(),
        )
        .await
        .unwrap();
    assert_eq!(resp.new, matches.len() as u64, "{resp:?}");
    attacker.complete(&r, matches.len() as u64).await.unwrap();
    let late = attacker
        .upload(lease.task_id, vec![forged(i, name)], r.hash())
        .await;
    assert_eq!(refused(late), (403, ErrorCode::NotLeased));
    let late = attacker
        .upload(lease.task_id, vec![r.upload_entry(j)], r.hash())
        .await;
    assert_eq!(refused(late), (403, ErrorCode::NotLeased));

    // A whole forged tree: the forged leaf with a consistent path and the
    // made-up subtree hash it leads to. The log proves otherwise: refused,
    // the lease ends, and the task is not the attacker's again.
    let lease = attacker.claim().await.unwrap();
    let r = Range::fetch(&app.client, &lease).await;
    let at = r.others()[0];
    let mut entry = forged(at, name);
    let leaf = ct_core::b64::decode(&entry.leaf_input, "l").unwrap();
    let mut leaves: Vec<_> = r.entries.iter().map(|e| leaf_hash(&e.leaf)).collect();
    leaves[(at - lease.start) as usize] = leaf_hash(&leaf);
    let fake = MerkleTree::from_leaf_hashes(leaves);
    entry.audit_path = fake
        .inclusion_proof(at - lease.start, r.span())
        .unwrap()
        .into_iter()
        .map(Hash32)
        .collect();
    let fake_hash = Hash32(fake.root(r.span()).unwrap());
    let resp = attacker.upload(lease.task_id, vec![entry], fake_hash).await;
    assert_eq!(refused(resp), (422, ErrorCode::ProofMismatch));
    assert_eq!(task_state(&app, lease.task_id).await, ("pending".into(), None));
    let next = attacker.claim().await.unwrap();
    assert_ne!(next.task_id, lease.task_id);
    attacker.fail(&next, next.end).await;
    assert_eq!(names_like(&app, name).await, 0);

    drain(&app, &[&honest]).await;
    assert_collected(&app, &sim, log, &[&honest]).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 2. Skipped ranges: a `fail` at `end`, and a heartbeat at `end` then
/// silence, both return the task whole.
#[tokio::test]
async fn adversary_skipped_ranges_return_whole() {
    let (app, sim, log) = start(config(4), sim_log(64, 42)).await;
    let attacker = Worker::new(&app, "skipper", [127, 0, 0, 10]).await;
    let honest = Worker::new(&app, "honest", [127, 0, 0, 2]).await;

    let lease = attacker.claim().await.unwrap();
    let ack = attacker.fail(&lease, lease.end).await;
    assert_eq!(
        (ack.state, ack.next_index),
        (TaskPhase::Pending, lease.start)
    );
    let again = honest.claim().await.unwrap();
    assert_eq!(
        (again.task_id, again.start, again.next_index),
        (lease.task_id, lease.start, lease.start)
    );
    let w = work(&app, &honest, &again).await;
    w.assert_done();
    assert!(!w.range.matches().is_empty(), "seed: want matches");

    let lease = attacker.claim().await.unwrap();
    let span = lease.end - lease.start;
    let states = attacker
        .heartbeat(vec![TaskProgress {
            task_id: lease.task_id,
            next_index: lease.end,
            entries: span,
            ..TaskProgress::default()
        }])
        .await
        .unwrap();
    assert_eq!(states, vec![TaskStatus::Active]);
    // The attacker goes silent; the reaper returns the lease, whole.
    assert_eq!(expire_all(&app).await, 1);
    let again = honest.claim().await.unwrap();
    assert_eq!(
        (again.task_id, again.next_index),
        (lease.task_id, lease.start)
    );
    let (next,): (u64,) = sqlx::query_as("SELECT next_index FROM tasks WHERE id = ?")
        .bind(lease.task_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(next, lease.start);
    let w = work(&app, &honest, &again).await;
    w.assert_done();
    assert!(!w.range.matches().is_empty(), "seed: want matches");

    drain(&app, &[&honest]).await;
    assert_collected(&app, &sim, log, &[&honest]).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 3. Lazy completes: reporting matches without uploading them is refused;
/// reporting none is accepted, and when a second identity on another
/// address checks just as lazily, the manager's own audit flags both.
#[tokio::test]
async fn adversary_lazy_completes_are_caught_by_the_audit() {
    let cfg = Config {
        check_share: 1.0,
        check_min_tasks: 0,
        audit_share: 1.0,
        ..config(4)
    };
    let (app, sim, log) = start(cfg, sim_log(64, 43)).await;
    let a = Worker::new(&app, "lazy-a", [127, 0, 0, 10]).await;
    let b = Worker::new(&app, "lazy-b", [127, 0, 0, 11]).await;
    let h1 = Worker::new(&app, "honest-1", [127, 0, 0, 2]).await;
    let h2 = Worker::new(&app, "honest-2", [127, 0, 0, 3]).await;
    // Every range of this seed has matches.
    let t = truth(&sim, 64);
    for s in (0..64).step_by(16) {
        assert!(t.iter().any(|(i, _)| (s..s + 16).contains(i)), "[{s}, +16)");
    }

    let lease = a.claim().await.unwrap();
    let r = Range::fetch(&app.client, &lease).await;
    let n = r.matches().len() as u64;
    let states = a
        .heartbeat(vec![TaskProgress {
            task_id: lease.task_id,
            next_index: lease.end,
            entries: r.span(),
            matches: n,
            ..TaskProgress::default()
        }])
        .await
        .unwrap();
    assert_eq!(states, vec![TaskStatus::Active]);
    assert_eq!(
        refused(a.complete(&r, n).await),
        (409, ErrorCode::UnaccountedMatches)
    );
    assert_eq!(
        task_state(&app, lease.task_id).await,
        ("leased".into(), Some(a.id))
    );
    // Reporting no matches at all: nothing to account for.
    let ack = a.complete(&r, 0).await.unwrap();
    assert_eq!(ack.state, TaskPhase::Done);

    // The ring: b takes the rest and the check of a's range, a the checks
    // of b's ranges, all lazily; every check compares two empty sets.
    let leases = b.claim_up_to(16).await;
    assert_eq!(leases.len(), 4, "three ranges and the check of a's");
    assert!(leases.iter().any(|l| l.check_of == Some(lease.task_id)));
    for l in &leases {
        let r = Range::fetch(&app.client, l).await;
        b.complete(&r, 0).await.unwrap();
    }
    let leases = a.claim_up_to(16).await;
    assert_eq!(leases.len(), 3, "the checks of b's ranges");
    for l in &leases {
        assert!(l.check_of.is_some());
        let r = Range::fetch(&app.client, l).await;
        a.complete(&r, 0).await.unwrap();
    }
    assert!(flagged(&app).await.is_empty(), "the ring vouched for itself");

    // The manager's own audit of every range finds the omissions.
    let summary = audit(&app).await;
    assert!(summary.mismatched >= 2, "{summary:?}");
    assert_eq!(flagged(&app).await, BTreeSet::from([a.id, b.id]));
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM tasks WHERE log_id = ? AND check_of = 0 AND state = 'pending' AND completed_by IS NULL",
    )
    .bind(log)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, 4, "every range of the ring is collected again");
    assert_eq!(stored(&app, log).await, BTreeSet::new());
    for w in [&a, &b] {
        let r = w.client.claim(1, &go()).await;
        assert_eq!(refused(r), (403, ErrorCode::Flagged));
    }

    drain(&app, &[&h1, &h2]).await;
    let summary = audit(&app).await;
    assert_eq!((summary.checked, summary.mismatched), (4, 0), "{summary:?}");
    let redone: Vec<(Option<u64>,)> =
        sqlx::query_as("SELECT completed_by FROM tasks WHERE log_id = ? AND check_of = 0")
            .bind(log)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        redone
            .iter()
            .all(|(w,)| *w == Some(h1.id) || *w == Some(h2.id)),
        "{redone:?}"
    );
    let (failed_checks,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM tasks WHERE log_id = ? AND check_of = 0 AND check_state <> 'passed'",
    )
    .bind(log)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(failed_checks, 0);
    assert_collected(&app, &sim, log, &[&h1, &h2]).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}
