//! Previews from merge requests in `keelson run`: the real binary follows
//! a real Git repository holding the example's storefront template, takes
//! merge requests from the fake forge ([`super::forge`]), and applies to
//! the Kubernetes API test server. What is asserted is what the server
//! holds.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keelson::controller::webhook::sign;
use kube_apiserver::Gvr;
use serde_json::{Value, json};

use super::Harness;
use super::forge::{FakeForge, Flavour, GITHUB_TOKEN};

const SECRET: &str = "preview-webhook-secret";
const LABEL: &str = "deploy/preview";

fn ns(n: u64) -> String {
    format!("shop-preview-storefront-{n}")
}

/// The example repository with its templates only (no folder
/// environments), as a Git repository, and a config whose controller
/// follows it with the forge `fake`; `tweak` edits the template first.
pub(crate) fn setup(
    h: &Harness,
    fake: &FakeForge,
    poll: &str,
    tweak: impl Fn(&Harness),
) -> std::path::PathBuf {
    for e in std::fs::read_dir(h.path("environments")).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "_templates" {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
    tweak(h);
    let git = |args: &[&str]| git(h, args);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "environments", "policies", "schema"]);
    git(&["commit", "-q", "-m", "example"]);
    std::fs::write(h.path("forge-token"), fake.token()).unwrap();
    let kind = if fake.token() == GITHUB_TOKEN {
        "github"
    } else {
        "gitlab"
    };
    let cfg_path = h.path("keelson.yaml");
    let mut cfg = std::fs::read_to_string(&cfg_path).unwrap();
    cfg.push_str(&format!(
        "stateDir: state\ncontroller:\n  repository: {{url: ., branch: main, watch: false}}\n  pollInterval: 1h\n  driftInterval: 1s\n  selfHeal: true\n  webhook: {{secretEnv: KEELSON_TEST_WEBHOOK_SECRET}}\npreviews:\n  pollInterval: {poll}\nforge:\n  kind: {kind}\n  apiUrl: {}\n  tokenFile: forge-token\n",
        fake.api_url
    ));
    std::fs::write(&cfg_path, cfg).unwrap();
    cfg_path
}

