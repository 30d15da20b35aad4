//! Previews in `keelson run`: the merge request source and the
//! time-to-live. Every `previews.pollInterval` (and at once on a verified
//! `pull_request` / "Merge Request Hook" webhook, and when a new commit is
//! served), for each template of the served commit:
//!
//! 1. the open merge requests with the template's label are listed from
//!    the forge (`forge:` in the config); the webhook's payload is only a
//!    trigger, the forge's answer is what counts;
//! 2. [`crate::preview::source::plan`] says what to create, update and
//!    release; creation goes through [`lifecycle::upsert`] and the record
//!    (limits, port block, id), release through
//!    [`crate::preview::actions::release`] (retirement, then the block is
//!    freed), as `keelson preview create|delete` do;
//! 3. every active preview whose record or commit changed since this
//!    process last applied it is reconciled as an environment.
//!
//! Outcomes go to the status store like any environment's (`/status`,
//! `/history`): a preview refused by a limit shows `failed` with the limit
//! and the way out. With Leases, one replica (the owner of
//! [`OWNER_KEY`] among the members) runs the source; the record's
//! optimistic concurrency keeps allocation safe whatever runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{debug, info, warn};

use super::engine::Shared;
use super::fence::Fence;
use super::lease::Term;
use super::worker::{Held, hold, let_go};
use super::{EnvOutcome, Outcome};
use crate::check::Report;
use crate::config::Config;
use crate::forge::{Forge, ForgeKind, MergeRequest, MergeRequestState};
use crate::preview::actions::{self, ActionError};
use crate::preview::lifecycle::{self, Limits};
use crate::preview::online::read_records;
use crate::preview::record::{Previews, State};
use crate::preview::source::{self, EXPIRED_REASON, Step, Why};
use crate::preview::store::{ChangeError, Store};
use crate::preview::template::cluster_of;
use crate::preview::{PreviewsConfig, params::preview_name};
use crate::reconcile::{Clusters, Options};
use crate::record::Trigger;
use crate::source::Checkout;
use crate::spec::preview::{DEFAULT_PREVIEW_LABEL, TemplateFiles};

/// The name whose owner among the replicas runs the merge request source.
pub const OWNER_KEY: &str = "keelson-previews";

/// `previews.pollInterval` when the config names none.
pub const DEFAULT_POLL: Duration = Duration::from_secs(60);

/// What the preview loop needs, resolved from the config.
#[derive(Debug, Clone)]
pub struct PreviewSettings {
    /// The forge client, when the config has a `forge:` section.
    pub forge: Option<Forge>,
    /// How often to list merge requests and check time-to-live.
    pub interval: Duration,
    /// The whole config (clusters, `previews:`).
    pub config: Arc<Config>,
    /// How previews are applied (set by `keelson run`).
    pub options: Options,
}

/// Run until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, p: Arc<PreviewSettings>) {
    let clusters = match Clusters::new(Some((*p.config).clone()), None) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            warn!(error = %e, "previews: cannot reach the clusters; the merge request source is off");
            return;
        }
    };
    let mut memory = Memory::default();
    let mut next = Instant::now();
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = shared.preview_trigger.notified() => debug!("previews: triggered"),
            _ = tokio::time::sleep(wait) => {}
        }
        let head = shared
            .head
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(head) = head else {
            // No commit served yet: look again soon.
            next = Instant::now() + Duration::from_millis(200);
            continue;
        };
        next = Instant::now() + p.interval;
        if !shared.owns(OWNER_KEY) {
            continue;
        }
        // Reconciling is not provably `Send` (see the pipeline): one pass
        // runs on a blocking thread that drives it on this runtime.
        let handle = tokio::runtime::Handle::current();
        let (s, pp, c) = (shared.clone(), p.clone(), clusters.clone());
        let mut m = std::mem::take(&mut memory);
        let joined = tokio::task::spawn_blocking(move || {
            handle.block_on(pass(&s, &pp, &c, &head, &mut m));
            m
        })
        .await;
        match joined {
            Ok(m) => memory = m,
            Err(e) => warn!(error = %e, "previews: the pass panicked"),
        }
    }
}

