//! The applied hash: a digest of a desired object, recorded on it as the
//! `keelson.dev/applied-hash` annotation. When the live object carries the
//! same hash, Git has not changed since keelson applied it, whatever form
//! the server stores it in (see `plan::ownership`).
//!
//! The digest is SHA-256 over the object's JSON with keys sorted (so key
//! order never matters), leaving out the annotation itself, truncated to
//! 128 bits. Secret values go into it; diffs mask the annotation of Secrets.

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::objects::APPLIED_HASH_ANNOTATION;

/// The applied hash of `o` (32 hex digits), ignoring any hash annotation it
/// already carries.
pub fn applied_hash(o: &Json) -> String {
    // The canonical text is built whole and hashed in one call: fed piece by
    // piece (a quote, a key, a colon) the hasher's bookkeeping cost more
    // than the hashing.
    let mut text = Vec::with_capacity(4096);
    feed(o, &mut text, Where::Top);
    hex::encode(&Sha256::digest(&text)[..16])
}

/// Set the applied-hash annotation of `o` to its hash.
pub fn stamp(o: &mut Json) {
    let hash = applied_hash(o);
    annotate(o, hash);
}

/// Set the applied-hash annotation of `o` to 32 zeros: the object has the
/// shape and annotation size of a stamped one (which the API server limits,
/// see `check::kube::meta`) without the cost of hashing it. For objects
/// that are only checked, never applied.
pub fn stamp_placeholder(o: &mut Json) {
    annotate(o, "0".repeat(32));
}

fn annotate(o: &mut Json, hash: String) {
    let Some(meta) = o.get_mut("metadata").and_then(Json::as_object_mut) else {
        return;
    };
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Json::Object(Default::default()));
    if let Some(a) = ann.as_object_mut() {
        a.insert(APPLIED_HASH_ANNOTATION.into(), Json::String(hash));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Where {
    Top,
    Metadata,
    Annotations,
    Inner,
}

/// Canonical JSON into `h`: keys sorted, compact, the hash annotation
/// skipped.
fn feed(v: &Json, h: &mut Vec<u8>, at: Where) {
    match v {
        Json::Object(m) => {
            // The hash annotation is left out, and so is an annotations map
            // that holds nothing else: stamping must not change the hash.
            let only_hash = |v: &Json| {
                v.as_object()
                    .is_some_and(|a| a.keys().all(|k| k == APPLIED_HASH_ANNOTATION))
            };
            let skip = |k: &str, v: &Json| {
                (at == Where::Annotations && k == APPLIED_HASH_ANNOTATION)
                    || (at == Where::Metadata && k == "annotations" && only_hash(v))
            };
            // Entries are sorted with their values, so that no value is
            // looked up again by key (a hash of the key each time); a map
            // already in key order, as most rendered ones are, is not
            // copied at all.
            if at == Where::Inner && m.keys().is_sorted() {
                feed_entries(m.iter(), h, at);
            } else {
                let mut entries: Vec<(&String, &Json)> =
                    m.iter().filter(|(k, v)| !skip(k, v)).collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                feed_entries(entries.into_iter(), h, at);
            }
        }
        Json::Array(a) => {
            h.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    h.push(b',');
                }
                feed(x, h, Where::Inner);
            }
            h.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *h, scalar);
        }
    }
}

/// `{"k":v,...}` of entries already in key order and filtered.
fn feed_entries<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Json)>,
    h: &mut Vec<u8>,
    at: Where,
) {
    h.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            h.push(b',');
        }
        let _ = serde_json::to_writer(&mut *h, k);
        h.push(b':');
        let next = match (at, k.as_str()) {
            (Where::Top, "metadata") => Where::Metadata,
            (Where::Metadata, "annotations") => Where::Annotations,
            _ => Where::Inner,
        };
        feed(v, h, next);
    }
    h.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hash_ignores_key_order_and_itself_but_not_values() {
        let a =
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
        let b =
            json!({"data": {"y": "2", "x": "1"}, "metadata": {"name": "a"}, "kind": "ConfigMap"});
        assert_eq!(applied_hash(&a), applied_hash(&b));
        let mut stamped = a.clone();
        stamp(&mut stamped);
        let h = stamped["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(h.len(), 32);
        assert_eq!(applied_hash(&stamped), h, "the annotation is not hashed");
        let mut c = a.clone();
        c["data"]["x"] = json!("2");
        assert_ne!(applied_hash(&c), h);
        // An annotation of the same name elsewhere is hashed.
        let d = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2", APPLIED_HASH_ANNOTATION: "z"}});
        assert_ne!(applied_hash(&d), h);
    }

    /// The hash of an unchanged object must never change between releases:
    /// every live object carries it, and a new value would be a phantom
    /// change on all of them. These values were computed by the first
    /// implementation (c35e247); any rewrite of `feed` must give them.
    #[test]
    fn the_hash_of_an_unchanged_object_is_the_one_released() {
        let o = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "n", "labels": {"b": "2", "a": "1"},
                         "annotations": {APPLIED_HASH_ANNOTATION: "old", "z": "é\"\\\n\t\u{1}", "a": "x"}},
            "spec": {"replicas": 3, "ratio": 0.5, "big": -12345678901i64, "on": true, "off": false, "none": null,
                     "list": [{"name": "b", "v": [1, 2.25, "x"]}, {"name": "a"}], "empty": {}, "e": [],
                     "ünï": "ü→😀", APPLIED_HASH_ANNOTATION: "kept"}
        });
        assert_eq!(applied_hash(&o), "6936658183c6be492eefa34c377d820d");
        let only_hash = json!({"kind": "ConfigMap", "metadata": {"name": "a", "annotations": {APPLIED_HASH_ANNOTATION: "x"}}, "data": {}});
        assert_eq!(applied_hash(&only_hash), "7496afda2e19aaab0d991d16425f5fe5");
    }
}
