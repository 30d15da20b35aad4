//! The health rules, one function per kind. They follow kubectl's
//! `polymorphichelpers/rollout_status.go` (the order of the checks and the
//! counters compared) and Argo CD's gitops-engine `pkg/health` (suspended and
//! degraded states, which kubectl reports as errors or waits on for ever).

use serde_json::Value as Json;

use super::{Health, Verdict};

/// Judge a workload from its `metadata.generation`, `spec` and `status`.
/// Kinds without a rule (anything but Deployment, StatefulSet, DaemonSet and
/// Job) are healthy once they exist.
pub fn judge(o: &Json) -> Verdict {
    match o.get("kind").and_then(Json::as_str).unwrap_or_default() {
        "Deployment" => deployment(o),
        "StatefulSet" => stateful_set(o),
        "DaemonSet" => daemon_set(o),
        "Job" => job(o),
        kind => Verdict::new(Health::Healthy, format!("{kind} exists")),
    }
}

fn int(o: &Json, pointer: &str) -> i64 {
    o.pointer(pointer).and_then(Json::as_i64).unwrap_or(0)
}

/// `spec.replicas`, which the API server defaults to 1.
fn desired_replicas(o: &Json) -> i64 {
    o.pointer("/spec/replicas")
        .and_then(Json::as_i64)
        .unwrap_or(1)
}

/// The condition of `type` whose status is `status`, if any.
fn condition<'a>(o: &'a Json, kind: &str, status: &str) -> Option<&'a Json> {
    o.pointer("/status/conditions")
        .and_then(Json::as_array)?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == status)
}

/// `Type: Reason: message` of a condition.
fn describe(c: &Json) -> String {
    let field = |k: &str| c.get(k).and_then(Json::as_str).unwrap_or_default();
    let mut s = field("type").to_string();
    for part in [field("reason"), field("message")] {
        if !part.is_empty() {
            s.push_str(": ");
            s.push_str(part);
        }
    }
    s
}

/// The controller has not caught up with the latest spec: every status field
/// still describes an older generation, including its conditions.
fn unobserved(o: &Json, what: &str) -> Option<Verdict> {
    let generation = int(o, "/metadata/generation");
    let observed = int(o, "/status/observedGeneration");
    (generation > observed).then(|| {
        Verdict::new(
            Health::Progressing,
            format!(
                "waiting for the {what} controller to observe generation {generation} (at {observed})"
            ),
        )
    })
}

/// kubectl's `DeploymentStatusViewer`, plus `spec.paused` (suspended) and
/// `ReplicaFailure` (degraded) from gitops-engine.
fn deployment(o: &Json) -> Verdict {
    if let Some(v) = unobserved(o, "deployment") {
        return v;
    }
    if o.pointer("/spec/paused").and_then(Json::as_bool) == Some(true) {
        return Verdict::new(Health::Suspended, "Deployment is paused");
    }
    // kubectl: "exceeded its progress deadline" (Progressing=False is only
    // ever set with reason ProgressDeadlineExceeded).
    if let Some(c) = condition(o, "Progressing", "False").or(condition(o, "ReplicaFailure", "True"))
    {
        return Verdict::new(Health::Degraded, describe(c));
    }
    let want = desired_replicas(o);
    let replicas = int(o, "/status/replicas");
    let updated = int(o, "/status/updatedReplicas");
    let available = int(o, "/status/availableReplicas");
    if updated < want {
        return Verdict::new(
            Health::Progressing,
            format!("{updated} out of {want} new replicas have been updated"),
        );
    }
    if replicas > updated {
        return Verdict::new(
            Health::Progressing,
            format!(
                "{} old replicas are pending termination",
                replicas - updated
            ),
        );
    }
    if available < updated {
        return Verdict::new(
            Health::Progressing,
            format!("{available} of {updated} updated replicas are available"),
        );
    }
    Verdict::new(
        Health::Healthy,
        format!("successfully rolled out: {available} of {want} replicas available"),
    )
}

