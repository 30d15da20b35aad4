//! The HTTP clients keelson builds (forges, Rancher, commit statuses, a
//! running controller's status API): `reqwest` on rustls with the ring crypto
//! provider, the one TLS stack every client of keelson uses.
//!
//! `reqwest` is compiled with `rustls-no-provider`: it takes the process-wide
//! rustls provider and panics when none is installed, so every client is built
//! here, after [`install_crypto_provider`]. TLS is verified against the
//! platform's roots (rustls-platform-verifier) unless a caller narrows the
//! roots (`tls_certs_only`) or, explicitly, turns verification off.

/// Installs ring as the process-wide rustls crypto provider, unless one is
/// installed already (the binary does it first thing in `cli::main`). kube-rs,
/// `reqwest` and the etcd client all take their TLS primitives from it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A `reqwest` client builder on rustls, with the crypto provider installed.
/// Callers add timeouts, a `User-Agent` and CA roots.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().tls_backend_rustls()
}

/// A `reqwest` client with defaults: no timeout, platform roots.
///
/// # Panics
/// When the TLS backend cannot be built, as `reqwest::Client::new` does: that
/// means the platform's certificate store cannot be read at all.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("cannot build the HTTP client (TLS backend)")
}
