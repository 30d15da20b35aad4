//! What happened to each environment of a `reconcile`, in words and counts:
//! the one fact the text, markdown and exit code all rest on. After an apply
//! the counts are of what was written, never of what was planned.

use crate::plan::Action;
use crate::reconcile::EnvResult;

/// Object counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Created (or to create).
    pub create: usize,
    /// Updated (or to update).
    pub update: usize,
    /// Replaced: deleted and created again (or to replace).
    pub replace: usize,
    /// Deleted (or to delete).
    pub delete: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.create += other.create;
        self.update += other.update;
        self.replace += other.replace;
        self.delete += other.delete;
    }

    fn count(&mut self, action: Action) {
        match action {
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Replace => self.replace += 1,
            Action::Delete => self.delete += 1,
            Action::Unchanged | Action::Skip => {}
        }
    }

    /// Whether nothing is counted.
    pub fn is_zero(&self) -> bool {
        self.create + self.update + self.replace + self.delete == 0
    }

    /// `2 to create, 1 to update, 0 to delete` (`, 1 to replace` before the
    /// deletes when there are replacements).
    pub fn planned(&self) -> String {
        format!(
            "{} to create, {} to update, {}{} to delete",
            self.create,
            self.update,
            self.replaced("to replace"),
            self.delete
        )
    }

    /// `2 created, 1 updated, 0 deleted` (`1 replaced, ` likewise).
    pub fn done(&self) -> String {
        format!(
            "{} created, {} updated, {}{} deleted",
            self.create,
            self.update,
            self.replaced("replaced"),
            self.delete
        )
    }

    fn replaced(&self, word: &str) -> String {
        if self.replace == 0 {
            String::new()
        } else {
            format!("{} {word}, ", self.replace)
        }
    }
}

/// The state an environment ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOutcome {
    /// Planned only (dry run): what would change.
    Planned {
        /// Objects to write.
        counts: Counts,
        /// Objects left alone on purpose (create-only, not keelson's, …).
        skipped: usize,
    },
    /// Applied: what was written, and how many writes failed.
    Applied {
        /// Objects written.
        counts: Counts,
        /// Writes that failed.
        failed: usize,
        /// Workloads that did not become healthy.
        unhealthy: usize,
        /// Objects left alone on purpose.
        skipped: usize,
    },
    /// A safety rule refused the plan: nothing was (or would be) written.
    Refused {
        /// What the plan would have done.
        planned: Counts,
    },
    /// The environment could not be planned (or applied) at all.
    Failed,
    /// The spec has errors: not planned.
    Blocked,
}

impl EnvOutcome {
    /// The outcome of one environment.
    pub fn of(r: &EnvResult, dry_run: bool) -> EnvOutcome {
        let Some(plan) = &r.plan else {
            return EnvOutcome::Failed;
        };
        let mut planned = Counts::default();
        let mut skipped = 0;
        for c in &plan.changes {
            planned.count(c.action);
            skipped += usize::from(c.action == Action::Skip);
        }
        if plan.refused.is_some() {
            return EnvOutcome::Refused { planned };
        }
        match (&r.apply, dry_run) {
            (Some(a), false) => {
                let mut counts = Counts::default();
                let mut failed = 0;
                for res in &a.results {
                    match &res.error {
                        None => counts.count(res.action),
                        Some(_) => failed += 1,
                    }
                }
                EnvOutcome::Applied {
                    counts,
                    failed,
                    unhealthy: a.health.iter().filter(|h| !h.is_ok()).count(),
                    skipped,
                }
            }
            // An error before apply (Rancher, observing) leaves no apply report.
            (None, false) if r.error.is_some() => EnvOutcome::Failed,
            _ => EnvOutcome::Planned {
                counts: planned,
                skipped,
            },
        }
    }

