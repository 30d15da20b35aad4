//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), for the kinds kubectl's
//! generator commands create with them: `kubectl create namespace|configmap|secret|serviceaccount`.
//!
//! The wire form is the `k8s\0` magic, then a `runtime.Unknown` message (typeMeta = 1 with
//! apiVersion = 1 and kind = 2; raw = 2) whose `raw` bytes are the object's own message. Each kind
//! here is decoded by a table of its fields from k8s.io/api's `generated.proto`; other kinds are
//! refused with 415, naming the media types the server reads.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The magic prefix of a Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    Msg(&'static [F]),
    /// `metav1.Time` (seconds = 1, nanos = 2), RFC 3339 in JSON.
    Time,
    RepStr,
    RepMsg(&'static [F]),
    MapStr,
    MapBytes,
}

/// A field: number, JSON name, type.
type F = (u64, &'static str, Ty);

const OWNER_REF: &[F] = &[
    (1, "kind", Ty::Str),
    (3, "name", Ty::Str),
    (4, "uid", Ty::Str),
    (5, "apiVersion", Ty::Str),
    (6, "controller", Ty::Bool),
    (7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[F] = &[
    (1, "name", Ty::Str),
    (2, "generateName", Ty::Str),
    (3, "namespace", Ty::Str),
    (5, "uid", Ty::Str),
    (6, "resourceVersion", Ty::Str),
    (7, "generation", Ty::Int),
    (8, "creationTimestamp", Ty::Time),
    (11, "labels", Ty::MapStr),
    (12, "annotations", Ty::MapStr),
    (13, "ownerReferences", Ty::RepMsg(OWNER_REF)),
    (14, "finalizers", Ty::RepStr),
];

const NAMESPACE: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(&[(1, "finalizers", Ty::RepStr)])),
];

const CONFIG_MAP: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapStr),
    (3, "binaryData", Ty::MapBytes),
    (4, "immutable", Ty::Bool),
];

const SECRET: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapBytes),
    (3, "type", Ty::Str),
    (4, "stringData", Ty::MapStr),
    (5, "immutable", Ty::Bool),
];

const NAME_REF: &[F] = &[(1, "name", Ty::Str)];

const SERVICE_ACCOUNT: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "secrets", Ty::RepMsg(NAME_REF)),
    (3, "imagePullSecrets", Ty::RepMsg(NAME_REF)),
    (4, "automountServiceAccountToken", Ty::Bool),
];

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtoError {
    /// Not a `k8s\0` envelope, or truncated.
    #[error("the protobuf body is not a Kubernetes object envelope")]
    Envelope,
    /// A kind this server has no field table for.
    #[error("{0}")]
    Unsupported(String),
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let out = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// The next (field number, wire type), or None at the end.
    fn key(&mut self) -> Option<(u64, u8)> {
        if self.pos >= self.b.len() {
            return None;
        }
        let k = self.varint()?;
        Some((k >> 3, (k & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => (self.pos + 8 <= self.b.len()).then(|| self.pos += 8),
            2 => self.bytes().map(|_| ()),
            5 => (self.pos + 4 <= self.b.len()).then(|| self.pos += 4),
            _ => None,
        }
    }
}

fn text(b: &[u8]) -> Option<String> {
    String::from_utf8(b.to_vec()).ok()
}

/// A map entry message: key = 1, value = 2.
fn entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut r = Reader { b, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((n, wire)) = r.key() {
        match (n, wire) {
            (1, 2) => k = text(r.bytes()?)?,
            (2, 2) if bytes_value => {
                v = json!(base64::engine::general_purpose::STANDARD.encode(r.bytes()?))
            }
            (2, 2) => v = json!(text(r.bytes()?)?),
            _ => r.skip(wire)?,
        }
    }
    Some((k, v))
}

fn time(b: &[u8]) -> Option<Value> {
    let mut r = Reader { b, pos: 0 };
    let mut secs = 0u64;
    while let Some((n, wire)) = r.key() {
        match (n, wire) {
            (1, 0) => secs = r.varint()?,
            _ => r.skip(wire)?,
        }
    }
    Some(json!(crate::util::rfc3339(secs)))
}

fn message(b: &[u8], fields: &[F]) -> Option<Value> {
    let mut r = Reader { b, pos: 0 };
    let mut out = Map::new();
    while let Some((n, wire)) = r.key() {
        let Some((_, name, ty)) = fields.iter().find(|f| f.0 == n) else {
            r.skip(wire)?;
            continue;
        };
        let name = name.to_string();
        match (*ty, wire) {
            (Ty::Str, 2) => {
                out.insert(name, json!(text(r.bytes()?)?));
            }
            (Ty::Bool, 0) => {
                out.insert(name, json!(r.varint()? != 0));
            }
            (Ty::Int, 0) => {
                out.insert(name, json!(r.varint()? as i64));
            }
            (Ty::Msg(f), 2) => {
                out.insert(name, message(r.bytes()?, f)?);
            }
            (Ty::Time, 2) => {
                out.insert(name, time(r.bytes()?)?);
            }
            (Ty::RepStr, 2) => {
                let s = json!(text(r.bytes()?)?);
                push(&mut out, name, s);
            }
            (Ty::RepMsg(f), 2) => {
                let m = message(r.bytes()?, f)?;
                push(&mut out, name, m);
            }
            (Ty::MapStr | Ty::MapBytes, 2) => {
                let (k, v) = entry(r.bytes()?, matches!(ty, Ty::MapBytes))?;
                let m = out.entry(name).or_insert_with(|| json!({}));
                m[k] = v;
            }
            _ => r.skip(wire)?,
        }
    }
    Some(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, name: String, v: Value) {
    if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
        a.push(v);
    }
}

/// Decode a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let raw = body.strip_prefix(MAGIC).ok_or(ProtoError::Envelope)?;
    let mut r = Reader { b: raw, pos: 0 };
    let (mut api_version, mut kind, mut object) = (String::new(), String::new(), None);
    while let Some((n, wire)) = r.key() {
        match (n, wire) {
            (1, 2) => {
                let tm = message(
                    r.bytes().ok_or(ProtoError::Envelope)?,
                    &[(1, "apiVersion", Ty::Str), (2, "kind", Ty::Str)],
                )
                .ok_or(ProtoError::Envelope)?;
                api_version = tm["apiVersion"].as_str().unwrap_or_default().to_string();
                kind = tm["kind"].as_str().unwrap_or_default().to_string();
            }
            (2, 2) => object = Some(r.bytes().ok_or(ProtoError::Envelope)?.to_vec()),
            _ => r.skip(wire).ok_or(ProtoError::Envelope)?,
        }
    }
    let fields = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        _ => {
            return Err(ProtoError::Unsupported(format!(
                "the test server reads protobuf only for v1 Namespaces, ConfigMaps, Secrets and ServiceAccounts, not {kind} in {api_version}; send JSON"
            )));
        }
    };
    let mut obj = message(&object.unwrap_or_default(), fields).ok_or(ProtoError::Envelope)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3 | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let tm = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let meta = [field(1, b"web"), field(3, b"shop")].concat();
        let entry = [field(1, b"REGION"), field(2, b"eu")].concat();
        let cm = [field(1, &meta), field(2, &entry)].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &cm)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "web", "namespace": "shop"}, "data": {"REGION": "eu"}})
        );
        assert_eq!(decode(b"{}"), Err(ProtoError::Envelope));
    }
}
