//! Makes a [`RancherPlan`] true, in order, and reports every step.
//!
//! Apply stops at the first failure: later steps depend on earlier ones (a
//! binding needs its project), and a half-understood state is worse than a
//! clear "not applied". The report lists each change as applied, unchanged,
//! failed (with Rancher's code and message) or skipped.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use super::api::limit_object;
use super::client::RancherClient;
use super::desired::{PROJECT_ID_ANNOTATION, owner_labels};
use super::error::RancherError;
use super::plan::{Action, ChangeKind, Op, RancherPlan};

/// How one change went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    /// Written to Rancher.
    Applied,
    /// Nothing to write.
    Unchanged,
    /// Rancher refused it or could not be reached.
    Failed {
        /// The full error, with what to do next.
        error: String,
        /// HTTP status, when Rancher answered.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Rancher's error code, when it answered.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Rancher's message, when it answered.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Not attempted.
    Skipped {
        /// Why not.
        reason: String,
    },
}

/// The result of one planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeResult {
    /// Project, namespace or member.
    pub kind: ChangeKind,
    /// What was planned.
    pub action: Action,
    /// What it acts on.
    pub target: String,
    /// The plan's one-line summary.
    pub summary: String,
    /// How it went.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What apply did for one environment.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// Environment name.
    pub environment: String,
    /// The project's id after apply (known once the project exists).
    pub project_id: Option<String>,
    /// One entry per planned change, in plan order.
    pub results: Vec<ChangeResult>,
    /// The first failure, typed.
    #[serde(skip)]
    pub error: Option<RancherError>,
}

impl ApplyReport {
    /// True when every change was applied or unchanged.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// Results that were written to Rancher.
    pub fn applied(&self) -> impl Iterator<Item = &ChangeResult> {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Applied)
    }

    /// Results that were planned to write but did not (failed or skipped).
    pub fn not_applied(&self) -> impl Iterator<Item = &ChangeResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed { .. } | Outcome::Skipped { .. }))
    }

    /// The annotation the environment's Namespace must carry to stay in the project.
    pub fn namespace_annotation(&self) -> Option<(String, String)> {
        self.project_id
            .as_ref()
            .map(|id| (PROJECT_ID_ANNOTATION.to_string(), id.clone()))
    }

    /// Plain-text report, one line per change.
    pub fn render_text(&self) -> String {
        let mut s = format!("Rancher apply for environment {}:\n", self.environment);
        for r in &self.results {
            let tag = match &r.outcome {
                Outcome::Applied => "applied".to_string(),
                Outcome::Unchanged => "unchanged".to_string(),
                Outcome::Failed { error, .. } => format!("FAILED: {error}"),
                Outcome::Skipped { reason } => format!("not applied: {reason}"),
            };
            s.push_str(&format!("  {} — {tag}\n", r.summary));
        }
        s
    }
}

/// Applies a plan made by [`super::plan`] or [`super::plan_retire`].
pub async fn apply(client: &RancherClient, plan: &RancherPlan) -> ApplyReport {
    let mut report = ApplyReport {
        environment: plan.environment.clone(),
        project_id: plan.project_id.clone(),
        results: Vec::with_capacity(plan.changes.len()),
        error: None,
    };
    let refusals: Vec<String> = plan.refusal_reasons();
    if !refusals.is_empty() {
        // Half a change set is worse than none: a project limit refused
        // after the namespace moved would leave both in between.
        report.error = Some(RancherError::WouldBeRefused {
            environment: plan.environment.clone(),
            reasons: refusals,
        });
    }
    for change in &plan.changes {
        let mut result = ChangeResult {
            kind: change.kind,
            action: change.action,
            target: change.target.clone(),
            summary: change.summary.clone(),
            outcome: Outcome::Unchanged,
        };
        if change.action == Action::Unchanged {
            report.results.push(result);
            continue;
        }
        if let Some(e) = &report.error {
            let reason = match (&change.refused, e) {
                (Some(why), _) => format!("Rancher would refuse it: {why}"),
                (None, RancherError::WouldBeRefused { .. }) => {
                    "another change of this environment would be refused".to_string()
                }
                _ => format!("an earlier step failed ({})", short(e)),
            };
            result.outcome = Outcome::Skipped { reason };
            report.results.push(result);
            continue;
        }
        let Some(op) = &change.op else {
            result.outcome = Outcome::Skipped {
                reason: "this plan was read back from JSON; plan again to apply it".into(),
            };
            report.results.push(result);
            continue;
        };
        match run(client, plan, op, &mut report.project_id).await {
            Ok(()) => result.outcome = Outcome::Applied,
            Err(e) => {
                tracing::warn!(environment = %plan.environment, change = %change.summary, error = %e, "rancher apply step failed");
                let api = e.api();
                result.outcome = Outcome::Failed {
                    error: e.to_string(),
                    status: api.map(|a| a.status),
                    code: api.map(|a| a.code.clone()),
                    message: api.map(|a| a.message.clone()),
                };
                report.error = Some(e);
            }
        }
        report.results.push(result);
    }
    report
}

