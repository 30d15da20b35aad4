//! Where each value of a rendered object came from: the `environment.yaml`,
//! `pipeline.yaml`, policy or manifest field that produced it. A problem the
//! API server would have with a rendered object is reported there, at the
//! line the user can change, not in YAML they never wrote.
//!
//! The mapping mirrors [`super::objects`]: a test renders the example
//! repository and checks that every value of every object leads to a field
//! of a spec file, so the two cannot drift apart unnoticed.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::Source;
use super::merge::ResolvedEnv;
use super::objects::{ENV_LABEL, MANAGED_BY};
use crate::spec::{Doc, EnvFiles, Policy};
use crate::yaml::{Node, Span, Value};

/// A field of a spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file, relative to the repository root.
    pub file: PathBuf,
    /// JSON pointer into the file's document.
    pub pointer: String,
    /// The span of the field there.
    pub span: Span,
}

/// The spec files an environment was rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Specs<'a> {
    /// The merged environment.
    pub env: &'a ResolvedEnv,
    /// Its files.
    pub files: &'a EnvFiles,
    /// Every policy of the repository (the environment's are picked by name).
    pub policies: &'a [Doc<Policy>],
}

#[derive(Clone, Copy)]
struct Located<'a> {
    file: &'a Path,
    node: &'a Node,
}

impl<'a> Specs<'a> {
    /// Where the value at `pointer` of a rendered object made from `source`
    /// came from. `key` asks for the span of a map key rather than its value.
    /// Falls back to the nearest field that exists, never fails.
    pub fn origin(&self, source: Source, pointer: &str, key: bool) -> Option<Origin> {
        let tokens: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let candidates = match source {
            Source::Namespace => self.namespace(&t),
            Source::App(i) => self.app(i, &t),
            Source::Manifest(i) => self.manifest(i, pointer, &t),
        };
        // A rendered name that comes from a map key (an env var, a DNS
        // option) is reported at that key.
        let from_key = matches!(
            t.as_slice(),
            [.., "env", _, "name"] | [.., "dnsConfig", "options", _, "name"]
        ) && !matches!(source, Source::Manifest(_));
        for (doc, ptr) in candidates {
            if let Some(found) = self.locate(doc, &ptr, key || from_key) {
                return Some(found);
            }
        }
        None
    }

    fn locate(&self, doc: Located<'_>, pointer: &str, key: bool) -> Option<Origin> {
        let node = doc.node.pointer(pointer)?;
        // A mapping or list is shown at its key (`resources:`), not at its
        // first entry; list items have no key and show where they start.
        let collection = matches!(node.value, Value::Map(_) | Value::Seq(_));
        let last_is_key = pointer
            .rsplit('/')
            .next()
            .is_some_and(|t| !t.is_empty() && !t.bytes().all(|b| b.is_ascii_digit()));
        Some(Origin {
            file: doc.file.to_path_buf(),
            pointer: pointer.to_string(),
            span: doc.node.locate(pointer, key || (collection && last_is_key)),
        })
    }