/// What this process remembers between passes.
#[derive(Default)]
struct Memory {
    /// The served commit the templates were last checked at, and the check.
    checked: Option<(String, Arc<Report>)>,
    /// Per preview: (commit, record) last applied successfully.
    applied: HashMap<String, (String, String)>,
    /// Per preview: when it was last reconciled or checked for drift.
    checked_at: HashMap<String, Instant>,
    /// Per preview: the last refusal logged and recorded, so a limit that
    /// holds is not written to the history at every poll.
    refused: HashMap<String, String>,
    /// Templates whose source cannot be used, already logged.
    warned: HashMap<String, String>,
    /// Previews created in this pass (a failed first apply releases them).
    fresh: HashSet<String>,
    /// Per preview: the last failed first apply recorded.
    first_failed: HashMap<String, String>,
}

async fn pass(
    shared: &Shared,
    p: &PreviewSettings,
    clusters: &Clusters,
    head: &Checkout,
    memory: &mut Memory,
) {
    let cfg = p.config.previews.clone().unwrap_or_default();
    let report = match &memory.checked {
        Some((id, r)) if *id == head.commit.id => r.clone(),
        _ => {
            let r = Arc::new(crate::check::check_repo(&head.path));
            memory.checked = Some((head.commit.id.clone(), r.clone()));
            r
        }
    };
    if report.repo.templates.is_empty() {
        return;
    }
    let now = Utc::now();
    memory.fresh.clear();
    let read = read_records(&report.repo, clusters, &cfg).await;
    for (name, t) in &report.repo.templates {
        let (Some(doc), Some(cluster_name)) = (t.template.as_ref(), cluster_of(t)) else {
            continue;
        };
        if t.load_failed {
            continue;
        }
        let Some(Ok(records)) = read.get(&cluster_name) else {
            debug!(template = %name, cluster = %cluster_name, "previews: the record cannot be read; nothing is done for this template");
            continue;
        };
        let spec = &doc.value.spec;
        let (kind, open) = list_open(p, t, memory).await;
        let steps = source::plan(name, spec, kind, open.as_deref(), records, now);
        let elsewhere: usize = read
            .iter()
            .filter(|(c, _)| **c != cluster_name)
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|r| r.holding().count())
            .sum();
        let limits = Limits {
            elsewhere,
            max_total: cfg.max_total,
        };
        for step in steps {
            let cl = cluster_name.as_str();
            match step {
                Step::Upsert(req) => {
                    upsert(
                        shared, clusters, &cfg, cl, name, t, &req, limits, head, memory,
                    )
                    .await
                }
                Step::Release {
                    number,
                    why,
                    tombstone,
                } => {
                    let reason = reason(p, t, number, &why).await;
                    release(
                        shared, clusters, &cfg, &report, cl, name, number, &reason, tombstone, p,
                        head, memory,
                    )
                    .await
                }
                Step::Forget { number } => {
                    let k = crate::preview::record::key(name, number);
                    if let Ok(c) = clusters.get(cl).await {
                        let store = Store::new(c.as_ref(), cfg.namespace());
                        let _ = store
                            .update(|p| {
                                lifecycle::forget(p, &k);
                                Ok::<_, String>(())
                            })
                            .await;
                    }
                }
            }
        }
    }
    orphans(shared, p, clusters, &cfg, &report, &read, head, memory).await;
    apply_changed(shared, p, clusters, &cfg, &report, head, memory).await;
}

/// Release the previews of templates removed from the repository, as a
/// removed folder is retired: only from a checkout that gives the evidence
/// retirement asks for (it loaded cleanly; see
/// [`crate::reconcile::Evidence`]). A template that is present but fails
/// to load keeps its previews.
#[allow(clippy::too_many_arguments)]
async fn orphans(
    shared: &Shared,
    p: &PreviewSettings,
    clusters: &Clusters,
    cfg: &PreviewsConfig,
    report: &Report,
    read: &BTreeMap<String, Result<Previews, String>>,
    head: &Checkout,
    memory: &mut Memory,
) {
    let orphaned: Vec<(String, String, u64)> = read
        .iter()
        .filter_map(|(c, r)| Some((c, r.as_ref().ok()?)))
        .flat_map(|(c, previews)| {
            previews
                .by_key
                .values()
                .filter(|r| r.holds() && !report.repo.templates.contains_key(&r.template))
                .map(move |r| (c.clone(), r.template.clone(), r.number))
        })
        .collect();
    if orphaned.is_empty() || crate::reconcile::Evidence::of(report).is_err() {
        return;
    }
    for (cluster, template, number) in orphaned {
        let reason = format!("its template `{template}` was removed from the repository");
        release(
            shared, clusters, cfg, report, &cluster, &template, number, &reason, false, p, head,
            memory,
        )
        .await;
    }
}

