//! `Status` error bodies shaped like the real API server's (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// An API error: HTTP code, `reason`, message and optional `details`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code (also the `code` field of the body).
    pub code: u16,
    /// Machine-readable reason, e.g. `NotFound`, `Conflict`, `Invalid`.
    pub reason: &'static str,
    /// Human-readable message, worded like the real server's.
    pub message: String,
    /// The `details` object, if any.
    pub details: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header (429 and 5xx injected faults).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// `deployments.apps "web" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.resource}))
    }

    /// `namespaces "x" not found`, returned when creating into a missing namespace.
    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    /// `deployments.apps "web" already exists`.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.resource}))
    }

    /// The optimistic-concurrency conflict on a stale `resourceVersion`.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::conflict_msg(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `Operation cannot be fulfilled on <res> "<name>": <why>`.
    pub fn conflict_msg(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified()
            ),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.resource}))
    }

    /// A server-side apply conflict listing every field another manager owns.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        Self::new(409, "Conflict", message).with_details(json!({"causes": causes}))
    }

    /// `Deployment.apps "web" is invalid: <field>: <detail>` (HTTP 422).
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<FieldError>) -> Self {
        let gk = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{gk} \"{name}\" is invalid: {joined}"),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes_json}))
    }

    /// HTTP 403: `<res> "<name>" is forbidden: <why>`.
    pub fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {why}", rt.qualified()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.resource}))
    }

    /// HTTP 413 for a request body over the server's 3 MiB limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// HTTP 400 with reason `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// HTTP 405: the verb is not served for this path.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// HTTP 404 for a path that names no resource.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// An error the real server does not classify: `reason` is left out of the Status.
    pub fn unknown(code: u16, message: impl Into<String>) -> Self {
        Self::new(code, "", message)
    }

    /// HTTP 401 when no bearer token was sent.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// HTTP 415 for a body format the server does not read (it reads JSON, and YAML for apply).
    pub fn unsupported_media_type(ct: &str, accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}; got {ct:?}"
            ),
        )
    }

    /// HTTP 410 for a watch from a resourceVersion older than the kept history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// An injected fault: 500 InternalError, 503 ServiceUnavailable, 429 TooManyRequests, ...
    pub fn injected(code: u16, retry_after: Option<u64>) -> Self {
        let (reason, message) = match code {
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later".to_string()),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request".to_string()),
            504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request".to_string()),
            _ => ("InternalError", "Internal error occurred: injected fault".to_string()),
        };
        let mut e = Self::new(code, reason, message);
        e.retry_after = retry_after;
        if let Some(s) = retry_after {
            e.details = Some(Box::new(json!({"retryAfterSeconds": s})));
        }
        e
    }

    /// The `Status` object sent as the response body.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty()
            && let Some(m) = v.as_object_mut()
        {
            m.remove("reason");
        }
        if let Some(d) = &self.details {
            v["details"] = (**d).clone();
        }
        v
    }
}

/// One field problem inside an `Invalid` error.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// Cause reason, e.g. `FieldValueRequired`, `FieldValueInvalid`.
    pub reason: &'static str,
    /// Dotted field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// Message such as `Required value` or `Invalid value: "x": ...`.
    pub message: String,
}

impl FieldError {
    /// `<field>: Required value[: detail]`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        FieldError {
            reason: "FieldValueRequired",
            field: field.into(),
            message,
        }
    }

    /// `<field>: Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value}: {detail}"),
        }
    }

    /// `<field>: Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        FieldError {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {value}"),
        }
    }

    /// `<field>: Too long: must have at most <max> bytes` (the value is not shown).
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: must have at most {max} bytes"),
        }
    }

    /// `<field>: Invalid value: <value>: field is immutable`.
    pub fn immutable(field: impl Into<String>, value: &Value) -> Self {
        Self::invalid(field, value, "field is immutable")
    }
}

/// A `Status` of success, as returned by DELETE of an object removed at once.
pub fn success_status(rt: &ResourceType, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": rt.group, "kind": rt.resource, "uid": uid},
    })
}
