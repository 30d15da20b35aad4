//! Push webhook verification: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of
//! the body) and GitLab's `X-Gitlab-Token` (the shared secret itself). Both
//! are compared in constant time.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::source::Secret;

/// Who signed a verified request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// Verified by `X-Hub-Signature-256`.
    GitHub,
    /// Verified by `X-Gitlab-Token`.
    GitLab,
}

/// Why a webhook request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The controller has no webhook secret.
    #[error("webhooks are not configured (set controller.webhook.secretFile or secretEnv)")]
    NotConfigured,
    /// Neither signature header is present.
    #[error("the request is not signed (no X-Hub-Signature-256 or X-Gitlab-Token header)")]
    Unsigned,
    /// The signature header is not `sha256=<hex>`.
    #[error("malformed X-Hub-Signature-256 header (expected sha256=<hex>)")]
    Malformed,
    /// The signature or token does not match the secret.
    #[error("the signature does not match the configured secret")]
    BadSignature,
}

/// Verify a webhook request against `secret`.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&Secret>,
) -> Result<Sender, WebhookError> {
    let secret = secret.ok_or(WebhookError::NotConfigured)?;
    if let Some(sig) = headers.get("x-hub-signature-256") {
        let hex_sig = sig
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("sha256="))
            .ok_or(WebhookError::Malformed)?;
        let given = hex::decode(hex_sig.trim()).map_err(|_| WebhookError::Malformed)?;
        let expected = sign(secret.expose().as_bytes(), body);
        return if bool::from(expected.as_slice().ct_eq(&given)) {
            Ok(Sender::GitHub)
        } else {
            Err(WebhookError::BadSignature)
        };
    }
    if let Some(token) = headers.get("x-gitlab-token") {
        return if bool::from(token.as_bytes().ct_eq(secret.expose().as_bytes())) {
            Ok(Sender::GitLab)
        } else {
            Err(WebhookError::BadSignature)
        };
    }
    Err(WebhookError::Unsigned)
}

/// HMAC-SHA256 of `body` with `key`.
pub fn sign(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// What a verified push is about, from its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A GitHub `ping` (sent when the hook is created).
    Ping,
    /// A push to `git_ref` (`refs/heads/main`), or a push of unknown shape.
    Push {
        /// The pushed ref, when the body names one.
        git_ref: Option<String>,
    },
}

/// Classify a verified request.
pub fn event(headers: &HeaderMap, body: &[u8]) -> Event {
    if headers
        .get("x-github-event")
        .is_some_and(|v| v.as_bytes() == b"ping")
    {
        return Event::Ping;
    }
    let git_ref = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("ref").and_then(|r| r.as_str()).map(str::to_string));
    Event::Push { git_ref }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn github_signature_matches_the_documented_example() {
        // The example from GitHub's "Validating webhook deliveries" page.
        let secret = Secret::new("It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let h = headers(&[("x-hub-signature-256", sig)]);
        assert_eq!(
            verify(&h, b"Hello, World!", Some(&secret)),
            Ok(Sender::GitHub)
        );
        assert_eq!(
            verify(&h, b"Hello, World?", Some(&secret)),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn refuses_unsigned_malformed_and_wrong_tokens() {
        let secret = Secret::new("s3cret");
        assert_eq!(
            verify(&HeaderMap::new(), b"{}", Some(&secret)),
            Err(WebhookError::Unsigned)
        );
        let h = headers(&[("x-hub-signature-256", "sha1=abc")]);
        assert_eq!(
            verify(&h, b"{}", Some(&secret)),
            Err(WebhookError::Malformed)
        );
        let h = headers(&[("x-gitlab-token", "s3cret")]);
        assert_eq!(verify(&h, b"{}", Some(&secret)), Ok(Sender::GitLab));
        let h = headers(&[("x-gitlab-token", "s3cre")]);
        assert_eq!(
            verify(&h, b"{}", Some(&secret)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify(&h, b"{}", None), Err(WebhookError::NotConfigured));
    }
}
