//! Offline Kubernetes checks of every object keelson would apply (issue #11):
//! no false alarm on objects a real server accepts, and every value of a
//! rendered object traced to the spec line that produced it.

use std::path::Path;

use keelson::check::check_repo;
use keelson::render::provenance::{Specs, leaves};
use keelson::render::{Source, render_env_sourced};

use crate::{keelson, project_root};

#[test]
fn objects_a_real_server_accepts_pass() {
    let root = project_root().join("tests/fixtures/valid-objects");
    let report = check_repo(&root);
    let errors: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == keelson::diag::Severity::Error)
        .map(|d| d.one_line())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let env = &report.ready["dev"];
    // The fixture really holds what it claims: every manifest, and the merge.
    assert_eq!(env.manifests.len(), 18);
    let worker = env.apps.iter().find(|a| a.name == "worker").unwrap();
    assert_eq!(worker.labels["tier"], "frontend", "merged from the anchor");
    assert_eq!(worker.labels["role"], "worker");
    let sidecar = env
        .manifests
        .iter()
        .find(|m| m.object["kind"] == "Deployment")
        .unwrap()
        .object
        .pointer("/spec/template/spec/containers/1")
        .unwrap()
        .clone();
    assert_eq!(sidecar["name"], "sidecar");
    assert_eq!(sidecar["image"], "registry.example.com/shop/notifier:0.4.1");
    assert!(sidecar.get("<<").is_none());
}

#[test]
fn the_example_repository_passes() {
    let report = check_repo(&project_root());
    let errors: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == keelson::diag::Severity::Error)
        .map(|d| d.one_line())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Every value of every rendered object leads to a field of a spec file.
#[test]
fn every_rendered_value_has_a_spec_origin() {
    for root in [
        project_root(),
        project_root().join("tests/fixtures/valid-objects"),
    ] {
        let report = check_repo(&root);
        for (name, env) in &report.ready {
            let files = &report.repo.environments[name];
            let specs = Specs {
                env,
                files,
                policies: &report.repo.policies,
            };
            for (obj, source) in render_env_sourced(env) {
                for leaf in leaves(&obj) {
                    if leaf == "/apiVersion" || leaf == "/kind" {
                        continue;
                    }
                    let origin = specs.origin(source, &leaf, false);
                    assert!(
                        origin.is_some(),
                        "{}: {} {} {leaf} has no origin",
                        root.display(),
                        obj["kind"],
                        obj["metadata"]["name"]
                    );
                }
            }
        }
    }
}

