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
    RejectionCode, Secret, TaskAck, TaskLease, TaskPhase, TaskProgress, TaskStatus, UploadEntry,
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

/// A registered worker: its id and a typed client bound to its address, with its token.
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
                (
                    TaskPhase::Done,
                    Some(ct_core::protocol::ProofState::Verified)
                ),
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
        .post(
            "/v1/admin/leases/expire",
            Some(ADMIN),
            &json!({"all": true}),
        )
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
    crate::reads::assert_counted(app).await;
}

async fn task_state(app: &TestApp, task: u64) -> (String, Option<u64>) {
    sqlx::query_as("SELECT state, lease_holder FROM tasks WHERE id = ?")
        .bind(task)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn names_count(app: &TestApp, name: &str) -> i64 {
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
    assert!(
        matches.len() >= 2 && !others.is_empty(),
        "seed: want matches"
    );
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
    let resp = attacker
        .upload(lease.task_id, batch, r.hash())
        .await
        .unwrap();
    assert_eq!(
        (resp.new, resp.duplicate, resp.failed),
        (0, 0, 0),
        "{resp:?}"
    );
    let codes: Vec<RejectionCode> = resp.rejections.iter().map(|x| x.code).collect();
    assert_eq!(codes, vec![RejectionCode::BadProof; 5], "{resp:?}");
    assert_eq!(names_count(&app, name).await, 0);

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
    assert_eq!(
        task_state(&app, lease.task_id).await,
        ("pending".into(), None)
    );
    let next = attacker.claim().await.unwrap();
    assert_ne!(next.task_id, lease.task_id);
    attacker.fail(&next, next.end).await;
    assert_eq!(names_count(&app, name).await, 0);

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
    let (app, sim, log) = start(cfg, sim_log(64, 53)).await;
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
    assert!(
        flagged(&app).await.is_empty(),
        "the ring vouched for itself"
    );

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

/// Uploads `junk` (forged certificates, real entries without their paths)
/// for `r`; every one is refused and nothing is stored.
async fn upload_junk(w: &Worker, r: &Range, name: &str) {
    let mut junk: Vec<UploadEntry> = r
        .others()
        .iter()
        .take(3)
        .map(|&i| forged(i, name))
        .collect();
    for m in r.matches() {
        let mut e = r.upload_entry(m);
        e.audit_path.clear();
        junk.push(e);
    }
    let n = junk.len();
    let resp = w.upload(r.lease.task_id, junk, r.hash()).await.unwrap();
    assert_eq!(
        (resp.new, resp.duplicate, resp.rejected),
        (0, 0, n as u64),
        "{resp:?}"
    );
    assert!(
        resp.rejections
            .iter()
            .all(|x| x.code == RejectionCode::BadProof),
        "{resp:?}"
    );
}

/// 4. Forged, path-less uploads into ranges honest workers also do (as the
/// main task and as its check) never count against the honest workers.
#[tokio::test]
async fn adversary_forged_uploads_never_flag_honest_workers() {
    let cfg = Config {
        check_share: 1.0,
        check_min_tasks: 0,
        ..config(4)
    };
    let (app, sim, log) = start(cfg, sim_log(64, 44)).await;
    let a = Worker::new(&app, "spoiler", [127, 0, 0, 10]).await;
    let h1 = Worker::new(&app, "honest-1", [127, 0, 0, 2]).await;
    let h2 = Worker::new(&app, "honest-2", [127, 0, 0, 3]).await;
    let name = "spoiled.example.jp";

    // The attacker's own range: junk first, then every match with its path.
    let lease = a.claim().await.unwrap();
    let r = Range::fetch(&app.client, &lease).await;
    upload_junk(&a, &r, name).await;
    let m = r.matches();
    a.upload(
        lease.task_id,
        m.iter().map(|&i| r.upload_entry(i)).collect(),
        r.hash(),
    )
    .await
    .unwrap();
    a.complete(&r, m.len() as u64).await.unwrap();

    // h1 takes everything else, the check of the attacker's range included.
    let leases = h1.claim_up_to(16).await;
    assert!(leases.iter().any(|l| l.check_of == Some(lease.task_id)));
    for l in &leases {
        work(&app, &h1, l).await.assert_done();
    }
    assert!(flagged(&app).await.is_empty());

    // The attacker checks h1's ranges: junk into each; two it then does
    // right, one it completes without a match.
    let checks = a.claim_up_to(16).await;
    assert_eq!(checks.len(), 3, "the checks of h1's ranges");
    let (lazy, rest) = checks.split_first().unwrap();
    for l in rest {
        let r = Range::fetch(&app.client, l).await;
        upload_junk(&a, &r, name).await;
        let m = r.matches();
        a.upload(
            l.task_id,
            m.iter().map(|&i| r.upload_entry(i)).collect(),
            r.hash(),
        )
        .await
        .unwrap();
        a.complete(&r, m.len() as u64).await.unwrap();
    }
    assert!(flagged(&app).await.is_empty(), "equal sets: nobody flagged");
    let r = Range::fetch(&app.client, lazy).await;
    assert!(!r.matches().is_empty(), "seed: want matches");
    upload_junk(&a, &r, name).await;
    a.complete(&r, 0).await.unwrap();
    // Only the side that omitted is flagged.
    assert_eq!(flagged(&app).await, BTreeSet::from([a.id]));
    assert_eq!(names_count(&app, name).await, 0);

    drain(&app, &[&h1, &h2]).await;
    let (not_passed,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM tasks WHERE log_id = ? AND check_of = 0 AND COALESCE(check_state, '') <> 'passed'",
    )
    .bind(log)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(not_passed, 0, "every range checked again and passed");
    assert_collected(&app, &sim, log, &[&h1, &h2]).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 5. Counters over what a range allows are refused (422 invalid_counts),
/// never a 500, and the reaper still returns every lease.
#[tokio::test]
async fn adversary_counter_overflow_is_refused() {
    let (app, sim, log) = start(config(4), sim_log(64, 45)).await;
    let a = Worker::new(&app, "overflow", [127, 0, 0, 10]).await;
    let honest = Worker::new(&app, "honest", [127, 0, 0, 2]).await;
    let leases = a.client.claim(u32::MAX, &go()).await.unwrap().tasks;
    assert_eq!(leases.len(), 4);
    let l = &leases[0];
    let span = l.end - l.start;
    let cap = ct_db::store::rate_limit_cap(span);
    let at = |next_index: u64| TaskProgress {
        task_id: l.task_id,
        next_index,
        ..TaskProgress::default()
    };
    let counts = [
        TaskProgress {
            rate_limited: u64::MAX,
            ..at(l.start)
        },
        TaskProgress {
            rate_limited: cap + 1,
            ..at(l.start)
        },
        TaskProgress {
            entries: span + 1,
            ..at(l.end)
        },
        TaskProgress {
            entries: u64::MAX,
            matches: u64::MAX,
            errors: u64::MAX,
            rate_limited: u64::MAX,
            ..at(l.end)
        },
        TaskProgress {
            matches: 1,
            ..at(l.start)
        },
        TaskProgress {
            entries: 2,
            errors: 3,
            ..at(l.start + 2)
        },
    ];
    for p in counts {
        let r = a.heartbeat(vec![p.clone()]).await;
        assert_eq!(refused(r), (422, ErrorCode::InvalidCounts), "{p:?}");
    }
    for next in [l.end + 1, u64::MAX] {
        let r = a.heartbeat(vec![at(next)]).await;
        assert_eq!(refused(r), (422, ErrorCode::InvalidIndex), "{next}");
    }
    // One bad report refuses the whole heartbeat: nothing changes.
    let good = TaskProgress {
        task_id: leases[1].task_id,
        next_index: leases[1].end,
        entries: span,
        ..TaskProgress::default()
    };
    let bad = TaskProgress {
        rate_limited: u64::MAX,
        ..at(l.start)
    };
    let r = a.heartbeat(vec![good, bad]).await;
    assert_eq!(refused(r), (422, ErrorCode::InvalidCounts));
    let (entries,): (u64,) = sqlx::query_as("SELECT lease_entries FROM tasks WHERE id = ?")
        .bind(leases[1].task_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(entries, 0);
    let many: Vec<TaskProgress> = (0..1025)
        .map(|i| TaskProgress {
            task_id: 1_000_000 + i,
            ..TaskProgress::default()
        })
        .collect();
    assert_eq!(
        refused(a.heartbeat(many).await),
        (422, ErrorCode::TooManyTasks)
    );
    // The most the ranges allow, on every lease, twice (a replay is harmless),
    // and a task that is not the attacker's.
    let most: Vec<TaskProgress> = leases
        .iter()
        .map(|l| TaskProgress {
            task_id: l.task_id,
            next_index: l.end,
            entries: span,
            matches: span,
            errors: span,
            rate_limited: cap,
        })
        .collect();
    for _ in 0..2 {
        let states = a.heartbeat(most.clone()).await.unwrap();
        assert_eq!(states, vec![TaskStatus::Active; 4]);
    }
    let states = a
        .heartbeat(vec![TaskProgress {
            task_id: u64::MAX,
            next_index: u64::MAX,
            entries: u64::MAX,
            ..TaskProgress::default()
        }])
        .await
        .unwrap();
    assert_eq!(states, vec![TaskStatus::Lost]);

    // Complete and upload with counts and indices beyond the range.
    let r = Range::fetch(&app.client, l).await;
    let mut req = r.complete_request(0);
    req.rate_limited = u64::MAX;
    let c = a.client.complete(l.task_id, &req, &go()).await;
    assert_eq!(refused(c), (422, ErrorCode::InvalidCounts));
    let mut req = r.complete_request(u64::MAX);
    req.errors = u64::MAX;
    let c = a.client.complete(l.task_id, &req, &go()).await;
    assert_eq!(refused(c), (422, ErrorCode::InvalidCounts));
    for (next_index, entries) in [(l.end, u64::MAX), (u64::MAX, span)] {
        let req = CompleteRequest {
            next_index,
            entries,
            ..r.complete_request(0)
        };
        let c = a.client.complete(l.task_id, &req, &go()).await;
        assert_eq!(refused(c), (409, ErrorCode::Incomplete));
    }
    let mut far = r.upload_entry(l.start);
    far.index = u64::MAX;
    let u = a.upload(l.task_id, vec![far], r.hash()).await;
    assert_eq!(refused(u), (403, ErrorCode::OutOfLease));
    let ack = a.fail(&leases[3], u64::MAX).await;
    assert_eq!(ack.next_index, leases[3].start);

    // Every read of the counters still answers.
    for path in ["/v1/stats", "/v1/logs", "/v1/workers", "/metrics"] {
        let (status, v) = app.get(path, None).await;
        assert_eq!(status, 200, "{path}: {v}");
    }
    let (status, v) = app.get("/v1/admin/workers", Some(ADMIN)).await;
    assert_eq!(status, 200, "{v}");

    // The reaper returns every lease, whole.
    assert_eq!(expire_all(&app).await, 3);
    let (leased, top): (i64, Option<u64>) = sqlx::query_as(
        "SELECT CAST(SUM(state = 'leased') AS SIGNED), MAX(rate_limited) FROM tasks WHERE log_id = ?",
    )
    .bind(log)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((leased, top), (0, Some(cap)));

    drain(&app, &[&honest]).await;
    assert_collected(&app, &sim, log, &[&honest]).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 6. A growing log polled again and again: every planned range is
/// collected and proven, up to the newest verified head.
#[tokio::test]
async fn adversary_growing_log_is_verified_to_its_newest_head() {
    let mut l = sim_log(200, 46);
    l.grow_per_sec = 100;
    let (app, sim, log) = start(config(4), l).await;
    let h1 = Worker::new(&app, "honest-1", [127, 0, 0, 2]).await;
    let h2 = Worker::new(&app, "honest-2", [127, 0, 0, 3]).await;
    let task = 16;
    let mut before = 0;
    for _ in 0..4 {
        // The timer grows the log too; this makes sure each poll sees more.
        sim.grow(0, 37).await.unwrap();
        let polled = app.poll(log).await;
        assert!(polled.verified, "{polled:?}");
        drain(&app, &[&h1, &h2]).await;
        let p = progress(&app, log).await;
        assert_eq!(Some(p.tree_size), polled.tree_size, "{p:?}");
        assert!(p.verified_until + task >= p.tree_size, "{p:?}");
        assert_eq!(p.verified_until, p.planned_end, "{p:?}");
        assert!(p.verified_until > before, "{p:?}");
        before = p.verified_until;
    }
    let polled = app.poll(log).await;
    drain(&app, &[&h1, &h2]).await;
    let p = progress(&app, log).await;
    assert_eq!(
        (Some(p.verified_until), p.planned_end),
        (polled.tree_size, p.tree_size),
        "{p:?}"
    );
    assert!(p.gaps.is_empty() && p.faults.is_empty(), "{p:?}");
    assert_eq!(stored(&app, log).await, truth(&sim, p.verified_until));
    assert!(flagged(&app).await.is_empty());
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 7. A log that serves bytes which do not hash into its tree: two honest
/// workers get the same refusal, the manager's own fetch confirms it, the
/// range becomes a `log_fault` and nobody is blamed.
#[tokio::test]
async fn adversary_inconsistent_log_bytes_are_the_logs_fault() {
    let mut l = sim_log(64, 47);
    // Malformed kinds go in turn (bad base64, truncated leaf, garbage DER);
    // the first two listed indices lie beyond the tree, so 37 is served as
    // garbage DER: bytes that decode as base64 but are not the log's leaf.
    l.malformed = vec![u64::MAX, u64::MAX - 1, 37];
    let (app, sim, log) = start(config(4), l).await;
    let h1 = Worker::new(&app, "honest-1", [127, 0, 0, 2]).await;
    let h2 = Worker::new(&app, "honest-2", [127, 0, 0, 3]).await;
    let worked = drain_all(&app, &[&h1, &h2]).await;
    let (refusals, done): (Vec<&Worked>, Vec<&Worked>) =
        worked.iter().partition(|w| w.result.is_err());
    for w in &done {
        w.assert_done();
    }
    assert_eq!(done.len(), 3);
    assert_eq!(refusals.len(), 2);
    let fault = refusals[0].range.lease.task_id;
    let served = refusals[0].range.hash();
    let mut who = BTreeSet::new();
    for w in &refusals {
        let code = match &w.result {
            Err(e) => (e.status(), e.code()),
            Ok(_) => unreachable!(),
        };
        assert_eq!(code, (Some(422), Some(ErrorCode::ProofMismatch)));
        assert_eq!(
            (w.range.lease.task_id, w.range.lease.start, w.range.hash()),
            (fault, 32, served)
        );
        who.insert(w.worker);
    }
    assert_eq!(who, BTreeSet::from([h1.id, h2.id]));
    // The log's tree holds other bytes: the hash of its own entries differs.
    let log_sim = sim.log(0).unwrap();
    let own = MerkleTree::from_leaf_hashes(
        (32..48).map(|i| leaf_hash(&log_sim.entry(i).unwrap().leaf_input())),
    );
    assert_ne!(Hash32(own.root(16).unwrap()), served);
    assert_eq!(task_state(&app, fault).await, ("log_fault".into(), None));
    let (task, hash, first, second): (u64, Vec<u8>, u64, u64) = sqlx::query_as(
        "SELECT task_id, served_hash, first_worker, second_worker FROM log_faults WHERE log_id = ?",
    )
    .bind(log)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((task, hash), (fault, served.0.to_vec()));
    assert_eq!(BTreeSet::from([first, second]), who);
    let blame: Vec<(bool, u32)> =
        sqlx::query_as("SELECT flagged, mismatches FROM workers ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(blame, vec![(false, 0); 2]);
    let p = progress(&app, log).await;
    assert_eq!(p.faults, vec![(32, 48)], "{p:?}");
    assert!(p.gaps.is_empty(), "{p:?}");
    assert_eq!(
        (
            p.verified_until,
            p.entries_verified,
            p.tasks_done,
            p.tasks_fault
        ),
        (32, 48, 3, 1),
        "{p:?}"
    );
    // Everything outside the faulty range is stored; nothing of it is.
    let outside: BTreeSet<_> = truth(&sim, 64)
        .into_iter()
        .filter(|(i, _)| !(32..48).contains(i))
        .collect();
    assert_eq!(stored(&app, log).await, outside);
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 8. An entry that is in the log's tree but does not decode: the honest
/// worker uploads it with its audit path, it is recorded once as a failed
/// entry, and the range is verified.
#[tokio::test]
async fn adversary_garbage_in_the_tree_is_a_failed_entry() {
    let mut l = sim_log(64, 48);
    l.garbage = vec![21];
    let cfg = Config {
        check_share: 1.0,
        check_min_tasks: 0,
        audit_share: 1.0,
        ..config(4)
    };
    let (app, sim, log) = start(cfg, l).await;
    let h1 = Worker::new(&app, "honest-1", [127, 0, 0, 2]).await;
    let h2 = Worker::new(&app, "honest-2", [127, 0, 0, 3]).await;
    let worked = drain_all(&app, &[&h1, &h2]).await;
    for w in &worked {
        w.assert_done();
    }
    // The range and its check both uploaded it; it was recorded once.
    let with_it: Vec<&UploadResponse> = worked
        .iter()
        .filter(|w| w.range.lease.start == 16)
        .filter_map(|w| w.upload.as_ref())
        .collect();
    assert_eq!(with_it.len(), 2);
    assert_eq!(with_it.iter().map(|u| u.failed).sum::<u64>(), 1);
    let summary = audit(&app).await;
    assert_eq!((summary.checked, summary.mismatched), (4, 0), "{summary:?}");
    let rows: Vec<(u64, u64)> = sqlx::query_as("SELECT log_id, idx FROM failed_entries")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, vec![(log, 21)]);
    assert_eq!(progress(&app, log).await.failed_entries, 1);
    assert!(flagged(&app).await.is_empty());
    assert_collected(&app, &sim, log, &[&h1, &h2]).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 9. Registration: limited per address per hour, closed by the
/// registration secret; the public leaderboard pages and leaves out
/// flagged workers.
#[tokio::test]
async fn adversary_registration_is_limited_and_closed() {
    let secret = "open sesame";
    let cfg = Config {
        registrations_per_hour: 3,
        registration_secret: Some(secret.into()),
        ..config(4)
    };
    let app = TestApp::spawn_with(cfg).await;
    let req = |name: &str, secret: Option<&str>| RegisterRequest {
        name: Some(name.into()),
        version: None,
        registration_secret: secret.map(str::to_owned),
        ..RegisterRequest::default()
    };
    let c = app.client_from([127, 0, 0, 20]);
    for s in [None, Some(""), Some("open sesame!")] {
        let r = c.register(&req("w0", s), &go()).await;
        assert_eq!(refused(r), (403, ErrorCode::RegistrationSecret), "{s:?}");
    }
    let mut workers = Vec::new();
    for n in 1..=3 {
        let r = c
            .register(&req(&format!("w{n}"), Some(secret)), &go())
            .await
            .unwrap();
        workers.push(r);
    }
    let r = c.register(&req("w4", Some(secret)), &go()).await;
    assert_eq!(refused(r), (429, ErrorCode::RateLimited));
    // Another address has its own budget.
    let other = app
        .client_from([127, 0, 0, 21])
        .register(&req("w5", Some(secret)), &go())
        .await
        .unwrap();
    workers.push(other);

    sqlx::query("UPDATE workers SET flagged = 1 WHERE id = ?")
        .bind(workers[0].worker_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let flagged_client = app
        .client_from([127, 0, 0, 20])
        .with_token(workers[0].token.clone());
    assert_eq!(
        refused(flagged_client.claim(1, &go()).await),
        (403, ErrorCode::Flagged)
    );
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (query, want) in [
        ("", vec!["w2", "w3", "w5"]),
        ("?limit=1&offset=1", vec!["w3"]),
        ("?limit=2&offset=2", vec!["w5"]),
        ("?limit=1&offset=3", vec![]),
        ("?limit=0", vec!["w2"]),
    ] {
        let (status, v) = app.get(&format!("/v1/workers{query}"), None).await;
        assert_eq!(status, 200, "{query}: {v}");
        assert_eq!(names(v), want, "{query}");
    }
    let (status, v) = app.get("/v1/workers?limit=-1", None).await;
    assert_eq!(status, 400, "{v}");
    app.cleanup().await;
}

/// One attack of the end-to-end test on `lease`, the `n`th.
async fn attack(app: &TestApp, d: &Worker, lease: &TaskLease, n: usize) {
    let r = Range::fetch(&app.client, lease).await;
    let matches = r.matches();
    match n % 5 {
        // Forged entries, then the range given back "from its end".
        0 => {
            let mut batch = vec![forged(lease.start, "mallory.example.jp")];
            if let Some(&m) = matches.first() {
                let mut moved = r.upload_entry(m);
                moved.index = if m == lease.start { m + 1 } else { lease.start };
                batch.push(moved);
            }
            let n = batch.len() as u64;
            let resp = d.upload(lease.task_id, batch, r.hash()).await.unwrap();
            assert_eq!((resp.new, resp.rejected), (0, n), "{resp:?}");
            let ack = d.fail(lease, lease.end).await;
            assert_eq!(ack.next_index, lease.start);
        }
        // Progress to the end, then silence.
        1 => {
            let states = d
                .heartbeat(vec![TaskProgress {
                    task_id: lease.task_id,
                    next_index: lease.end,
                    entries: r.span(),
                    ..TaskProgress::default()
                }])
                .await
                .unwrap();
            assert_eq!(states, vec![TaskStatus::Active]);
        }
        // A lazy complete: the right hash, no matches.
        2 => {
            let ack = d.complete(&r, 0).await.unwrap();
            assert_eq!(ack.state, TaskPhase::Done);
        }
        // Matches reported, none uploaded.
        3 => {
            let c = d.complete(&r, matches.len().max(1) as u64).await;
            assert_eq!(refused(c), (409, ErrorCode::UnaccountedMatches));
            d.fail(lease, lease.end).await;
        }
        // Counts beyond the range, then a made-up subtree hash.
        _ => {
            let hb = d
                .heartbeat(vec![TaskProgress {
                    task_id: lease.task_id,
                    next_index: lease.end,
                    entries: u64::MAX,
                    rate_limited: u64::MAX,
                    ..TaskProgress::default()
                }])
                .await;
            assert_eq!(refused(hb), (422, ErrorCode::InvalidCounts));
            let req = CompleteRequest {
                subtree_hash: Hash32([0xab; 32]),
                ..r.complete_request(0)
            };
            let c = d.client.complete(lease.task_id, &req, &go()).await;
            assert_eq!(refused(c), (422, ErrorCode::ProofMismatch));
        }
    }
}

/// 10. Two honest workers and an attacker that attacks throughout (forged
/// uploads, ranges given back from their end, abandoned leases, lazy and
/// unaccounted completes, counter overflows, wrong hashes), with a new
/// identity each time it is flagged: the stored set is the truth.
#[tokio::test]
async fn adversary_end_to_end() {
    let cfg = Config {
        check_share: 1.0,
        check_min_tasks: 1,
        audit_share: 1.0,
        ..config(4)
    };
    let (app, sim, log) = start(cfg, sim_log(256, 50)).await;
    let h1 = Worker::new(&app, "honest-1", [127, 0, 0, 2]).await;
    let h2 = Worker::new(&app, "honest-2", [127, 0, 0, 3]).await;
    let mut identities = vec![Worker::new(&app, "mallory-0", [127, 0, 0, 10]).await];
    let mut attacks = 0;
    let mut finished = false;
    for _ in 0..400 {
        let mut busy = false;
        let d = identities.last().unwrap();
        match d.client.claim(1, &go()).await {
            Ok(resp) => {
                if let Some(lease) = resp.tasks.first() {
                    attack(&app, d, lease, attacks).await;
                    attacks += 1;
                    busy = true;
                }
            }
            Err(e) => {
                assert_eq!(
                    (e.status(), e.code()),
                    (Some(403), Some(ErrorCode::Flagged))
                );
                if identities.len() < 6 {
                    let name = format!("mallory-{}", identities.len());
                    identities.push(Worker::new(&app, &name, [127, 0, 0, 10]).await);
                    busy = true;
                }
            }
        }
        for h in [&h1, &h2] {
            if let Some(lease) = h.claim().await {
                work(&app, h, &lease).await.assert_done();
                busy = true;
            }
        }
        // No honest lease is open here: only abandoned ones are returned.
        let reaped = expire_all(&app).await;
        let audited = audit(&app).await;
        if !busy && reaped == 0 && audited.checked == 0 {
            finished = true;
            break;
        }
    }
    assert!(finished, "the collection did not end");
    assert!(attacks >= 5, "every kind of attack, got {attacks}");
    let caught = flagged(&app).await;
    let ids: BTreeSet<u64> = identities.iter().map(|d| d.id).collect();
    assert!(!caught.is_empty() && caught.is_subset(&ids), "{caught:?}");
    assert_eq!(names_count(&app, "mallory.example.jp").await, 0);
    assert_collected(&app, &sim, log, &[&h1, &h2]).await;
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}

/// 11. Names: a dishonest worker cannot take over a name registered with a
/// secret (without one, with a wrong one, in other letter case, with a
/// made-up `replaces` token) nor give a name registered without a secret
/// one; the honest volunteer's lease and token stay its own, its second
/// machine joins with the secret, and the leaderboard shows the name once
/// with both machines' totals. A flag bars the name from new machines,
/// even with its secret.
#[tokio::test]
async fn adversary_cannot_take_over_a_name_without_its_secret() {
    let (app, sim, log) = start(config(4), sim_log(64, 51)).await;
    let secret = "alice's own secret, 16+ bytes";
    let guess = "mallory's guess at it, 16+ bytes";
    let req = |name: &str, secret: Option<&str>, replaces: Option<&str>| RegisterRequest {
        name: Some(name.into()),
        secret: secret.map(Secret::new),
        replaces: replaces.map(Secret::new),
        ..RegisterRequest::default()
    };
    let machine = |from: [u8; 4], r: &ct_core::protocol::RegisterResponse| Worker {
        id: r.worker_id,
        client: app.client_from(from).with_token(r.token.clone()),
    };
    let a1 = app
        .client_from([127, 0, 0, 2])
        .register(&req("alice", Some(secret), None), &go())
        .await
        .unwrap();
    let alice1 = machine([127, 0, 0, 2], &a1);
    let lease = alice1.claim().await.unwrap();
    let bob = app
        .client_from([127, 0, 0, 3])
        .register(&req("bob", None, None), &go())
        .await
        .unwrap();

    let mallory = app.client_from([127, 0, 0, 10]);
    let made_up = "00".repeat(32);
    for (name, s, replaces) in [
        ("alice", None, None),
        ("alice", Some(guess), None),
        ("ALICE", Some(guess), None),
        ("alice", Some(guess), Some(made_up.as_str())),
        ("alice", Some(guess), Some(bob.token.as_str())),
        ("bob", None, None),
        ("bob", Some(guess), None),
    ] {
        let r = mallory.register(&req(name, s, replaces), &go()).await;
        assert_eq!(
            refused(r),
            (409, ErrorCode::NameTaken),
            "{name} {s:?} {replaces:?}"
        );
    }
    match mallory
        .register(&req("alice", Some(guess), None), &go())
        .await
    {
        Err(ClientError::Refused { message, .. }) => assert!(
            message.contains("is taken by another volunteer: use its secret"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    // Nothing of alice's moved: her lease, her token, her name's one machine.
    assert_eq!(
        task_state(&app, lease.task_id).await,
        ("leased".into(), Some(alice1.id))
    );
    alice1.heartbeat(Vec::new()).await.unwrap();
    let (status, v) = app
        .post("/v1/heartbeat", Some(&bob.token), &json!({"tasks": []}))
        .await;
    assert_eq!(status, 200, "bob's token still works: {v}");
    let (_, board) = app.get("/v1/workers", None).await;
    let alice_rows = |board: &serde_json::Value| -> Vec<serde_json::Value> {
        board
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["name"] == "alice")
            .cloned()
            .collect()
    };
    assert_eq!(alice_rows(&board).len(), 1);
    assert_eq!(alice_rows(&board)[0]["machines"], 1);

    // Her second machine, elsewhere, joins with the secret; both collect.
    let a2 = app
        .client_from([127, 0, 0, 4])
        .register(&req("alice", Some(secret), None), &go())
        .await
        .unwrap();
    assert_eq!(a2.name, "alice");
    let alice2 = machine([127, 0, 0, 4], &a2);
    work(&app, &alice1, &lease).await.assert_done();
    drain(&app, &[&alice1, &alice2]).await;
    assert_collected(&app, &sim, log, &[&alice1, &alice2]).await;
    let totals: Vec<(u64, u64, u64)> = sqlx::query_as(
        "SELECT entries, matches, tasks_done FROM workers WHERE id IN (?, ?) ORDER BY id",
    )
    .bind(alice1.id)
    .bind(alice2.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        totals.iter().all(|t| t.2 > 0),
        "both machines worked: {totals:?}"
    );
    let (_, board) = app.get("/v1/workers", None).await;
    let rows = alice_rows(&board);
    assert_eq!(rows.len(), 1, "{board}");
    let sum = |f: fn(&(u64, u64, u64)) -> u64| totals.iter().map(f).sum::<u64>();
    assert_eq!(rows[0]["entries"], sum(|t| t.0));
    assert_eq!(rows[0]["entries"], 64);
    assert_eq!(rows[0]["matches"], sum(|t| t.1));
    assert_eq!(rows[0]["tasks_done"], sum(|t| t.2));
    assert_eq!(rows[0]["machines"], 2);

    // A flagged machine bars the name: no new machine, not even with the secret.
    sqlx::query("UPDATE workers SET flagged = 1 WHERE id = ?")
        .bind(alice2.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app
        .client_from([127, 0, 0, 5])
        .register(&req("alice", Some(secret), None), &go())
        .await;
    assert_eq!(refused(r), (403, ErrorCode::Flagged));
    let (_, board) = app.get("/v1/workers", None).await;
    assert!(alice_rows(&board).is_empty(), "{board}");
    app.cleanup().await;
    sim.shutdown().await.unwrap();
}