/// The open merge requests with `t`'s label, and the source's name; `None`
/// when the template has no source or the forge did not answer.
async fn list_open(
    p: &PreviewSettings,
    t: &TemplateFiles,
    memory: &mut Memory,
) -> (&'static str, Option<Vec<MergeRequest>>) {
    let Some(src) = t
        .template
        .as_ref()
        .and_then(|d| d.value.spec.source.as_ref())
    else {
        return ("none", None);
    };
    let (kind, repo, label) = match (&src.github, &src.gitlab) {
        (Some(g), _) => (ForgeKind::Github, &g.repository, g.label.as_deref()),
        (None, Some(g)) => (ForgeKind::Gitlab, &g.project, g.label.as_deref()),
        (None, None) => return ("none", None),
    };
    let name = match kind {
        ForgeKind::Github => "github",
        ForgeKind::Gitlab => "gitlab",
    };
    let problem = match &p.forge {
        None => Some(format!(
            "template `{}` takes merge requests from {name}, but the keelson config has no `forge:` section; no preview is made from merge requests",
            t.name
        )),
        Some(f) if f.kind() != kind => Some(format!(
            "template `{}` takes merge requests from {name}, but forge.kind is {}; no preview is made from merge requests",
            t.name,
            f.kind()
        )),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        if memory.warned.get(&t.name) != Some(&problem) {
            warn!("{problem}");
            memory.warned.insert(t.name.clone(), problem);
        }
        return (name, None);
    }
    let forge = p.forge.as_ref().expect("checked").for_repository(repo);
    let label = label.unwrap_or(DEFAULT_PREVIEW_LABEL);
    match forge.open_merge_requests(Some(label)).await {
        Ok(open) => {
            memory.warned.remove(&t.name);
            (name, Some(open))
        }
        Err(e) => {
            let problem = format!(
                "previews of template `{}`: cannot list the merge requests of {repo}: {e}; nothing is created or released until it answers",
                t.name
            );
            if memory.warned.get(&t.name) != Some(&problem) {
                warn!("{problem}");
                memory.warned.insert(t.name.clone(), problem);
            }
            (name, None)
        }
    }
}

