//! examples/ci/post-plan-comment.py against a local HTTP server that holds
//! comments as GitHub and GitLab do and refuses requests of the wrong shape:
//! method, path, auth header, JSON body carrying the markdown.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::project_root;

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Flavour {
    GitHub,
    GitLab,
}

#[derive(Default)]
struct State {
    comments: Vec<(u64, String)>,
    next_id: u64,
    requests: Vec<Request>,
}

/// A comment store speaking just enough of GitHub's or GitLab's REST API.
pub struct Forge {
    pub url: String,
    state: Arc<Mutex<State>>,
}

pub const GITHUB_TOKEN: &str = "ghs_s3cretT0kenValue";
pub const GITLAB_TOKEN: &str = "glpat-s3cretT0kenValue";

impl Forge {
    pub fn start(flavour: Flavour, seeded: usize) -> Forge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut st = State {
            next_id: 1000,
            ..State::default()
        };
        for i in 0..seeded {
            st.next_id += 1;
            st.comments
                .push((st.next_id, format!("LGTM, review comment {i}")));
        }
        let state = Arc::new(Mutex::new(st));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                serve(stream, flavour, &shared);
            }
        });
        Forge { url, state }
    }

    pub fn comments(&self) -> Vec<(u64, String)> {
        self.state.lock().unwrap().comments.clone()
    }

    fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value, extra: &[(&str, String)]) {
    let text = body.to_string();
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let _ = stream.write_all(format!("{head}\r\n{text}").as_bytes());
}

fn query(path: &str) -> (&str, BTreeMap<&str, &str>) {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    (
        p,
        q.split('&').filter_map(|kv| kv.split_once('=')).collect(),
    )
}

/// The JSON body's `body` field: the API refuses anything else.
fn comment_body(r: &Request) -> Option<String> {
    if r.headers.get("content-type").map(String::as_str) != Some("application/json") {
        return None;
    }
    let v: Value = serde_json::from_str(&r.body).ok()?;
    let obj = v.as_object()?;
    (obj.len() == 1).then_some(())?;
    Some(obj.get("body")?.as_str()?.to_string())
}

fn serve(mut stream: TcpStream, flavour: Flavour, state: &Mutex<State>) {
    let Some(req) = read_request(&mut stream) else {
        return;
    };
    let mut st = state.lock().unwrap();
    st.requests.push(req.clone());
    let authorized = match flavour {
        Flavour::GitHub => {
            req.headers.get("authorization").map(String::as_str)
                == Some(&format!("Bearer {GITHUB_TOKEN}"))
                && req.headers.get("accept").map(String::as_str)
                    == Some("application/vnd.github+json")
                && req.headers.contains_key("user-agent")
        }
        Flavour::GitLab => {
            req.headers.get("private-token").map(String::as_str) == Some(GITLAB_TOKEN)
        }
    };
    if !authorized {
        return respond(
            &mut stream,
            401,
            &json!({"message": "Bad credentials"}),
            &[],
        );
    }
    let (path, q) = query(&req.path);
    let (list, item) = match flavour {
        Flavour::GitHub => (
            "/repos/acme/envs/issues/7/comments",
            "/repos/acme/envs/issues/comments/",
        ),
        Flavour::GitLab => (
            "/api/v4/projects/42/merge_requests/5/notes",
            "/api/v4/projects/42/merge_requests/5/notes/",
        ),
    };
    let update_method = match flavour {
        Flavour::GitHub => "PATCH",
        Flavour::GitLab => "PUT",
    };
    match (req.method.as_str(), path) {
        ("GET", p) if p == list => {
            let per: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
            let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let all = &st.comments;
            let slice: Vec<Value> = all
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .map(|(id, b)| json!({"id": id, "body": b}))
                .collect();
            let next = if page * per < all.len() {
                (page + 1).to_string()
            } else {
                String::new()
            };
            let extra = match flavour {
                Flavour::GitLab => vec![("X-Next-Page", next)],
                Flavour::GitHub => vec![],
            };
            respond(&mut stream, 200, &Value::Array(slice), &extra)
        }
        ("POST", p) if p == list => match comment_body(&req) {
            Some(b) => {
                st.next_id += 1;
                let id = st.next_id;
                st.comments.push((id, b.clone()));
                respond(&mut stream, 201, &json!({"id": id, "body": b}), &[])
            }
            None => respond(&mut stream, 400, &json!({"message": "body"}), &[]),
        },
        (m, p) if m == update_method && p.starts_with(item) => {
            let id: u64 = p[item.len()..].parse().unwrap_or(0);
            match (
                comment_body(&req),
                st.comments.iter().position(|c| c.0 == id),
            ) {
                (Some(b), Some(i)) => {
                    st.comments[i].1 = b.clone();
                    respond(&mut stream, 200, &json!({"id": id, "body": b}), &[])
                }
                (None, _) => respond(&mut stream, 400, &json!({"message": "body"}), &[]),
                (_, None) => respond(&mut stream, 404, &json!({"message": "Not Found"}), &[]),
            }
        }
        _ => respond(&mut stream, 404, &json!({"message": "Not Found"}), &[]),
    }
}

