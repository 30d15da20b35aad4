//! Typed errors of the Rancher client, planner and applier.
//!
//! Every API error keeps what Rancher said (`code`, `message`) and which
//! request it answered, so a report can show the user Rancher's own words and
//! a next step.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// What Rancher answered to one failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// HTTP method of the request.
    pub method: String,
    /// Path of the request, e.g. `/v3/projects`.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// Rancher's error code, e.g. `Unauthorized`, `NotUnique`, `ServerError`.
    pub code: String,
    /// Rancher's message, verbatim.
    pub message: String,
    /// The field Rancher blamed, when it named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} answered {} {}: {}",
            self.method, self.path, self.status, self.code, self.message
        )?;
        if let Some(field) = &self.field_name {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

/// The next step for a 403. Rancher's namespace webhook
/// (rancher/webhook `pkg/resources/core/v1/namespace/projectannotations.go`)
/// denies a namespace joining a project without the `manage-namespaces` verb
/// on that project, and its message names no permission (Kubernetes' RBAC
/// gives the review no reason, so the message ends in `Unauthorized`).
fn forbidden_hint(e: &ApiError) -> &'static str {
    if e.message.contains("\"rancher.cattle.io.namespaces") {
        "putting a namespace into a project needs the `manage-namespaces` verb on that project (project owners have it): grant it to the token's user or use another token"
    } else {
        "the token's user lacks this permission in Rancher: grant it or use another token"
    }
}

/// Errors of the Rancher module.
#[derive(Debug, thiserror::Error)]
pub enum RancherError {
    /// The endpoint in the keelson config cannot be used as given.
    #[error("rancher endpoint config: {0}; fix the cluster's `rancher` section in keelson.yaml")]
    Config(String),
    /// The token file named in the config could not be read.
    #[error(
        "cannot read the Rancher token file {path}: {source}; check `rancher.tokenFile` in keelson.yaml"
    )]
    TokenFile {
        /// The file named by `tokenFile`.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The CA file named in the config could not be read or parsed.
    #[error(
        "cannot use the CA file {path}: {reason}; `rancher.caFile` must name a PEM certificate"
    )]
    CaFile {
        /// The file named by `caFile`.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// 401: the token is missing, wrong, expired or revoked.
    #[error(
        "{0}; Rancher rejected the API token: create a new one and update the token file or variable"
    )]
    Unauthorized(Box<ApiError>),
    /// 403: the token's user may not do this.
    #[error("{0}; {hint}", hint = forbidden_hint(.0))]
    Forbidden(Box<ApiError>),
    /// 404: the object (or cluster) does not exist.
    #[error("{0}; check the cluster id and project in environment.yaml")]
    NotFound(Box<ApiError>),
    /// 409: someone else changed the object meanwhile.
    #[error("{0}; the object changed while keelson worked on it: run reconcile again")]
    Conflict(Box<ApiError>),
    /// 422: Rancher refused the content.
    #[error("{0}; fix the `rancher` section of environment.yaml")]
    Invalid(Box<ApiError>),
    /// 5xx or any other unexpected status.
    #[error("{0}; Rancher failed on its side: retry later or check the Rancher server logs")]
    Server(Box<ApiError>),
    /// The request did not finish in time.
    #[error(
        "{method} {path} timed out after {after:?}; check that Rancher is reachable or raise `rancher.timeoutSeconds`"
    )]
    Timeout {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The request failed below HTTP (connection refused, TLS, DNS).
    #[error(
        "{method} {path} failed: {detail}; check `rancher.url`, and `rancher.caFile` when Rancher uses a private CA"
    )]
    Transport {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The transport error with its causes.
        detail: String,
    },
    /// The write was not sent: this instance no longer holds the
    /// environment's Lease (`keelson run` with replicas; see
    /// `controller::fence`).
    #[error("{method} {path}: not written: {why}")]
    Fenced {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// Why the fence refused.
        why: String,
    },
    /// Rancher answered with a body keelson cannot read.
    #[error(
        "{method} {path}: unexpected answer from Rancher: {detail}; is `rancher.url` a Rancher server?"
    )]
    Decode {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// What did not fit.
        detail: String,
    },
    /// A project did not become `active` in time.
    #[error(
        "project {project} is still `{state}` after {after:?}; look at the project in the Rancher UI for the cause"
    )]
    NotActive {
        /// Project id.
        project: String,
        /// Its last seen state.
        state: String,
        /// How long keelson waited.
        after: Duration,
    },
    /// The plan holds changes Rancher would refuse; nothing was sent.
    #[error(
        "environment {environment}: Rancher would refuse {}; nothing was applied",
        reasons.join("; ")
    )]
    WouldBeRefused {
        /// Environment name.
        environment: String,
        /// Each refused change: what, and why with the numbers.
        reasons: Vec<String>,
    },
    /// The desired state itself is wrong; nothing was sent to Rancher.
    #[error("environment {environment}: {message}")]
    InvalidDesired {
        /// Environment name.
        environment: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl RancherError {
    /// Rancher's answer, when the error is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            RancherError::Unauthorized(e)
            | RancherError::Forbidden(e)
            | RancherError::NotFound(e)
            | RancherError::Conflict(e)
            | RancherError::Invalid(e)
            | RancherError::Server(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// HTTP status of Rancher's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|e| e.status)
    }

    /// Sorts an API error into its variant by status.
    pub(crate) fn from_api(e: ApiError) -> Self {
        let e = Box::new(e);
        match e.status {
            401 => RancherError::Unauthorized(e),
            403 => RancherError::Forbidden(e),
            404 => RancherError::NotFound(e),
            409 => RancherError::Conflict(e),
            400 | 422 => RancherError::Invalid(e),
            _ => RancherError::Server(e),
        }
    }
}
