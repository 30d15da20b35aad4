//! Whole-environment events a plan carries out: retiring an environment whose
//! folder was removed from Git, or moving it to another namespace. Each is
//! shown as its own named entry (`retire environment preview-pr-123: 19
//! objects`), never only as a list of deletes, so a reviewer sees at once
//! that a plan removes an environment.

use std::fmt;

use serde::Serialize;

/// What happens to the environment as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Lifecycle {
    /// The environment's folder is gone from a healthy checkout: everything
    /// it owned is deleted.
    #[serde(rename_all = "camelCase")]
    Retire {
        /// Environment.
        environment: String,
        /// Objects planned for deletion.
        objects: usize,
    },
    /// The environment's `namespace` changed: what it owned under the old
    /// namespace's inventory is deleted once the new copy is applied.
    #[serde(rename_all = "camelCase")]
    Move {
        /// Environment.
        environment: String,
        /// Namespace of the earlier inventory.
        from: String,
        /// Namespace now in the spec.
        to: String,
        /// Objects of the earlier inventory planned for deletion.
        objects: usize,
    },
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: &usize| if *n == 1 { "" } else { "s" };
        match self {
            Lifecycle::Retire {
                environment,
                objects,
            } => write!(
                f,
                "retire environment {environment}: {objects} object{}",
                plural(objects)
            ),
            Lifecycle::Move {
                environment,
                from,
                to,
                objects,
            } => write!(
                f,
                "move environment {environment} from namespace {from} to {to}: {objects} object{} in {from} to delete",
                plural(objects)
            ),
        }
    }
}