/// The reason recorded for a release.
async fn reason(p: &PreviewSettings, t: &TemplateFiles, number: u64, why: &Why) -> String {
    match why {
        Why::Expired => EXPIRED_REASON.to_string(),
        Why::Unfinished(r) => r.clone(),
        Why::Gone => {
            let src = t
                .template
                .as_ref()
                .and_then(|d| d.value.spec.source.as_ref());
            let repo = src.and_then(|s| {
                s.github
                    .as_ref()
                    .map(|g| g.repository.clone())
                    .or_else(|| s.gitlab.as_ref().map(|g| g.project.clone()))
            });
            let state = match (&p.forge, repo) {
                (Some(f), Some(r)) => f.for_repository(&r).merge_request(number).await.ok(),
                _ => None,
            };
            match state.map(|m| m.state) {
                Some(MergeRequestState::Merged) => format!("merge request {number} was merged"),
                Some(MergeRequestState::Closed) => format!("merge request {number} was closed"),
                Some(MergeRequestState::Open) => {
                    format!("merge request {number} no longer has the preview label")
                }
                None => format!("merge request {number} is no longer open with the preview label"),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn upsert(
    shared: &Shared,
    clusters: &Clusters,
    cfg: &PreviewsConfig,
    cluster_name: &str,
    template: &str,
    t: &TemplateFiles,
    req: &lifecycle::Request,
    limits: Limits,
    head: &Checkout,
    memory: &mut Memory,
) {
    let name = preview_name(template, req.number);
    let Ok(cluster) = clusters.get(cluster_name).await else {
        return;
    };
    let spec = t
        .template
        .as_ref()
        .map(|d| d.value.spec.clone())
        .unwrap_or_default();
    let store = Store::new(cluster.as_ref(), cfg.namespace());
    let now = Utc::now();
    match store
        .update(|p| lifecycle::upsert(p, template, &spec, req, limits, now))
        .await
    {
        Ok((record, created)) => {
            memory.refused.remove(&name);
            if created {
                memory.fresh.insert(name.clone());
                info!(preview = %name, number = req.number, sha = %req.sha, ports = ?record.ports, id = record.id, "preview created from a merge request");
            }
        }
        Err(ChangeError::Refused(why)) => {
            let message = format!("preview refused: {why}");
            if memory.refused.get(&name) != Some(&message) {
                warn!(preview = %name, "{message}");
                record(
                    shared,
                    &name,
                    head,
                    Trigger::Commit,
                    EnvOutcome::bare(Outcome::Failed {
                        message: message.clone(),
                    }),
                    Duration::ZERO,
                    &None,
                )
                .await;
                memory.refused.insert(name, message);
            }
        }
        Err(ChangeError::Store(e)) => {
            warn!(preview = %name, error = %e, "previews: cannot record the preview");
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn release(
    shared: &Shared,
    clusters: &Clusters,
    cfg: &PreviewsConfig,
    report: &Report,
    cluster_name: &str,
    template: &str,
    number: u64,
    reason: &str,
    tombstone: bool,
    p: &PreviewSettings,
    head: &Checkout,
    memory: &mut Memory,
) {
    let name = preview_name(template, number);
    let started = Instant::now();
    // Under the preview environment's Lease, like any environment.
    let term = match hold(shared, &name).await {
        Held::Yes(term) => term,
        Held::No(why) => {
            debug!(preview = %name, "not released now: the environment lease is {why}");
            return;
        }
    };
    info!(preview = %name, %reason, "releasing the preview");
    let released = actions::release(
        report,
        clusters,
        cfg,
        actions::Release {
            cluster: cluster_name,
            template,
            number,
            reason,
            tombstone,
        },
        &p.options,
        fence_of(&term),
    )
    .await;
    memory.applied.remove(&name);
    memory.checked_at.remove(&name);
    let outcome = match released {
        Ok(r) => {
            let mut o = match &r.result {
                Some(result) => super::pipeline::outcome_of(result, false),
                None => EnvOutcome::bare(Outcome::NoChange),
            };
            if r.done {
                info!(preview = %name, %reason, "preview released: every object is gone, its ports and id are free");
                o.changes.insert(0, format!("released: {reason}"));
            } else {
                warn!(preview = %name, "the release did not finish; it stays releasing and is tried again");
            }
            o
        }
        Err(e) => {
            warn!(preview = %name, error = %e, "the release failed; it is tried again");
            EnvOutcome::bare(Outcome::Failed {
                message: e.to_string(),
            })
        }
    };
    let took = started.elapsed();
    record(shared, &name, head, Trigger::Commit, outcome, took, &term).await;
    let_go(shared, &term).await;
}

/// Reconcile every active preview whose record or served commit changed
/// since it was last applied here; check the others for drift every
/// `controller.driftInterval`, re-applying with `selfHeal` as the
/// environment workers do (a check that finds nothing is not history).
async fn apply_changed(
    shared: &Shared,
    p: &PreviewSettings,
    clusters: &Clusters,
    cfg: &PreviewsConfig,
    base: &Report,
    head: &Checkout,
    memory: &mut Memory,
) {
    let read = read_records(&base.repo, clusters, cfg).await;
    // name → (cluster, (template, number), what it was applied at, drift check only)
    type Due = (String, (String, u64), (String, String), bool);
    let mut due: BTreeMap<String, Due> = BTreeMap::new();
    for (cluster, r) in &read {
        let Ok(previews) = r else { continue };
        for rec in previews.by_key.values() {
            if rec.state != State::Active || !base.repo.templates.contains_key(&rec.template) {
                continue;
            }
            let mark = (head.commit.id.clone(), record_mark(previews, &rec.key()));
            let id = (rec.template.clone(), rec.number);
            if memory.applied.get(&rec.name()) != Some(&mark) {
                due.insert(rec.name(), (cluster.clone(), id, mark, false));
            } else if memory
                .checked_at
                .get(&rec.name())
                .is_none_or(|t| t.elapsed() >= shared.settings.drift_interval)
            {
                due.insert(rec.name(), (cluster.clone(), id, mark, true));
            }
        }
    }
    if due.is_empty() {
        return;
    }
    let report = actions::check_with(&head.path, &read);
    for (name, (cluster_name, (template, number), mark, drift)) in due {
        let started = Instant::now();
        let dry_run = drift && !shared.settings.self_heal;
        let opts = Options {
            dry_run,
            ..p.options.clone()
        };
        // Under the preview environment's Lease, like any environment:
        // every write is fenced by it.
        let term = match hold(shared, &name).await {
            Held::Yes(term) => term,
            Held::No(why) => {
                debug!(preview = %name, "not applied now: the environment lease is {why}");
                continue;
            }
        };
        let applied = actions::apply(&report, &name, clusters, &opts, fence_of(&term)).await;
        let half_made = matches!(&applied, Ok(result)
            if memory.fresh.contains(&name) && actions::nothing_applied(result));
        if half_made {
            // Not a half-made environment: released, and tried again at
            // the next poll (a place may free up in the Rancher project).
            let what = actions::Release {
                cluster: &cluster_name,
                template: &template,
                number,
                reason: actions::FIRST_APPLY_FAILED,
                tombstone: false,
            };
            let released =
                actions::release(base, clusters, cfg, what, &p.options, fence_of(&term)).await;
            if let Err(e) = released {
                warn!(preview = %name, error = %e, "cannot release the preview whose first apply failed");
            }
        }
        let outcome = match applied {
            Ok(result) if half_made => {
                memory.applied.remove(&name);
                // Rancher's own reason when it refused, else the failure.
                let rancher = result.rancher.as_ref().and_then(|r| r.error.clone());
                let why = match super::pipeline::outcome_of(&result, false).outcome {
                    _ if rancher.is_some() => rancher.unwrap_or_default(),
                    Outcome::Failed { message } => message,
                    o => o.summary(),
                };
                let message = format!("preview not created, nothing of it was applied: {why}");
                if memory.first_failed.get(&name) == Some(&message) {
                    let_go(shared, &term).await;
                    continue;
                }
                memory.first_failed.insert(name.clone(), message.clone());
                EnvOutcome::bare(Outcome::Failed { message })
            }
            Ok(result) => {
                memory.first_failed.remove(&name);
                let o = super::pipeline::outcome_of(&result, dry_run);
                if o.outcome.is_success() || matches!(o.outcome, Outcome::Drift { .. }) {
                    memory.applied.insert(name.clone(), mark);
                    memory.checked_at.insert(name.clone(), Instant::now());
                }
                if drift && o.outcome == Outcome::NoChange {
                    let_go(shared, &term).await;
                    continue;
                }
                if let Outcome::Drift { count } = o.outcome {
                    warn!(preview = %name, count, "drift found (selfHeal is off: reporting only)");
                }
                o
            }
            Err(ActionError::Invalid { errors, .. }) => {
                // Not applied; tried again with the next commit or record change.
                memory.applied.insert(name.clone(), mark);
                EnvOutcome::bare(Outcome::Invalid {
                    diagnostics: errors,
                })
            }
            Err(e) => EnvOutcome::bare(Outcome::Failed {
                message: e.to_string(),
            }),
        };
        debug!(preview = %name, cluster = %cluster_name, "preview reconciled");
        let trigger = if drift {
            Trigger::Drift
        } else {
            Trigger::Commit
        };
        // Under the Lease, so that the in-cluster status is written by its holder.
        record(
            shared,
            &name,
            head,
            trigger,
            outcome,
            started.elapsed(),
            &term,
        )
        .await;
        let_go(shared, &term).await;
    }
}

/// What of a record asks for a new apply: its inputs.
fn record_mark(previews: &Previews, key: &str) -> String {
    previews
        .by_key
        .get(key)
        .map(|r| {
            format!(
                "{}|{}|{}|{}",
                r.sha,
                r.tag.as_deref().unwrap_or_default(),
                r.branch,
                r.created
            )
        })
        .unwrap_or_default()
}

/// Record one preview sync as the environment workers do
/// ([`super::worker::record`]): status, history and, under the preview's
/// Lease `term`, the in-cluster `KeelsonEnvironment` status.
async fn record(
    shared: &Shared,
    env: &str,
    head: &Checkout,
    trigger: Trigger,
    o: EnvOutcome,
    took: Duration,
    term: &Option<Arc<Term>>,
) {
    match &o.outcome {
        Outcome::Failed { message } => warn!(preview = env, "{message}"),
        o => info!(preview = env, "{}", o.summary()),
    }
    super::worker::record(shared, env, &head.commit, trigger, took, o, term).await;
}

/// The fence of a Lease term taken with [`hold`].
fn fence_of(term: &Option<Arc<Term>>) -> Option<Arc<dyn Fence>> {
    term.clone().map(|t| t as Arc<dyn Fence>)
}