/// kubectl's `StatefulSetStatusViewer`. With `OnDelete` pods take the new
/// template only when someone deletes them, so the rollout is done once the
/// spec is observed and the pods are ready (gitops-engine does the same);
/// with a `partition` P only ordinals ≥ P are updated.
fn stateful_set(o: &Json) -> Verdict {
    let generation = int(o, "/metadata/generation");
    let observed = int(o, "/status/observedGeneration");
    if observed == 0 || generation > observed {
        return Verdict::new(
            Health::Progressing,
            format!(
                "waiting for the statefulset controller to observe generation {generation} (at {observed})"
            ),
        );
    }
    let want = desired_replicas(o);
    let ready = int(o, "/status/readyReplicas");
    let updated = int(o, "/status/updatedReplicas");
    if ready < want {
        return Verdict::new(
            Health::Progressing,
            format!("{ready} of {want} pods are ready"),
        );
    }
    let strategy = o
        .pointer("/spec/updateStrategy/type")
        .and_then(Json::as_str)
        .unwrap_or("RollingUpdate");
    if strategy == "OnDelete" {
        return Verdict::new(
            Health::Healthy,
            format!(
                "{ready} pods ready; updateStrategy OnDelete: {updated} run the latest template, \
                 the others take it when deleted"
            ),
        );
    }
    // The API server defaults `rollingUpdate.partition` to 0, which kubectl
    // then checks as "updated ≥ replicas".
    let partition = int(o, "/spec/updateStrategy/rollingUpdate/partition").clamp(0, want);
    if updated < want - partition {
        return Verdict::new(
            Health::Progressing,
            format!(
                "{updated} out of {} new pods have been updated{}",
                want - partition,
                if partition > 0 {
                    format!(" (partition {partition})")
                } else {
                    String::new()
                }
            ),
        );
    }
    let revision = o
        .pointer("/status/updateRevision")
        .and_then(Json::as_str)
        .unwrap_or("?");
    // Without a `rollingUpdate` block (a server that does not default the
    // partition), kubectl waits for the current revision to catch up.
    if o.pointer("/spec/updateStrategy/rollingUpdate").is_none()
        && let Some(current) = o.pointer("/status/currentRevision").and_then(Json::as_str)
        && current != revision
    {
        return Verdict::new(
            Health::Progressing,
            format!(
                "waiting for the rolling update to complete: pods at revision {current}, not yet {revision}"
            ),
        );
    }
    Verdict::new(
        Health::Healthy,
        format!("rolled out: {updated} pods at revision {revision}, {ready} ready"),
    )
}

/// kubectl's `DaemonSetStatusViewer`; `OnDelete` as for StatefulSets.
fn daemon_set(o: &Json) -> Verdict {
    if let Some(v) = unobserved(o, "daemon set") {
        return v;
    }
    let desired = int(o, "/status/desiredNumberScheduled");
    let updated = int(o, "/status/updatedNumberScheduled");
    let available = int(o, "/status/numberAvailable");
    let on_delete = o
        .pointer("/spec/updateStrategy/type")
        .and_then(Json::as_str)
        == Some("OnDelete");
    if !on_delete && updated < desired {
        return Verdict::new(
            Health::Progressing,
            format!("{updated} out of {desired} new pods have been updated"),
        );
    }
    if available < desired {
        return Verdict::new(
            Health::Progressing,
            format!("{available} of {desired} updated pods are available"),
        );
    }
    let note = if on_delete && updated < desired {
        format!(
            "; updateStrategy OnDelete: {updated} run the latest template, the others take it when deleted"
        )
    } else {
        String::new()
    };
    Verdict::new(
        Health::Healthy,
        format!("{available} of {desired} pods available{note}"),
    )
}

