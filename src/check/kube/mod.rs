//! Offline checks of Kubernetes objects: what the API server would refuse,
//! found before anything is applied.
//!
//! Three layers, in the order the server applies them:
//! 1. **Decoding** ([`decode`]): the object is read into its k8s-openapi
//!    type (the Go types' OpenAPI schema). A wrong type fails as the server's
//!    JSON decoding would; an undeclared field is refused as
//!    `kubectl --validate=strict` refuses it. Custom resources are read
//!    against their CRD's schema when the CRD is in the repository ([`crd`]).
//! 2. **Validation** ([`meta`], [`pod`], [`workloads`], [`service`],
//!    [`config`]): the rules of `pkg/apis/*/validation` that no crate
//!    implements, each naming its Kubernetes source.
//! 3. **Server-side apply** ([`keys`]): duplicate keys in keyed lists, which
//!    the server refuses while building the typed patch.
//!
//! Each problem is a [`FieldError`] at a JSON pointer into the object, so the
//! caller can find the spec line that produced the value.

pub mod config;
pub mod crd;
pub mod decode;
pub mod keys;
pub mod meta;
pub mod names;
pub mod path;
pub mod pod;
pub mod service;
pub mod workloads;

use std::fmt;

use serde_json::Value as Json;

pub use path::Path;

/// The Kubernetes minor version whose API types keelson compiles in
/// (k8s-openapi's `v1_33` feature).
pub const COMPILED_MINOR: u32 = 33;

/// Which API server to check against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Kubernetes minor version (1.`minor`). Rules that changed between
    /// versions follow it; the types are always those of [`COMPILED_MINOR`].
    pub minor: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            minor: COMPILED_MINOR,
        }
    }
}

impl Options {
    /// Whether environment variable names follow the relaxed rule
    /// (`RelaxedEnvironmentVariableValidation`, on by default since 1.32).
    pub fn relaxed_env_names(&self) -> bool {
        self.minor >= 32
    }
}

/// The kinds of field error, as `k8s.io/apimachinery/pkg/util/validation/field`
/// names them, plus the two decoding failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `Required value`.
    Required,
    /// `Invalid value`.
    Invalid,
    /// `Duplicate value`.
    Duplicate,
    /// `Unsupported value`.
    NotSupported,
    /// `Forbidden`.
    Forbidden,
    /// `Too long`.
    TooLong,
    /// `Not found`.
    NotFound,
    /// The value has the wrong JSON type for the field (HTTP 400).
    Type,
    /// The field is not declared by the kind (strict field validation).
    UnknownField,
    /// The apiVersion and kind are not served (kubectl: "no matches for kind").
    UnknownKind,
}

impl ErrorType {
    fn word(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::NotFound => "Not found",
            ErrorType::Type => "invalid type",
            ErrorType::UnknownField => "unknown field",
            ErrorType::UnknownKind => "unknown kind",
        }
    }
}

/// One problem with one field of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// JSON pointer to the field (`/spec/ports/1/name`).
    pub pointer: String,
    /// The field as the API server names it (`spec.ports[1].name`,
    /// `metadata.labels[team]`); empty to derive it from `pointer`.
    pub field: String,
    /// What kind of problem.
    pub kind: ErrorType,
    /// The offending value as JSON text, when it is shown.
    pub value: Option<String>,
    /// What was expected.
    pub detail: String,
    /// Point at the field's key rather than its value (unknown fields).
    pub at_key: bool,
}

