//! A quota per preview through the Rancher project: a template whose
//! environment names `rancher:` gives each preview a project of its own on
//! the Rancher test server, with the template's quotas, and releasing the
//! preview deletes the project keelson made.

use rancher_server::{DEFAULT_TOKEN, RancherServer, ServerOptions};

use super::Harness;

const RANCHER_CLUSTER: &str = "c-m-dev01";

fn project<'a>(projects: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    projects.iter().find(|p| p["name"] == name)
}

/// A Rancher test server for the `dev` cluster (kept alive by the returned
/// runtime), the harness wired to it, and `rancher_yaml` (the template's
/// `rancher:` section) put into the template's environment.
fn with_rancher(rancher_yaml: &str) -> (tokio::runtime::Runtime, RancherServer, Harness) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rancher = rt.block_on(RancherServer::start_with(ServerOptions {
        clusters: vec![RANCHER_CLUSTER.into()],
        ..ServerOptions::default()
    }));
    let h = Harness::new();
    std::fs::write(h.path("rancher-token"), DEFAULT_TOKEN).unwrap();
    h.edit(
        "keelson.yaml",
        "  dev:\n",
        &format!(
            "  dev:\n    rancher:\n      url: {}\n      tokenFile: rancher-token\n",
            rancher.url()
        ),
    );
    h.edit(
        "environments/_templates/storefront/environment.yaml",
        "  prune:\n",
        &format!("{rancher_yaml}  prune:\n"),
    );
    (rt, rancher, h)
}

#[test]
fn each_preview_gets_its_rancher_project_with_the_quota_and_release_deletes_it() {
    let (rt, rancher, h) = with_rancher(
        "  rancher:\n    clusterId: c-m-dev01\n    project: ${preview.name}\n    resourceQuota: {limitsCpu: \"2\", limitsMemory: 4Gi}\n    namespaceDefaultQuota: {limitsCpu: \"2\", limitsMemory: 4Gi}\n",
    );
    let create = |n: &str| {
        let (code, out, err) = h.keelson(&[
            "preview",
            "create",
            "storefront",
            n,
            "--branch",
            "b",
            "--sha",
            "abcdef1234",
            "--no-wait",
        ]);
        assert_eq!(code, 0, "create {n}:\n{out}\n{err}");
    };
    create("7");
    create("8");
    let projects = rancher.projects();
    for n in [7, 8] {
        let p = project(&projects, &format!("preview-storefront-{n}"))
            .unwrap_or_else(|| panic!("no project for preview {n}: {projects:#?}"));
        assert_eq!(p["resourceQuota"]["limit"]["limitsCpu"], "2", "{p:#}");
        let ns = rancher
            .namespace(RANCHER_CLUSTER, &format!("shop-preview-storefront-{n}"))
            .expect("namespace in Rancher");
        assert_eq!(
            ns["projectId"].as_str(),
            p["id"].as_str(),
            "the preview's namespace is in its project: {ns:#}"
        );
    }

    let (code, out, err) = h.keelson(&["preview", "delete", "storefront", "7"]);
    assert_eq!(code, 0, "delete:\n{out}\n{err}");
    let projects = rancher.projects();
    assert!(
        project(&projects, "preview-storefront-7").is_none(),
        "the project keelson made goes with the preview: {projects:#?}"
    );
    assert!(project(&projects, "preview-storefront-8").is_some());
    drop(rt);
}

/// Previews sharing one Rancher project: each namespace takes the
/// template's `namespaceDefaultQuota` from the project's `resourceQuota`,
/// and the preview that does not fit is refused with Rancher's reason
/// before anything is applied, and not recorded; releasing another keeps
/// the shared project. (The Rancher test server does not see the Kubernetes
/// test server's namespaces go, so a place freeing up is not shown here.)
#[test]
fn a_shared_rancher_project_refuses_the_preview_beyond_its_quota() {
    let (rt, rancher, h) = with_rancher(
        "  rancher:\n    clusterId: c-m-dev01\n    project: shop-previews\n    resourceQuota: {limitsCpu: \"4\", limitsMemory: 8Gi}\n    namespaceDefaultQuota: {limitsCpu: \"2\", limitsMemory: 4Gi}\n",
    );
    let create = |n: &str| {
        h.keelson(&[
            "preview",
            "create",
            "storefront",
            n,
            "--branch",
            "b",
            "--sha",
            "abcdef1234",
            "--no-wait",
        ])
    };
    for n in ["7", "8"] {
        let (code, out, err) = create(n);
        assert_eq!(code, 0, "create {n}:\n{out}\n{err}");
    }
    let (code, out, err) = create("9");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("needs 2 of resourceQuota.limit.limitsCpu 4, but the project's other namespaces already hold 4"),
        "{out}"
    );
    assert!(
        err.contains("preview preview-storefront-9 was not created"),
        "{err}"
    );
    assert!(
        h.get("v1/namespaces", None, "shop-preview-storefront-9")
            .is_none()
    );
    assert!(
        rancher
            .namespace(RANCHER_CLUSTER, "shop-preview-storefront-9")
            .is_none()
    );
    assert!(!h.records().contains_key("storefront.9"), "not half-made");

    let (code, out, err) = h.keelson(&["preview", "delete", "storefront", "7"]);
    assert_eq!(code, 0, "delete:\n{out}\n{err}");
    assert!(
        project(&rancher.projects(), "shop-previews").is_some(),
        "shared: kept"
    );
    drop(rt);
}

/// The same in `keelson run`: three labelled merge requests, a shared
/// project with room for two namespaces; the third preview (in name order)
/// is released at once, nothing of it applied, and `/status` says why.
#[test]
fn keelson_run_releases_a_preview_the_rancher_quota_refuses() {
    use super::forge::{FakeForge, Flavour};
    use super::run::{Run, setup};
    let (_rt, rancher, h) = with_rancher(
        "  rancher:\n    clusterId: c-m-dev01\n    project: shop-previews\n    resourceQuota: {limitsCpu: \"4\", limitsMemory: 8Gi}\n    namespaceDefaultQuota: {limitsCpu: \"2\", limitsMemory: 4Gi}\n",
    );
    let fake = FakeForge::start(Flavour::GitHub);
    for (i, branch) in ["a", "b", "c"].iter().enumerate() {
        fake.open(
            branch,
            &format!("{i}{i}{i}{i}{i}{i}{i}abc"),
            &["deploy/preview"],
        );
    }
    let config = setup(&h, &fake, "200ms", |_| {});
    let run = Run::start(&h, &config);
    run.wait("merge request 3 is refused with Rancher's reason", || {
        run.status()["environments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| {
                e["env"] == "preview-storefront-3"
                    && e["lastAttempt"]["outcome"]["message"]
                        .as_str()
                        .is_some_and(|m| {
                            m.starts_with("preview not created, nothing of it was applied:")
                                && m.contains("needs 2 of resourceQuota.limit.limitsCpu 4")
                        })
            })
    });
    for n in [1, 2] {
        let ns = format!("shop-preview-storefront-{n}");
        assert!(h.get("v1/namespaces", None, &ns).is_some(), "{}", run.log());
    }
    assert!(
        h.get("v1/namespaces", None, "shop-preview-storefront-3")
            .is_none()
    );
    assert!(
        rancher
            .namespace(RANCHER_CLUSTER, "shop-preview-storefront-3")
            .is_none()
    );
    run.stop();
}
