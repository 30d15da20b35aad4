//! Load figures for the test server at keelson's target scale: 1,000 apps × 3 environments,
//! each a Deployment, a Service and a ConfigMap (9,000 objects), applied with server-side
//! apply over one keep-alive HTTP connection, then re-applied unchanged, then listed.
//!
//! Run: `cargo bench -p kube-apiserver --bench load` (set `APPS=200` for a quicker run).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kube_apiserver::{ServerOptions, TestServer};

struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    fn new(url: &str) -> Conn {
        let host = url.trim_start_matches("http://").to_string();
        let w = TcpStream::connect(&host).expect("connect");
        w.set_nodelay(true).ok();
        let r = BufReader::new(w.try_clone().expect("clone socket"));
        Conn { w, r, host }
    }

    fn send(&mut self, method: &str, path: &str, ct: &str, body: &str) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.w.write_all(head.as_bytes()).unwrap();
        self.w.write_all(body.as_bytes()).unwrap();
        let mut status = String::new();
        self.r.read_line(&mut status).unwrap();
        let code: u16 = status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf).unwrap();
        (code, buf)
    }
}

fn manifests(env: &str, app: usize) -> [(String, String); 3] {
    let name = format!("app-{app:04}");
    let labels = format!(
        "{{\"app\":\"{name}\",\"app.kubernetes.io/managed-by\":\"keelson\",\"keelson.dev/environment\":\"{env}\"}}"
    );
    let deploy = format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"{name}","namespace":"{env}","labels":{labels}}},"spec":{{"replicas":2,"selector":{{"matchLabels":{{"app":"{name}"}}}},"template":{{"metadata":{{"labels":{{"app":"{name}"}}}},"spec":{{"containers":[{{"name":"app","image":"registry.example.com/{name}:1.0.{app}","ports":[{{"name":"http","containerPort":8080}}],"env":[{{"name":"JAVA_OPTS","value":"-Xmx307m"}}],"resources":{{"requests":{{"cpu":"250m","memory":"512Mi"}},"limits":{{"cpu":"1","memory":"512Mi"}}}},"readinessProbe":{{"httpGet":{{"path":"/healthz","port":"http"}}}}}}]}}}}}}}}"#
    );
    let svc = format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}","namespace":"{env}","labels":{labels}}},"spec":{{"selector":{{"app":"{name}"}},"ports":[{{"name":"http","port":80,"targetPort":"http"}}]}}}}"#
    );
    let cm = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"{env}","labels":{labels}}},"data":{{"LOG_LEVEL":"info","REGION":"eu-west"}}}}"#
    );
    [
        (
            format!("/apis/apps/v1/namespaces/{env}/deployments/{name}"),
            deploy,
        ),
        (format!("/api/v1/namespaces/{env}/services/{name}"), svc),
        (format!("/api/v1/namespaces/{env}/configmaps/{name}"), cm),
    ]
}

fn timed<T>(label: &str, n: usize, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    let d = t.elapsed();
    let per = if n > 0 { d / n as u32 } else { Duration::ZERO };
    println!(
        "{label:<48} {:>9.1} ms total  {:>8.1} µs/op  (n={n})",
        d.as_secs_f64() * 1e3,
        per.as_secs_f64() * 1e6
    );
    out
}

fn main() {
    let apps: usize = std::env::var("APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let envs = ["dev", "staging", "prod"];
    let opts = ServerOptions {
        record_requests: false,
        ..ServerOptions::default()
    };
    let srv = TestServer::start_blocking_with(opts).expect("start");
    let mut c = Conn::new(srv.url());
    for env in envs {
        let ns =
            format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{env}"}}}}"#);
        assert_eq!(
            c.send("POST", "/api/v1/namespaces", "application/json", &ns)
                .0,
            201
        );
    }
    let all: Vec<(String, String)> = envs
        .iter()
        .flat_map(|e| (0..apps).flat_map(move |a| manifests(e, a)))
        .collect();
    let apply_ct = "application/apply-patch+yaml";
    timed("server-side apply, create", all.len(), || {
        for (path, body) in &all {
            let (code, b) = c.send(
                "PATCH",
                &format!("{path}?fieldManager=keelson"),
                apply_ct,
                body,
            );
            assert_eq!(code, 201, "{}", String::from_utf8_lossy(&b));
        }
    });
    let rv = srv.resource_version();
    timed("server-side apply, unchanged (no-op)", all.len(), || {
        for (path, body) in &all {
            assert_eq!(
                c.send(
                    "PATCH",
                    &format!("{path}?fieldManager=keelson"),
                    apply_ct,
                    body
                )
                .0,
                200
            );
        }
    });
    assert_eq!(srv.resource_version(), rv, "no-op applies must not write");
    timed("server-side apply, dryRun=All (plan)", all.len(), || {
        for (path, body) in &all {
            assert_eq!(
                c.send(
                    "PATCH",
                    &format!("{path}?fieldManager=keelson&dryRun=All"),
                    apply_ct,
                    body
                )
                .0,
                200
            );
        }
    });
    let sel =
        "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dkeelson,keelson.dev%2Fenvironment%3Dprod";
    let bytes = timed("LIST deployments, all namespaces", 10, || {
        let mut n = 0;
        for _ in 0..10 {
            n = c
                .send("GET", "/apis/apps/v1/deployments", "application/json", "")
                .1
                .len();
        }
        n
    });
    println!(
        "  (one all-namespace deployment list = {} KiB, {} objects in store)",
        bytes / 1024,
        srv.object_count()
    );
    timed("in-process scan+clone of all deployments", 10, || {
        for _ in 0..10 {
            std::hint::black_box(
                srv.list_objects(&kube_apiserver::Gvr::parse("apps/v1/deployments"), None),
            );
        }
    });
    let list = c
        .send("GET", "/apis/apps/v1/deployments", "application/json", "")
        .1;
    let v: serde_json::Value = serde_json::from_slice(&list).unwrap();
    timed("serde_json serialize of that list", 10, || {
        for _ in 0..10 {
            std::hint::black_box(v.to_string());
        }
    });
    timed("LIST deployments in prod by owner labels", 10, || {
        for _ in 0..10 {
            c.send(
                "GET",
                &format!("/apis/apps/v1/namespaces/prod/deployments?{sel}"),
                "application/json",
                "",
            );
        }
    });
    timed("LIST configmaps, pages of 500", 1, || {
        let mut cont = String::new();
        loop {
            let q = if cont.is_empty() {
                "limit=500".to_string()
            } else {
                format!("limit=500&continue={cont}")
            };
            let (_, b) = c.send(
                "GET",
                &format!("/api/v1/configmaps?{q}"),
                "application/json",
                "",
            );
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            match v["metadata"]["continue"].as_str() {
                Some(t) => cont = kube_apiserver::util::percent_encode(t),
                None => break,
            }
        }
    });
    timed("GET one deployment", 1000, || {
        for i in 0..1000 {
            c.send(
                "GET",
                &format!(
                    "/apis/apps/v1/namespaces/dev/deployments/app-{:04}",
                    i % apps
                ),
                "application/json",
                "",
            );
        }
    });
}
