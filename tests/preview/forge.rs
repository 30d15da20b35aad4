//! A local HTTP server that plays the GitHub and GitLab REST APIs for merge
//! requests, holding them in memory so that a test can open, label, push
//! to, close and merge them; and the tests of keelson's forge client
//! against it.
//!
//! The server refuses requests of the wrong shape as the real APIs do, so
//! that a client passing here sends what the documentation asks: the method
//! and path (`/repos/{owner}/{repo}/pulls[/{number}]`,
//! `/api/v4/projects/{id}/merge_requests[/{iid}]` with the project path as
//! one percent-encoded segment), the auth headers (GitHub: `Authorization:
//! Bearer`, `Accept: application/vnd.github+json`, `X-GitHub-Api-Version`,
//! a `User-Agent`; GitLab: `PRIVATE-TOKEN`), known query parameters, and a
//! JSON body with exactly the documented fields. Every refusal is recorded
//! ([`FakeForge::refused`]) so a test can assert there were none.
//! (tests/cli/post_comment.rs fakes the comment endpoints for a Python
//! script in another test binary; this one is axum, so it shares no code.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which API the server plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    GitHub,
    GitLab,
}

pub const GITHUB_TOKEN: &str = "ghp_t0kenThatMustNeverBePrinted";
pub const GITLAB_TOKEN: &str = "glpat-t0kenThatMustNeverBePrinted";

/// The repository (GitHub) and project (GitLab) the server holds.
pub const REPOSITORY: &str = "shop/storefront";
/// The GitLab project's numeric id, also accepted in paths.
pub const PROJECT_ID: u64 = 42;

/// One merge request as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mr {
    pub number: u64,
    pub title: String,
    pub description: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
    pub labels: Vec<String>,
    pub head_branch: String,
    pub head_sha: String,
    pub base_branch: String,
}

/// A request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Default)]
struct Inner {
    mrs: BTreeMap<u64, Mr>,
    next: u64,
    seen: Vec<Seen>,
    refused: Vec<String>,
}

struct Shared {
    flavour: Flavour,
    url: String,
    inner: Mutex<Inner>,
}

/// The server; it stops with the test process.
pub struct FakeForge {
    /// Base URL of the API (GitLab: ending in `/api/v4`).
    pub api_url: String,
    shared: Arc<Shared>,
}

impl FakeForge {
    /// Start a server playing `flavour`, on a port of the loopback.
    pub fn start(flavour: Flavour) -> FakeForge {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            flavour,
            url: url.clone(),
            inner: Mutex::new(Inner {
                next: 1,
                ..Inner::default()
            }),
        });
        let state = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let api_url = match flavour {
            Flavour::GitHub => url,
            Flavour::GitLab => format!("{url}/api/v4"),
        };
        FakeForge { api_url, shared }
    }

    /// The token the server accepts.
    pub fn token(&self) -> &'static str {
        match self.shared.flavour {
            Flavour::GitHub => GITHUB_TOKEN,
            Flavour::GitLab => GITLAB_TOKEN,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.shared.inner.lock().unwrap())
    }

    fn change(&self, number: u64, f: impl FnOnce(&mut Mr)) {
        self.with(|i| f(i.mrs.get_mut(&number).expect("no such merge request")));
    }

    /// Open a merge request from `branch` at `sha` into `main`; its number.
    pub fn open(&self, branch: &str, sha: &str, labels: &[&str]) -> u64 {
        self.with(|i| {
            let number = i.next;
            i.next += 1;
            i.mrs.insert(
                number,
                Mr {
                    number,
                    title: format!("Change {number}"),
                    description: String::new(),
                    state: "open".into(),
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    head_branch: branch.into(),
                    head_sha: sha.into(),
                    base_branch: "main".into(),
                },
            );
            number
        })
    }

    /// Add a label.
    pub fn label(&self, number: u64, label: &str) {
        self.change(number, |m| {
            if !m.labels.iter().any(|l| l == label) {
                m.labels.push(label.into());
            }
        });
    }

    /// Remove a label.
    pub fn unlabel(&self, number: u64, label: &str) {
        self.change(number, |m| m.labels.retain(|l| l != label));
    }

    /// Push a commit to the merge request's branch.
    pub fn push(&self, number: u64, sha: &str) {
        self.change(number, |m| m.head_sha = sha.into());
    }

    /// Close it without merging.
    pub fn close(&self, number: u64) {
        self.change(number, |m| m.state = "closed".into());
    }

    /// Merge it.
    pub fn merge(&self, number: u64) {
        self.change(number, |m| m.state = "merged".into());
    }

    /// One merge request.
    pub fn mr(&self, number: u64) -> Option<Mr> {
        self.with(|i| i.mrs.get(&number).cloned())
    }

    /// Every request seen.
    pub fn seen(&self) -> Vec<Seen> {
        self.with(|i| i.seen.clone())
    }

    /// Why each refused request was refused.
    pub fn refused(&self) -> Vec<String> {
        self.with(|i| i.refused.clone())
    }

    /// The page of a merge request, as the forge links it.
    pub fn web_url(&self, number: u64) -> String {
        web_url(&self.shared, number)
    }
}

