//! Paging, watch, and the test hooks: faults, request log, write counting.

use std::time::Duration;

use kube_apiserver::{Fault, TestServer};
use serde_json::{Value, json};

use super::http::{get, post, request, request_with};
use super::namespace;

fn cm(name: &str, tier: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": name}})
}

const CMS: &str = "/api/v1/namespaces/shop/configmaps";

#[test]
fn limit_and_continue_page_through_a_selection() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    for i in 0..9 {
        post(
            srv.url(),
            CMS,
            &cm(&format!("cm-{i}"), if i % 3 == 0 { "a" } else { "b" }),
        );
    }
    let mut seen = Vec::new();
    let mut next = String::new();
    let mut pages = 0;
    loop {
        let mut q = format!("{CMS}?labelSelector=tier%3Db&limit=2");
        if !next.is_empty() {
            q.push_str(&format!("&continue={next}"));
        }
        let page = get(srv.url(), &q).json();
        pages += 1;
        for i in page["items"].as_array().unwrap() {
            seen.push(i["metadata"]["name"].as_str().unwrap().to_string());
        }
        match page["metadata"]["continue"].as_str() {
            Some(c) => {
                assert!(page["metadata"]["remainingItemCount"].as_u64().unwrap() > 0);
                next = kube_apiserver::util::percent_encode(c);
            }
            None => break,
        }
    }
    assert_eq!(seen, ["cm-1", "cm-2", "cm-4", "cm-5", "cm-7", "cm-8"]);
    assert_eq!(pages, 3);
    let bad = get(srv.url(), &format!("{CMS}?limit=2&continue=garbage"));
    assert_eq!(bad.status, 400);
}

#[test]
fn watch_from_a_resource_version_streams_events_until_timeout() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    post(srv.url(), CMS, &cm("old", "a"));
    let rv = srv.resource_version();
    post(srv.url(), CMS, &cm("one", "a"));
    post(srv.url(), CMS, &cm("two", "b"));
    let mut changed = cm("one", "b");
    changed["data"]["k"] = json!("changed");
    request(
        srv.url(),
        "PUT",
        &format!("{CMS}/one"),
        Some("application/json"),
        &changed.to_string(),
    );
    request(srv.url(), "DELETE", &format!("{CMS}/two"), None, "");

    let r = get(
        srv.url(),
        &format!("{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
    );
    assert_eq!(r.status, 200);
    let events: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let expect = [
        ("ADDED", "one"),
        ("ADDED", "two"),
        ("MODIFIED", "one"),
        ("DELETED", "two"),
    ];
    assert_eq!(summary, expect.map(|(a, b)| (a.to_string(), b.to_string())));
    assert_eq!(events[2]["object"]["data"]["k"], "changed");
    assert_eq!(events[2]["object"]["kind"], "ConfigMap");

    // Label-filtered: "one" moving into tier=b is seen as ADDED; no initial events from rv.
    let r = get(
        srv.url(),
        &format!("{CMS}?watch=1&resourceVersion={rv}&labelSelector=tier%3Db&timeoutSeconds=1"),
    );
    let kinds: Vec<String> = r
        .text()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["ADDED", "ADDED", "DELETED"]);

    // Without a resourceVersion the watch starts with the current objects.
    let r = get(srv.url(), &format!("{CMS}?watch=true&timeoutSeconds=1"));
    let names: Vec<String> = r
        .text()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["old", "one"]);
}

#[test]
fn watch_sees_writes_made_while_it_is_open() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let url = srv.url().to_string();
    let rv = srv.resource_version();
    let watcher = std::thread::spawn(move || {
        get(
            &url,
            &format!("{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds=2"),
        )
    });
    // The watch is registered once the server logged it; then write.
    while !srv
        .requests()
        .iter()
        .any(|r| r.query.contains("watch=true"))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    post(srv.url(), CMS, &cm("live", "a"));
    let body = watcher.join().unwrap().text();
    assert!(
        body.lines()
            .any(|l| l.contains("\"ADDED\"") && l.contains("\"live\"")),
        "{body}"
    );
}

