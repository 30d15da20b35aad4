//! Workloads: selectors that match their templates, rollout parameters,
//! Job and CronJob settings, autoscalers and disruption budgets.
//!
//! Sources: `pkg/apis/apps/validation/validation.go` (`ValidateDeploymentSpec`,
//! `ValidateRollingUpdateDeployment`, `ValidateStatefulSetSpec`,
//! `ValidateDaemonSetSpec`, `ValidateReplicaSetSpec`),
//! `pkg/apis/batch/validation/validation.go` (`validateJobSpec`,
//! `ValidateCronJobSpec`), `pkg/apis/autoscaling/validation`,
//! `pkg/apis/policy/validation` (`ValidatePodDisruptionBudgetSpec`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Errors, Path, meta, names, pod};

/// A pod template on its own (`PodTemplate`).
pub fn template_only(t: &PodTemplateSpec, at: &Path, errs: &mut Errors) {
    template(t, at, &[], errs);
}

fn template(t: &PodTemplateSpec, at: &Path, restart: &[&str], errs: &mut Errors) {
    template_with(t, at, restart, &[], errs);
}

/// `ValidatePodTemplateSpec`: labels, annotations, pod spec, and the restart
/// policies the owner allows.
fn template_with(
    t: &PodTemplateSpec,
    at: &Path,
    restart: &[&str],
    owner_volumes: &[&str],
    errs: &mut Errors,
) {
    let m = at.field("metadata");
    if let Some(md) = &t.metadata {
        if let Some(l) = &md.labels {
            meta::labels(l, &m.field("labels"), errs);
        }
        if let Some(a) = &md.annotations {
            meta::annotations(a, &m.field("annotations"), errs);
        }
    }
    let spec = at.field("spec");
    match &t.spec {
        Some(s) => {
            pod::pod_spec_with(s, &spec, owner_volumes, errs);
            if !restart.is_empty() {
                let rp = s.restart_policy.as_deref().unwrap_or("Always");
                if !restart.contains(&rp) {
                    errs.not_supported(&spec.field("restartPolicy"), rp, restart);
                }
            }
        }
        None => errs.required(&spec, ""),
    }
}

