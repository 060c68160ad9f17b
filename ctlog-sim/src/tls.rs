//! HTTPS: a CA of the simulator's own, made at start by rcgen, signs a
//! server certificate for `localhost`, `127.0.0.1`, `::1` (and the listen
//! address); rustls serves it with ALPN `h2` and `http/1.1`. Handshakes run
//! in tasks of their own, so a slow client holds back no other.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

use crate::error::{Error, Result};

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS setup.
pub(crate) struct Tls {
    /// The CA certificate clients trust, PEM.
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("setting up TLS: {e}"))
}

/// Makes the CA and the server certificate (for the loopback names and `listen`).
pub(crate) fn generate(listen: IpAddr) -> Result<Tls> {
    let now = OffsetDateTime::now_utc();
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    let ca_key = KeyPair::generate_for(alg).map_err(tls_err)?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ctlog-sim test CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key).map_err(tls_err)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate_for(alg).map_err(tls_err)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(tls_err)?;
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    if !ips.contains(&listen) && !listen.is_unspecified() {
        ips.push(listen);
    }
    leaf.subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ctlog-sim");
    leaf.distinguished_name = dn;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(397);
    let leaf_cert = leaf.signed_by(&key, &issuer).map_err(tls_err)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        ca_pem: ca_cert.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

type Accepted = (TlsStream<TcpStream>, SocketAddr);

/// A listener of finished TLS handshakes, for `axum::serve`.
pub(crate) struct TlsListener {
    accepted: mpsc::Receiver<Accepted>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and shakes hands in the background until the listener is dropped.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { accepted, local })
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<Accepted>) {
    loop {
        let (stream, client) = tokio::select! {
            _ = tx.closed() => return,
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait, as axum does.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        // Small HTTP/2 frames should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, client)).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(http.client = %client, error = %e, "TLS handshake failed")
                }
                Err(_) => tracing::debug!(http.client = %client, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept loop ended; wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
