//! YAML 1.1 merge keys (`<<: *defaults`), expanded the way kubectl and Helm
//! read them.
//!
//! Both read YAML through `sigs.k8s.io/yaml`, which uses go-yaml v2. Its
//! `decoder.merge` (yaml.v2 `decode.go`) copies the merged mappings into the
//! parent at the place of `<<`; in a list of mappings an earlier one wins over
//! a later one. Keys written after `<<` therefore win, as the YAML 1.1 merge
//! spec (<https://yaml.org/type/merge.html>) says, but a key written *before*
//! `<<` is overwritten by the merge, which the spec forbids. Where the two
//! disagree keelson refuses the file rather than pick one. A quoted `"<<"` is
//! an ordinary key to go-yaml, which would send a `<<` field to the API
//! server; keelson refuses that too (see [`quoted_merge_key`]).

use std::collections::HashMap;

use super::{Entry, Node, Span, Value, YamlError};

/// Expand the merge key of one mapping. `entries` are the mapping's own
/// entries in source order; `at` is how many of them came before `<<`;
/// `key` is where `<<` is written and `value` what it merges.
///
/// Errors: a value that is not a mapping or a list of mappings, and a key
/// written before `<<` that the merge also sets.
pub(super) fn expand(
    entries: &mut Vec<Entry>,
    at: usize,
    key: Span,
    value: Node,
) -> Result<(), YamlError> {
    let sources: Vec<Node> = match value.value {
        Value::Map(_) => vec![value],
        Value::Seq(items) => {
            if let Some(bad) = items.iter().find(|i| !matches!(i.value, Value::Map(_))) {
                return Err(YamlError::at(
                    bad.span,
                    format!(
                        "the merge key `<<` takes mappings, but this list item is {}",
                        kind(bad)
                    ),
                )
                .help("write `<<: [*a, *b]` with anchors of mappings"));
            }
            items
        }
        _ => {
            return Err(YamlError::at(
                value.span,
                format!(
                    "the merge key `<<` takes a mapping or a list of mappings, found {}",
                    kind(&value)
                ),
            )
            .help("write `<<: *anchor` where the anchor names a mapping"));
        }
    };
    let own: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.as_str(), i))
        .collect();
    let mut merged: Vec<Entry> = Vec::new();
    let mut taken: HashMap<String, ()> = HashMap::new();
    for source in sources {
        let Value::Map(items) = source.value else {
            continue;
        };
        for e in items {
            if let Some(&i) = own.get(e.key.as_str()) {
                if i < at {
                    let mine = &entries[i];
                    return Err(YamlError::at(
                        mine.key_span,
                        format!(
                            "`{}` is set here and also by the merge key `<<` after it (line {}): \
                             kubectl would use the merged value ({}), YAML 1.1 this one",
                            e.key,
                            key.start.line,
                            short(&e.value)
                        ),
                    )
                    .help("put `<<` before the keys that override it, so every reader agrees"));
                }
                continue; // written after `<<`: the explicit key wins
            }
            if taken.insert(e.key.clone(), ()).is_none() {
                merged.push(e);
            }
        }
    }
    entries.splice(at..at, merged);
    Ok(())
}

/// The error for a quoted `"<<"` key, which go-yaml keeps as a data key
/// named `<<`: no Kubernetes field or valid data key has that name.
pub(super) fn quoted_merge_key(span: Span) -> YamlError {
    YamlError::at(
        span,
        "a quoted `<<` is a plain key named `<<` to kubectl, not a merge key",
    )
    .help("write `<<` without quotes to merge a mapping, or rename the key")
}

fn kind(n: &Node) -> &'static str {
    match n.value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::Float(_) => "a number",
        Value::Str(..) => "a string",
        Value::Seq(_) => "a list",
        Value::Map(_) => "a mapping",
    }
}

fn short(n: &Node) -> String {
    let mut s = n.to_json().to_string();
    if s.chars().count() > 40 {
        s = s.chars().take(40).collect::<String>() + "…";
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::yaml::{Limits, parse_one};

    fn json(text: &str) -> serde_json::Value {
        parse_one(text, Limits::default()).unwrap().to_json()
    }

    fn err(text: &str) -> crate::yaml::YamlError {
        parse_one(text, Limits::default()).unwrap_err()
    }

    #[test]
    fn merges_a_mapping_and_keys_after_it_win() {
        let v = json("base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\n  c: 4\n");
        assert_eq!(v["x"], serde_json::json!({"a": 1, "b": 3, "c": 4}));
        assert!(v["x"].get("<<").is_none());
    }

    #[test]
    fn in_a_list_earlier_mappings_win_as_in_kubectl() {
        // Checked with kubectl create --dry-run=client -o json: a=first, b=explicit, c=second.
        let v = json("x:\n  <<: [{a: first, b: first}, {a: second, c: second}]\n  b: explicit\n");
        assert_eq!(
            v["x"],
            serde_json::json!({"a": "first", "b": "explicit", "c": "second"})
        );
    }

    #[test]
    fn merged_values_keep_the_position_they_were_written_at() {
        let n = parse_one(
            "defaults: &d\n  cpu: 1\nweb:\n  <<: *d\n  name: web\n",
            Limits::default(),
        )
        .unwrap();
        let span = n.locate("/web/cpu", false);
        assert_eq!((span.start.line, span.start.col), (2, 8));
    }

    #[test]
    fn nested_merges_expand() {
        let v = json("a: &a {x: 1}\nb: &b\n  <<: *a\n  y: 2\nc:\n  <<: *b\n  z: 3\n");
        assert_eq!(v["c"], serde_json::json!({"x": 1, "y": 2, "z": 3}));
    }

    #[test]
    fn a_key_before_the_merge_that_the_merge_also_sets_is_refused() {
        // kubectl (go-yaml v2) lets the merge win here; YAML 1.1 lets the key win.
        let e = err("b: &b {a: 2}\nx:\n  a: 1\n  <<: *b\n");
        assert_eq!((e.span.start.line, e.span.start.col), (3, 3));
        assert!(e.message.contains("merge key `<<`"), "{}", e.message);
    }

    #[test]
    fn non_mapping_merge_values_are_refused_at_the_value() {
        let e = err("x:\n  <<: just a string\n");
        assert_eq!((e.span.start.line, e.span.start.col), (2, 7));
        assert!(e.message.contains("found a string"), "{}", e.message);
        let e = err("a: &a [1]\nx:\n  <<: [*a]\n");
        assert_eq!(e.span.start.line, 3);
        assert!(
            e.message.contains("this list item is a list"),
            "{}",
            e.message
        );
        let e = err("x:\n  <<:\n  a: 1\n");
        assert!(e.message.contains("found empty"), "{}", e.message);
    }

    #[test]
    fn a_quoted_merge_key_is_refused() {
        for text in ["x:\n  \"<<\": {a: 1}\n", "x:\n  '<<': {a: 1}\n"] {
            let e = err(text);
            assert_eq!((e.span.start.line, e.span.start.col), (2, 3), "{text}");
            assert!(e.message.contains("quoted `<<`"), "{}", e.message);
        }
    }

    #[test]
    fn two_merge_keys_in_one_mapping_are_a_duplicate() {
        let e = err("a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n");
        assert_eq!((e.span.start.line, e.span.start.col), (5, 3));
        assert!(e.message.contains("duplicate key `<<`"), "{}", e.message);
    }
}
