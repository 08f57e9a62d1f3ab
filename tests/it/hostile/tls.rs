//! A hostile server behind TLS: an https base URL that redirects to plain http gets
//! neither the client secret nor a token sent in clear text.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer, pki_types::PrivatePkcs8KeyDer};

use super::{Hostile, HostileApp, benign};
use crate::support::run;

/// An https server on 127.0.0.1 that answers every request with a 302 to `location`. Its
/// certificate, self-signed for 127.0.0.1 and made now, is written to `cert_pem` for the
/// client to trust (`SSL_CERT_FILE`). Returns its base URL; it stops with the test.
async fn redirecting_https(location: String, cert_pem: &Path) -> String {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    std::fs::write(cert_pem, made.cert.pem()).expect("certificate file");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, location) = (acceptor.clone(), location.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // The request's head is read, whatever it asks; its body is never needed.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://{addr}")
}

/// The token request to an https cloud is redirected to plain http (a misconfigured proxy,
/// or someone on the path): the redirect is refused, so the Basic credentials and any
/// token never cross in clear text, and the error says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_cloud_redirecting_to_plain_http_is_refused_and_the_plain_server_gets_nothing() {
    // Where the redirect points: a plain server that would answer as the cloud does.
    let plain = Hostile::start(benign::cloud).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("server.pem");
    let base = redirecting_https(format!("{}/api/2/idp/token", plain.base_url), &cert).await;
    let app = HostileApp::new(&base, "retries = 0", "", "");
    let (code, _, text) = run(app.bin(&["once"]).env("SSL_CERT_FILE", &cert));
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("refused a redirect from https to plain http"),
        "{text}"
    );
    assert!(
        plain.requests().is_empty(),
        "the plain server was asked {} time(s)",
        plain.requests().len()
    );
}
