//! The merge request of a promotion: its description (what moves, the
//! health gate's evidence, and the offline plan of the promotion commit
//! against its base, as `keelson reconcile --dry-run --against-ref` gives
//! it), opened through [`crate::forge`] once the branch is pushed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use git2::Oid;

use super::{against_ref, markdown};
use crate::promote::Promotion;
use crate::promote::gate::Evidence;
use crate::promote::git::{Repo, short};

/// What the description is made of.
pub struct Description<'a> {
    /// Source environment.
    pub from: &'a str,
    /// Target environment.
    pub to: &'a str,
    /// The apps that move.
    pub moves: &'a [Promotion],
    /// The gate's evidence per app (`None`: skipped).
    pub evidence: &'a [Option<Evidence>],
    /// Branch and commit of the promotion, and its base.
    pub branch: &'a str,
    /// The promotion commit.
    pub commit: Oid,
    /// Its parent.
    pub base: Oid,
}

/// The Markdown description: a table of what moves and why it may, then
/// the plan of the target environment for the promotion commit against its
/// base, computed offline (no cluster, no credentials), cut to fit a GitHub
/// pull request body.
pub fn description(repo: &Repo, repo_dir: &Path, d: &Description<'_>) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Promotes from `{}` to `{}`: commit `{}` on `{}`, on top of `{}`.\n",
        d.from,
        d.to,
        short(d.commit),
        d.branch,
        short(d.base)
    );
    let _ = writeln!(
        out,
        "| app | `{}` now | promoted from `{}` | health gate |\n| --- | --- | --- | --- |",
        d.to, d.from
    );
    for (m, ev) in d.moves.iter().zip(d.evidence) {
        let gate = match ev {
            Some(ev) => format!("met: {ev}"),
            None => "**skipped** (`--skip-health-gate`)".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {gate} |",
            m.app, m.replaces, m.version
        );
    }
    out.push('\n');
    let budget = markdown::DEFAULT_LIMIT.saturating_sub(out.len() + 200);
    out.push_str(&plan(repo, repo_dir, d, budget)?);
    Ok(out)
}

/// The plan of `d.to` at the promotion commit against its base, in Markdown.
fn plan(repo: &Repo, repo_dir: &Path, d: &Description<'_>, limit: usize) -> anyhow::Result<String> {
    let base = against_ref::load_base(repo_dir, &d.base.to_string())?;
    let head_dir = tempfile::Builder::new()
        .prefix("keelson-promote-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let git = repo.inner();
    let commit = git.find_commit(d.commit)?;
    let tree = commit.tree()?;
    let sub = match repo.path_of("") {
        p if p.is_empty() => tree,
        p => tree
            .get_path(Path::new(p.trim_end_matches('/')))?
            .to_object(git)?
            .peel_to_tree()?,
    };
    crate::source::export_tree(git, &sub, head_dir.path())
        .map_err(|e| anyhow::anyhow!("cannot export the promotion commit: {e}"))?;
    let head = crate::check::check_repo(head_dir.path());
    let mut results = Vec::new();
    let mut blocked = Vec::new();
    match head.ready.get(d.to) {
        Some(env) if !base.blocked(d.to) => {
            let clusters = crate::reconcile::Clusters::captured(base.captured_state());
            let opts = crate::reconcile::Options {
                dry_run: true,
                ..Default::default()
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            results
                .push(runtime.block_on(crate::reconcile::reconcile_named(&clusters, env, &opts)));
        }
        _ => blocked.push(d.to.to_string()),
    }
    against_ref::plan_rancher(&head, &base, &mut results);
    results.retain(|r| r.environment == d.to);
    Ok(markdown::render(
        &results,
        &blocked,
        &markdown::MarkdownOptions {
            dry_run: true,
            limit,
            full_plan_url: None,
            against: Some(format!("the base commit {}", base.commit)),
        },
    ))
}

/// The branch a merge request should merge into: `--target-branch`, else
/// the branch `--base` names (`main`, `origin/main`, or `HEAD` on a branch).
pub fn target_branch(repo: &Repo, base: &str, given: Option<&str>) -> anyhow::Result<String> {
    if let Some(b) = given {
        return Ok(b.to_string());
    }
    let git = repo.inner();
    let name = if base == "HEAD" {
        git.head()
            .ok()
            .filter(|h| h.is_branch())
            .and_then(|h| h.shorthand().ok().map(str::to_string))
    } else if let Ok(b) = git.find_branch(base, git2::BranchType::Local) {
        b.name().ok().flatten().map(str::to_string)
    } else if git.find_branch(base, git2::BranchType::Remote).is_ok() {
        base.split_once('/').map(|(_, b)| b.to_string())
    } else {
        None
    };
    name.ok_or_else(|| {
        anyhow::anyhow!(
            "--base {base} is not a branch, so the merge request has no branch to merge into; \
             pass --target-branch BRANCH"
        )
    })
}
