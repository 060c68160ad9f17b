//! The API contract: `GET /v1/openapi.json` is an OpenAPI 3.1 document that
//! lists every route of `app()` (parsed from `src/routes.rs`) with its
//! methods and nothing else, every operation documents its error answers
//! with the `ErrorBody` schema, and the security of each operation is the
//! token its handler asks for. `scripts/fuzz-api` validates the same
//! document with openapi-spec-validator and fuzzes the server against it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(path, method)` of every `.route(...)` in `app()`, from the source.
fn routes_of_app() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/routes.rs");
    let body = src
        .split_once("pub fn app(")
        .map(|(_, rest)| rest)
        .expect("routes.rs has `pub fn app(`");
    let mut out = BTreeSet::new();
    for chunk in body.split(".route(").skip(1) {
        // The call's arguments, up to its closing parenthesis.
        let mut depth = 1usize;
        let end = chunk
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            })
            .expect("a closed .route( call");
        let call = &chunk[..end];
        let path = call
            .trim_start()
            .strip_prefix('"')
            .and_then(|p| p.split_once('"'))
            .map(|(p, _)| p.to_owned())
            .expect("a route's path is a string literal");
        let router = &call[call.find(',').expect("path, method router")..];
        let mut found = false;
        for (i, _) in router.match_indices('(') {
            let ident: String = router[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if METHODS.contains(&ident.as_str()) {
                out.insert((path.clone(), ident));
                found = true;
            }
        }
        assert!(found, "no method found for route {path}: {call}");
    }
    out
}

fn is_error_body(response: &Value) -> bool {
    response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody"
}

#[tokio::test]
async fn the_document_covers_every_route() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = resp.text().await.unwrap();
    // Read as plain JSON: utoipa's own model does not read back the
    // any-value schema (`additionalProperties: {}`) of the log list's
    // `state`; scripts/fuzz-api validates the document as OpenAPI 3.1.
    let doc: Value = serde_json::from_str(&text).unwrap();

    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for scheme in ["worker_token", "admin_token"] {
        let s = &doc["components"]["securitySchemes"][scheme];
        assert_eq!(
            (&s["type"], &s["scheme"]),
            (&"http".into(), &"bearer".into())
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let hash = &doc["components"]["schemas"]["Hash32"];
    assert_eq!(hash["type"], "string");
    assert_eq!(hash["pattern"], "^[0-9a-fA-F]{64}$");

    let routes = routes_of_app();
    assert!(routes.len() >= 23, "parsed only {routes:?}");
    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            documented.insert((path.clone(), method.clone()));
            let what = format!("{} {path}", method.to_uppercase());
            assert!(
                operation_ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "{what}: operationId {} is not unique",
                op["operationId"]
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{what}: no 200");
            let errors: Vec<&String> = responses
                .iter()
                .filter(|(status, r)| status.starts_with('4') && is_error_body(r))
                .map(|(status, _)| status)
                .collect();
            assert!(
                !errors.is_empty(),
                "{what}: no 4xx answer with the ErrorBody schema"
            );
            // Every 4xx and 5xx answers ErrorBody.
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(is_error_body(r), "{what}: {status} is not ErrorBody");
                }
            }
            // Path parameters are declared.
            for name in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                let declared = op["parameters"].as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
                });
                assert!(declared, "{what}: path parameter {name} is not declared");
            }
            // The token each kind of call asks for.
            let schemes: BTreeSet<&str> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().map(String::as_str))
                .collect();
            let tag = op["tags"][0].as_str().unwrap_or("");
            let (want_schemes, want_tag): (&[&str], &str) = if path.starts_with("/v1/admin/") {
                (&["admin_token"], "admin")
            } else if path.starts_with("/v1/tasks/")
                || path == "/v1/heartbeat"
                || path == "/v1/workers/me"
            {
                (&["worker_token"], "worker")
            } else if path == "/v1/workers/register" {
                (&[], "worker")
            } else {
                (&[], "public")
            };
            assert_eq!(
                schemes,
                want_schemes.iter().copied().collect(),
                "{what}: security"
            );
            assert_eq!(tag, want_tag, "{what}: tag");
            if !want_schemes.is_empty() {
                assert!(responses.contains_key("401"), "{what}: no 401");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(
                        responses.contains_key(status),
                        "{what}: a JSON body but no {status}"
                    );
                }
            }
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes of app() not in the document: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "documented operations app() does not route: {stale:?}"
    );
    app.cleanup().await;
}

/// The document is the same on every call and its error answers are what
/// the server really answers (a 404 and a 405 in the ErrorBody shape).
#[tokio::test]
async fn error_answers_have_the_documented_shape() {
    let app = TestApp::spawn().await;
    let (status, a) = app.get("/v1/openapi.json", None).await;
    let (_, b) = app.get("/v1/openapi.json", None).await;
    assert_eq!((status, &a), (200, &b));
    let (status, v) = app.get("/v1/tasks/claim", None).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (405, &"method_not_allowed".into())
    );
    assert!(v["error"]["message"].is_string());
    let (status, v) = app.get("/v1/tasks/x/fail", None).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (405, &"method_not_allowed".into())
    );
    let (status, v) = app.get("/v1/nothing", None).await;
    assert_eq!((status, &v["error"]["code"]), (404, &"not_found".into()));
    let documented: BTreeSet<&str> = a["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in [
        "method_not_allowed",
        "not_found",
        "invalid_json",
        "unauthorized",
    ] {
        assert!(documented.contains(code), "{code} is not in ErrorCode");
    }
    app.cleanup().await;
}
