//! Every object keelson would apply to an environment (rendered objects and
//! passthrough manifests alike), checked offline as the API server would
//! check it ([`super::kube`]), with each problem reported at the spec line
//! that produced the value ([`crate::render::provenance`]).

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value as Json;

use super::kube::{self, ErrorType, FieldError, Options, crd};
use crate::diag::Diagnostic;
use crate::render::provenance::Specs;
use crate::render::{self, ResolvedEnv, Source};
use crate::spec::{Doc, EnvFiles, Policy};

/// Check the objects of one environment. `crds` are the repository's
/// CustomResourceDefinitions.
pub fn check_env(
    env: &ResolvedEnv,
    files: &EnvFiles,
    policies: &[Doc<Policy>],
    crds: &crd::Index,
    options: Options,
) -> Vec<Diagnostic> {
    let specs = Specs {
        env,
        files,
        policies,
    };
    let mut out: Vec<Diagnostic> = Vec::new();
    // One spec value rendered into many objects (an environment label) is
    // reported once, with a count.
    let mut seen: HashMap<(PathBuf, usize, usize, String), (usize, usize)> = HashMap::new();
    // Objects are checked as they are rendered and dropped at once (an
    // environment's thousands of rendered objects were the peak memory of
    // every command that checks); the problems found are then reported in
    // the order `render_env` sorts objects, as before.
    let mut found = Vec::new();
    // Checking needs no applied hash, only the annotation's size.
    render::each_object(env, render::Stamp::Placeholder, |obj, source| {
        let errors = kube::check_object(&obj, crds, options);
        if !errors.is_empty() {
            found.push((render::order_key(&obj), source, describe(&obj), errors));
        }
    });
    found.sort_by(|a, b| a.0.cmp(&b.0)); // stable, as render_env's sort
    for (_, source, what, errors) in found {
        for e in errors {
            let origin = specs.origin(source, &e.pointer, e.at_key);
            let (file, span) = match origin {
                Some(o) => (o.file, Some(o.span)),
                None => (env.file.clone(), None),
            };
            let (line, col) = span.map_or((0, 0), |s| (s.start.line, s.start.col));
            let same = format!("{:?}|{:?}|{}", e.kind, e.value, e.detail);
            if let Some((_, count)) = seen.get_mut(&(file.clone(), line, col, same.clone())) {
                *count += 1;
                continue;
            }
            seen.insert((file.clone(), line, col, same), (out.len(), 0));
            let d = Diagnostic::error("kubernetes", &file, span, format!("{what}: {e}"));
            out.push(d.with_help(help(&e, source, &what)));
        }
    }
    for ((_, _, _, _), (index, count)) in seen {
        if count > 0
            && let Some(d) = out.get_mut(index)
        {
            let help = d.help.take().unwrap_or_default();
            d.help = Some(format!(
                "{help} (the same value reaches {count} more object{})",
                if count == 1 { "" } else { "s" }
            ));
        }
    }
    out
}

/// `Deployment web` (with the namespace when the object names one that is
/// not the environment's, which never happens for rendered objects).
fn describe(obj: &Json) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Json::as_str).unwrap_or("?");
    format!("{} `{}`", s("/kind"), s("/metadata/name"))
}

fn help(e: &FieldError, source: Source, what: &str) -> String {
    let rendered = !matches!(source, Source::Manifest(_));
    let tail = if rendered {
        format!("keelson renders this value into {what}, which the API server would refuse")
    } else {
        "the API server would refuse this object, after earlier objects were already applied".into()
    };
    match e.kind {
        ErrorType::UnknownField => "the kind does not declare this field: server-side apply and \
             `kubectl --validate=strict` refuse it; check its spelling and indentation"
            .into(),
        ErrorType::Type => format!("the API server cannot decode this value (HTTP 400); {tail}"),
        ErrorType::UnknownKind => {
            "check `apiVersion` and `kind`; `kubectl api-resources` lists what a cluster serves"
                .into()
        }
        _ => tail,
    }
}

/// The CRDs among every environment's manifests.
pub fn crd_index(repo: &crate::spec::Repo) -> crd::Index {
    crd::Index::new(
        repo.environments
            .values()
            .flat_map(|e| e.manifests.iter().map(|m| &m.object)),
    )
}