    /// `prod: 2 to create, 1 to update, 0 to delete`, or what was done.
    pub fn line(&self, env: &str) -> String {
        match self {
            EnvOutcome::Planned { counts, skipped } => {
                format!("{env}: {}{}", counts.planned(), skipped_text(*skipped))
            }
            EnvOutcome::Applied {
                counts,
                failed,
                unhealthy,
                skipped,
            } => {
                let mut s = format!("{env}: {}", counts.done());
                if *failed > 0 {
                    s.push_str(&format!(", {failed} failed"));
                }
                if *unhealthy > 0 {
                    s.push_str(&format!(", {unhealthy} unhealthy"));
                }
                s + &skipped_text(*skipped)
            }
            EnvOutcome::Refused { planned } => format!(
                "{env}: refused, nothing applied (the plan had {})",
                planned.planned()
            ),
            EnvOutcome::Failed => format!("{env}: failed, see the error above"),
            EnvOutcome::Blocked => {
                format!("{env}: not planned, the spec has errors (see `keelson validate`)")
            }
        }
    }

    /// Whether this environment failed.
    pub fn failed(&self) -> bool {
        match self {
            EnvOutcome::Applied {
                failed, unhealthy, ..
            } => *failed > 0 || *unhealthy > 0,
            EnvOutcome::Planned { .. } => false,
            EnvOutcome::Refused { .. } | EnvOutcome::Failed | EnvOutcome::Blocked => true,
        }
    }
}

fn skipped_text(skipped: usize) -> String {
    if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    }
}

/// One environment's outcome.
#[derive(Debug, Clone)]
pub struct EnvLine {
    /// Environment name.
    pub name: String,
    /// What happened.
    pub outcome: EnvOutcome,
    /// Whether it failed (an outcome that failed, or an error beside a clean
    /// apply: Rancher, the inventory write).
    pub failed: bool,
}

impl EnvLine {
    /// The summary line of the environment.
    pub fn line(&self) -> String {
        let mut s = self.outcome.line(&self.name);
        if self.failed && !self.outcome.failed() {
            s.push_str(", with errors (see above)");
        }
        s
    }
}

/// Every environment's outcome, and the totals.
#[derive(Debug, Clone)]
pub struct Outcomes {
    /// Per environment, in output order.
    pub envs: Vec<EnvLine>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl Outcomes {
    /// The outcomes of a run.
    pub fn of(results: &[EnvResult], blocked: &[String], dry_run: bool) -> Outcomes {
        let mut envs: Vec<EnvLine> = results
            .iter()
            .map(|r| {
                let outcome = EnvOutcome::of(r, dry_run);
                EnvLine {
                    name: r.environment.clone(),
                    failed: r.failed() || outcome.failed(),
                    outcome,
                }
            })
            .collect();
        envs.extend(blocked.iter().map(|b| EnvLine {
            name: b.clone(),
            outcome: EnvOutcome::Blocked,
            failed: true,
        }));
        Outcomes { envs, dry_run }
    }

    /// Objects written (or to write) across environments that were not refused.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for e in &self.envs {
            match &e.outcome {
                EnvOutcome::Planned { counts, .. } | EnvOutcome::Applied { counts, .. } => {
                    t.add(*counts)
                }
                _ => {}
            }
        }
        t
    }

    /// Environments that failed, were refused or blocked.
    pub fn failed(&self) -> Vec<&str> {
        self.envs
            .iter()
            .filter(|e| e.failed)
            .map(|e| e.name.as_str())
            .collect()
    }

    /// The one-line total, as terraform prints it:
    /// `Plan: 14 to create, 3 to update, 2 to delete, in 4 environments.`
    pub fn total_line(&self) -> String {
        let n = self.envs.len();
        let envs = format!("{n} environment{}", if n == 1 { "" } else { "s" });
        let total = self.total();
        let mut s = if self.dry_run {
            format!("Plan: {}, in {envs}.", total.planned())
        } else {
            format!("Applied: {}, in {envs}.", total.done())
        };
        let failed = self.failed();
        if !failed.is_empty() {
            s.push_str(&format!(
                " {} failed or refused: {}.",
                failed.len(),
                failed.join(", ")
            ));
        }
        s
    }
}
