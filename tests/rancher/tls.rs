//! TLS: verification is on by default; `caFile` makes a private CA work.

use keelson::rancher::{RancherClient, RancherError, plan};
use rancher_server::{DEFAULT_TOKEN, RancherServer, ServerOptions, TestCa};

use crate::common::{desired, endpoint};

#[tokio::test]
async fn self_signed_rancher_fails_without_ca_file_and_works_with_it() {
    let ca = TestCa::generate();
    let server = RancherServer::start_with(ServerOptions {
        tls: Some(ca.clone()),
        ..Default::default()
    })
    .await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let mut setup = endpoint(&server, DEFAULT_TOKEN);

    let client = RancherClient::from_endpoint(&setup.endpoint).unwrap();
    let err = plan(&client, &desired("prod")).await.unwrap_err();
    assert!(matches!(err, RancherError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("caFile"), "{err}");
    assert!(
        server.requests().is_empty(),
        "no request got past the handshake"
    );

    let ca_path = setup._dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.ca_pem).unwrap();
    setup.endpoint.ca_file = Some(ca_path.clone());
    let client = RancherClient::from_endpoint(&setup.endpoint).unwrap();
    let p = plan(&client, &desired("prod")).await.unwrap();
    assert!(p.has_changes());

    // A different CA is not trusted.
    std::fs::write(&ca_path, TestCa::generate().ca_pem).unwrap();
    let client = RancherClient::from_endpoint(&setup.endpoint).unwrap();
    assert!(matches!(
        plan(&client, &desired("prod")).await,
        Err(RancherError::Transport { .. })
    ));

    // Garbage in caFile is a config error, not a silent fallback.
    std::fs::write(&ca_path, "not a certificate").unwrap();
    assert!(matches!(
        RancherClient::from_endpoint(&setup.endpoint),
        Err(RancherError::CaFile { .. })
    ));
}

#[tokio::test]
async fn insecure_skip_tls_verify_connects_to_an_unknown_ca() {
    let server = RancherServer::start_with(ServerOptions {
        tls: Some(TestCa::generate()),
        ..Default::default()
    })
    .await;
    let mut setup = endpoint(&server, DEFAULT_TOKEN);
    setup.endpoint.insecure_skip_tls_verify = true;
    let client = RancherClient::from_endpoint(&setup.endpoint).unwrap();
    assert!(plan(&client, &desired("prod")).await.is_ok());
}
