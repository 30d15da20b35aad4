//! Why a request to the API server failed, in words that name the cause
//! (TLS, DNS, a refused connection, 401, 403) and the next step. The
//! client's own message (`ServiceError: client error (Connect)`) names
//! neither, so the error's source chain is read for the cause.

use std::error::Error;

/// One line naming the cause of a failed connection and what to check.
pub fn transport(e: &(dyn Error + 'static)) -> String {
    let chain = chain(e);
    let text = chain.join(": ");
    for err in sources(e) {
        if let Some(t) = tls(err) {
            return format!("TLS: {t} ({text})");
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(t) = io.get_ref().and_then(|inner| tls(inner)) {
                return format!("TLS: {t} ({text})");
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!(
                        "connection refused: nothing listens at the API server's address; check \
                         `server:` in the kubeconfig and that the cluster is up ({text})"
                    );
                }
                std::io::ErrorKind::TimedOut => {
                    return format!(
                        "timed out connecting to the API server; check the network path (VPN, \
                         firewall) to `server:` in the kubeconfig ({text})"
                    );
                }
                _ => {}
            }
        }
    }
    let lower = text.to_lowercase();
    // The TLS library's error may come from another copy of rustls than
    // ours (downcasts fail then): its message is stable.
    if let Some(rest) = lower.split("invalid peer certificate: ").nth(1) {
        let t = if rest.starts_with("unknownissuer") || rest.starts_with("badsignature") {
            UNTRUSTED.to_string()
        } else if rest.starts_with("expired") {
            EXPIRED.to_string()
        } else if rest.starts_with("notvalidforname") {
            WRONG_NAME.to_string()
        } else {
            "the API server's certificate was refused".to_string()
        };
        return format!("TLS: {t} ({text})");
    }
    if lower.contains("received fatal alert") || lower.contains("tls handshake") {
        return format!("TLS: the TLS handshake with the API server failed ({text})");
    }
    if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
    {
        return format!(
            "DNS: the API server's host name does not resolve; check `server:` in the kubeconfig \
             and the DNS of this machine ({text})"
        );
    }
    if lower.contains("connection refused") {
        return format!(
            "connection refused: nothing listens at the API server's address; check `server:` in \
             the kubeconfig and that the cluster is up ({text})"
        );
    }
    text
}

/// What to do about an error status: 401 and 403 get a next step.
pub fn status_hint(code: u16) -> Option<&'static str> {
    match code {
        401 => Some(
            "the API server refused the credentials (401 Unauthorized): the kubeconfig's token \
             or client certificate is missing, wrong or expired; log in again or pass another \
             kubeconfig with --kubeconfig",
        ),
        403 => Some(
            "the credentials are valid but not allowed this (403 Forbidden): grant keelson's \
             user or service account RBAC permission for it",
        ),
        _ => None,
    }
}

const UNTRUSTED: &str = "the API server's certificate is not trusted: it is signed by a CA the \
     kubeconfig does not name; set `certificate-authority-data` (or `certificate-authority`) of \
     the kubeconfig's cluster to that CA";
const EXPIRED: &str =
    "the API server's certificate has expired; renew it, or check this machine's clock";
const WRONG_NAME: &str = "the API server's certificate is not valid for the host name in \
     `server:`; use the name the certificate was issued for (or `tls-server-name` in the kubeconfig)";

fn tls(e: &(dyn Error + 'static)) -> Option<String> {
    use rustls::CertificateError as C;
    match e.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(c) => Some(match c {
            C::UnknownIssuer | C::BadSignature => UNTRUSTED.to_string(),
            C::Expired | C::ExpiredContext { .. } => EXPIRED.to_string(),
            C::NotValidForName | C::NotValidForNameContext { .. } => WRONG_NAME.to_string(),
            other => format!("the API server's certificate was refused: {other:?}"),
        }),
        other => Some(format!(
            "the TLS handshake with the API server failed: {other}"
        )),
    }
}

fn sources<'a>(e: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut out = vec![e];
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s);
        cur = s.source();
    }
    out
}

/// The messages of the chain, without repeats (wrappers often repeat their
/// source's message).
fn chain(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sources(e) {
        let m = s.to_string();
        if !out.iter().any(|o| o.contains(&m)) {
            out.push(m);
        }
    }
    out
}
