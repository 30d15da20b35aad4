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
            let mut keys: Vec<&String> = m
                .keys()
                .filter(|k| !(at == Where::Annotations && *k == APPLIED_HASH_ANNOTATION))
                .filter(|k| !(at == Where::Metadata && *k == "annotations" && only_hash(&m[*k])))
                .collect();
            keys.sort_unstable();
            h.push(b'{');
            let mut first = true;
            for k in keys {
                if !first {
                    h.push(b',');
                }
                first = false;
                let _ = serde_json::to_writer(&mut *h, k);
                h.push(b':');
                let next = match (at, k.as_str()) {
                    (Where::Top, "metadata") => Where::Metadata,
                    (Where::Metadata, "annotations") => Where::Annotations,
                    _ => Where::Inner,
                };
                feed(&m[k], h, next);
            }
            h.push(b'}');
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
}