fn web_url(s: &Shared, number: u64) -> String {
    match s.flavour {
        Flavour::GitHub => format!("{}/{REPOSITORY}/pull/{number}", s.url),
        Flavour::GitLab => format!("{}/{REPOSITORY}/-/merge_requests/{number}", s.url),
    }
}

/// The merge request in the API's own shape.
fn render(s: &Shared, m: &Mr) -> Value {
    match s.flavour {
        Flavour::GitHub => {
            let merged = m.state == "merged";
            json!({
                "url": format!("{}/repos/{REPOSITORY}/pulls/{}", s.url, m.number),
                "id": 1_000_000 + m.number,
                "number": m.number,
                "state": if m.state == "open" { "open" } else { "closed" },
                "title": m.title,
                "body": m.description,
                "html_url": web_url(s, m.number),
                "labels": m.labels.iter().enumerate().map(|(i, l)| json!({"id": i + 1, "name": l, "color": "ededed"})).collect::<Vec<_>>(),
                "head": {"label": format!("acme:{}", m.head_branch), "ref": m.head_branch, "sha": m.head_sha},
                "base": {"label": "acme:main", "ref": m.base_branch, "sha": "0000000000000000000000000000000000000000"},
                "merged_at": if merged { json!("2026-11-30T12:00:00Z") } else { Value::Null },
                "merged": merged,
                "draft": false,
            })
        }
        Flavour::GitLab => json!({
            "id": 5_000 + m.number,
            "iid": m.number,
            "project_id": PROJECT_ID,
            "title": m.title,
            "description": m.description,
            "state": if m.state == "open" { "opened" } else { m.state.as_str() },
            "source_branch": m.head_branch,
            "target_branch": m.base_branch,
            "sha": m.head_sha,
            "labels": m.labels,
            "web_url": web_url(s, m.number),
        }),
    }
}

fn refuse(inner: &mut Inner, status: StatusCode, why: String) -> Response {
    inner.refused.push(why.clone());
    (status, axum::Json(json!({"message": why}))).into_response()
}

/// The query parameters, refusing any name outside `known`.
fn query(uri: &Uri, known: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if !known.contains(&k.as_ref()) {
            return Err(format!("unknown query parameter `{k}`"));
        }
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

/// A JSON object body with `required` string fields and nothing outside
/// `required` and `optional`.
fn body(
    headers: &HeaderMap,
    raw: &[u8],
    required: &[&str],
    optional: &[&str],
) -> Result<serde_json::Map<String, Value>, String> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/json") {
        return Err(format!("Content-Type `{ct}`, expected application/json"));
    }
    let v: Value =
        serde_json::from_slice(raw).map_err(|e| format!("Problems parsing JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("the body is not a JSON object")?
        .clone();
    for k in obj.keys() {
        if !required.contains(&k.as_str()) && !optional.contains(&k.as_str()) {
            return Err(format!("unknown field `{k}`"));
        }
    }
    for r in required {
        match obj.get(*r) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(format!("`{r}` is missing or not a string")),
        }
    }
    Ok(obj)
}