/// Prints as the API server does: `spec.ports[1].name: Invalid value: "x": detail`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.is_empty() {
            path::dotted(&self.pointer)
        } else {
            self.field.clone()
        };
        match self.kind {
            ErrorType::UnknownField => return write!(f, "unknown field \"{field}\""),
            ErrorType::UnknownKind | ErrorType::Type => {
                if field.is_empty() {
                    return f.write_str(&self.detail);
                }
                return write!(f, "{field}: {}", self.detail);
            }
            _ => {}
        }
        if !field.is_empty() {
            write!(f, "{field}: ")?;
        }
        f.write_str(self.kind.word())?;
        if let Some(v) = &self.value {
            write!(f, ": {v}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Where errors are collected while checking one object.
#[derive(Debug, Default)]
pub struct Errors {
    /// The errors so far.
    pub list: Vec<FieldError>,
    /// What is checked against.
    pub options: Options,
}

/// A value as the API server prints it in a field error: strings quoted,
/// the rest as JSON.
pub fn shown(v: impl serde::Serialize) -> String {
    serde_json::to_string(&v).unwrap_or_default()
}

impl Errors {
    /// A new collector for `options`.
    pub fn new(options: Options) -> Self {
        Errors {
            list: Vec::new(),
            options,
        }
    }

    fn push(&mut self, at: &Path, kind: ErrorType, value: Option<String>, detail: String) {
        self.list.push(FieldError {
            pointer: at.pointer(),
            field: at.to_string(),
            kind,
            value,
            detail,
            at_key: false,
        });
    }

    /// `field.Required`.
    pub fn required(&mut self, at: &Path, detail: &str) {
        self.push(at, ErrorType::Required, None, detail.into());
    }

    /// `field.Invalid`.
    pub fn invalid(&mut self, at: &Path, value: impl serde::Serialize, detail: impl Into<String>) {
        self.push(at, ErrorType::Invalid, Some(shown(value)), detail.into());
    }

    /// `field.Invalid` once for a value with the problems `msgs` (from
    /// [`names`]), if any.
    pub fn check(&mut self, at: &Path, value: &str, msgs: Vec<String>) {
        if !msgs.is_empty() {
            self.invalid(at, value, msgs.join("; "));
        }
    }

    /// `field.Duplicate`.
    pub fn duplicate(&mut self, at: &Path, value: impl serde::Serialize) {
        self.push(at, ErrorType::Duplicate, Some(shown(value)), String::new());
    }

    /// `field.Duplicate` of a list item, shown at the key field that
    /// repeats (`port`) while the message names the item (`spec.ports[1]`).
    pub fn duplicate_item(&mut self, item: &Path, key_field: &str, value: impl serde::Serialize) {
        self.list.push(FieldError {
            pointer: item.field(key_field).pointer(),
            field: item.to_string(),
            kind: ErrorType::Duplicate,
            value: Some(shown(value)),
            detail: String::new(),
            at_key: false,
        });
    }

    /// `field.NotSupported`.
    pub fn not_supported(&mut self, at: &Path, value: &str, supported: &[&str]) {
        let list = supported
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        self.push(
            at,
            ErrorType::NotSupported,
            Some(shown(value)),
            format!("supported values: {list}"),
        );
    }

    /// Check `value` is one of `supported`.
    pub fn one_of(&mut self, at: &Path, value: Option<&str>, supported: &[&str]) {
        if let Some(v) = value
            && !supported.contains(&v)
        {
            self.not_supported(at, v, supported);
        }
    }

    /// `field.Forbidden`.
    pub fn forbidden(&mut self, at: &Path, detail: impl Into<String>) {
        self.push(at, ErrorType::Forbidden, None, detail.into());
    }

    /// `field.TooLong`.
    pub fn too_long(&mut self, at: &Path, detail: impl Into<String>) {
        self.push(at, ErrorType::TooLong, None, detail.into());
    }

    /// `field.NotFound`.
    pub fn not_found(&mut self, at: &Path, value: impl serde::Serialize) {
        self.push(at, ErrorType::NotFound, Some(shown(value)), String::new());
    }

    /// `ValidateNonnegativeField`.
    pub fn non_negative(&mut self, at: &Path, v: Option<i64>) {
        if let Some(v) = v
            && v < 0
        {
            self.invalid(at, v, "must be greater than or equal to 0");
        }
    }

    /// A value that must be greater than 0 when set.
    pub fn positive(&mut self, at: &Path, v: Option<i64>) {
        if let Some(v) = v
            && v <= 0
        {
            self.invalid(at, v, "must be greater than 0");
        }
    }

    /// Record an error built elsewhere.
    pub fn add(&mut self, e: FieldError) {
        self.list.push(e);
    }
}

/// Check one object as the API server would on a server-side apply.
/// `crds` are the CustomResourceDefinitions found in the repository.
pub fn check_object(obj: &Json, crds: &crd::Index, options: Options) -> Vec<FieldError> {
    let mut errs = Errors::new(options);
    let api_version = obj.get("apiVersion").and_then(Json::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Json::as_str).unwrap_or("");
    let not_served = |detail: String| FieldError {
        pointer: "/apiVersion".into(),
        field: String::new(),
        kind: ErrorType::UnknownKind,
        value: None,
        detail,
        at_key: false,
    };
    let list_keys = match decode::builtin(api_version, kind, obj, &mut errs) {
        decode::Found::Checked | decode::Found::Failed => keys::Keys::Builtin,
        decode::Found::NotServed => {
            errs.add(not_served(format!(
                "no matches for kind \"{kind}\" in version \"{api_version}\": Kubernetes 1.{} does not serve it",
                options.minor.max(COMPILED_MINOR)
            )));
            return errs.list;
        }
        decode::Found::NotBuiltin => match crds.get(api_version, kind) {
            crd::Lookup::Served(v) => {
                crd::check(obj, v, &mut errs);
                keys::Keys::Schema(&v.schema)
            }
            crd::Lookup::NotServed(versions) => {
                errs.add(not_served(format!(
                    "no matches for kind \"{kind}\" in version \"{api_version}\": its CustomResourceDefinition serves {}",
                    versions.join(", ")
                )));
                return errs.list;
            }
            crd::Lookup::Unknown => {
                // A CRD that is not in the repository: only what every
                // object shares can be checked.
                meta::generic(obj, &mut errs);
                return errs.list;
            }
        },
    };
    if errs.list.iter().any(|e| e.kind == ErrorType::Type) {
        return errs.list; // the server stops at a decoding error
    }
    let before = errs.list.len();
    keys::duplicates(obj, list_keys, &mut errs);
    // The kind's own rules may have found the same duplicate; keep one,
    // with the explanation of what server-side apply does.
    let found: Vec<FieldError> = errs.list.drain(before..).collect();
    for d in found {
        match errs
            .list
            .iter_mut()
            .find(|e| e.kind == ErrorType::Duplicate && e.pointer == d.pointer)
        {
            Some(e) => e.detail = d.detail,
            None => errs.list.push(d),
        }
    }
    errs.list
}