fn python() -> &'static str {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 is needed to test examples/ci/post-plan-comment.py (scripts/test installs it)"
    );
    "python3"
}

/// Run the script with `env` (and nothing of the test's own environment
/// that a CI would set); (exit code, stdout + stderr).
pub fn post(plan: &Path, env: &[(&str, &str)], extra: &[&str]) -> (i32, String) {
    let script = project_root().join("examples/ci/post-plan-comment.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(plan).args(extra).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn write_plan(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn github_gets_one_comment_updated_in_place_on_each_push() {
    let forge = Forge::start(Flavour::GitHub, 120);
    let dir = tempfile::tempdir().unwrap();
    let event = write_plan(
        dir.path(),
        "event.json",
        r#"{"pull_request": {"number": 7}}"#,
    );
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("GITHUB_API_URL", forge.url.as_str()),
        ("GITHUB_REPOSITORY", "acme/envs"),
        ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
    ];
    let first = write_plan(dir.path(), "1.md", "## keelson plan\n\nprod: 1 to update\n");
    let (code, out) = post(&first, &env, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("new comment"), "{out}");
    let second = write_plan(dir.path(), "2.md", "## keelson plan\n\nprod: 2 to update\n");
    let (code, out) = post(&second, &env, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("in place"), "{out}");
    let (code, out) = post(&second, &env, &[]);
    assert_eq!(code, 0, "{out}");

    let comments = forge.comments();
    let plans: Vec<&(u64, String)> = comments
        .iter()
        .filter(|c| c.1.contains("keelson plan"))
        .collect();
    assert_eq!(plans.len(), 1, "one plan comment, however many pushes");
    assert_eq!(comments.len(), 121);
    assert_eq!(
        plans[0].1,
        "<!-- keelson-plan -->\n## keelson plan\n\nprod: 2 to update\n"
    );

    let reqs = forge.requests();
    let shape: Vec<(String, String)> = reqs
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let list = |page: u32| {
        (
            "GET".to_string(),
            format!("/repos/acme/envs/issues/7/comments?per_page=100&page={page}"),
        )
    };
    let id = plans[0].0;
    let patch = (
        "PATCH".to_string(),
        format!("/repos/acme/envs/issues/comments/{id}"),
    );
    assert_eq!(
        shape,
        vec![
            list(1),
            list(2),
            ("POST".into(), "/repos/acme/envs/issues/7/comments".into()),
            list(1),
            list(2),
            patch.clone(),
            list(1),
            list(2),
            patch,
        ]
    );
    for r in &reqs {
        assert_eq!(r.headers["authorization"], format!("Bearer {GITHUB_TOKEN}"));
        assert_eq!(r.headers["x-github-api-version"], "2022-11-28");
    }
    let post_body: Value = serde_json::from_str(&reqs[2].body).unwrap();
    assert_eq!(
        post_body,
        json!({"body": "<!-- keelson-plan -->\n## keelson plan\n\nprod: 1 to update\n"})
    );
}