#[test]
fn faults_fail_the_nth_matching_request_and_rate_limit() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    srv.faults().inject(
        Fault::status(500)
            .method("POST")
            .path_contains("/configmaps")
            .nth(2),
    );
    assert_eq!(post(srv.url(), CMS, &cm("a", "x")).status, 201);
    let failed = post(srv.url(), CMS, &cm("b", "x"));
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["reason"], "InternalError");
    assert_eq!(
        post(srv.url(), CMS, &cm("b", "x")).status,
        201,
        "only the 2nd matching request fails"
    );
    assert_eq!(get(srv.url(), CMS).status, 200);

    srv.faults().inject(Fault::too_many_requests(3).times(2));
    let r = get(srv.url(), CMS);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.json()["reason"], "TooManyRequests");
    assert_eq!(get(srv.url(), CMS).status, 429);
    assert_eq!(get(srv.url(), CMS).status, 200);
    assert_eq!(srv.faults().fired(), 3);

    srv.faults().fail_nth(1, 503);
    assert_eq!(get(srv.url(), CMS).status, 503);
    srv.faults().inject(Fault::delay(Duration::from_millis(20)));
    assert_eq!(
        get(srv.url(), CMS).status,
        200,
        "a delayed request is still served"
    );
    srv.faults().clear();

    // The request log and write counter.
    srv.reset_requests();
    get(srv.url(), CMS);
    post(srv.url(), CMS, &cm("c", "x"));
    request(
        srv.url(),
        "DELETE",
        &format!("{CMS}/c?dryRun=All"),
        None,
        "",
    );
    let log = srv.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[1].method.as_str(), log[1].path.as_str(), log[1].status),
        ("POST", CMS, 201)
    );
    assert_eq!(log[1].content_type.as_deref(), Some("application/json"));
    assert!(log[2].dry_run);
    assert_eq!(srv.write_count(), 1);
}

#[test]
fn bearer_token_can_be_required() {
    let opts = kube_apiserver::ServerOptions {
        require_token: true,
        ..Default::default()
    };
    let srv = TestServer::start_blocking_with(opts).unwrap();
    let r = get(srv.url(), "/api/v1/namespaces");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "Unauthorized");
    let r = request_with(
        srv.url(),
        "GET",
        "/api/v1/namespaces",
        None,
        "",
        &[("Authorization", "Bearer anything")],
    );
    assert_eq!(r.status, 200);
    assert!(srv.requests()[1].authenticated);
    assert!(srv.kubeconfig().contains("token: "));
}

#[test]
fn concurrent_puts_with_the_same_resource_version_let_exactly_one_win() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let created = post(srv.url(), CMS, &cm("race", "a")).json();
    let url = srv.url().to_string();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            let mut mine = created.clone();
            mine["data"]["k"] = json!(format!("writer-{i}"));
            std::thread::spawn(move || {
                request(
                    &url,
                    "PUT",
                    &format!("{CMS}/race"),
                    Some("application/json"),
                    &mine.to_string(),
                )
                .status
            })
        })
        .collect();
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 7, "{codes:?}");
}

#[test]
fn a_watch_older_than_the_history_gets_410_expired() {
    let opts = kube_apiserver::ServerOptions {
        watch_history: 5,
        ..Default::default()
    };
    let srv = TestServer::start_blocking_with(opts).unwrap();
    namespace(&srv, "shop");
    for i in 0..10 {
        post(srv.url(), CMS, &cm(&format!("c{i}"), "a"));
    }
    let r = get(
        srv.url(),
        &format!("{CMS}?watch=true&resourceVersion=2&timeoutSeconds=1"),
    );
    let first: Value = serde_json::from_str(r.text().lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "ERROR");
    assert_eq!(first["object"]["code"], 410);
    assert_eq!(first["object"]["reason"], "Expired");
    assert!(
        first["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version: 2")
    );
}

#[test]
fn an_injected_disconnect_drops_the_connection_without_an_answer() {
    use std::io::{Read, Write};
    let srv = TestServer::start_blocking();
    srv.faults().inject(
        Fault::disconnect()
            .method("GET")
            .path_contains("/configmaps"),
    );
    let addr = srv.url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(format!("GET /api/v1/configmaps HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "no answer expected, got {}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        get(srv.url(), "/api/v1/configmaps").status,
        200,
        "only the first matching request is dropped"
    );
    let log = srv.requests();
    assert_eq!((log[0].status, log[1].status), (0, 200));
}

#[test]
fn close_watches_ends_open_streams() {
    let srv = TestServer::start_blocking();
    let url = srv.url().to_string();
    let watcher = std::thread::spawn(move || get(&url, "/api/v1/namespaces?watch=true"));
    while !srv
        .requests()
        .iter()
        .any(|r| r.query.contains("watch=true"))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.close_watches();
    let r = watcher.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text().lines().count(),
        4,
        "the initial ADDED events, then the end: {}",
        r.text()
    );
}
