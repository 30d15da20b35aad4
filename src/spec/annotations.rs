//! keelson's own annotations (`keelson.dev/…`) on raw manifests: each takes
//! one value, and any other value (`keelson.dev/force: "true"`) or an
//! unknown `keelson.dev/` key would be silently ignored, the object then
//! handled as if it were not annotated. So they are refused where written.

use std::path::Path;

use serde_json::Value as Json;

use crate::diag::{Diagnostic, did_you_mean};
use crate::render::objects::{
    APPLIED_HASH_ANNOTATION, APPLY_ANNOTATION, FORCE_ANNOTATION, PRUNE_ANNOTATION,
};
use crate::yaml::Node;

/// The annotations a manifest may carry, the one value each takes, and what
/// it does (said in the error).
const ACCEPTED: &[(&str, &str, &str)] = &[
    (
        PRUNE_ANNOTATION,
        "disabled",
        "keeps the object from ever being pruned",
    ),
    (
        APPLY_ANNOTATION,
        "create-only",
        "creates the object once and never updates it",
    ),
    (
        FORCE_ANNOTATION,
        "enabled",
        "lets keelson replace the object (delete, then create) when a change touches a field that cannot change",
    ),
];

/// Check the `keelson.dev/` annotations of manifest `object` (parsed from
/// `node` of `file`); errors at the value (or key) that is wrong.
pub fn check(file: &Path, node: &Node, object: &Json, diags: &mut Vec<Diagnostic>) {
    let Some(annotations) = object
        .pointer("/metadata/annotations")
        .and_then(Json::as_object)
    else {
        return;
    };
    for (key, value) in annotations {
        if !key.starts_with("keelson.dev/") {
            continue;
        }
        let pointer = format!(
            "/metadata/annotations/{}",
            key.replace('~', "~0").replace('/', "~1")
        );
        let at = |on_key: bool| Some(node.locate(&pointer, on_key));
        if key == APPLIED_HASH_ANNOTATION {
            diags.push(
                Diagnostic::error(
                    "manifest",
                    file,
                    at(true),
                    format!("`{key}` is written by keelson when it applies, not in Git"),
                )
                .with_help("remove it (a copy of a live object carries it)"),
            );
            continue;
        }
        let Some((_, accepted, what)) = ACCEPTED.iter().find(|(k, _, _)| k == key) else {
            let known = ACCEPTED.iter().map(|(k, _, _)| *k);
            let hint = did_you_mean(key, known.clone())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            diags.push(
                Diagnostic::error(
                    "manifest",
                    file,
                    at(true),
                    format!("unknown keelson annotation `{key}`"),
                )
                .with_help(format!(
                    "{hint}keelson reads {}",
                    known.collect::<Vec<_>>().join(", ")
                )),
            );
            continue;
        };
        if value.as_str() == Some(*accepted) {
            continue;
        }
        let shown = match value {
            Json::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        diags.push(
            Diagnostic::error(
                "manifest",
                file,
                at(false),
                format!("`{key}: {shown}` means nothing to keelson: the one value it takes is `{accepted}`"),
            )
            .with_help(format!(
                "`{key}: {accepted}` {what}; remove the annotation otherwise"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diags(yaml: &str) -> Vec<Diagnostic> {
        let node = crate::yaml::parse_one(yaml, crate::yaml::Limits::default()).unwrap();
        let mut out = Vec::new();
        check(Path::new("m.yaml"), &node, &node.to_json(), &mut out);
        out
    }

    #[test]
    fn accepted_values_pass_and_others_are_refused_at_the_value() {
        let ok = "metadata:\n  name: a\n  annotations:\n    keelson.dev/force: enabled\n    keelson.dev/prune: disabled\n    keelson.dev/apply: create-only\n    other.dev/x: y\n";
        assert!(diags(ok).is_empty());
        let bad = "metadata:\n  name: a\n  annotations:\n    keelson.dev/force: \"true\"\n    keelson.dev/prun: disabled\n    keelson.dev/applied-hash: abc\n";
        let d = diags(bad);
        assert_eq!(d.len(), 3, "{d:#?}");
        let force = d.iter().find(|d| d.message.contains("force")).unwrap();
        assert!(
            force.message.contains("`keelson.dev/force: \"true\"`"),
            "{}",
            force.message
        );
        assert!(force.message.contains("`enabled`"), "{}", force.message);
        assert_eq!((force.line, force.column), (4, 24));
        let typo = d.iter().find(|d| d.message.contains("prun")).unwrap();
        assert!(
            typo.help
                .as_deref()
                .unwrap()
                .contains("did you mean `keelson.dev/prune`?")
        );
        assert_eq!((typo.line, typo.column), (5, 5));
        assert!(d.iter().any(|d| d.message.contains("written by keelson")));
    }
}