fn template_labels(t: &PodTemplateSpec) -> BTreeMap<String, String> {
    t.metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// A selector that is required, non-empty, and selects its template.
fn selector_and_template(
    selector: Option<&LabelSelector>,
    t: &PodTemplateSpec,
    at: &Path,
    kind: &str,
    errs: &mut Errors,
) {
    let sel = at.field("selector");
    match selector {
        None => errs.required(&sel, ""),
        Some(s) if meta::is_empty_selector(s) => {
            errs.invalid(&sel, "", format!("empty selector is invalid for {kind}"))
        }
        Some(s) => {
            meta::label_selector(s, &sel, errs);
            let labels = template_labels(t);
            if !meta::selects(s, &labels) {
                errs.invalid(
                    &at.field("template").field("metadata").field("labels"),
                    &labels,
                    "`selector` does not match template `labels`",
                );
            }
        }
    }
}

/// `ValidateDeployment`.
pub fn deployment(d: &Deployment, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &d.spec else {
        return errs.required(&at, "");
    };
    errs.non_negative(&at.field("replicas"), s.replicas.map(i64::from));
    selector_and_template(Some(&s.selector), &s.template, &at, "deployment", errs);
    template(&s.template, &at.field("template"), &["Always"], errs);
    errs.non_negative(
        &at.field("revisionHistoryLimit"),
        s.revision_history_limit.map(i64::from),
    );
    errs.non_negative(
        &at.field("minReadySeconds"),
        s.min_ready_seconds.map(i64::from),
    );
    if let (Some(p), min) = (
        s.progress_deadline_seconds,
        s.min_ready_seconds.unwrap_or(0),
    ) && p <= min
    {
        errs.invalid(
            &at.field("progressDeadlineSeconds"),
            p,
            "must be greater than minReadySeconds",
        );
    }
    let Some(strategy) = &s.strategy else { return };
    let st = at.field("strategy");
    let ty = strategy.type_.as_deref().unwrap_or("RollingUpdate");
    errs.one_of(&st.field("type"), Some(ty), &["Recreate", "RollingUpdate"]);
    if ty == "Recreate" && strategy.rolling_update.is_some() {
        errs.forbidden(
            &st.field("rollingUpdate"),
            "may not be specified when strategy `type` is 'Recreate'",
        );
    }
    if let Some(ru) = &strategy.rolling_update {
        let ru_at = st.field("rollingUpdate");
        rolling(
            ru.max_unavailable.as_ref(),
            ru.max_surge.as_ref(),
            &ru_at,
            errs,
        );
    }
}

/// `ValidateRollingUpdateDeployment`: both are non-negative integers or
/// percentages, maxUnavailable at most 100%, and not both zero.
fn rolling(
    unavailable: Option<&IntOrString>,
    surge: Option<&IntOrString>,
    at: &Path,
    errs: &mut Errors,
) {
    let u_at = at.field("maxUnavailable");
    let s_at = at.field("maxSurge");
    int_or_percent(unavailable, &u_at, errs);
    int_or_percent(surge, &s_at, errs);
    if let Some(IntOrString::String(p)) = unavailable
        && let Some(n) = p.strip_suffix('%').and_then(|n| n.parse::<u64>().ok())
        && n > 100
    {
        errs.invalid(&u_at, p, "must not be greater than 100%");
    }
    let is_zero = |v: Option<&IntOrString>| match v {
        Some(IntOrString::Int(0)) => true,
        Some(IntOrString::String(s)) => s == "0%",
        _ => false,
    };
    if is_zero(unavailable) && is_zero(surge) {
        errs.invalid(&u_at, 0, "may not be 0 when `maxSurge` is 0");
    }
}

/// `ValidatePositiveIntOrPercent` / `IsValidPercent`.
pub fn int_or_percent(v: Option<&IntOrString>, at: &Path, errs: &mut Errors) {
    match v {
        Some(IntOrString::Int(i)) if *i < 0 => {
            errs.invalid(at, i, "must be greater than or equal to 0")
        }
        Some(IntOrString::String(s)) => errs.check(at, s, names::percent(s)),
        _ => {}
    }
}

/// `ValidateStatefulSet`.
pub fn stateful_set(d: &StatefulSet, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &d.spec else {
        return errs.required(&at, "");
    };
    errs.non_negative(&at.field("replicas"), s.replicas.map(i64::from));
    selector_and_template(Some(&s.selector), &s.template, &at, "statefulset", errs);
    let claims: Vec<&str> = s
        .volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    template_with(
        &s.template,
        &at.field("template"),
        &["Always"],
        &claims,
        errs,
    );
    errs.one_of(
        &at.field("podManagementPolicy"),
        s.pod_management_policy.as_deref(),
        &["OrderedReady", "Parallel"],
    );
    if let Some(u) = &s.update_strategy {
        errs.one_of(
            &at.field("updateStrategy").field("type"),
            u.type_.as_deref(),
            &["RollingUpdate", "OnDelete"],
        );
    }
    if let Some(svc) = s.service_name.as_deref().filter(|n| !n.is_empty()) {
        errs.check(&at.field("serviceName"), svc, names::dns1035_label(svc));
    }
    let vct = at.field("volumeClaimTemplates");
    for (i, c) in s.volume_claim_templates.iter().flatten().enumerate() {
        let item = vct.index(i);
        match c.metadata.name.as_deref() {
            None | Some("") => errs.required(&item.field("metadata").field("name"), ""),
            Some(n) => errs.check(
                &item.field("metadata").field("name"),
                n,
                names::dns1123_label(n),
            ),
        }
        if let Some(r) = c.spec.as_ref().and_then(|s| s.resources.as_ref()) {
            let res = item.field("spec");
            let res = res.field("resources");
            for (part, m) in [("requests", &r.requests), ("limits", &r.limits)] {
                let p = res.field(part);
                for (k, q) in m.iter().flatten() {
                    pod::quantity(q, &p.key(k), errs);
                }
            }
        }
    }
}

/// `ValidateDaemonSet`.
pub fn daemon_set(d: &DaemonSet, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &d.spec else {
        return errs.required(&at, "");
    };
    selector_and_template(Some(&s.selector), &s.template, &at, "daemonset", errs);
    template(&s.template, &at.field("template"), &["Always"], errs);
    if let Some(u) = &s.update_strategy {
        let us = at.field("updateStrategy");
        errs.one_of(
            &us.field("type"),
            u.type_.as_deref(),
            &["RollingUpdate", "OnDelete"],
        );
        if let Some(ru) = &u.rolling_update {
            rolling(
                ru.max_unavailable.as_ref(),
                ru.max_surge.as_ref(),
                &us.field("rollingUpdate"),
                errs,
            );
        }
    }
}

/// `ValidateReplicaSet`.
pub fn replica_set(d: &ReplicaSet, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &d.spec else {
        return errs.required(&at, "");
    };
    errs.non_negative(&at.field("replicas"), s.replicas.map(i64::from));
    match &s.template {
        Some(t) => {
            selector_and_template(Some(&s.selector), t, &at, "replicaset", errs);
            template(t, &at.field("template"), &["Always"], errs);
        }
        None => errs.required(&at.field("template"), ""),
    }
}

/// `validateJobSpec`.
fn job_spec(s: &JobSpec, at: &Path, errs: &mut Errors) {
    for (field, v) in [
        ("parallelism", s.parallelism),
        ("completions", s.completions),
        ("backoffLimit", s.backoff_limit),
    ] {
        errs.non_negative(&at.field(field), v.map(i64::from));
    }
    errs.positive(
        &at.field("activeDeadlineSeconds"),
        s.active_deadline_seconds,
    );
    if s.manual_selector == Some(true) {
        selector_and_template(s.selector.as_ref(), &s.template, at, "job", errs);
    } else if let Some(sel) = &s.selector {
        meta::label_selector(sel, &at.field("selector"), errs);
    }
    errs.one_of(
        &at.field("completionMode"),
        s.completion_mode.as_deref(),
        &["NonIndexed", "Indexed"],
    );
    let rp = s
        .template
        .spec
        .as_ref()
        .and_then(|p| p.restart_policy.as_deref());
    let t = at.field("template");
    if rp.is_none() {
        errs.required(
            &t.field("spec").field("restartPolicy"),
            "valid values: \"OnFailure\", \"Never\"",
        );
    }
    template(&s.template, &t, &["OnFailure", "Never"], errs);
}

/// `ValidateJob`.
pub fn job(j: &Job, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    match &j.spec {
        Some(s) => job_spec(s, &at, errs),
        None => errs.required(&at, ""),
    }
}

/// `ValidateCronJob`: a standard cron schedule, a concurrency policy, and a
/// valid Job template.
pub fn cron_job(c: &CronJob, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &c.spec else {
        return errs.required(&at, "");
    };
    let sched = at.field("schedule");
    if s.schedule.is_empty() {
        errs.required(&sched, "");
    } else if !s.schedule.starts_with('@') {
        // robfig/cron's standard parser: five fields, or a descriptor.
        if let Err(crate::backup::schedule::ScheduleError::Cron { reason, .. }) =
            crate::backup::schedule::parse_schedule("", &s.schedule)
        {
            errs.invalid(
                &sched,
                &s.schedule,
                format!("unparseable schedule: {reason}"),
            );
        }
    } else if !matches!(
        s.schedule.as_str(),
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly"
    ) && !s.schedule.starts_with("@every ")
    {
        errs.invalid(&sched, &s.schedule, "unrecognized descriptor");
    }
    if s.schedule.contains("TZ=") || s.schedule.contains("CRON_TZ=") {
        errs.invalid(
            &sched,
            &s.schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        );
    }
    errs.one_of(
        &at.field("concurrencyPolicy"),
        s.concurrency_policy.as_deref(),
        &["Allow", "Forbid", "Replace"],
    );
    for (field, v) in [
        (
            "successfulJobsHistoryLimit",
            s.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", s.failed_jobs_history_limit),
    ] {
        errs.non_negative(&at.field(field), v.map(i64::from));
    }
    errs.non_negative(
        &at.field("startingDeadlineSeconds"),
        s.starting_deadline_seconds,
    );
    let jt = at.field("jobTemplate");
    if let Some(js) = &s.job_template.spec {
        job_spec(js, &jt.field("spec"), errs);
    }
}

/// `ValidateHorizontalPodAutoscalerSpec`.
pub fn hpa(h: &HorizontalPodAutoscaler, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &h.spec else {
        return errs.required(&at, "");
    };
    if let Some(min) = s.min_replicas
        && min < 1
    {
        errs.invalid(
            &at.field("minReplicas"),
            min,
            "must be greater than or equal to 1",
        );
    }
    if s.max_replicas < 1 {
        errs.invalid(
            &at.field("maxReplicas"),
            s.max_replicas,
            "must be greater than 0",
        );
    }
    if let Some(min) = s.min_replicas
        && s.max_replicas < min
    {
        errs.invalid(
            &at.field("maxReplicas"),
            s.max_replicas,
            "must be greater than or equal to `minReplicas`",
        );
    }
    let t = at.field("scaleTargetRef");
    if s.scale_target_ref.kind.is_empty() {
        errs.required(&t.field("kind"), "");
    }
    if s.scale_target_ref.name.is_empty() {
        errs.required(&t.field("name"), "");
    } else {
        let n = &s.scale_target_ref.name;
        errs.check(&t.field("name"), n, names::path_segment(n));
    }
}

/// `ValidatePodDisruptionBudgetSpec`.
pub fn pdb(p: &PodDisruptionBudget, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &p.spec else { return };
    if s.min_available.is_some() && s.max_unavailable.is_some() {
        errs.invalid(
            &at,
            "",
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    for (field, v) in [
        ("minAvailable", &s.min_available),
        ("maxUnavailable", &s.max_unavailable),
    ] {
        let f = at.field(field);
        int_or_percent(v.as_ref(), &f, errs);
        if let Some(IntOrString::String(p)) = v
            && let Some(n) = p.strip_suffix('%').and_then(|n| n.parse::<u64>().ok())
            && n > 100
        {
            errs.invalid(&f, p, "must not be greater than 100%");
        }
    }
    if let Some(sel) = &s.selector {
        meta::label_selector(sel, &at.field("selector"), errs);
    }
    errs.one_of(
        &at.field("unhealthyPodEvictionPolicy"),
        s.unhealthy_pod_eviction_policy.as_deref(),
        &["IfHealthyBudget", "AlwaysAllow"],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(spec: serde_json::Value) -> Vec<String> {
        let d: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec,
        }))
        .unwrap();
        let mut e = Errors::default();
        deployment(&d, &mut e);
        e.list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn deployment_selector_must_match_and_rollouts_must_progress() {
        let e = deploy(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "web", "image": "i"}]}},
            "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
        }));
        assert!(
            e.iter()
                .any(|e| e.contains("`selector` does not match template `labels`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("may not be 0 when `maxSurge` is 0")),
            "{e:?}"
        );
        let e = deploy(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "i"}]}},
            "strategy": {"rollingUpdate": {"maxSurge": "25", "maxUnavailable": "150%"}},
        }));
        assert!(
            e.iter().any(|e| e.starts_with(
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"25\": a valid percent"
            )),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("must not be greater than 100%")),
            "{e:?}"
        );
    }

    #[test]
    fn job_templates_need_a_restart_policy_that_ends() {
        let j: CronJob = serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * 8", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Always", "containers": [{"name": "a", "image": "i"}]}}}}},
        }))
        .unwrap();
        let mut e = Errors::default();
        cron_job(&j, &mut e);
        let e: Vec<String> = e.list.iter().map(ToString::to_string).collect();
        assert!(
            e.iter()
                .any(|e| e.starts_with("spec.schedule: Invalid value: \"0 3 * * 8\"")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.starts_with(
                "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\""
            )),
            "{e:?}"
        );
    }
}
