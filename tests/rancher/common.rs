//! Shared helpers: desired states like the ones in environment.yaml, and a
//! client built the way `keelson reconcile` builds it (from the config).

use std::collections::BTreeMap;
use std::time::Duration;

use keelson::rancher::{
    DesiredMember, DesiredProject, DesiredRancher, RancherClient, RancherEndpoint, Subject,
};
use rancher_server::{DEFAULT_TOKEN, RancherServer};
use serde_json::Value;

pub const CLUSTER: &str = "c-m-abc12";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The prod example from the task: quotas, defaults, two members.
pub fn desired(env: &str) -> DesiredRancher {
    DesiredRancher {
        environment: env.to_string(),
        cluster_id: CLUSTER.to_string(),
        project: DesiredProject {
            name: format!("shop-{env}"),
            description: Some(format!("Shop {env}")),
            resource_quota: map(&[
                ("limitsCpu", "40"),
                ("limitsMemory", "80Gi"),
                ("pods", "200"),
            ]),
            namespace_default_quota: map(&[
                ("limitsCpu", "8"),
                ("limitsMemory", "16Gi"),
                ("pods", "50"),
            ]),
            container_default_limits: map(&[
                ("limitsCpu", "500m"),
                ("limitsMemory", "512Mi"),
                ("requestsCpu", "100m"),
                ("requestsMemory", "128Mi"),
            ]),
        },
        namespace: format!("shop-{env}"),
        members: vec![
            DesiredMember {
                subject: Subject::GroupPrincipalId("github_team://1234".into()),
                role: "project-member".into(),
            },
            DesiredMember {
                subject: Subject::UserPrincipalId("local://u-abc12".into()),
                role: "read-only".into(),
            },
        ],
    }
}

/// A test-owned token file and the endpoint naming it.
pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub endpoint: RancherEndpoint,
}

pub fn endpoint(server: &RancherServer, token: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rancher-token");
    std::fs::write(&path, format!("{token}\n")).expect("write token");
    Setup {
        endpoint: RancherEndpoint {
            url: server.url().to_string(),
            token_file: Some(path),
            ..Default::default()
        },
        _dir: dir,
    }
}

/// A client with the server's token and a short wait for `active`.
pub fn client(server: &RancherServer) -> RancherClient {
    let setup = endpoint(server, DEFAULT_TOKEN);
    RancherClient::from_endpoint(&setup.endpoint)
        .expect("client")
        .with_active_wait(Duration::from_secs(10), Duration::from_millis(20))
}

/// Plans and applies, asserting success; returns the project id.
pub async fn converge(client: &RancherClient, d: &DesiredRancher) -> String {
    let plan = keelson::rancher::plan(client, d).await.expect("plan");
    let report = keelson::rancher::apply(client, &plan).await;
    assert!(report.is_success(), "{}", report.render_text());
    report.project_id.clone().expect("project id after apply")
}

/// One raw request with the server's token: (status, JSON body).
pub async fn call(
    server: &RancherServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = keelson::http::client();
    let mut req = http
        .request(method, format!("{}{}", server.url(), path))
        .bearer_auth(DEFAULT_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