#[test]
fn gitlab_gets_one_note_updated_in_place_on_each_push() {
    let forge = Forge::start(Flavour::GitLab, 150);
    let dir = tempfile::tempdir().unwrap();
    let api = format!("{}/api/v4", forge.url);
    let env = [
        ("GITLAB_CI", "true"),
        ("KEELSON_GITLAB_TOKEN", GITLAB_TOKEN),
        ("CI_API_V4_URL", api.as_str()),
        ("CI_PROJECT_ID", "42"),
        ("CI_MERGE_REQUEST_IID", "5"),
    ];
    let first = write_plan(
        dir.path(),
        "1.md",
        "## keelson plan\n\nstaging: 1 to create\n",
    );
    let (code, out) = post(&first, &env, &[]);
    assert_eq!(code, 0, "{out}");
    let second = write_plan(
        dir.path(),
        "2.md",
        "## keelson plan\n\nstaging: no changes\n",
    );
    let (code, out) = post(&second, &env, &[]);
    assert_eq!(code, 0, "{out}");

    let comments = forge.comments();
    assert_eq!(comments.len(), 151, "one note added, then edited");
    let note = comments.last().unwrap();
    assert_eq!(
        note.1,
        "<!-- keelson-plan -->\n## keelson plan\n\nstaging: no changes\n"
    );
    let reqs = forge.requests();
    let shape: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let notes = "/api/v4/projects/42/merge_requests/5/notes";
    assert_eq!(
        shape,
        vec![
            format!("GET {notes}?per_page=100&page=1"),
            format!("GET {notes}?per_page=100&page=2"),
            format!("POST {notes}"),
            format!("GET {notes}?per_page=100&page=1"),
            format!("GET {notes}?per_page=100&page=2"),
            format!("PUT {notes}/{}", note.0),
        ]
    );
    assert!(
        reqs.iter()
            .all(|r| r.headers["private-token"] == GITLAB_TOKEN)
    );
    assert!(
        reqs.iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
    let put: Value = serde_json::from_str(&reqs[5].body).unwrap();
    assert_eq!(put["body"], note.1.as_str());
}

#[test]
fn a_refused_token_fails_with_the_cause_and_is_never_printed() {
    let forge = Forge::start(Flavour::GitHub, 0);
    let dir = tempfile::tempdir().unwrap();
    let event = write_plan(
        dir.path(),
        "event.json",
        r#"{"pull_request": {"number": 7}}"#,
    );
    let plan = write_plan(dir.path(), "plan.md", "## keelson plan\n");
    let wrong = "ghs_wrongT0kenThatMustNotLeak";
    let (code, out) = post(
        &plan,
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_TOKEN", wrong),
            ("GITHUB_API_URL", forge.url.as_str()),
            ("GITHUB_REPOSITORY", "acme/envs"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("HTTP 401"), "{out}");
    assert!(out.contains("token was refused"), "{out}");
    assert!(!out.contains(wrong), "the token leaked: {out}");
    assert!(forge.comments().is_empty());
}

#[test]
fn a_plan_over_the_comment_limit_is_cut_with_a_note() {
    let forge = Forge::start(Flavour::GitLab, 0);
    let dir = tempfile::tempdir().unwrap();
    let api = format!("{}/api/v4", forge.url);
    let plan = write_plan(dir.path(), "plan.md", &"x".repeat(70_000));
    let (code, out) = post(
        &plan,
        &[
            ("KEELSON_GITLAB_TOKEN", GITLAB_TOKEN),
            ("CI_API_V4_URL", api.as_str()),
            ("CI_PROJECT_ID", "42"),
            ("CI_MERGE_REQUEST_IID", "5"),
        ],
        &["--provider", "gitlab"],
    );
    assert_eq!(code, 0, "{out}");
    let body = &forge.comments()[0].1;
    assert!(body.chars().count() <= 65_536, "{}", body.len());
    assert!(body.contains("The plan was cut"));
}