fn page(
    items: Vec<Value>,
    q: &BTreeMap<String, String>,
    flavour: Flavour,
    uri: &Uri,
    base: &str,
) -> Response {
    let per: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    let more = page * per < items.len();
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per).take(per).collect();
    let mut headers = HeaderMap::new();
    match flavour {
        Flavour::GitHub if more => {
            let mut next = q.clone();
            next.insert("page".into(), (page + 1).to_string());
            let qs: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(next.iter())
                .finish();
            let link = format!("<{base}{}?{qs}>; rel=\"next\"", uri.path());
            headers.insert("link", link.parse().unwrap());
        }
        Flavour::GitHub => {}
        Flavour::GitLab => {
            let next = if more {
                (page + 1).to_string()
            } else {
                String::new()
            };
            headers.insert("x-next-page", next.parse().unwrap());
            headers.insert("x-page", page.to_string().parse().unwrap());
        }
    }
    (StatusCode::OK, headers, axum::Json(Value::Array(slice))).into_response()
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    inner.seen.push(Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(&raw).into_owned(),
    });
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let authorized = match s.flavour {
        Flavour::GitHub => {
            header("authorization") == format!("Bearer {GITHUB_TOKEN}")
                && header("accept") == "application/vnd.github+json"
                && header("x-github-api-version") == "2022-11-28"
                && !header("user-agent").is_empty()
        }
        Flavour::GitLab => {
            header("private-token") == GITLAB_TOKEN && header("authorization").is_empty()
        }
    };
    if !authorized {
        inner.refused.push(format!("{method} {uri}: unauthorized"));
        let msg = match s.flavour {
            Flavour::GitHub => {
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            }
            Flavour::GitLab => json!({"message": "401 Unauthorized"}),
        };
        return (StatusCode::UNAUTHORIZED, axum::Json(msg)).into_response();
    }
    let path = uri.path().to_string();
    let collection = match s.flavour {
        Flavour::GitHub => format!("/repos/{REPOSITORY}/pulls"),
        Flavour::GitLab => {
            let encoded: String = form_urlencoded::byte_serialize(REPOSITORY.as_bytes()).collect();
            let by_id = format!("/api/v4/projects/{PROJECT_ID}/merge_requests");
            if path.starts_with(&by_id) {
                by_id
            } else {
                format!("/api/v4/projects/{encoded}/merge_requests")
            }
        }
    };
    let Some(rest) = path.strip_prefix(&collection) else {
        return refuse(
            &mut inner,
            StatusCode::NOT_FOUND,
            format!("{method} {path}: Not Found"),
        );
    };
    let one: Option<u64> = match rest {
        "" => None,
        r => match r.strip_prefix('/').and_then(|n| n.parse().ok()) {
            Some(n) => Some(n),
            None => {
                return refuse(
                    &mut inner,
                    StatusCode::NOT_FOUND,
                    format!("{method} {path}: Not Found"),
                );
            }
        },
    };
    match (method.as_str(), one) {
        ("GET", None) => {
            let known: &[&str] = match s.flavour {
                Flavour::GitHub => &[
                    "state",
                    "per_page",
                    "page",
                    "head",
                    "base",
                    "sort",
                    "direction",
                ],
                Flavour::GitLab => &[
                    "state",
                    "labels",
                    "per_page",
                    "page",
                    "source_branch",
                    "target_branch",
                ],
            };
            let q = match query(&uri, known) {
                Ok(q) => q,
                Err(e) => return refuse(&mut inner, StatusCode::BAD_REQUEST, e),
            };
            let want = match s.flavour {
                Flavour::GitHub => "open",
                Flavour::GitLab => "opened",
            };
            if q.get("state").map(String::as_str) != Some(want) {
                return refuse(
                    &mut inner,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "this fake lists state={want} only, got {:?}",
                        q.get("state")
                    ),
                );
            }
            let labels: Vec<&str> = q
                .get("labels")
                .map(|l| l.split(',').collect())
                .unwrap_or_default();
            // Both forges list the newest first.
            let items: Vec<Value> = inner
                .mrs
                .values()
                .rev()
                .filter(|m| m.state == "open")
                .filter(|m| labels.iter().all(|l| m.labels.iter().any(|x| x == l)))
                .map(|m| render(&s, m))
                .collect();
            page(items, &q, s.flavour, &uri, &s.url)
        }
        ("GET", Some(n)) => {
            if uri.query().is_some() {
                return refuse(
                    &mut inner,
                    StatusCode::BAD_REQUEST,
                    "unexpected query".into(),
                );
            }
            match inner.mrs.get(&n) {
                Some(m) => axum::Json(render(&s, m)).into_response(),
                None => refuse(
                    &mut inner,
                    StatusCode::NOT_FOUND,
                    format!("no merge request {n}"),
                ),
            }
        }
        ("POST", None) => {
            let (required, optional): (&[&str], &[&str]) = match s.flavour {
                Flavour::GitHub => (
                    &["title", "head", "base"],
                    &["body", "draft", "maintainer_can_modify"],
                ),
                Flavour::GitLab => (
                    &["source_branch", "target_branch", "title"],
                    &["description", "labels", "remove_source_branch", "squash"],
                ),
            };
            let obj = match body(&headers, &raw, required, optional) {
                Ok(o) => o,
                Err(e) => return refuse(&mut inner, StatusCode::UNPROCESSABLE_ENTITY, e),
            };
            let f = |k: &str| {
                obj.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let (head, base, description) = match s.flavour {
                Flavour::GitHub => (f("head"), f("base"), f("body")),
                Flavour::GitLab => (f("source_branch"), f("target_branch"), f("description")),
            };
            if inner
                .mrs
                .values()
                .any(|m| m.state == "open" && m.head_branch == head && m.base_branch == base)
            {
                let why = match s.flavour {
                    Flavour::GitHub => {
                        format!("Validation Failed: A pull request already exists for acme:{head}.")
                    }
                    Flavour::GitLab => format!(
                        "Another open merge request already exists for this source branch: {head}"
                    ),
                };
                return refuse(&mut inner, StatusCode::UNPROCESSABLE_ENTITY, why);
            }
            let number = inner.next;
            inner.next += 1;
            let m = Mr {
                number,
                title: f("title"),
                description,
                state: "open".into(),
                labels: Vec::new(),
                head_branch: head,
                head_sha: format!("{number:040x}"),
                base_branch: base,
            };
            let out = render(&s, &m);
            inner.mrs.insert(number, m);
            (StatusCode::CREATED, axum::Json(out)).into_response()
        }
        _ => refuse(
            &mut inner,
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} {path}: method not allowed"),
        ),
    }
}

