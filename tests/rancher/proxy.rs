//! Rancher behind a reverse proxy that rewrites the host: Rancher builds its
//! links (`pagination.next`) from the host it was reached by, the inner one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use keelson::rancher::{RancherClient, Token};
use rancher_server::{DEFAULT_TOKEN, RancherServer};
use serde_json::json;

use crate::common::CLUSTER;

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    forwarded: AtomicUsize,
}

/// Forwards every request to the upstream with the upstream's own `Host`,
/// as `proxy_pass` with `proxy_set_header Host $proxy_host` does.
async fn forward(
    State(p): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    p.forwarded.fetch_add(1, Ordering::SeqCst);
    let path = uri.path_and_query().map(|x| x.as_str()).unwrap_or("/");
    let mut req = p
        .http
        .request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            format!("{}{path}", p.upstream),
        )
        .body(body.to_vec());
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v.as_bytes());
        }
    }
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        [("content-type", "application/json")],
        bytes.to_vec(),
    )
        .into_response()
}

#[tokio::test]
async fn pagination_behind_a_host_rewriting_proxy_follows_path_and_query() {
    let server = RancherServer::start().await;
    for i in 0..5 {
        server.insert_project(json!({"clusterId": CLUSTER, "name": format!("p{i}")}));
    }
    let proxy = Arc::new(Proxy {
        upstream: server.url().to_string(),
        http: keelson::http::client(),
        forwarded: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let client = RancherClient::with_http(
        keelson::http::client(),
        &proxy_url,
        Token::new(DEFAULT_TOKEN),
        Duration::from_secs(10),
    )
    .unwrap();
    let all = client
        .list("/v3/projects", &[("limit", "2")])
        .await
        .unwrap();
    let mut names: Vec<String> = all
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4"]);

    // The links named the inner host, yet every request went through the proxy.
    let pages: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v3/projects")
        .collect();
    assert_eq!(pages.len(), 3, "three pages of two");
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 3);
    assert_eq!(pages[2].query, "limit=2&marker=4");
    task.abort();
}