/// A Job from its conditions: `Failed` (and 1.31's `FailureTarget`, set just
/// before it) is final and degraded, `Complete` is healthy, `spec.suspend`
/// is suspended, anything else is still running.
fn job(o: &Json) -> Verdict {
    if let Some(c) = condition(o, "Failed", "True").or(condition(o, "FailureTarget", "True")) {
        return Verdict::new(Health::Degraded, describe(c));
    }
    if condition(o, "Complete", "True").is_some() {
        return Verdict::new(
            Health::Healthy,
            format!("completed: {} succeeded", int(o, "/status/succeeded")),
        );
    }
    if o.pointer("/spec/suspend").and_then(Json::as_bool) == Some(true) {
        return Verdict::new(Health::Suspended, "Job is suspended");
    }
    let completions = o
        .pointer("/spec/completions")
        .and_then(Json::as_i64)
        .unwrap_or(1);
    Verdict::new(
        Health::Progressing,
        format!(
            "{} active, {} of {completions} completions succeeded",
            int(o, "/status/active"),
            int(o, "/status/succeeded")
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn h(o: &Value) -> Health {
        judge(o).health
    }

    fn deployment(status: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 3}, "status": status})
    }

    fn rolled_out() -> Value {
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
            "availableReplicas": 3, "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"web-5d4f\" has successfully progressed."}]})
    }

    #[test]
    fn deployment_rolled_out_is_healthy() {
        let v = judge(&deployment(rolled_out()));
        assert_eq!(v.health, Health::Healthy, "{}", v.reason);
    }

    #[test]
    fn deployment_past_its_progress_deadline_is_degraded_not_progressing() {
        let mut s = rolled_out();
        s["availableReplicas"] = json!(0);
        s["conditions"][1] = json!({"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-5d4f\" has timed out progressing."});
        let v = judge(&deployment(s));
        assert_eq!(v.health, Health::Degraded);
        assert_eq!(
            v.reason,
            "Progressing: ProgressDeadlineExceeded: ReplicaSet \"web-5d4f\" has timed out progressing."
        );
    }

    #[test]
    fn deployment_replica_failure_is_degraded() {
        let mut s = rolled_out();
        s["updatedReplicas"] = json!(0);
        s["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "ReplicaFailure",
            "status": "True", "reason": "FailedCreate",
            "message": "pods \"web-5d4f-x\" is forbidden: exceeded quota: compute"}));
        let v = judge(&deployment(s));
        assert_eq!(v.health, Health::Degraded);
        assert!(
            v.reason.starts_with("ReplicaFailure: FailedCreate: "),
            "{}",
            v.reason
        );
    }

    #[test]
    fn deployment_counters_in_kubectl_order() {
        let mut s = rolled_out();
        s["updatedReplicas"] = json!(1);
        assert_eq!(
            judge(&deployment(s)),
            Verdict::new(
                Health::Progressing,
                "1 out of 3 new replicas have been updated"
            )
        );
        // An old pod still terminating: replicas 4 > updated 3.
        let mut s = rolled_out();
        s["replicas"] = json!(4);
        assert_eq!(
            judge(&deployment(s)),
            Verdict::new(
                Health::Progressing,
                "1 old replicas are pending termination"
            )
        );
        let mut s = rolled_out();
        s["availableReplicas"] = json!(2);
        assert_eq!(
            judge(&deployment(s)),
            Verdict::new(Health::Progressing, "2 of 3 updated replicas are available")
        );
    }

    #[test]
    fn deployment_not_yet_observed_is_progressing_even_with_a_stale_failure() {
        // The failed condition belongs to generation 1; generation 2 may fix it.
        let mut s = rolled_out();
        s["observedGeneration"] = json!(1);
        s["conditions"][1] = json!({"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded"});
        let v = judge(&deployment(s));
        assert_eq!(v.health, Health::Progressing);
        assert!(
            v.reason.contains("observe generation 2 (at 1)"),
            "{}",
            v.reason
        );
        // No status at all yet.
        assert_eq!(h(&deployment(json!(null))), Health::Progressing);
    }

    #[test]
    fn paused_deployment_is_suspended() {
        let mut d = deployment(rolled_out());
        d["spec"]["paused"] = json!(true);
        d["status"]["updatedReplicas"] = json!(0);
        assert_eq!(h(&d), Health::Suspended);
    }

    #[test]
    fn deployment_scaled_to_zero_is_healthy() {
        let d = json!({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 0},
            "status": {"observedGeneration": 1}});
        assert_eq!(h(&d), Health::Healthy);
    }

    fn sts(strategy: Value, status: Value) -> Value {
        json!({"kind": "StatefulSet", "metadata": {"name": "db", "generation": 2},
            "spec": {"replicas": 3, "updateStrategy": strategy}, "status": status})
    }

    #[test]
    fn statefulset_on_delete_is_healthy_once_observed_and_ready() {
        let on_delete = json!({"type": "OnDelete"});
        let status = json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
            "currentReplicas": 3, "updatedReplicas": 0, "currentRevision": "db-1",
            "updateRevision": "db-2"});
        let v = judge(&sts(on_delete.clone(), status.clone()));
        assert_eq!(v.health, Health::Healthy, "{}", v.reason);
        let mut not_ready = status.clone();
        not_ready["readyReplicas"] = json!(2);
        assert_eq!(h(&sts(on_delete.clone(), not_ready)), Health::Progressing);
        let mut unobserved = status;
        unobserved["observedGeneration"] = json!(1);
        assert_eq!(h(&sts(on_delete, unobserved)), Health::Progressing);
    }

    #[test]
    fn statefulset_partition_needs_replicas_minus_partition_updated() {
        let p2 = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        let status = |updated: i64| {
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
                "currentReplicas": 3 - updated, "updatedReplicas": updated,
                "currentRevision": "db-1", "updateRevision": "db-2"})
        };
        let v = judge(&sts(p2.clone(), status(0)));
        assert_eq!(
            v,
            Verdict::new(
                Health::Progressing,
                "0 out of 1 new pods have been updated (partition 2)"
            )
        );
        assert_eq!(h(&sts(p2, status(1))), Health::Healthy);
        // Partition 0 (the server's default): every pod.
        let p0 = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        assert_eq!(h(&sts(p0.clone(), status(2))), Health::Progressing);
        assert_eq!(h(&sts(p0, status(3))), Health::Healthy);
        // No rollingUpdate block: the same as partition 0, and then (kubectl) the
        // current revision must have caught up with the update revision.
        let plain = json!({"type": "RollingUpdate"});
        assert_eq!(h(&sts(plain.clone(), status(2))), Health::Progressing);
        let v = judge(&sts(plain.clone(), status(3)));
        assert_eq!(
            v,
            Verdict::new(
                Health::Progressing,
                "waiting for the rolling update to complete: pods at revision db-1, not yet db-2"
            )
        );
        let mut done = status(3);
        done["currentRevision"] = json!("db-2");
        assert_eq!(h(&sts(plain, done)), Health::Healthy);
    }

    fn ds(strategy: &str, status: Value) -> Value {
        json!({"kind": "DaemonSet", "metadata": {"name": "agent", "generation": 3},
            "spec": {"updateStrategy": {"type": strategy}}, "status": status})
    }

    #[test]
    fn daemonset_needs_every_scheduled_pod_updated_and_available() {
        let status = |updated: i64, available: i64| {
            json!({"observedGeneration": 3, "desiredNumberScheduled": 4, "currentNumberScheduled": 4,
                "updatedNumberScheduled": updated, "numberAvailable": available, "numberReady": available})
        };
        assert_eq!(h(&ds("RollingUpdate", status(4, 4))), Health::Healthy);
        assert_eq!(
            judge(&ds("RollingUpdate", status(3, 4))).reason,
            "3 out of 4 new pods have been updated"
        );
        assert_eq!(
            judge(&ds("RollingUpdate", status(4, 2))).reason,
            "2 of 4 updated pods are available"
        );
        let mut behind = status(4, 4);
        behind["observedGeneration"] = json!(2);
        assert_eq!(h(&ds("RollingUpdate", behind)), Health::Progressing);
        // OnDelete: the old pods stay until deleted; available is what counts.
        assert_eq!(h(&ds("OnDelete", status(0, 4))), Health::Healthy);
        assert_eq!(h(&ds("OnDelete", status(0, 3))), Health::Progressing);
    }

    fn job(spec: Value, status: Value) -> Value {
        json!({"kind": "Job", "metadata": {"name": "migrate", "generation": 1}, "spec": spec,
            "status": status})
    }

    #[test]
    fn job_complete_failed_suspended_running() {
        let complete = job(
            json!({"completions": 1}),
            json!({"succeeded": 1, "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(h(&complete), Health::Healthy);
        let failed = job(
            json!({"backoffLimit": 6}),
            json!({"failed": 7, "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit"}]}),
        );
        let v = judge(&failed);
        assert_eq!(v.health, Health::Degraded);
        assert_eq!(
            v.reason,
            "Failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
        let suspended = job(
            json!({"suspend": true}),
            json!({"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]}),
        );
        assert_eq!(h(&suspended), Health::Suspended);
        let running = job(
            json!({"completions": 2}),
            json!({"active": 1, "succeeded": 1}),
        );
        assert_eq!(
            judge(&running),
            Verdict::new(
                Health::Progressing,
                "1 active, 1 of 2 completions succeeded"
            )
        );
    }

    #[test]
    fn final_states_end_a_wait() {
        for (health, fin) in [
            (Health::Healthy, true),
            (Health::Degraded, true),
            (Health::Suspended, true),
            (Health::Progressing, false),
            (Health::Missing, false),
            (Health::Unknown, false),
        ] {
            assert_eq!(health.is_final(), fin, "{health}");
        }
    }
}