// ---------------------------------------------------------------------------
// The forge client against it.

use keelson::forge::{Forge, ForgeConfig, ForgeKind, MergeRequestState, NewMergeRequest};

fn client(fake: &FakeForge, kind: ForgeKind, token: &str) -> (Forge, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("forge-token"), format!("{token}\n")).unwrap();
    let cfg = ForgeConfig {
        kind,
        api_url: Some(fake.api_url.clone()),
        repository: Some(REPOSITORY.into()),
        token_file: Some("forge-token".into()),
        token_env: None,
        ca_file: None,
    };
    (Forge::from_config(&cfg, dir.path()).unwrap(), dir)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Both APIs: every page of open merge requests is read, the label filter
/// keeps exactly the labelled open ones, closed and merged ones are told
/// apart, and a new merge request comes back with its page.
#[test]
fn the_client_lists_reads_and_opens_merge_requests_on_both_forges() {
    for (flavour, kind) in [
        (Flavour::GitHub, ForgeKind::Github),
        (Flavour::GitLab, ForgeKind::Gitlab),
    ] {
        let fake = FakeForge::start(flavour);
        // 230 open merge requests: three pages of 100.
        let mut labelled = Vec::new();
        for i in 0..230u64 {
            let labels: &[&str] = if i % 7 == 0 {
                &["deploy/preview", "team/shop"]
            } else {
                &["team/shop"]
            };
            let n = fake.open(&format!("feature/{i}"), &format!("{i:040x}"), labels);
            if i % 7 == 0 {
                labelled.push(n);
            }
        }
        let closed = labelled.remove(1);
        fake.close(closed);
        let merged = labelled.remove(1);
        fake.merge(merged);
        // Labels change on open merge requests.
        let unlabelled = labelled.remove(2);
        fake.unlabel(unlabelled, "deploy/preview");
        fake.label(2, "deploy/preview");
        labelled.push(2);
        labelled.sort();
        let (forge, _dir) = client(&fake, kind, fake.token());
        rt().block_on(async {
            let mut got: Vec<u64> = forge
                .open_merge_requests(Some("deploy/preview"))
                .await
                .unwrap()
                .iter()
                .map(|m| m.number)
                .collect();
            got.sort();
            assert_eq!(got, labelled, "{flavour:?}");
            let all = forge.open_merge_requests(None).await.unwrap();
            assert_eq!(all.len(), 228, "{flavour:?}");
            let first = all.iter().find(|m| m.number == labelled[0]).unwrap();
            assert_eq!(first.head_branch, "feature/0");
            assert_eq!(first.head_sha, format!("{:040x}", 0));
            assert_eq!(first.base_branch, "main");
            assert_eq!(first.web_url, fake.web_url(labelled[0]));
            assert_eq!(first.labels, ["deploy/preview", "team/shop"]);
            assert_eq!(first.state, MergeRequestState::Open);

            assert_eq!(
                forge.merge_request(closed).await.unwrap().state,
                MergeRequestState::Closed
            );
            assert_eq!(
                forge.merge_request(merged).await.unwrap().state,
                MergeRequestState::Merged
            );
            fake.push(labelled[0], "f00d");
            assert_eq!(
                forge.merge_request(labelled[0]).await.unwrap().head_sha,
                "f00d"
            );
            let e = forge.merge_request(9999).await.unwrap_err();
            assert_eq!(e.status(), Some(404), "{e}");

            let new = NewMergeRequest {
                title: "Promote storefront 1.4.2 to prod".into(),
                description: "## keelson plan\n\nprod: 1 to update\n".into(),
                head_branch: "keelson/promote-storefront-prod".into(),
                base_branch: "main".into(),
            };
            let mr = forge.create_merge_request(&new).await.unwrap();
            assert_eq!(mr.web_url, fake.web_url(mr.number));
            let held = fake.mr(mr.number).unwrap();
            assert_eq!(
                (
                    held.title.as_str(),
                    held.description.as_str(),
                    held.head_branch.as_str(),
                    held.base_branch.as_str()
                ),
                (
                    new.title.as_str(),
                    new.description.as_str(),
                    new.head_branch.as_str(),
                    "main"
                )
            );
            // The same branch again is refused with the forge's reason.
            let e = forge.create_merge_request(&new).await.unwrap_err();
            assert_eq!(e.status(), Some(422), "{e}");
            assert!(e.to_string().contains("already exists"), "{e}");
        });
        let refused = fake.refused();
        assert_eq!(
            refused.len(),
            2,
            "only the 404 and the 422 were refused: {refused:?}"
        );
        let seen = fake.seen();
        let post = seen.iter().find(|r| r.method == "POST").unwrap();
        let sent: Value = serde_json::from_str(&post.body).unwrap();
        let title = "Promote storefront 1.4.2 to prod";
        let description = "## keelson plan\n\nprod: 1 to update\n";
        let head = "keelson/promote-storefront-prod";
        match flavour {
            Flavour::GitHub => {
                assert_eq!(
                    sent,
                    json!({"title": title, "body": description, "head": head, "base": "main"})
                );
                assert_eq!(
                    post.headers["authorization"],
                    format!("Bearer {GITHUB_TOKEN}")
                );
            }
            Flavour::GitLab => {
                assert_eq!(
                    sent,
                    json!({"title": title, "description": description, "source_branch": head, "target_branch": "main"})
                );
                assert_eq!(post.headers["private-token"], GITLAB_TOKEN);
            }
        }
        let lists: Vec<&str> = seen
            .iter()
            .filter(|r| r.method == "GET" && r.uri.contains("page="))
            .map(|r| r.uri.as_str())
            .collect();
        match flavour {
            Flavour::GitHub => {
                assert_eq!(
                    lists[0],
                    "/repos/shop/storefront/pulls?state=open&per_page=100&page=1"
                );
                assert_eq!(lists.len(), 6, "3 pages, twice: {lists:?}");
            }
            Flavour::GitLab => {
                assert_eq!(
                    lists[0],
                    "/api/v4/projects/shop%2Fstorefront/merge_requests?state=opened&labels=deploy%2Fpreview&per_page=100&page=1"
                );
                assert_eq!(lists.len(), 1 + 3, "the labelled fit one page: {lists:?}");
            }
        }
    }
}