fn short(e: &RancherError) -> String {
    match e.api() {
        Some(a) => format!("{} {}", a.status, a.code),
        None => "see the failed step".into(),
    }
}

async fn run(
    client: &RancherClient,
    plan: &RancherPlan,
    op: &Op,
    project_id: &mut Option<String>,
) -> Result<(), RancherError> {
    let need_project = |id: &Option<String>| {
        id.clone().ok_or_else(|| RancherError::InvalidDesired {
            environment: plan.environment.clone(),
            message: format!(
                "project {} does not exist yet; it is created earlier in the same plan",
                plan.project
            ),
        })
    };
    match op {
        Op::CreateProject(body) => {
            let p = client.create_project(body).await?;
            *project_id = Some(p.id.clone());
            wait_active(client, &p.id, &p.state).await
        }
        Op::ReplaceProject { id, body } => {
            let p = client.replace_project(id, body).await?;
            wait_active(client, &p.id, &p.state).await
        }
        Op::DeleteProject { id } => {
            client.delete_project(id).await?;
            *project_id = None;
            Ok(())
        }
        Op::CreateNamespace => {
            let pid = need_project(project_id)?;
            let body = json!({
                "type": "namespace",
                "name": plan.namespace,
                "projectId": pid,
                "labels": owner_labels(&plan.environment),
                "annotations": { PROJECT_ID_ANNOTATION: pid },
            });
            client
                .create_namespace(&plan.cluster_id, &body)
                .await
                .map(drop)
        }
        Op::PlaceNamespace { raw } => {
            let pid = need_project(project_id)?;
            let mut body = namespace_body(raw);
            if let Value::Object(m) = &mut body {
                // `projectId` is `noupdate` in Rancher's namespace schema: a
                // PUT drops it. The annotation is what moves the namespace.
                let ann = m.entry("annotations").or_insert_with(|| json!({}));
                if !ann.is_object() {
                    *ann = json!({});
                }
                ann[PROJECT_ID_ANNOTATION] = json!(pid);
            }
            client
                .update_namespace(&plan.cluster_id, &plan.namespace, &body)
                .await
                .map(drop)
        }
        Op::SetNamespaceQuota { raw, quota, limits } => {
            let mut body = namespace_body(raw);
            if let Value::Object(m) = &mut body {
                // Rancher checks these against the namespace's current
                // project, so they are written after the move, never with it.
                if let Some(q) = quota {
                    m.insert(
                        "resourceQuota".into(),
                        limit_object(q, &BTreeMap::new(), true),
                    );
                }
                if let Some(l) = limits {
                    m.insert(
                        "containerDefaultResourceLimit".into(),
                        limit_object(l, &BTreeMap::new(), false),
                    );
                }
            }
            client
                .update_namespace(&plan.cluster_id, &plan.namespace, &body)
                .await
                .map(drop)
        }
        Op::CreateBinding(member) => {
            let pid = need_project(project_id)?;
            let mut body = json!({
                "type": "projectRoleTemplateBinding",
                "projectId": pid,
                "roleTemplateId": member.role,
                "labels": owner_labels(&plan.environment),
            });
            body[member.subject.field()] = json!(member.subject.id());
            client.create_binding(&body).await.map(drop)
        }
        Op::DeleteBinding { id } => client.delete_binding(id).await,
    }
}

/// A namespace as read, ready to PUT back: read-only parts, the ignored
/// `projectId` and the quota fields (written only on purpose) removed.
fn namespace_body(raw: &Value) -> Value {
    let mut body = raw.clone();
    if let Value::Object(m) = &mut body {
        for k in [
            "links",
            "actions",
            "projectId",
            "resourceQuota",
            "containerDefaultResourceLimit",
        ] {
            m.remove(k);
        }
    }
    body
}

async fn wait_active(
    client: &RancherClient,
    id: &str,
    first_state: &str,
) -> Result<(), RancherError> {
    let started = Instant::now();
    let mut state = first_state.to_string();
    let mut delay = client.poll_interval;
    loop {
        if state == "active" {
            return Ok(());
        }
        if started.elapsed() >= client.active_timeout {
            return Err(RancherError::NotActive {
                project: id.to_string(),
                state,
                after: client.active_timeout,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(client.poll_interval * 8);
        state = match client.get_project(id).await? {
            Some(p) => p.state,
            None => "removed".into(),
        };
    }
}
