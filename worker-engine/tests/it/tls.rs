//! `--log-ca`: a log whose certificate chains to a private CA is reachable
//! only when that CA's PEM file is given; a bad file is refused at start.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use worker_engine::source::{
    FetchError, HttpOptions, HttpSetupError, LogKind, Source, http_client_with,
};

/// A CA, and a TLS server for 127.0.0.1 under it answering every request
/// with a get-sth of tree size 5: the CA's PEM and the server's URL.
async fn private_log() -> (String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ctjp test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the CA hangs up here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = format!(
                    r#"{{"tree_size":5,"timestamp":1,"sha256_root_hash":"{}","tree_head_signature":""}}"#,
                    "A".repeat(43) + "="
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca.pem(), format!("https://127.0.0.1:{}/", addr.port()))
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ctjp-{}-{name}", std::process::id()));
    std::fs::write(&p, contents).unwrap();
    p
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_given() {
    let (ca_pem, url) = private_log().await;
    let plain = http_client_with("ct-worker/test", &HttpOptions::default()).unwrap();
    let refused = Source::new(LogKind::Rfc6962, &url, plain).tree_size().await;
    assert!(
        matches!(refused, Err(FetchError::Network(_))),
        "without the CA: {refused:?}"
    );
    let ca_file = temp_file("ca.pem", ca_pem.as_bytes());
    let with_ca = http_client_with(
        "ct-worker/test",
        &HttpOptions {
            extra_ca: Some(ca_file.clone()),
            ..HttpOptions::default()
        },
    )
    .unwrap();
    let size = Source::new(LogKind::Rfc6962, &url, with_ca)
        .tree_size()
        .await;
    let _ = std::fs::remove_file(&ca_file);
    assert_eq!(size.unwrap(), 5);
}

#[test]
fn a_bad_ca_file_is_refused_at_start() {
    let opts = |p: PathBuf| HttpOptions {
        extra_ca: Some(p),
        ..HttpOptions::default()
    };
    let missing = std::env::temp_dir().join("ctjp-no-such-ca.pem");
    let e = http_client_with("t", &opts(missing)).unwrap_err();
    assert!(matches!(e, HttpSetupError::CaFile { .. }), "{e}");
    let not_pem = temp_file("not-pem.pem", b"hello\n");
    let e = http_client_with("t", &opts(not_pem.clone())).unwrap_err();
    let _ = std::fs::remove_file(&not_pem);
    assert!(matches!(e, HttpSetupError::CaPem { .. }), "{e}");
}

#[test]
fn a_bad_proxy_url_is_refused_at_start() {
    let e = http_client_with(
        "t",
        &HttpOptions {
            proxy: Some("http://[not a host".into()),
            ..HttpOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, HttpSetupError::Proxy { .. }), "{e}");
}