/// A refused token fails with the status and the cause, and the token is in
/// no message; nor in the client's Debug form.
#[test]
fn a_refused_token_is_reported_and_never_printed() {
    let fake = FakeForge::start(Flavour::GitLab);
    let wrong = "glpat-wrongT0kenThatMustNotLeak";
    let (forge, _dir) = client(&fake, ForgeKind::Gitlab, wrong);
    let e = rt().block_on(forge.open_merge_requests(None)).unwrap_err();
    let text = e.to_string();
    assert_eq!(e.status(), Some(401), "{text}");
    assert!(text.contains("the token was refused"), "{text}");
    assert!(
        !text.contains(wrong) && !format!("{forge:?}").contains(wrong),
        "{text}"
    );
    assert!(
        fake.seen().iter().all(|r| !r.uri.contains(wrong)),
        "the token went into a URL"
    );
}

/// The server is no pushover: wrong method, wrong auth header, unknown
/// fields, a non-JSON body and unknown query parameters are refused.
#[test]
fn the_fake_refuses_requests_of_the_wrong_shape() {
    let gh = FakeForge::start(Flavour::GitHub);
    let gl = FakeForge::start(Flavour::GitLab);
    let http = keelson::http::client();
    let pulls = format!("{}/repos/{REPOSITORY}/pulls", gh.api_url);
    let ok = |r: reqwest::RequestBuilder| {
        r.bearer_auth(GITHUB_TOKEN)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header("User-Agent", "test")
    };
    let mrs = format!("{}/projects/shop%2Fstorefront/merge_requests", gl.api_url);
    let by_path = format!(
        "{}/projects/shop/storefront/merge_requests?state=opened",
        gl.api_url
    );
    let pr = json!({"title": "t", "head": "h", "base": "main"});
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (ok(http.get(format!("{pulls}?state=open"))), 200),
        (
            http.get(format!("{pulls}?state=open"))
                .header("PRIVATE-TOKEN", GITHUB_TOKEN),
            401,
        ),
        (ok(http.get(format!("{pulls}?state=open&labels=x"))), 400),
        (ok(http.put(&pulls).json(&pr)), 405),
        (
            ok(http
                .post(&pulls)
                .json(&json!({"title": "t", "head": "h", "base": "main", "labels": ["x"]}))),
            422,
        ),
        (ok(http.post(&pulls).body(pr.to_string())), 422),
        (
            http.get(format!("{mrs}?state=opened"))
                .header("PRIVATE-TOKEN", GITLAB_TOKEN),
            200,
        ),
        (
            http.get(format!("{mrs}?state=opened"))
                .bearer_auth(GITLAB_TOKEN),
            401,
        ),
        (http.get(by_path).header("PRIVATE-TOKEN", GITLAB_TOKEN), 404),
        (
            http.post(&mrs)
                .header("PRIVATE-TOKEN", GITLAB_TOKEN)
                .json(&pr),
            422,
        ),
    ];
    rt().block_on(async {
        for (i, (request, want)) in cases.into_iter().enumerate() {
            let got = request.send().await.unwrap().status().as_u16();
            assert_eq!(got, want, "case {i}");
        }
    });
    assert_eq!(gh.refused().len() + gl.refused().len(), 8);
}

