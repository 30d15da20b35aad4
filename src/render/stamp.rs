//! The applied hash: a digest of a desired object, recorded on it as the
//! `keelson.dev/applied-hash` annotation. When the live object carries the
//! same hash, Git has not changed since keelson applied it, whatever form
//! the server stores it in (see `plan::ownership`).
//!
//! The digest is SHA-256 over the object's JSON with keys sorted (so key
//! order never matters), leaving out the annotation itself, truncated to
//! 128 bits. Secret values go into it; diffs mask the annotation of Secrets.

use std::io::Write;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::objects::APPLIED_HASH_ANNOTATION;

/// The applied hash of `o` (32 hex digits), ignoring any hash annotation it
/// already carries.
pub fn applied_hash(o: &Json) -> String {
    let mut h = Hasher(Sha256::new());
    feed(o, &mut h, Where::Top);
    hex::encode(&h.0.finalize()[..16])
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

struct Hasher(Sha256);

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Where {
    Top,
    Metadata,
    Annotations,
    Inner,
}

/// Canonical JSON into the hasher, without building it: keys sorted,
/// compact, the hash annotation skipped.
fn feed(v: &Json, h: &mut Hasher, at: Where) {
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
            h.0.update(b"{");
            let mut first = true;
            for k in keys {
                if !first {
                    h.0.update(b",");
                }
                first = false;
                let _ = serde_json::to_writer(&mut *h, k);
                h.0.update(b":");
                let next = match (at, k.as_str()) {
                    (Where::Top, "metadata") => Where::Metadata,
                    (Where::Metadata, "annotations") => Where::Annotations,
                    _ => Where::Inner,
                };
                feed(&m[k], h, next);
            }
            h.0.update(b"}");
        }
        Json::Array(a) => {
            h.0.update(b"[");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    h.0.update(b",");
                }
                feed(x, h, Where::Inner);
            }
            h.0.update(b"]");
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