/// Run git in the repository.
fn git(h: &Harness, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .current_dir(h.repo.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) struct Run {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Run {
    pub(crate) fn start(h: &Harness, config: &std::path::Path) -> Run {
        let log = h.path("run.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args(["run", "--listen", "127.0.0.1:0", "--no-wait", "--config"])
            .arg(config)
            .current_dir(h.repo.path())
            .env_remove("KUBECONFIG")
            .env("KEELSON_TEST_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{line:?}: {}", std::fs::read_to_string(&log).unwrap()))
            .to_string();
        Run { child, base, log }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `cond` holds, polling every 50 ms, for at most 20 s.
    pub(crate) fn wait(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A signed GitHub `pull_request` delivery; the HTTP status.
    fn pull_request_hook(&self, number: u64, action: &str) -> u16 {
        let body = json!({"action": action, "number": number, "pull_request": {"number": number}});
        self.hook("pull_request", body)
    }

    /// A signed GitHub delivery of `event`; the HTTP status.
    fn hook(&self, event: &str, body: Value) -> u16 {
        let body = body.to_string();
        let sig = format!(
            "sha256={}",
            hex::encode(sign(SECRET.as_bytes(), body.as_bytes()))
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            keelson::http::client()
                .post(format!("{}/hooks/git", self.base))
                .header("X-GitHub-Event", event)
                .header("X-Hub-Signature-256", sig)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    }

    pub(crate) fn status(&self) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(crate::get_json::get_json(&format!("{}/status", self.base)))
    }

    pub(crate) fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "keelson run exited with {status}; log:\n{}",
            self.log()
        );
    }
}

/// A test that fails half-way must not leave its `keelson run` behind.
impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn image(h: &Harness, n: u64) -> Option<String> {
    let d = h.get("apps/v1/deployments", Some(&ns(n)), "storefront")?;
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .map(str::to_string)
}

fn node_ports(h: &Harness, n: u64) -> Vec<u64> {
    h.get("v1/services", Some(&ns(n)), "storefront-node-ports")
        .map(|s| {
            s["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["nodePort"].as_u64().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing of preview `n` is left on the server: its objects, its
/// namespace (which takes the inventory along), its record.
fn gone(h: &Harness, n: u64) -> bool {
    h.get("apps/v1/deployments", Some(&ns(n)), "storefront")
        .is_none()
        && h.get("v1/services", Some(&ns(n)), "storefront").is_none()
        && h.get("v1/services", Some(&ns(n)), "storefront-node-ports")
            .is_none()
        && h.get("v1/namespaces", None, &ns(n)).is_none()
        && !h.records().contains_key(&format!("storefront.{n}"))
}

const TAG: &str = "registry.example.com/shop/storefront:pr-";

/// Labelled merge requests become previews, a push updates one, closing
/// or unlabelling releases it with every object gone; each step driven by
/// a signed `pull_request` webhook (the poll interval is an hour).
#[test]
fn merge_requests_make_update_and_release_previews() {
    let h = Harness::new();
    let fake = FakeForge::start(Flavour::GitHub);
    let one = fake.open("feature/cart", "5f3e2a1c0ffee000", &[LABEL]);
    let two = fake.open("feature/search", "aaaaaaa1111", &[]);
    let config = setup(&h, &fake, "1h", |h| {
        // A second template, `web`, with a preview made by the CLI.
        let web = h.path("environments/_templates/web");
        super::harness::copy_dir(&h.path("environments/_templates/storefront"), &web);
        let file = "environments/_templates/web/preview.yaml";
        h.edit(file, "name: storefront", "name: web");
        h.edit(file, "base: 30000", "base: 31000");
        h.edit(file, "label: deploy/preview", "label: deploy/web");
        let (code, out, err) = h.keelson(&[
            "preview",
            "create",
            "web",
            "5",
            "--branch",
            "w",
            "--sha",
            "abc1234",
            "--no-wait",
        ]);
        assert_eq!(code, 0, "{out}\n{err}");
    });
    // One replica under Leases: previews are applied, released and
    // recorded under their environment's Lease, and /status reads every
    // environment's status from the in-cluster `KeelsonEnvironment`s.
    h.srv
        .create_object(
            &Gvr::parse("apiextensions.k8s.io/v1/customresourcedefinitions"),
            "test",
            keelson::record::kube::crd(),
        )
        .unwrap();
    h.edit(
        "keelson.yaml",
        "controller:\n",
        "controller:\n  leases: {cluster: dev, namespace: keelson-system}\n",
    );
    let run = Run::start(&h, &config);

    run.wait("MR 1 has its preview", || image(&h, one).is_some());
    assert_eq!(image(&h, one).unwrap(), format!("{TAG}{one}-5f3e2a1"));
    assert_eq!(node_ports(&h, one), [30000, 30001, 30002]);
    let rec = &h.records()[&format!("storefront.{one}")];
    assert_eq!(
        (rec["source"].as_str(), rec["sha"].as_str()),
        (Some("github"), Some("5f3e2a1c0ffee000"))
    );
    assert_eq!(rec["url"], fake.web_url(one));
    assert!(
        h.get("v1/namespaces", None, &ns(two)).is_none(),
        "MR 2 has no label"
    );

    // A push to MR 1: the live image follows the new commit.
    fake.push(one, "9b8c7d6e5f000");
    assert_eq!(run.pull_request_hook(one, "synchronize"), 202);
    run.wait("MR 1's preview runs the new commit", || {
        image(&h, one).as_deref() == Some(format!("{TAG}{one}-9b8c7d6").as_str())
    });
    assert_eq!(
        node_ports(&h, one),
        [30000, 30001, 30002],
        "it keeps its block"
    );

    // Labelling MR 2 gives it the next block.
    fake.label(two, LABEL);
    assert_eq!(run.pull_request_hook(two, "labeled"), 202);
    run.wait("MR 2 has its preview", || {
        node_ports(&h, two) == [30003, 30004, 30005]
    });

    // Removing the `web` template (a pushed commit) releases its preview.
    assert!(h.get("v1/namespaces", None, "shop-preview-web-5").is_some());
    std::fs::remove_dir_all(h.path("environments/_templates/web")).unwrap();
    git(&h, &["commit", "-q", "-am", "drop the web template"]);
    let push = json!({"ref": "refs/heads/main", "after": "x"});
    assert_eq!(run.hook("push", push), 202);
    run.wait("the web preview is released", || {
        h.get("v1/namespaces", None, "shop-preview-web-5").is_none()
            && !h.records().contains_key("web.5")
    });

    // Closing MR 1 retires its preview: every object gone.
    fake.close(one);
    assert_eq!(run.pull_request_hook(one, "closed"), 202);
    run.wait("MR 1's preview is gone", || gone(&h, one));
    // Unlabelling MR 2 does the same.
    fake.unlabel(two, LABEL);
    assert_eq!(run.pull_request_hook(two, "unlabeled"), 202);
    run.wait("MR 2's preview is gone", || gone(&h, two));

    let st = run.status();
    let env = |name: &str| {
        st["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["env"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    // Recorded as the workers record environments: apps and when observed,
    // in the preview's `KeelsonEnvironment`.
    let object = h.get(
        "keelson.dev/v1/keelsonenvironments",
        Some("keelson-system"),
        "preview-storefront-1",
    );
    assert!(
        object.is_some_and(|o| o["status"]["lastAttempt"].is_object()),
        "{st:#}"
    );
    let one_status = env("preview-storefront-1");
    assert_eq!(one_status["apps"][0]["name"], "storefront", "{st:#}");
    assert!(one_status["appsObservedAt"].is_string(), "{st:#}");
    let last = &env("preview-storefront-1")["lastAttempt"]["outcome"];
    assert_eq!(last["result"], "applied", "{st:#}");
    assert!(last["deleted"].as_u64().unwrap() >= 5, "{last}");
    let log = run.log();
    assert!(log.contains("merge request 1 was closed"), "{log}");
    assert!(
        log.contains("merge request 2 no longer has the preview label"),
        "{log}"
    );
    assert!(
        log.contains("its template `web` was removed from the repository"),
        "{log}"
    );
    assert!(!log.contains(GITHUB_TOKEN), "the token leaked into the log");
    assert!(fake.refused().is_empty(), "{:?}", fake.refused());
    run.stop();
}

/// A preview whose `preview-ttl/` label runs out is released (a tombstone
/// stays, so it is not made again at the same commit), and the template's
/// limit refuses the next preview with a clear status until then. From
/// GitLab, polled every 200 ms.
#[test]
fn the_time_to_live_releases_and_the_limit_refuses() {
    let h = Harness::new();
    let fake = FakeForge::start(Flavour::GitLab);
    let one = fake.open("feature/cart", "1111111aaaa", &[LABEL]);
    // The forge lists the newest first: MR 2 takes the template's one
    // place, MR 1 is refused.
    let two = fake.open("feature/search", "2222222bbbb", &[LABEL, "preview-ttl/2s"]);
    let config = setup(&h, &fake, "200ms", |h| {
        let file = "environments/_templates/storefront/preview.yaml";
        h.edit(file, "maxPreviews: 10", "maxPreviews: 1");
        h.edit(
            file,
            "github:\n      repository:",
            "gitlab:\n      project:",
        );
    });
    let run = Run::start(&h, &config);
    run.wait("MR 2 has its preview", || {
        node_ports(&h, two) == [30000, 30001, 30002]
    });
    run.wait("MR 1 is refused with the reason", || {
        let st = run.status();
        st["environments"].as_array().unwrap().iter().any(|e| {
            e["env"] == "preview-storefront-1"
                && e["lastAttempt"]["outcome"]["result"] == "failed"
                && e["lastAttempt"]["outcome"]["message"]
                    .as_str()
                    .is_some_and(|m| {
                        m.contains(
                            "template `storefront` has 1 of its 1 previews (spec.maxPreviews)",
                        )
                    })
        })
    });
    assert!(
        h.get("v1/namespaces", None, &ns(one)).is_none(),
        "nothing half-made"
    );
    assert!(!h.records().contains_key("storefront.1"));

    // Two seconds after its creation MR 2's preview expires; its block
    // goes to MR 1.
    run.wait("MR 2's preview expired", || {
        h.get("apps/v1/deployments", Some(&ns(two)), "storefront")
            .is_none()
            && h.get("v1/namespaces", None, &ns(two)).is_none()
    });
    let tomb = &h.records()["storefront.2"];
    assert_eq!(tomb["state"], "expired", "{tomb}");
    assert!(tomb.get("ports").is_none(), "{tomb}");
    run.wait("MR 1 has its preview", || {
        node_ports(&h, one) == [30000, 30001, 30002]
    });
    // A hand edit of a preview is drift: healed within the drift interval.
    let live = format!("{TAG}{one}-1111111");
    assert_eq!(image(&h, one).as_deref(), Some(live.as_str()));
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments/storefront?fieldManager=kubectl-set",
        ns(one)
    );
    let hand = json!({"spec": {"template": {"spec": {"containers": [{"name": "storefront", "image": "registry.example.com/shop/storefront:hotfix"}]}}}});
    assert_eq!(
        h.patch(&path, "application/strategic-merge-patch+json", &hand),
        200
    );
    assert!(image(&h, one).unwrap().ends_with(":hotfix"));
    run.wait("the hand edit is healed", || {
        image(&h, one).as_deref() == Some(live.as_str())
    });
    // MR 2 is still open and labelled, at the same commit: no new preview.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        h.get("v1/namespaces", None, &ns(two)).is_none(),
        "{}",
        run.log()
    );
    assert_eq!(h.records()["storefront.2"]["state"], "expired");
    assert!(run.log().contains("its time-to-live ran out"));
    run.stop();
}
