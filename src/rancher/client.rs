//! HTTP client for Rancher's v3 REST API.
//!
//! Thin on purpose: it sends one request, sorts Rancher's answer into a
//! [`RancherError`] variant, and follows pagination. The planner and applier
//! decide what to send.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::RancherEndpoint;
use super::error::{ApiError, RancherError};
use crate::controller::fence::Fence;

/// Request timeout when the config names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of a read that met a 502/503/504.
const READ_RETRIES: u32 = 2;
/// How long apply waits for a project to become `active` by default.
pub const DEFAULT_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// A Rancher API token (`token-xxxxx:secret`). Its `Debug` never shows it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token value; surrounding whitespace (a trailing newline in a
    /// file) is dropped.
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into().trim().to_string())
    }

    fn header(&self) -> Result<HeaderValue, RancherError> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            RancherError::Config(
                "the Rancher token contains characters not allowed in a header".into(),
            )
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A connection to one Rancher server.
#[derive(Clone)]
pub struct RancherClient {
    http: reqwest::Client,
    base: String,
    token: Token,
    timeout: Duration,
    pub(crate) active_timeout: Duration,
    pub(crate) poll_interval: Duration,
    /// Checked before every write (not reads), when replicas share the
    /// environments: a stale Lease holder sends nothing.
    fence: Option<Arc<dyn Fence>>,
}

