//! The HTTP side of [`Forge`]: requests of the documented shapes, pages
//! followed, answers mapped onto [`MergeRequest`].
//!
//! GitHub: REST API v3 with `Accept: application/vnd.github+json`,
//! `X-GitHub-Api-Version: 2022-11-28`, `Authorization: Bearer TOKEN` and a
//! `User-Agent` (GitHub refuses requests without one); pages of 100 while
//! the `Link` header has `rel="next"` ("Using pagination in the REST API").
//! GitLab: REST API v4 with `PRIVATE-TOKEN: TOKEN`; the project path
//! percent-encoded as one segment (`group%2Fname`); pages of 100 while
//! `X-Next-Page` is not empty ("REST API: Pagination").

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::{Value as Json, json};

use super::{ForgeConfig, ForgeError, ForgeKind, MergeRequest, MergeRequestState, NewMergeRequest};
use crate::backup::etcd::error_chain as chain;
use crate::source::Secret;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Items per page (both forges' maximum).
const PER_PAGE: usize = 100;

/// Most pages read of one list (10,000 open merge requests).
const MAX_PAGES: usize = 100;

/// A client of one forge, for one repository by default. Cheap to clone.
#[derive(Clone)]
pub struct Forge {
    kind: ForgeKind,
    api: String,
    repository: Option<String>,
    token: Secret,
    http: reqwest::Client,
}

impl std::fmt::Debug for Forge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forge")
            .field("kind", &self.kind)
            .field("api", &self.api)
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl Forge {
    /// A client for `cfg`, reading its token; `base` is the folder of the
    /// config file, for relative paths. Errors name the config key.
    pub fn from_config(cfg: &ForgeConfig, base: &Path) -> Result<Forge, ForgeError> {
        let token = match (&cfg.token_file, &cfg.token_env) {
            (Some(_), Some(_)) => {
                return Err(ForgeError::Config(
                    "both forge.tokenFile and forge.tokenEnv are set; keep one".into(),
                ));
            }
            (Some(file), None) => {
                let path = ForgeConfig::resolve(file, base);
                std::fs::read_to_string(&path).map_err(|e| {
                    ForgeError::Config(format!(
                        "cannot read forge.tokenFile {}: {e}",
                        path.display()
                    ))
                })?
            }
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                ForgeError::Config(format!(
                    "environment variable `{var}` (forge.tokenEnv) is not set"
                ))
            })?,
            (None, None) => {
                return Err(ForgeError::Config(
                    "no token: set forge.tokenFile or forge.tokenEnv".into(),
                ));
            }
        };
        let token = Secret::new(token.trim());
        if token.expose().is_empty() {
            return Err(ForgeError::Config("the forge token is empty".into()));
        }
        let api = cfg.api_url();
        check_url(&api)?;
        let mut builder = crate::http::client_builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("keelson/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let path = ForgeConfig::resolve(ca, base);
            let pem = std::fs::read(&path).map_err(|e| {
                ForgeError::Config(format!("cannot read forge.caFile {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    ForgeError::Config(format!(
                        "forge.caFile {} holds no PEM certificate",
                        path.display()
                    ))
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| {
            ForgeError::Config(format!("cannot build the HTTP client: {}", chain(&e)))
        })?;
        Ok(Forge {
            kind: cfg.kind,
            api,
            repository: cfg.repository.clone(),
            token,
            http,
        })
    }

    /// The same forge and token, asking about `repository` (GitHub
    /// `owner/name`, GitLab project path or id).
    pub fn for_repository(&self, repository: &str) -> Forge {
        Forge {
            repository: Some(repository.to_string()),
            ..self.clone()
        }
    }

    /// Which API it speaks.
    pub fn kind(&self) -> ForgeKind {
        self.kind
    }

    /// The repository it asks about, if any.
    pub fn repository(&self) -> Option<&str> {
        self.repository.as_deref()
    }

    /// The open merge requests, with `label` when one is given (GitLab
    /// filters on the server, GitHub here). Every page is read.
    pub async fn open_merge_requests(
        &self,
        label: Option<&str>,
    ) -> Result<Vec<MergeRequest>, ForgeError> {
        let base = self.repo_url()?;
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut q = form_urlencoded::Serializer::new(String::new());
            match self.kind {
                ForgeKind::Github => q.append_pair("state", "open"),
                ForgeKind::Gitlab => q.append_pair("state", "opened"),
            };
            if let (ForgeKind::Gitlab, Some(l)) = (self.kind, label) {
                q.append_pair("labels", l);
            }
            q.append_pair("per_page", &PER_PAGE.to_string());
            q.append_pair("page", &page.to_string());
            let url = format!("{base}?{}", q.finish());
            let (body, more) = self.send_page(Method::GET, &url).await?;
            let items = body.as_array().ok_or_else(|| ForgeError::Unexpected {
                url: url.clone(),
                message: "expected a JSON array of merge requests".into(),
            })?;
            for item in items {
                let mr = self.parse(item, &url)?;
                if label.is_none_or(|l| mr.has_label(l)) && mr.state == MergeRequestState::Open {
                    out.push(mr);
                }
            }
            if !more || items.is_empty() {
                return Ok(out);
            }
        }
        Err(ForgeError::Unexpected {
            url: base,
            message: format!("more than {MAX_PAGES} pages of open merge requests"),
        })
    }

    /// One merge request, by its number (GitHub) or iid (GitLab).
    pub async fn merge_request(&self, number: u64) -> Result<MergeRequest, ForgeError> {
        let url = format!("{}/{number}", self.repo_url()?);
        let (body, _) = self.send_page(Method::GET, &url).await?;
        self.parse(&body, &url)
    }

    /// Open a merge request; returns it as the forge recorded it (its
    /// [`MergeRequest::web_url`] is the page to link to).
    pub async fn create_merge_request(
        &self,
        new: &NewMergeRequest,
    ) -> Result<MergeRequest, ForgeError> {
        let url = self.repo_url()?;
        let body = match self.kind {
            ForgeKind::Github => json!({
                "title": new.title,
                "head": new.head_branch,
                "base": new.base_branch,
                "body": new.description,
            }),
            ForgeKind::Gitlab => json!({
                "source_branch": new.head_branch,
                "target_branch": new.base_branch,
                "title": new.title,
                "description": new.description,
            }),
        };
        let request = self.authorize(self.http.post(&url)).json(&body);
        let (answer, _) = self.send(Method::POST, &url, request).await?;
        self.parse(&answer, &url)
    }

    /// `.../pulls` or `.../merge_requests` of the repository.
    fn repo_url(&self) -> Result<String, ForgeError> {
        let repo = self.repository.as_deref().ok_or(ForgeError::NoRepository)?;
        Ok(match self.kind {
            ForgeKind::Github => format!("{}/repos/{}/pulls", self.api, repo.trim_matches('/')),
            ForgeKind::Gitlab => {
                let id: String =
                    form_urlencoded::byte_serialize(repo.trim_matches('/').as_bytes()).collect();
                format!("{}/projects/{id}/merge_requests", self.api)
            }
        })
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match self.kind {
            ForgeKind::Github => request
                .bearer_auth(self.token.expose())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            ForgeKind::Gitlab => request.header("PRIVATE-TOKEN", self.token.expose()),
        }
    }

    async fn send_page(&self, method: Method, url: &str) -> Result<(Json, bool), ForgeError> {
        let request = self.authorize(self.http.request(method.clone(), url));
        self.send(method, url, request).await
    }

    /// Send, and read the JSON answer and whether another page follows.
    async fn send(
        &self,
        method: Method,
        url: &str,
        request: RequestBuilder,
    ) -> Result<(Json, bool), ForgeError> {
        let response = request.send().await.map_err(|e| ForgeError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            message: self.redact(&chain(&e)),
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| ForgeError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            message: self.redact(&chain(&e)),
        })?;
        if !status.is_success() {
            return Err(ForgeError::Refused {
                method: method.to_string(),
                url: url.to_string(),
                status: status.as_u16(),
                message: self.redact(&error_message(&text)),
            });
        }
        let more = match self.kind {
            ForgeKind::Github => headers
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.split(',').any(|l| l.contains("rel=\"next\""))),
            ForgeKind::Gitlab => headers
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| !v.trim().is_empty()),
        };
        let body = serde_json::from_str(&text).map_err(|e| ForgeError::Unexpected {
            url: url.to_string(),
            message: format!("not JSON: {e}"),
        })?;
        Ok((body, more))
    }

    /// The token never leaves in a message, whatever a server echoes.
    fn redact(&self, text: &str) -> String {
        text.replace(self.token.expose(), "***")
    }

    /// One merge request of either API.
    fn parse(&self, v: &Json, url: &str) -> Result<MergeRequest, ForgeError> {
        let bad = |what: &str| ForgeError::Unexpected {
            url: url.to_string(),
            message: format!("a merge request without {what}"),
        };
        let s = |p: &str| v.pointer(p).and_then(Json::as_str).map(str::to_string);
        let labels: Vec<String> = v
            .get("labels")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().or_else(|| l.get("name")?.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mr = match self.kind {
            ForgeKind::Github => {
                let merged = v.get("merged").and_then(Json::as_bool) == Some(true)
                    || v.get("merged_at").is_some_and(|m| !m.is_null());
                let state = match (s("/state").as_deref(), merged) {
                    (_, true) => MergeRequestState::Merged,
                    (Some("open"), _) => MergeRequestState::Open,
                    (Some("closed"), _) => MergeRequestState::Closed,
                    _ => return Err(bad("a state of open or closed")),
                };
                MergeRequest {
                    number: v
                        .get("number")
                        .and_then(Json::as_u64)
                        .ok_or_else(|| bad("number"))?,
                    title: s("/title").unwrap_or_default(),
                    state,
                    labels,
                    head_branch: s("/head/ref").ok_or_else(|| bad("head.ref"))?,
                    head_sha: s("/head/sha").ok_or_else(|| bad("head.sha"))?,
                    base_branch: s("/base/ref").unwrap_or_default(),
                    web_url: s("/html_url").ok_or_else(|| bad("html_url"))?,
                }
            }
            ForgeKind::Gitlab => {
                let state = match s("/state").as_deref() {
                    Some("opened" | "locked") => MergeRequestState::Open,
                    Some("closed") => MergeRequestState::Closed,
                    Some("merged") => MergeRequestState::Merged,
                    _ => return Err(bad("a state of opened, closed, merged or locked")),
                };
                MergeRequest {
                    number: v
                        .get("iid")
                        .and_then(Json::as_u64)
                        .ok_or_else(|| bad("iid"))?,
                    title: s("/title").unwrap_or_default(),
                    state,
                    labels,
                    head_branch: s("/source_branch").ok_or_else(|| bad("source_branch"))?,
                    // `sha` is null for a moment after a merge request is opened.
                    head_sha: s("/sha").unwrap_or_default(),
                    base_branch: s("/target_branch").unwrap_or_default(),
                    web_url: s("/web_url").ok_or_else(|| bad("web_url"))?,
                }
            }
        };
        Ok(mr)
    }
}