/// The `forge:` section of the keelson config: read with positions, the
/// token from a file beside it, a misspelt kind pointed at.
#[test]
fn the_forge_section_of_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "ghp_x\n").unwrap();
    let path = dir.path().join("keelson.yaml");
    std::fs::write(
        &path,
        "apiVersion: keelson.dev/v1\nkind: Config\nforge:\n  kind: github\n  repository: acme/storefront\n  tokenFile: token\n",
    )
    .unwrap();
    let cfg = keelson::config::load_config(&path).unwrap().forge.unwrap();
    assert_eq!(cfg.api_url(), "https://api.github.com");
    let forge = Forge::from_config(&cfg, dir.path()).unwrap();
    assert_eq!(
        (forge.kind(), forge.repository()),
        (ForgeKind::Github, Some("acme/storefront"))
    );
    assert!(!format!("{forge:?}").contains("ghp_x"));

    std::fs::write(
        &path,
        "apiVersion: keelson.dev/v1\nkind: Config\nforge:\n  kind: gitbub\n  tokenEnv: T\n",
    )
    .unwrap();
    let e = keelson::config::load_config(&path).unwrap_err();
    let d = &e.diagnostics[0];
    assert_eq!((d.line, d.column), (4, 9), "{}", e.rendered);
    assert!(
        e.rendered.contains("github") && e.rendered.contains("gitlab"),
        "{}",
        e.rendered
    );

    let cfg = ForgeConfig {
        kind: ForgeKind::Gitlab,
        api_url: Some("http://gitlab.example.com/api/v4".into()),
        repository: None,
        token_file: Some("token".into()),
        token_env: None,
        ca_file: None,
    };
    let e = Forge::from_config(&cfg, dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("in the clear"), "{e}");
    let e = Forge::from_config(
        &ForgeConfig {
            token_file: Some("missing".into()),
            ..cfg
        },
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("forge.tokenFile"), "{e}");
}
