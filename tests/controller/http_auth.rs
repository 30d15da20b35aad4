//! HTTPS-style token auth: a loopback smart-HTTP Git server (`git
//! http-backend` behind a small CGI bridge) that demands Basic auth.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use keelson::source::{Auth, Secret};
use tokio::io::AsyncWriteExt;

use crate::support::*;

const USER: &str = "x-access-token";
const TOKEN: &str = "ghp_loopbacktoken";

#[derive(Clone)]
struct Backend {
    root: PathBuf,
}

/// Run one request through `git http-backend` (CGI).
async fn cgi(
    State(b): State<Backend>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    use base64_like::encode;
    let expected = format!("Basic {}", encode(&format!("{USER}:{TOKEN}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Basic realm=\"git\"")
            .body(Body::from("auth required\n"))
            .unwrap();
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &b.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("REMOTE_USER", USER)
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(ct) = headers.get("content-type").and_then(|v| v.to_str().ok()) {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(enc) = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("HTTP_CONTENT_ENCODING", enc);
    }
    if let Some(p) = headers.get("git-protocol").and_then(|v| v.to_str().ok()) {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&body).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let split = split.or_else(|| {
        out.stdout
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|i| (i, 2))
    });
    let (head, body) = match split {
        Some((i, n)) => (&out.stdout[..i], out.stdout[i + n..].to_vec()),
        None => (&out.stdout[..], Vec::new()),
    };
    let mut resp = Response::builder();
    let mut status = StatusCode::OK;
    for line in String::from_utf8_lossy(head).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            status = v
                .split(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(StatusCode::OK);
        } else {
            resp = resp.header(k.trim(), v);
        }
    }
    resp.status(status).body(Body::from(body)).unwrap()
}

mod base64_like {
    /// Standard base64 (the test server's own, to avoid a dependency).
    pub fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

async fn serve(root: PathBuf) -> String {
    let app = Router::new().fallback(cgi).with_state(Backend { root });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_authenticates_over_http_and_a_wrong_one_is_reported() {
    assert_eq!(
        base64_like::encode("Aladdin:open sesame"),
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    let (repo, first) = two_env_repo();
    let base = repo.path().parent().unwrap().to_path_buf();
    let name = repo
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let url = format!("{}/{name}", serve(base).await);

    // The right token: synced.
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&url, state.path());
    s.repo.auth = Auth {
        token: Some(Secret::new(TOKEN)),
        ..Auth::default()
    };
    let running = start(s, &fake).await;
    wait_status(&running, "synced over authenticated HTTP", |st| {
        env_status(st, "prod")["lastApplied"]["commit"] == first.as_str()
    })
    .await;
    running.shutdown();
    running.wait().await;

    // A wrong token: the fetch error is reported, without the token.
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(&url, state.path());
    s.poll_interval = Duration::from_millis(100);
    s.repo.auth = Auth {
        token: Some(Secret::new("ghp_wrong")),
        ..Auth::default()
    };
    let running = start(s, &Fake::default()).await;
    let st = wait_status(&running, "the auth failure shows", |st| {
        st["source"]["error"].is_string()
    })
    .await;
    let error = st["source"]["error"].as_str().unwrap();
    assert!(error.contains("cannot fetch branch `main`"), "{error}");
    assert!(!error.contains("ghp_wrong"), "{error}");
    assert_eq!(st["ready"], false, "nothing fetched yet: {st}");
    let (code, _) = get(&running, "/readyz").await;
    assert_eq!(code, 503);
    running.shutdown();
    running.wait().await;
}