impl std::fmt::Debug for RancherClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RancherClient")
            .field("base", &self.base)
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RancherClient {
    /// Builds a client from the keelson config: reads the token from
    /// `tokenFile` or `tokenEnv`, trusts `caFile` when given, verifies TLS
    /// unless `insecureSkipTlsVerify` is set.
    pub fn from_endpoint(ep: &RancherEndpoint) -> Result<Self, RancherError> {
        let token = match (&ep.token_file, &ep.token_env) {
            (Some(_), Some(_)) => {
                return Err(RancherError::Config(
                    "set only one of tokenFile and tokenEnv".into(),
                ));
            }
            (Some(path), None) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| RancherError::TokenFile {
                        path: path.clone(),
                        source,
                    })?;
                Token::new(text)
            }
            (None, Some(var)) => Token::new(std::env::var(var).map_err(|_| {
                RancherError::Config(format!(
                    "environment variable {var} (tokenEnv) is not set or not UTF-8"
                ))
            })?),
            (None, None) => {
                return Err(RancherError::Config(
                    "no token: set tokenFile or tokenEnv".into(),
                ));
            }
        };
        if token.0.is_empty() {
            return Err(RancherError::Config("the Rancher token is empty".into()));
        }
        let timeout = ep
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        let mut builder = crate::http::client_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("keelson/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &ep.ca_file {
            builder = builder.tls_certs_only(read_ca(ca)?);
        }
        if ep.insecure_skip_tls_verify {
            tracing::warn!(url = %ep.url, "TLS verification of Rancher is switched off (insecureSkipTlsVerify)");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| {
            RancherError::Config(format!("cannot build the HTTP client: {}", chain(&e)))
        })?;
        Self::with_http(http, &ep.url, token, timeout)
    }

    /// Builds a client around a prepared `reqwest::Client` (its TLS settings are kept).
    pub fn with_http(
        http: reqwest::Client,
        url: &str,
        token: Token,
        timeout: Duration,
    ) -> Result<Self, RancherError> {
        let base = url.trim_end_matches('/');
        let base = base.strip_suffix("/v3").unwrap_or(base).to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(RancherError::Config(format!(
                "url {url:?} must start with https://"
            )));
        }
        Ok(RancherClient {
            http,
            base,
            token,
            timeout,
            active_timeout: DEFAULT_ACTIVE_TIMEOUT,
            poll_interval: Duration::from_millis(500),
            fence: None,
        })
    }

    /// Sets how long apply waits for a project to become `active`, and how often it looks.
    pub fn with_active_wait(mut self, timeout: Duration, poll_interval: Duration) -> Self {
        self.active_timeout = timeout;
        self.poll_interval = poll_interval;
        self
    }

    /// This client with `fence` checked before every write (POST, PUT,
    /// DELETE; reads are not fenced): `keelson run` with replicas passes the
    /// environment's Lease term, so a holder that lost it writes nothing to
    /// Rancher either. A refused write is [`RancherError::Fenced`].
    pub fn with_fence(mut self, fence: Arc<dyn Fence>) -> Self {
        self.fence = Some(fence);
        self
    }

    /// The server's base URL (without `/v3`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request to `path` (starting with `/v3`) and returns the JSON
    /// body. Reads are retried twice on 502/503/504 (a Rancher behind a load
    /// balancer restarting); writes never are, as they may have happened.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, RancherError> {
        if method != Method::GET
            && let Some(fence) = &self.fence
            && let Err(why) = fence.check().await
        {
            tracing::warn!(%method, path, "Rancher write refused by the lease fence: {why}");
            return Err(RancherError::Fenced {
                method: method.to_string(),
                path: path.to_string(),
                why,
            });
        }
        let mut attempt = 0;
        loop {
            let result = self.request_once(&method, path, query, body).await;
            let transient = matches!(
                result.as_ref().err().and_then(RancherError::status),
                Some(502..=504)
            );
            if method != Method::GET || !transient || attempt == READ_RETRIES {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
        }
    }

    async fn request_once(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, RancherError> {
        let method = method.clone();
        let mut url = format!("{}{}", self.base, path);
        if !query.is_empty() {
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", seg(k), seg(v)))
                .collect();
            url.push('?');
            url.push_str(&pairs.join("&"));
        }
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header(AUTHORIZATION, self.token.header()?)
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport(&method, path, e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.transport(&method, path, e))?;
        tracing::debug!(%method, path, status = status.as_u16(), "rancher request");
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| RancherError::Decode {
                method: method.to_string(),
                path: path.to_string(),
                detail: e.to_string(),
            });
        }
        Err(RancherError::from_api(api_error(
            &method, path, status, &bytes,
        )))
    }

    /// Lists a collection, following `pagination.next`.
    ///
    /// Rancher builds `next` from the host a request reached it by, so
    /// behind a proxy that rewrites the host it names the inner host. Only
    /// the path and query of `next` are used, and only when the path is the
    /// collection being listed; the request goes to the configured URL, so
    /// the token never follows a link to another host.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, RancherError> {
        let mut out = Vec::new();
        let mut page = self.request(Method::GET, path, query, None).await?;
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let data =
                page.get("data")
                    .and_then(Value::as_array)
                    .ok_or_else(|| RancherError::Decode {
                        method: "GET".into(),
                        path: path.to_string(),
                        detail: "a collection without `data`".into(),
                    })?;
            out.extend(data.iter().cloned());
            let next = page
                .pointer("/pagination/next")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let Some(next) = next else { break };
            let (next_path, next_query) = self.next_page(path, next)?;
            if !seen.insert(next_query.clone()) {
                return Err(RancherError::Decode {
                    method: "GET".into(),
                    path: path.to_string(),
                    detail: format!("pagination.next repeats a page: {next}"),
                });
            }
            let refs: Vec<(&str, &str)> = next_query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            page = self.request(Method::GET, &next_path, &refs, None).await?;
        }
        Ok(out)
    }

    /// The path and query of a `pagination.next` link, checked to continue
    /// the collection at `path`.
    fn next_page(
        &self,
        path: &str,
        next: &str,
    ) -> Result<(String, Vec<(String, String)>), RancherError> {
        let off = |why: &str| RancherError::Decode {
            method: "GET".into(),
            path: path.to_string(),
            detail: format!("pagination.next {why}: {next}"),
        };
        let url = reqwest::Url::parse(next)
            .or_else(|_| reqwest::Url::parse(&self.base)?.join(next))
            .map_err(|_| off("is not a URL"))?;
        // A Rancher served under a path prefix (`https://host/rancher`)
        // may or may not repeat the prefix in its links.
        let prefix = reqwest::Url::parse(&self.base)
            .map(|b| b.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        let link_path = url.path();
        let link_path = link_path
            .strip_prefix(prefix.as_str())
            .filter(|p| p.starts_with("/v3"))
            .unwrap_or(link_path);
        if link_path.trim_end_matches('/') != path.trim_end_matches('/') {
            return Err(off(&format!("leaves the collection {path}")));
        }
        let query = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok((path.to_string(), query))
    }

    /// GETs one object, `None` when Rancher answers 404.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, RancherError> {
        match self.request(Method::GET, path, &[], None).await {
            Ok(v) => Ok(Some(v)),
            Err(RancherError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn transport(&self, method: &Method, path: &str, e: reqwest::Error) -> RancherError {
        if e.is_timeout() {
            RancherError::Timeout {
                method: method.to_string(),
                path: path.to_string(),
                after: self.timeout,
            }
        } else {
            RancherError::Transport {
                method: method.to_string(),
                path: path.to_string(),
                detail: chain(&e),
            }
        }
    }
}

/// Escapes one path segment (ids hold `:`, which is fine; names may hold more).
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn api_error(method: &Method, path: &str, status: StatusCode, body: &[u8]) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let code = field("code").unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("Unknown")
            .replace(' ', "")
    });
    let message = field("message").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            "(no message)".to_string()
        } else {
            text.chars().take(300).collect()
        }
    });
    ApiError {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        code,
        message,
        field_name: field("fieldName"),
    }
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, RancherError> {
    let pem = std::fs::read(path).map_err(|e| RancherError::CaFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RancherError::CaFile {
        path: path.to_path_buf(),
        reason: chain(&e),
    })?;
    if certs.is_empty() {
        return Err(RancherError::CaFile {
            path: path.to_path_buf(),
            reason: "no certificate found in it".into(),
        });
    }
    Ok(certs)
}

