//! ConfigMaps and Secrets: keys and sizes.
//!
//! Source: `pkg/apis/core/validation/validation.go` (`ValidateConfigMap`,
//! `ValidateSecret`); `MaxSecretSize` and the ConfigMap limit are both
//! 1 MiB (`corev1.MaxSecretSize = 1 * 1024 * 1024`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::{Errors, Path, names};

/// The most data a ConfigMap or Secret may hold, in bytes.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// `ValidateConfigMap`.
pub fn config_map(c: &ConfigMap, errs: &mut Errors) {
    let root = Path::root();
    let mut total = 0;
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    let data = root.field("data");
    for (k, v) in c.data.iter().flatten() {
        key(k, &data.key(k), errs);
        keys.insert(k);
        total += v.len();
    }
    let binary = root.field("binaryData");
    for (k, v) in c.binary_data.iter().flatten() {
        key(k, &binary.key(k), errs);
        if keys.contains(k.as_str()) {
            errs.invalid(&binary.key(k), k, "duplicate of key present in data");
        }
        total += v.0.len();
    }
    if total > MAX_DATA_BYTES {
        errs.too_long(
            &root,
            format!("must have at most {MAX_DATA_BYTES} bytes (this holds {total})"),
        );
    }
}

/// `ValidateSecret`: keys, size, and the keys each `type` requires.
pub fn secret(s: &Secret, errs: &mut Errors) {
    let root = Path::root();
    let data = root.field("data");
    let mut total = 0;
    let mut present: BTreeSet<&str> = BTreeSet::new();
    for (k, v) in s.data.iter().flatten() {
        key(k, &data.key(k), errs);
        present.insert(k);
        total += v.0.len();
    }
    let string_data = root.field("stringData");
    for (k, v) in s.string_data.iter().flatten() {
        key(k, &string_data.key(k), errs);
        if present.insert(k) {
            total += v.len();
        }
    }
    if total > MAX_DATA_BYTES {
        errs.too_long(
            &data,
            format!("must have at most {MAX_DATA_BYTES} bytes (this holds {total})"),
        );
    }
    let required: &[&str] = match s.type_.as_deref().unwrap_or("Opaque") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    // A missing key is shown where the user writes keys: `stringData` when
    // there is no `data`.
    let written = if s.data.is_none() && s.string_data.is_some() {
        &string_data
    } else {
        &data
    };
    for k in required {
        if !present.contains(k) {
            errs.required(&written.key(k), "");
            if let Some(e) = errs.list.last_mut() {
                e.field = data.key(k).to_string();
            }
        }
    }
    if s.type_.as_deref() == Some("kubernetes.io/basic-auth")
        && !present.contains("username")
        && !present.contains("password")
    {
        errs.required(
            &data.key("username"),
            "either `username` or `password` must be present",
        );
    }
}

fn key(k: &str, at: &Path, errs: &mut Errors) {
    let msgs = names::config_map_key(k);
    if !msgs.is_empty() {
        errs.invalid(at, k, msgs.join("; "));
        if let Some(e) = errs.list.last_mut() {
            e.at_key = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_sizes() {
        let c: ConfigMap = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"ok.key": "x", "bad key": "y", "big": "z".repeat(MAX_DATA_BYTES)}}),
        )
        .unwrap();
        let mut e = Errors::default();
        config_map(&c, &mut e);
        let e: Vec<String> = e.list.iter().map(ToString::to_string).collect();
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key"));
        assert!(
            e[1].starts_with("Too long: must have at most 1048576 bytes"),
            "{}",
            e[1]
        );
    }

    #[test]
    fn tls_secrets_need_their_keys() {
        let s: Secret = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": "x"}}),
        )
        .unwrap();
        let mut e = Errors::default();
        secret(&s, &mut e);
        assert_eq!(e.list.len(), 1);
        assert_eq!(e.list[0].pointer, "/stringData/tls.key");
        assert_eq!(e.list[0].to_string(), "data[tls.key]: Required value");
    }
}