/// `https://` anywhere, `http://` only to this machine: a token never
/// crosses a network in the clear.
fn check_url(api: &str) -> Result<(), ForgeError> {
    let url = reqwest::Url::parse(api)
        .map_err(|e| ForgeError::Config(format!("forge.apiUrl `{api}` is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(ForgeError::Config(format!(
            "forge.apiUrl `{api}` is plain http: the token would cross the network in the clear; use https:// (http:// is accepted only for a loopback address)"
        ))),
        other => Err(ForgeError::Config(format!(
            "forge.apiUrl `{api}`: unsupported scheme `{other}`, expected https://"
        ))),
    }
}

/// The forge's own words from an error body: GitHub's `message` (and its
/// `errors[].message`), GitLab's `message` or `error`; else the text.
fn error_message(text: &str) -> String {
    let parsed: Option<Json> = serde_json::from_str(text).ok();
    let mut m = match &parsed {
        Some(v) => {
            let main = match v.get("message").or_else(|| v.get("error")) {
                Some(Json::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => text.to_string(),
            };
            let details: Vec<&str> = v
                .get("errors")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("message").and_then(Json::as_str))
                .collect();
            if details.is_empty() {
                main
            } else {
                format!("{main}: {}", details.join("; "))
            }
        }
        None => text.to_string(),
    };
    if m.chars().count() > 300 {
        m = m.chars().take(300).collect::<String>() + "...";
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_url("https://gitlab.example.com/api/v4").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://localhost:1/api/v4").is_ok());
        assert!(check_url("http://[::1]:8080").is_ok());
        let e = check_url("http://gitlab.example.com/api/v4").unwrap_err();
        assert!(e.to_string().contains("in the clear"), "{e}");
        assert!(check_url("ftp://x").is_err());
    }

    #[test]
    fn error_messages_come_from_the_forge() {
        assert_eq!(
            error_message(
                r#"{"message":"Validation Failed","errors":[{"message":"A pull request already exists for acme:b."}]}"#
            ),
            "Validation Failed: A pull request already exists for acme:b."
        );
        assert_eq!(
            error_message(r#"{"message":["Another open merge request already exists"]}"#),
            r#"["Another open merge request already exists"]"#
        );
        assert_eq!(
            error_message(r#"{"error":"invalid_token"}"#),
            "invalid_token"
        );
        assert_eq!(
            error_message("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }
}
