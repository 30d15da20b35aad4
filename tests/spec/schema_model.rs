//! The JSON Schemas and the Rust model must not drift: every example file
//! validates and round-trips through the model unchanged, and the `full`
//! fixture, which sets every field the schemas know, does too.

use std::collections::BTreeSet;

use keelson::check::check_repo;
use keelson::check::schema::Kind;
use serde_json::Value;

use crate::project_root;

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => root.pointer(r.trim_start_matches('#')).unwrap(),
        None => s,
    }
}

/// Every field path the schema defines (`/spec/apps/*/name`).
fn schema_paths(root: &Value, s: &Value, at: &str, out: &mut BTreeSet<String>) {
    let s = resolve(root, s);
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = format!("{at}/{k}");
            out.insert(p.clone());
            schema_paths(root, v, &p, out);
        }
    }
    if let Some(items) = s.get("items") {
        schema_paths(root, items, &format!("{at}/*"), out);
    }
    if let Some(ap) = s.get("additionalProperties").filter(|v| v.is_object())
        && resolve(root, ap).get("properties").is_some()
    {
        schema_paths(root, ap, &format!("{at}/*"), out);
    }
}

/// Every field path an instance sets, read with the schema's eyes.
fn instance_paths(root: &Value, s: &Value, v: &Value, at: &str, out: &mut BTreeSet<String>) {
    let s = resolve(root, s);
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            for (k, child) in m {
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    let p = format!("{at}/{k}");
                    out.insert(p.clone());
                    instance_paths(root, ps, child, &p, out);
                } else if let Some(ap) = s.get("additionalProperties").filter(|v| v.is_object()) {
                    instance_paths(root, ap, child, &format!("{at}/*"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for item in items {
                    instance_paths(root, is, item, &format!("{at}/*"), out);
                }
            }
        }
        _ => {}
    }
}

/// Numbers compared by value: the model writes `4` read as f64 back as `4.0`.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    node: &keelson::yaml::Node,
    what: &str,
) {
    let json = node.to_json();
    let typed: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        normalize(&serde_json::to_value(&typed).unwrap()),
        normalize(&json),
        "{what} does not round-trip"
    );
}

fn check_repo_round_trips(root: &std::path::Path) -> Vec<(Kind, Value)> {
    let report = check_repo(root);
    assert_eq!(report.errors(), 0, "{:#?}", report.diagnostics);
    let mut docs = Vec::new();
    for p in &report.repo.policies {
        round_trip::<keelson::spec::Policy>(&p.node, &p.file.display().to_string());
        docs.push((Kind::Policy, p.node.to_json()));
    }
    for env in report.repo.environments.values() {
        let e = env.environment.as_ref().unwrap();
        round_trip::<keelson::spec::Environment>(&e.node, &e.file.display().to_string());
        docs.push((Kind::Environment, e.node.to_json()));
        if let Some(p) = &env.pipeline {
            round_trip::<keelson::spec::Pipeline>(&p.node, &p.file.display().to_string());
            docs.push((Kind::Pipeline, p.node.to_json()));
        }
    }
    docs
}

#[test]
fn example_files_validate_and_round_trip_through_the_model() {
    let docs = check_repo_round_trips(&project_root());
    assert!(
        docs.len() >= 11,
        "expected every example file, got {}",
        docs.len()
    );
}

#[test]
fn the_full_fixture_covers_every_schema_field_and_round_trips() {
    let docs = check_repo_round_trips(&project_root().join("tests/fixtures/full"));
    for kind in [Kind::Environment, Kind::Pipeline, Kind::Policy] {
        let schema: Value = serde_json::from_str(kind.schema_text()).unwrap();
        let mut wanted = BTreeSet::new();
        schema_paths(&schema, &schema, "", &mut wanted);
        let mut seen = BTreeSet::new();
        for (_, v) in docs.iter().filter(|(k, _)| *k == kind) {
            instance_paths(&schema, &schema, v, "", &mut seen);
        }
        let missing: Vec<_> = wanted.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "{}: the full fixture does not set {missing:?}",
            kind.name()
        );
    }
}

#[test]
fn the_shipped_schemas_are_valid_draft_2020_12() {
    for kind in [Kind::Environment, Kind::Pipeline, Kind::Policy] {
        let schema: Value = serde_json::from_str(kind.schema_text()).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
    }
}
