//! Push webhooks: verification of GitHub's `X-Hub-Signature-256` (HMAC-SHA256
//! of the raw body) and GitLab's `X-Gitlab-Token` (the shared secret itself),
//! both compared in constant time; then the payload (JSON, or GitHub's form
//! encoding) and the event: a push to the followed branch makes the
//! controller fetch, a merge request event makes the preview source list
//! the merge requests again.

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

/// What a verified request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A GitHub `ping` (sent when the hook is created).
    Ping,
    /// A push to the followed branch (including its deletion): fetch now.
    Push,
    /// A merge request was opened, labelled, pushed to, closed or merged
    /// (GitHub `pull_request`, GitLab `Merge Request Hook`): the preview
    /// source lists the merge requests again now.
    MergeRequest,
    /// Anything else: another event type, a push to another branch or a tag.
    /// Answered 202 with the reason, and nothing is fetched.
    Ignored {
        /// Why, for the response and the log.
        reason: String,
    },
}

/// Why a verified request's body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Neither JSON nor GitHub's form encoding (HTTP 415).
    #[error(
        "unsupported Content-Type {0:?}: send application/json (or GitHub's application/x-www-form-urlencoded)"
    )]
    UnsupportedMediaType(String),
    /// The body does not decode (HTTP 400).
    #[error("cannot read the webhook payload: {0}")]
    Malformed(String),
}

/// The event name headers, GitHub's first (Gitea and Forgejo send it too).
const EVENT_HEADERS: [&str; 4] = [
    "x-github-event",
    "x-gitea-event",
    "x-gogs-event",
    "x-gitlab-event",
];

/// Decode the JSON payload of a verified request. GitHub's form-encoded
/// deliveries carry it in the `payload` field; the signature covers the raw
/// body, so this runs only after [`verify`].
pub fn payload(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, PayloadError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = match mime.as_str() {
        // GitLab and GitHub send JSON; a sender that names no type gets the benefit of the doubt.
        "" | "application/json" => body.to_vec(),
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or_else(|| PayloadError::Malformed("the form has no `payload` field".into()))?,
        _ => return Err(PayloadError::UnsupportedMediaType(content_type)),
    };
    serde_json::from_slice(&json).map_err(|e| PayloadError::Malformed(format!("invalid JSON: {e}")))
}

/// Classify a verified request for `branch`: only a push to
/// `refs/heads/<branch>` is [`Event::Push`]; merge request events are
/// [`Event::MergeRequest`], whatever their branch. The event type comes from the
/// `X-GitHub-Event` header (or Gitea's, Gogs', GitLab's `X-Gitlab-Event`);
/// GitLab's system hooks name it in `object_kind`.
pub fn classify(headers: &HeaderMap, payload: &serde_json::Value, branch: &str) -> Event {
    let event = EVENT_HEADERS
        .iter()
        .find_map(|h| headers.get(*h))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let kind = payload.get("object_kind").and_then(|k| k.as_str());
    let is_push = match event.as_deref() {
        Some("ping") => return Event::Ping,
        Some("pull_request" | "Merge Request Hook") => return Event::MergeRequest,
        Some("System Hook") if kind == Some("merge_request") => return Event::MergeRequest,
        Some("push" | "Push Hook") => true,
        Some("System Hook") => kind == Some("push"),
        Some(other) => {
            return Event::Ignored {
                reason: format!("{other} events do not change the branch"),
            };
        }
        None => kind == Some("push"),
    };
    if !is_push {
        return Event::Ignored {
            reason: "not a push event (no X-GitHub-Event or X-Gitlab-Event header)".into(),
        };
    }
    let wanted = format!("refs/heads/{branch}");
    match payload.get("ref").and_then(|r| r.as_str()) {
        Some(r) if r == wanted => Event::Push,
        Some(r) => Event::Ignored {
            reason: format!("{r} is not the followed branch"),
        },
        None => Event::Ignored {
            reason: "the push names no ref".into(),
        },
    }
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

    #[test]
    fn only_pushes_to_the_followed_branch_are_pushes() {
        let push = serde_json::json!({"ref": "refs/heads/main", "after": "abc"});
        let gh = |event: &'static str| headers(&[("x-github-event", event)]);
        assert_eq!(classify(&gh("push"), &push, "main"), Event::Push);
        assert_eq!(classify(&gh("ping"), &push, "main"), Event::Ping);
        assert_eq!(
            classify(&gh("pull_request"), &push, "main"),
            Event::MergeRequest
        );
        for event in ["issue_comment", "create", "delete", "status"] {
            assert!(
                matches!(classify(&gh(event), &push, "main"), Event::Ignored { .. }),
                "{event}"
            );
        }
        let tag = serde_json::json!({"ref": "refs/tags/v1.0.0"});
        assert_eq!(
            classify(&gh("push"), &tag, "main"),
            Event::Ignored {
                reason: "refs/tags/v1.0.0 is not the followed branch".into()
            }
        );
        // A branch whose name ends like the followed one is another branch.
        let other = serde_json::json!({"ref": "refs/heads/not-main"});
        assert!(matches!(
            classify(&gh("push"), &other, "main"),
            Event::Ignored { .. }
        ));
        let gl = |event: &'static str| headers(&[("x-gitlab-event", event)]);
        assert_eq!(classify(&gl("Push Hook"), &push, "main"), Event::Push);
        assert_eq!(
            classify(&gl("Merge Request Hook"), &push, "main"),
            Event::MergeRequest
        );
        assert!(matches!(
            classify(&gl("Tag Push Hook"), &tag, "main"),
            Event::Ignored { .. }
        ));
        let system = serde_json::json!({"object_kind": "push", "ref": "refs/heads/main"});
        assert_eq!(classify(&gl("System Hook"), &system, "main"), Event::Push);
        assert!(matches!(
            classify(&HeaderMap::new(), &push, "main"),
            Event::Ignored { .. }
        ));
    }

    #[test]
    fn form_encoded_payloads_are_decoded_and_other_types_refused() {
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let body = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
        assert_eq!(payload(&form, body).unwrap()["ref"], "refs/heads/main");
        assert!(matches!(
            payload(&form, b"ref=refs/heads/main"),
            Err(PayloadError::Malformed(_))
        ));
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(payload(&json, br#"{"ref":"x"}"#).unwrap()["ref"], "x");
        assert!(matches!(
            payload(&json, b"{"),
            Err(PayloadError::Malformed(_))
        ));
        let xml = headers(&[("content-type", "text/xml")]);
        assert_eq!(
            payload(&xml, b"<push/>"),
            Err(PayloadError::UnsupportedMediaType("text/xml".into()))
        );
    }
}
