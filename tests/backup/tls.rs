//! Snapshots over mutual TLS, with a CA and certificates made for the test.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use keelson::backup::etcd::{EtcdClient, EtcdError};
use keelson::backup::local_etcd::free_port;
use keelson::backup::store::Trigger;
use keelson::backup::{EtcdClusterConfig, SnapshotError, take_snapshot, verify_file};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::common::{at, files_with_suffix};
use crate::require_etcd;

/// Writes ca.crt, server.{crt,key}, client.{crt,key} and a client pair from
/// a second, untrusted CA (rogue.{crt,key}) into `dir`.
fn make_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "keelson test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();

    let leaf = |name: &str,
                sans: Vec<String>,
                eku: Vec<ExtendedKeyUsagePurpose>,
                issuer: &CertifiedIssuer<'_, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = eku;
        let cert = params.signed_by(&key, issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    leaf(
        "server",
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        &ca,
    );
    leaf(
        "client",
        vec![],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        &ca,
    );

    let mut rogue_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    rogue_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let rogue_ca =
        CertifiedIssuer::self_signed(rogue_params, KeyPair::generate().unwrap()).unwrap();
    leaf(
        "rogue",
        vec![],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        &rogue_ca,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_over_mutual_tls() {
    require_etcd!();
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path();
    make_pki(pki);
    let client_port = free_port().unwrap();
    let peer_port = free_port().unwrap();
    let url = format!("https://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(pki.join("etcd.log")).unwrap();
    let _etcd = tokio::process::Command::new("etcd")
        .args(["--name", "tls", "--data-dir"])
        .arg(pki.join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("tls={peer}")])
        .arg("--cert-file")
        .arg(pki.join("server.crt"))
        .arg("--key-file")
        .arg(pki.join("server.key"))
        .arg("--trusted-ca-file")
        .arg(pki.join("ca.crt"))
        .arg("--client-cert-auth")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let cfg = EtcdClusterConfig {
        // A bare host:port gets https because TLS files are set.
        endpoints: vec![format!("127.0.0.1:{client_port}")],
        ca_file: Some(pki.join("ca.crt")),
        cert_file: Some(pki.join("client.crt")),
        key_file: Some(pki.join("client.key")),
        dir: Some(pki.join("snaps")),
        jitter_seconds: 0,
        ..Default::default()
    };
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(mut client) = EtcdClient::connect(&cfg).await {
            client.put(b"/registry/secrets/x", b"tls").await.unwrap();
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "TLS etcd never answered: {}",
        std::fs::read_to_string(pki.join("etcd.log")).unwrap()
    );

    let record = take_snapshot("tls", &cfg, None, Trigger::OnDemand, at(8, 0, 0))
        .await
        .expect("snapshot over mTLS");
    verify_file(&record.path).unwrap();
    assert_eq!(record.meta.endpoint, format!("127.0.0.1:{client_port}"));

    // A client certificate from another CA is refused.
    let mut rogue = cfg.clone();
    rogue.cert_file = Some(pki.join("rogue.crt"));
    rogue.key_file = Some(pki.join("rogue.key"));
    let err = take_snapshot("tls", &rogue, None, Trigger::OnDemand, at(8, 1, 0))
        .await
        .expect_err("rogue client cert");
    eprintln!("rogue client certificate: {err}");
    assert!(
        matches!(err, SnapshotError::Etcd(EtcdError::Unreachable { .. })),
        "{err}"
    );

    // Without the CA the server certificate is not trusted.
    let mut no_ca = cfg.clone();
    no_ca.ca_file = None;
    let err = take_snapshot("tls", &no_ca, None, Trigger::OnDemand, at(8, 2, 0))
        .await
        .expect_err("untrusted server");
    eprintln!("no CA: {err}");
    assert!(
        err.to_string().contains("TLS") || err.to_string().contains("certificate"),
        "{err}"
    );

    // Half a client identity is a config error, not a connection attempt.
    let mut half = cfg.clone();
    half.key_file = None;
    let err = take_snapshot("tls", &half, None, Trigger::OnDemand, at(8, 3, 0))
        .await
        .expect_err("cert without key");
    assert!(err.to_string().contains("certFile and keyFile"), "{err}");
    assert_eq!(files_with_suffix(&pki.join("snaps"), ".db").len(), 1);
}