/// The field each rendered value is reported at, for the values a user gets
/// wrong most.
#[test]
fn rendered_values_are_traced_to_the_field_that_set_them() {
    let root = project_root().join("tests/fixtures/valid-objects");
    let report = check_repo(&root);
    let env = &report.ready["dev"];
    let specs = Specs {
        env,
        files: &report.repo.environments["dev"],
        policies: &report.repo.policies,
    };
    let web = Source::App(0);
    let cases: &[(Source, &str, &str, &str)] = &[
        (
            web,
            "/spec/template/spec/containers/0/ports/1/containerPort",
            "environments/dev/environment.yaml",
            "/spec/apps/0/ports/1/port",
        ),
        (
            web,
            "/spec/ports/2/protocol",
            "environments/dev/environment.yaml",
            "/spec/apps/0/ports/2/protocol",
        ),
        (
            web,
            "/metadata/labels/team",
            "environments/dev/environment.yaml",
            "/spec/labels/team",
        ),
        (
            web,
            "/metadata/labels/owner",
            "policies/base.yaml",
            "/spec/defaults/labels/owner",
        ),
        (
            web,
            "/spec/template/metadata/labels/tier",
            "environments/dev/environment.yaml",
            "/spec/apps/0/labels/tier",
        ),
        (
            web,
            "/spec/template/metadata/labels/app.kubernetes.io~1version",
            "environments/dev/pipeline.yaml",
            "/spec/apps/web/tag",
        ),
        (
            web,
            "/spec/template/metadata/annotations/fluentbit.io~1parser",
            "policies/base.yaml",
            "/spec/defaults/podAnnotations/fluentbit.io~1parser",
        ),
        (
            web,
            "/spec/template/spec/nodeSelector/disktype",
            "environments/dev/environment.yaml",
            "/spec/apps/0/nodeSelector/disktype",
        ),
        (
            web,
            "/spec/template/spec/nodeSelector/node.example.com~1pool",
            "environments/dev/environment.yaml",
            "/spec/nodeSelector/node.example.com~1pool",
        ),
        (
            web,
            "/spec/template/spec/nodeSelector/topology.kubernetes.io~1region",
            "environments/dev/pipeline.yaml",
            "/spec/apps/web/region",
        ),
        (
            web,
            "/spec/template/spec/containers/0/image",
            "environments/dev/environment.yaml",
            "/spec/apps/0/image",
        ),
        (
            web,
            "/spec/template/spec/containers/0/env/1/name",
            "environments/dev/environment.yaml",
            "/spec/apps/0/env/SPRING_PROFILES_ACTIVE",
        ),
        (
            web,
            "/spec/template/spec/containers/0/env/0/value",
            "environments/dev/environment.yaml",
            "/spec/apps/0/runtime",
        ),
        (
            web,
            "/spec/template/spec/containers/0/resources/requests/cpu",
            "environments/dev/environment.yaml",
            "/spec/apps/0/cpu",
        ),
        (
            web,
            "/spec/template/spec/containers/0/readinessProbe/httpGet/port",
            "environments/dev/environment.yaml",
            "/spec/apps/0/health/port",
        ),
        (
            web,
            "/spec/template/spec/containers/0/livenessProbe/periodSeconds",
            "policies/base.yaml",
            "/spec/defaults/probes/periodSeconds",
        ),
        (
            web,
            "/spec/template/spec/dnsConfig/options/0/name",
            "policies/base.yaml",
            "/spec/defaults/dnsOptions/ndots",
        ),
        (
            web,
            "/spec/strategy/rollingUpdate/maxSurge",
            "policies/base.yaml",
            "/spec/defaults/rollout/maxSurge",
        ),
        (
            web,
            "/spec/rules/0/host",
            "environments/dev/pipeline.yaml",
            "/spec/apps/web/domain",
        ),
        (
            web,
            "/spec/ingressClassName",
            "policies/base.yaml",
            "/spec/defaults/ingressClass",
        ),
        (
            web,
            "/spec/minAvailable",
            "policies/base.yaml",
            "/spec/defaults/podDisruptionBudget/minAvailable",
        ),
        (
            Source::App(1),
            "/spec/template/spec/containers/0/resources/limits/memory",
            "policies/base.yaml",
            "/spec/defaults/appDefaults/memory",
        ),
        (
            Source::App(1),
            "/spec/template/metadata/labels/tier",
            "environments/dev/environment.yaml",
            "/spec/apps/1/labels/tier",
        ),
        (
            Source::Namespace,
            "/metadata/name",
            "environments/dev/environment.yaml",
            "/spec/namespace",
        ),
        (
            Source::Manifest(0),
            "/data/SMTP_PORT",
            "environments/dev/manifests/config.yaml",
            "/data/SMTP_PORT",
        ),
        (
            Source::Manifest(0),
            "/metadata/namespace",
            "environments/dev/environment.yaml",
            "/spec/namespace",
        ),
        (
            Source::Manifest(0),
            "/metadata/labels/team",
            "environments/dev/environment.yaml",
            "/spec/labels/team",
        ),
    ];
    let mut wrong = Vec::new();
    for (source, pointer, file, want) in cases {
        let got = specs.origin(*source, pointer, false);
        let got = got.as_ref().map(|o| (o.file.as_path(), o.pointer.as_str()));
        if got != Some((Path::new(file), *want)) {
            wrong.push(format!(
                "{source:?} {pointer}: want {file} {want}, got {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Case 08 of the shared cases, as a user meets it: `validate` refuses a
/// passthrough Deployment with duplicate env names and container ports, at
/// the manifest's lines, and exits 1.
#[test]
fn duplicate_keys_in_a_manifest_fail_validate_at_their_lines() {
    let dir = crate::copy_example();
    let manifests = dir.path().join("environments/dev/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("notifier.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: notifier\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: notifier\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: notifier\n    spec:\n      containers:\n        - name: notifier\n          image: registry.example.com/shop/notifier:0.4.1\n          env:\n            - name: LOG_LEVEL\n              value: info\n            - name: LOG_LEVEL\n              value: debug\n          ports:\n            - name: http\n              containerPort: 8080\n            - name: http-alt\n              containerPort: 8080\n",
    )
    .unwrap();
    let (code, out, _) = keelson(dir.path(), &["validate"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("--> environments/dev/manifests/notifier.yaml:21:21"),
        "{out}"
    );
    assert!(
        out.contains("duplicate entries for key [name=\"LOG_LEVEL\"]"),
        "{out}"
    );
    assert!(
        out.contains("--> environments/dev/manifests/notifier.yaml:27:30"),
        "{out}"
    );
    assert!(out.contains("containerPort=8080,protocol=\"TCP\""), "{out}");
    let report = check_repo(dir.path());
    assert!(report.blocked.contains(&"dev".to_string()));
    assert!(
        !report.ready.contains_key("dev"),
        "nothing of dev may be applied"
    );
}

/// keelson's own annotations take their one value each: a manifest saying
/// `keelson.dev/force: "true"` (or `keelson.dev/prune: "false"`, or a typo of
/// a key) is refused at its line, and its environment is not applied; the
/// accepted values pass.
#[test]
fn keelson_annotations_take_only_their_values() {
    let dir = crate::copy_example();
    let manifests = dir.path().join("environments/dev/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let cm = |name: &str, annotations: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n{annotations}data:\n  a: b\n"
        )
    };
    std::fs::write(
        manifests.join("good.yaml"),
        cm(
            "good",
            "    keelson.dev/force: enabled\n    keelson.dev/prune: disabled\n    keelson.dev/apply: create-only\n",
        ),
    )
    .unwrap();
    let (code, out, err) = keelson(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(
        manifests.join("bad.yaml"),
        cm(
            "bad",
            "    keelson.dev/force: \"true\"\n    keelson.dev/prune: \"false\"\n    keelson.dev/aply: create-only\n",
        ),
    )
    .unwrap();
    let (code, out, _) = keelson(dir.path(), &["validate"]);
    assert_eq!(code, 1, "{out}");
    for (at, says) in [
        (
            "bad.yaml:6:24",
            "`keelson.dev/force: \"true\"` means nothing to keelson: the one value it takes is `enabled`",
        ),
        (
            "bad.yaml:7:24",
            "`keelson.dev/prune: \"false\"` means nothing to keelson: the one value it takes is `disabled`",
        ),
        (
            "bad.yaml:8:5",
            "unknown keelson annotation `keelson.dev/aply`",
        ),
    ] {
        assert!(
            out.contains(&format!("--> environments/dev/manifests/{at}")),
            "{at}: {out}"
        );
        assert!(out.contains(says), "{says}: {out}");
    }
    assert!(out.contains("did you mean `keelson.dev/apply`?"), "{out}");
    assert!(out.contains("3 errors"), "{out}");
    let report = check_repo(dir.path());
    assert!(
        !report.ready.contains_key("dev"),
        "nothing of dev may be applied"
    );
}