/// An error with its causes, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = Token::new("token-abcde:supersecret\n");
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        assert!(!format!("{t:?}").contains("supersecret"));
    }

    #[test]
    fn segments_and_query_round_trip() {
        assert_eq!(seg("c-m-abc12:p-xyz34"), "c-m-abc12:p-xyz34");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn next_page_keeps_path_and_query_and_drops_the_host() {
        let c = RancherClient::with_http(
            crate::http::client(),
            "https://rancher.example.com/rancher",
            Token::new("t"),
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        let (p, q) = c
            .next_page(
                "/v3/projects",
                "http://rancher.cattle-system.svc/v3/projects?limit=2&marker=p-2&name=a%20b",
            )
            .unwrap();
        assert_eq!(p, "/v3/projects");
        assert_eq!(
            q,
            vec![
                ("limit".to_string(), "2".to_string()),
                ("marker".to_string(), "p-2".to_string()),
                ("name".to_string(), "a b".to_string())
            ]
        );
        // The base path prefix may be repeated in links.
        let (p, _) = c
            .next_page(
                "/v3/projects",
                "https://rancher.example.com/rancher/v3/projects?marker=x",
            )
            .unwrap();
        assert_eq!(p, "/v3/projects");
        let err = c
            .next_page("/v3/projects", "https://evil.example/v3/tokens?limit=1")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("leaves the collection /v3/projects"),
            "{err}"
        );
    }

    #[test]
    fn error_body_is_read() {
        let body = br#"{"type":"error","status":422,"code":"NotUnique","message":"name is taken","fieldName":"name"}"#;
        let e = api_error(
            &Method::POST,
            "/v3/projects",
            StatusCode::UNPROCESSABLE_ENTITY,
            body,
        );
        assert_eq!(e.code, "NotUnique");
        assert_eq!(e.message, "name is taken");
        assert_eq!(e.field_name.as_deref(), Some("name"));
        let plain = api_error(
            &Method::GET,
            "/v3",
            StatusCode::BAD_GATEWAY,
            b"upstream down",
        );
        assert_eq!(plain.code, "BadGateway");
        assert_eq!(plain.message, "upstream down");
    }
}