    fn env_doc(&self) -> Option<Located<'a>> {
        self.files.environment.as_ref().map(|d| Located {
            file: &d.file,
            node: &d.node,
        })
    }

    fn pipeline_doc(&self) -> Option<Located<'a>> {
        self.files.pipeline.as_ref().map(|d| Located {
            file: &d.file,
            node: &d.node,
        })
    }

    /// The policies in force, last (winning) first.
    fn policy_docs(&self) -> Vec<Located<'a>> {
        self.env
            .policies
            .iter()
            .rev()
            .filter_map(|name| {
                self.policies
                    .iter()
                    .find(|p| &p.value.metadata.name == name)
            })
            .map(|p| Located {
                file: &p.file,
                node: &p.node,
            })
            .collect()
    }

    fn env_field(&self, ptr: &str) -> Vec<(Located<'a>, String)> {
        self.env_doc()
            .map(|d| (d, ptr.to_string()))
            .into_iter()
            .collect()
    }

    /// A policy default: the last policy in force that sets it.
    fn policy_field(&self, ptr: &str) -> Vec<(Located<'a>, String)> {
        self.policy_docs()
            .into_iter()
            .map(|d| (d, format!("/spec/defaults{ptr}")))
            .collect()
    }

    fn pipeline_field(&self, app: &str, field: &str) -> Vec<(Located<'a>, String)> {
        self.pipeline_doc()
            .map(|d| (d, format!("/spec/apps/{}/{field}", esc(app))))
            .into_iter()
            .collect()
    }

    /// A label every object carries, or an app's own.
    fn label(&self, app: Option<usize>, key: &str) -> Vec<(Located<'a>, String)> {
        let mut out = Vec::new();
        let app_ptr = |f: &str| app.map(|i| format!("/spec/apps/{i}/{f}"));
        match key {
            "app.kubernetes.io/name" => out.extend(
                app_ptr("name")
                    .map(|p| self.env_field(&p))
                    .unwrap_or_default(),
            ),
            "app.kubernetes.io/version" => {
                if let Some(i) = app {
                    let name = &self.env.apps[i].name;
                    out.extend(self.pipeline_field(name, "tag"));
                    out.extend(self.pipeline_field(name, "digest"));
                }
            }
            "keelson.dev/region" => {
                if let Some(i) = app {
                    out.extend(self.pipeline_field(&self.env.apps[i].name, "region"));
                }
            }
            ENV_LABEL | MANAGED_BY => out.extend(self.env_field("/metadata/name")),
            _ => {}
        }
        if let Some(p) = app_ptr(&format!("labels/{}", esc(key))) {
            out.extend(self.env_field(&p));
        }
        out.extend(self.env_field(&format!("/spec/labels/{}", esc(key))));
        out.extend(self.policy_field(&format!("/labels/{}", esc(key))));
        out
    }

    fn namespace(&self, t: &[&str]) -> Vec<(Located<'a>, String)> {
        match t {
            ["metadata", "labels", k, ..] => self.label(None, k),
            _ => self.env_field("/spec/namespace"),
        }
    }

    fn app(&self, i: usize, t: &[&str]) -> Vec<(Located<'a>, String)> {
        let a = format!("/spec/apps/{i}");
        let name = self.env.apps.get(i).map_or("", |a| a.name.as_str());
        let field = |f: &str| self.env_field(&format!("{a}/{f}"));
        let mut out = match t {
            ["metadata", "namespace"] => self.env_field("/spec/namespace"),
            ["metadata", "labels", k, ..] | ["spec", "template", "metadata", "labels", k, ..] => {
                self.label(Some(i), k)
            }
            ["spec", "selector", .., k] if *k == ENV_LABEL => self.env_field("/metadata/name"),
            ["spec", "template", "metadata", "annotations", k, ..] => {
                self.policy_field(&format!("/podAnnotations/{}", esc(k)))
            }
            ["spec", "replicas"] => [
                field("replicas"),
                self.policy_field("/appDefaults/replicas"),
            ]
            .concat(),
            ["spec", "revisionHistoryLimit"] => self.policy_field("/revisionHistoryLimit"),
            ["spec", "strategy", "rollingUpdate", f, ..] => [
                self.policy_field(&format!("/rollout/{f}")),
                self.policy_field("/rollout"),
            ]
            .concat(),
            ["spec", "template", "spec", rest @ ..] => self.pod(i, name, rest),
            // Service ports follow the app's ports one for one.
            ["spec", "ports", j, rest @ ..] => {
                let f = match rest.first() {
                    None | Some(&"port") => "port",
                    Some(&"protocol") => "protocol",
                    _ => "name",
                };
                [
                    field(&format!("ports/{j}/{f}")),
                    field(&format!("ports/{j}")),
                ]
                .concat()
            }
            ["spec", "ingressClassName"] => self.policy_field("/ingressClass"),
            ["spec", "rules", _, "host", ..] => {
                [self.pipeline_field(name, "domain"), field("domain")].concat()
            }
            ["spec", "rules", ..] if t.contains(&"port") => self.ingress_port(i),
            ["spec", "rules", ..] => {
                [self.pipeline_field(name, "domain"), field("domain")].concat()
            }
            ["spec", f @ ("minAvailable" | "maxUnavailable")] => {
                self.policy_field(&format!("/podDisruptionBudget/{f}"))
            }
            _ => Vec::new(),
        };
        out.extend(field("name"));
        out
    }

    fn ingress_port(&self, i: usize) -> Vec<(Located<'a>, String)> {
        let ports = &self.env.apps[i].ports;
        let j = ports.iter().position(|p| p.name == "http").unwrap_or(0);
        self.env_field(&format!("/spec/apps/{i}/ports/{j}/name"))
    }

    /// The pod spec of an app's Deployment.
    fn pod(&self, i: usize, name: &str, t: &[&str]) -> Vec<(Located<'a>, String)> {
        let a = format!("/spec/apps/{i}");
        let field = |f: &str| self.env_field(&format!("{a}/{f}"));
        match t {
            ["nodeSelector", k, ..] => {
                let mut out = field(&format!("nodeSelector/{}", esc(k)));
                out.extend(self.env_field(&format!("/spec/nodeSelector/{}", esc(k))));
                if *k == "topology.kubernetes.io/region" {
                    out.extend(self.pipeline_field(name, "region"));
                }
                out
            }
            ["dnsPolicy", ..] => self.policy_field("/dnsPolicy"),
            ["dnsConfig", "options", j, ..] => {
                let key = j
                    .parse::<usize>()
                    .ok()
                    .and_then(|j| self.env.defaults.dns_options.keys().nth(j));
                match key {
                    Some(k) => self.policy_field(&format!("/dnsOptions/{}", esc(k))),
                    None => self.policy_field("/dnsOptions"),
                }
            }
            ["terminationGracePeriodSeconds", ..] => {
                self.policy_field("/terminationGracePeriodSeconds")
            }
            ["containers", _, rest @ ..] => self.container(i, name, rest),
            _ => Vec::new(),
        }
    }

    fn container(&self, i: usize, name: &str, t: &[&str]) -> Vec<(Located<'a>, String)> {
        let a = format!("/spec/apps/{i}");
        let field = |f: &str| self.env_field(&format!("{a}/{f}"));
        match t {
            // The repository part is what can be wrong: tags and digests
            // are held to their patterns by the schema.
            ["image", ..] => [
                self.pipeline_field(name, "image"),
                field("image"),
                self.pipeline_field(name, "tag"),
                self.pipeline_field(name, "digest"),
            ]
            .concat(),
            [f @ ("command" | "args"), rest @ ..] => {
                let f: &str = f;
                let mut out = rest
                    .first()
                    .map(|j| field(&format!("{f}/{j}")))
                    .unwrap_or_default();
                out.extend(field(f));
                out
            }
            ["ports", j, f, ..] => {
                let f = if *f == "containerPort" { "port" } else { f };
                [
                    field(&format!("ports/{j}/{f}")),
                    field(&format!("ports/{j}")),
                ]
                .concat()
            }
            ["ports", j] => [
                field(&format!("ports/{j}/port")),
                field(&format!("ports/{j}")),
            ]
            .concat(),
            ["env", j, ..] => {
                // The container's env is the app's env (sorted by name) plus
                // what the runtime adds (JAVA_OPTS, NODE_OPTIONS).
                let names = super::objects::env_names(self.env, &self.env.apps[i]);
                match j.parse::<usize>().ok().and_then(|j| names.get(j)) {
                    Some(k) => {
                        let mut out = field(&format!("env/{}", esc(k)));
                        out.extend(field("runtime"));
                        out
                    }
                    None => field("env"),
                }
            }
            ["resources", _, res, ..] => {
                let res = if *res == "cpu" { "cpu" } else { "memory" };
                [
                    field(res),
                    self.policy_field(&format!("/appDefaults/{res}")),
                ]
                .concat()
            }
            [probe @ ("readinessProbe" | "livenessProbe"), rest @ ..] => {
                let mut out = match rest {
                    ["httpGet", "path", ..] => field("health/path"),
                    ["httpGet", "port", ..] => {
                        [field("health/port"), field("ports/0/name")].concat()
                    }
                    ["initialDelaySeconds", ..] if *probe == "livenessProbe" => [
                        field("health/initialDelaySeconds"),
                        self.policy_field("/probes/initialDelaySeconds"),
                    ]
                    .concat(),
                    [
                        f @ ("periodSeconds" | "timeoutSeconds" | "failureThreshold"),
                        ..,
                    ] => self.policy_field(&format!("/probes/{f}")),
                    _ => Vec::new(),
                };
                out.extend(field("health"));
                out
            }
            _ => Vec::new(),
        }
    }

    fn manifest(&self, i: usize, pointer: &str, t: &[&str]) -> Vec<(Located<'a>, String)> {
        let Some(m) = self.env.manifests.get(i) else {
            return Vec::new();
        };
        let doc = || Located {
            file: &m.file,
            node: &m.node,
        };
        if m.node.pointer(pointer).is_some() {
            return vec![(doc(), pointer.to_string())];
        }
        // Values keelson adds to a passthrough manifest.
        let mut out = match t {
            ["metadata", "namespace"] => self.env_field("/spec/namespace"),
            ["metadata", "labels", k, ..] => self.label(None, k),
            _ => Vec::new(),
        };
        // Else the deepest part of the path the manifest has.
        let mut p = pointer;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if m.node.pointer(parent).is_some() {
                out.push((doc(), parent.to_string()));
                break;
            }
            p = parent;
        }
        out.push((doc(), String::new()));
        out
    }
}

/// Escape one JSON pointer token.
fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Every leaf of a JSON value, as pointers (for the provenance test).
pub fn leaves(v: &Json) -> Vec<String> {
    fn walk(v: &Json, at: &mut String, out: &mut Vec<String>) {
        match v {
            Json::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    let len = at.len();
                    at.push('/');
                    at.push_str(&esc(k));
                    walk(child, at, out);
                    at.truncate(len);
                }
            }
            Json::Array(a) if !a.is_empty() => {
                for (i, child) in a.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("/{i}"));
                    walk(child, at, out);
                    at.truncate(len);
                }
            }
            _ => out.push(at.clone()),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut String::new(), &mut out);
    out
}
