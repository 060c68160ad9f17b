//! Identities: a name registered with a volunteer's secret takes any number
//! of machines (each its own token) under one public name; the leaderboard
//! shows the name once with the machines' totals summed; a registration
//! that names the token it replaces returns that machine's leases at once.

use ct_core::protocol::{ErrorCode, RegisterRequest, RegisterResponse, Secret};
use manager::Config;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use worker_engine::client::{ClientError, ManagerClient};

use crate::harness::{ADMIN, TestApp, TestKey, test_config};

const SECRET: &str = "ivy's secret, long enough";

fn go() -> CancellationToken {
    CancellationToken::new()
}

fn req(name: Option<&str>, secret: Option<&str>, replaces: Option<&str>) -> RegisterRequest {
    RegisterRequest {
        name: name.map(str::to_owned),
        secret: secret.map(Secret::new),
        replaces: replaces.map(Secret::new),
        ..RegisterRequest::default()
    }
}

async fn register(c: &ManagerClient, r: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
    c.register(r, &go()).await
}

/// The (status, code, message) of a refusal.
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, ErrorCode, String) {
    match r {
        Err(ClientError::Refused {
            status,
            code,
            message,
        })
        | Err(ClientError::Transient {
            status,
            code,
            message,
            ..
        }) => {
            assert!(status < 500, "a 5xx: {message}");
            (status, code, message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The leaderboard rows named `name`.
async fn listed(app: &TestApp, name: &str) -> Vec<Value> {
    let (status, v) = app.get("/v1/workers", None).await;
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == name)
        .cloned()
        .collect()
}

#[tokio::test]
async fn identity_machines_share_one_name_and_sum_their_totals() {
    let app = TestApp::spawn().await;
    let first = register(
        &app.client_from([127, 0, 0, 30]),
        &req(Some("ivy"), Some(SECRET), None),
    )
    .await
    .unwrap();
    // Another machine elsewhere, and one that spells the name otherwise.
    let second = register(
        &app.client_from([127, 0, 0, 31]),
        &req(Some("ivy"), Some(SECRET), None),
    )
    .await
    .unwrap();
    let third = register(
        &app.client_from([127, 0, 0, 31]),
        &req(Some("IVY"), Some(SECRET), None),
    )
    .await
    .unwrap();
    let machines = [&first, &second, &third];
    for (i, m) in machines.iter().enumerate() {
        assert_eq!(m.name, "ivy");
        assert_eq!(m.replaced, None);
        for other in &machines[i + 1..] {
            assert_ne!((m.worker_id, &m.token), (other.worker_id, &other.token));
        }
        // Each token works on its own.
        let (status, v) = app
            .post("/v1/tasks/claim", Some(&m.token), &json!({}))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let jan = app.register(Some("jan")).await;
    for (i, m) in machines.iter().enumerate() {
        let n = i as u64 + 1;
        sqlx::query("UPDATE workers SET entries = ?, matches = ?, tasks_done = ? WHERE id = ?")
            .bind(1000 * n)
            .bind(10 * n)
            .bind(n)
            .bind(m.worker_id)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE workers SET entries = 5000 WHERE id = ?")
        .bind(jan.0)
        .execute(&app.pool)
        .await
        .unwrap();
    let ivy = listed(&app, "ivy").await;
    assert_eq!(ivy.len(), 1, "{ivy:?}");
    assert_eq!(
        (
            &ivy[0]["entries"],
            &ivy[0]["matches"],
            &ivy[0]["tasks_done"],
            &ivy[0]["machines"]
        ),
        (&json!(6000), &json!(60), &json!(6), &json!(3)),
        "{ivy:?}"
    );
    // Sorted by the summed entries: ivy (6,000) before jan (5,000).
    let (_, all) = app.get("/v1/workers", None).await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ivy", "jan"]);
    assert_eq!(listed(&app, "jan").await[0]["machines"], 1);
    let (_, stats) = app.get("/v1/stats", None).await;
    assert_eq!(stats["workers"], 4, "{stats}");
    // Admins see the machines, one identity.
    let (_, admin) = app.get("/v1/admin/workers", Some(ADMIN)).await;
    let ids: Vec<&Value> = admin
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == "ivy")
        .map(|w| &w["identity_id"])
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| *i == ids[0] && i.is_u64()), "{ids:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn identity_a_replaced_registration_releases_its_leases_at_once() {
    let app = TestApp::spawn().await;
    let log = app
        .import_log("https://ct.example.org/log/", &TestKey::new())
        .await;
    app.set_tree_size(log, 16).await;
    let c = app.client_from([127, 0, 0, 32]);
    let old = register(&c, &req(Some("ivy"), Some(SECRET), None))
        .await
        .unwrap();
    let (status, v) = app
        .post(
            "/v1/tasks/claim",
            Some(&old.token),
            &json!({"max_tasks": 2}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tasks"].as_array().unwrap().len(), 2, "{v}");
    let held = "SELECT COUNT(*) FROM tasks WHERE state = 'leased'";
    assert_eq!(app.count(held).await, 2);
    // Another machine of the name leaves the first one's leases alone.
    let other = register(&c, &req(Some("ivy"), Some(SECRET), None))
        .await
        .unwrap();
    assert_eq!(app.count(held).await, 2);
    // The same machine again (its state directory kept the old token).
    let new = register(&c, &req(Some("ivy"), Some(SECRET), Some(&old.token)))
        .await
        .unwrap();
    assert_eq!(new.replaced, Some(old.worker_id));
    assert_eq!(app.count(held).await, 0, "released at once, not at expiry");
    let (status, v) = app
        .post("/v1/tasks/claim", Some(&old.token), &json!({}))
        .await;
    assert_eq!(status, 401, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("replaced"),
        "{v}"
    );
    for token in [&new.token, &other.token] {
        let (status, v) = app.post("/v1/tasks/claim", Some(token), &json!({})).await;
        assert_eq!(status, 200, "{v}");
    }
    // Two machines now: the replaced one does not count.
    assert_eq!(listed(&app, "ivy").await[0]["machines"], 2);
    // A token the manager does not know (a reset manager) is ignored; one
    // already replaced is too.
    for stale in ["00".repeat(32), old.token.clone()] {
        let r = register(&c, &req(Some("ivy"), Some(SECRET), Some(&stale)))
            .await
            .unwrap();
        assert_eq!(r.replaced, None);
    }
    let (status, v) = app
        .post(
            "/v1/workers/register",
            None,
            &json!({"name": "ivy", "secret": SECRET, "replaces": "x".repeat(129)}),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("bad_request")),
        "{v}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn identity_secrets_are_bounded_and_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"name": "ivy", "secret": "x".repeat(15)}),
        json!({"name": "ivy", "secret": "x".repeat(257)}),
        json!({"name": "ivy", "secret": ""}),
        json!({"secret": SECRET}),
    ] {
        let (status, v) = app.post("/v1/workers/register", None, &body).await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (400, &json!("invalid_secret")),
            "{body}: {v}"
        );
    }
    let (status, v) = app
        .post(
            "/v1/workers/register",
            None,
            &json!({"name": "ivy", "secret": 12}),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_json")),
        "{v}"
    );
    for len in [16, 256] {
        let name = format!("ivy-{len}");
        let (status, v) = app
            .post(
                "/v1/workers/register",
                None,
                &json!({"name": name, "secret": "s".repeat(len)}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    register(
        &app.client_from([127, 0, 0, 1]),
        &req(Some("ivy"), Some(SECRET), None),
    )
    .await
    .unwrap();
    let hash = hex::encode(Sha256::digest(SECRET.as_bytes()));
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT secret_hash FROM identities WHERE name = 'ivy'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, Some(hash));
    let (clear,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM identities i JOIN workers w ON w.identity_id = i.id \
         WHERE ? IN (i.secret_hash, i.name, w.token_hash, w.name, w.version)",
    )
    .bind(SECRET)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(clear, 0);
    app.cleanup().await;
}

/// New names are limited per address; a name's machines per name, not per
/// address: a volunteer's machines behind one address, or a container
/// restarted without its state directory, are not refused as new names.
#[tokio::test]
async fn identity_limits_count_new_names_per_address_and_machines_per_name() {
    let app = TestApp::spawn_with(Config {
        registrations_per_hour: 2,
        ..test_config()
    })
    .await;
    let c = app.client_from([127, 0, 0, 33]);
    register(&c, &req(Some("ivy"), Some(SECRET), None))
        .await
        .unwrap();
    register(&c, &req(Some("jan"), None, None)).await.unwrap();
    let (status, code, message) = refused(register(&c, &req(Some("kim"), None, None)).await);
    assert_eq!((status, code), (429, ErrorCode::RateLimited), "{message}");
    assert!(message.contains("new names"), "{message}");
    // The address is at its limit of new names; ivy's second machine is no new name.
    register(&c, &req(Some("ivy"), Some(SECRET), None))
        .await
        .unwrap();
    let (status, code, message) =
        refused(register(&c, &req(Some("ivy"), Some(SECRET), None)).await);
    assert_eq!((status, code), (429, ErrorCode::RateLimited), "{message}");
    assert!(message.contains("new machines of \"ivy\""), "{message}");
    // From anywhere.
    let elsewhere = app.client_from([127, 0, 0, 34]);
    let r = register(&elsewhere, &req(Some("ivy"), Some(SECRET), None)).await;
    assert_eq!(refused(r).1, ErrorCode::RateLimited);
    register(&elsewhere, &req(Some("kim"), None, None))
        .await
        .unwrap();
    app.cleanup().await;
}

/// A name registered without a secret gets one only from the holder of its
/// token; a flagged or revoked machine bars its name from new machines.
#[tokio::test]
async fn identity_adoption_needs_the_token_and_bars_hold() {
    let app = TestApp::spawn().await;
    let c = app.client_from([127, 0, 0, 35]);
    let lee = register(&c, &req(Some("lee"), None, None)).await.unwrap();
    let (status, code, message) =
        refused(register(&c, &req(Some("lee"), Some(SECRET), None)).await);
    assert_eq!((status, code), (409, ErrorCode::NameTaken), "{message}");
    assert!(message.contains("without a secret"), "{message}");
    let adopted = register(&c, &req(Some("lee"), Some(SECRET), Some(&lee.token)))
        .await
        .unwrap();
    assert_eq!(
        (adopted.name.as_str(), adopted.replaced),
        ("lee", Some(lee.worker_id))
    );
    // The name has its secret now: another machine with it joins; without it, no.
    register(&c, &req(Some("lee"), Some(SECRET), None))
        .await
        .unwrap();
    let (status, code, message) = refused(register(&c, &req(Some("lee"), None, None)).await);
    assert_eq!((status, code), (409, ErrorCode::NameTaken));
    assert!(message.contains("use its secret"), "{message}");
    assert_eq!(listed(&app, "lee").await[0]["machines"], 2);

    // Revoking one machine bars the name and takes it off the leaderboard.
    let (status, v) = app
        .post(
            &format!("/v1/admin/workers/{}/revoke", adopted.worker_id),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, code, message) =
        refused(register(&c, &req(Some("lee"), Some(SECRET), None)).await);
    assert_eq!((status, code), (403, ErrorCode::Revoked), "{message}");
    assert!(listed(&app, "lee").await.is_empty());

    // So does a flag.
    let ivy = register(&c, &req(Some("ivy"), Some(SECRET), None))
        .await
        .unwrap();
    sqlx::query("UPDATE workers SET flagged = 1 WHERE id = ?")
        .bind(ivy.worker_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, code, message) =
        refused(register(&c, &req(Some("ivy"), Some(SECRET), None)).await);
    assert_eq!((status, code), (403, ErrorCode::Flagged), "{message}");
    // A wrong secret learns nothing of it.
    let r = register(&c, &req(Some("ivy"), Some("not ivy's secret at all"), None)).await;
    assert_eq!(refused(r).1, ErrorCode::NameTaken);
    assert!(listed(&app, "ivy").await.is_empty());
    app.cleanup().await;
}

/// The machines of a new name starting at once (a deployment's replicas)
/// all register, under one identity.
#[tokio::test]
async fn identity_concurrent_first_registrations_share_one_identity() {
    let app = TestApp::spawn().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8u8 {
        let c = app.client_from([127, 0, 0, 40 + i]);
        set.spawn(async move { register(&c, &req(Some("kim"), Some(SECRET), None)).await });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(r) = set.join_next().await {
        let r = r.unwrap().unwrap();
        assert_eq!(r.name, "kim");
        ids.insert(r.worker_id);
    }
    assert_eq!(ids.len(), 8);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM identities WHERE name = 'kim'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT identity_id) FROM workers WHERE name = 'kim'")
            .await,
        1
    );
    assert_eq!(listed(&app, "kim").await[0]["machines"], 8);
    app.cleanup().await;
}
