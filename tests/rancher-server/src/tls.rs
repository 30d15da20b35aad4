//! HTTPS for the test server: a throwaway CA and a loopback certificate.

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and a server certificate for `127.0.0.1` and `localhost` it signed.
#[derive(Clone)]
pub struct TestCa {
    /// The CA certificate, PEM: what a client's `caFile` holds.
    pub ca_pem: String,
    cert_der: Vec<u8>,
    ca_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa { .. }")
    }
}

impl TestCa {
    /// Generates a fresh CA and server certificate.
    pub fn generate() -> TestCa {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rancher-server test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

        let leaf_key = KeyPair::generate().expect("server key");
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "rancher-server");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("server certificate");
        TestCa {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            cert_der: leaf.der().to_vec(),
            key_der: leaf_key.serialize_der(),
        }
    }

    fn server_config(&self) -> ServerConfig {
        let chain = vec![
            CertificateDer::from(self.cert_der.clone()),
            CertificateDer::from(self.ca_der.clone()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        // Name the provider rather than rely on the process default: ring, the
        // one keelson's clients use (tests/kube-apiserver does the same).
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server TLS config")
    }
}

pub(crate) async fn serve(listener: TcpListener, app: Router, ca: TestCa) {
    let acceptor = TlsAcceptor::from(Arc::new(ca.server_config()));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate ends the handshake; that
            // is an expected outcome in tests, not a server fault.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .await;
        });
    }
}
