//! `keelson reconcile [--dry-run]`: plan (and apply) every environment, print
//! the plan as text, markdown (a merge-request comment) or JSON. Exit codes
//! as `terraform plan -detailed-exitcode`: 0 nothing to change, 2 changes
//! planned or applied, 1 error.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::specs::{Color, report_diagnostics, selected_envs};
use crate::check;
use crate::plan::{Action, Plan};
use crate::reconcile::{self, Clusters, EnvResult, Options};

/// Output format of `reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Human text with coloured diffs.
    Text,
    /// A merge-request comment, one collapsible section per object.
    Markdown,
    /// Machine-readable.
    Json,
}

/// Arguments of `keelson reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The environments repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Only these environments (repeatable); all when absent.
    #[arg(long = "env", short = 'e')]
    pub envs: Vec<String>,
    /// Plan only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm each update with a server-side dry-run apply (exact, slower).
    #[arg(long)]
    pub server_dry_run: bool,
    /// Compare against captured objects in DIR instead of a cluster (implies --dry-run).
    #[arg(long, value_name = "DIR")]
    pub against: Option<PathBuf>,
    /// The keelson config file (clusters → kubeconfig contexts). Without it,
    /// an environment's `cluster` is taken as a kubeconfig context name.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use this kubeconfig for every environment (default: KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Use this kubeconfig context for every environment, ignoring `cluster:` names.
    #[arg(long)]
    pub context: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Colour.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Objects applied at once.
    #[arg(long, default_value_t = 8)]
    pub parallelism: usize,
    /// Environments reconciled at once. Each holds its live objects while it
    /// is planned, so more means more memory; against remote clusters more
    /// also means less waiting on the network.
    #[arg(long, default_value_t = 1)]
    pub env_parallelism: usize,
    /// Seconds to wait for workloads to become healthy.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Do not wait for workload health after applying.
    #[arg(long)]
    pub no_wait: bool,
}

/// `keelson reconcile`.
pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    // One environment at a time (the default) is I/O and parsing on one
    // thread; a single-threaded runtime keeps one malloc arena, which keeps
    // peak memory down. More environments at once get worker threads.
    let runtime = if args.env_parallelism <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.env_parallelism.min(8))
            .enable_all()
            .build()?
    };
    runtime.block_on(run_async(args))
}

async fn run_async(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let report = check::check_repo(&args.repo);
    report_diagnostics(&report, args.color);
    let envs = selected_envs(&report, &args.envs)?;
    let config_path = args.config.clone().or_else(|| {
        let default = args.repo.join("keelson.yaml");
        default.is_file().then_some(default)
    });
    let config = match &config_path {
        Some(p) => Some(crate::config::load_config(p)?),
        None => None,
    };
    let config_clusters: Vec<String> = config
        .iter()
        .flat_map(|c| c.clusters.keys().cloned())
        .collect();
    let dry_run = args.dry_run || args.against.is_some();
    let opts = Options {
        dry_run,
        server_dry_run: args.server_dry_run,
        apply: crate::apply::ApplyOptions {
            parallelism: args.parallelism,
            timeout: Duration::from_secs(args.timeout),
            wait_health: !args.no_wait,
            ..Default::default()
        },
    };
    let mut clusters = Clusters::new(config, args.against.clone())?;
    if args.kubeconfig.is_some() || args.context.is_some() {
        clusters.override_kubeconfig = Some((args.kubeconfig.clone(), args.context.clone()));
    }

    // Environments run concurrently, on every core; one failing does not
    // stop the others.
    let clusters = std::sync::Arc::new(clusters);
    // A bounded number of environments at a time bounds memory (the live
    // objects of an environment are held while it is planned).
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(args.env_parallelism.max(1)));
    let mut blocked = Vec::new();
    let mut tasks = Vec::new();
    for name in &envs {
        match report.ready.get(name) {
            Some(env) => {
                let (env, clusters, opts, slots) =
                    (env.clone(), clusters.clone(), opts.clone(), slots.clone());
                tasks.push(tokio::spawn(async move {
                    let _slot = slots.acquire().await;
                    reconcile::reconcile_named(&clusters, &env, &opts).await
                }));
            }
            None => blocked.push(name.clone()),
        }
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }

    // Environments whose folder was removed: look on every cluster keelson
    // knows of (in use, in the config, or the one --context names).
    if args.envs.is_empty() {
        let known: BTreeSet<String> = report.repo.environments.keys().cloned().collect();
        let mut scan: BTreeSet<String> = report.ready.values().map(|e| e.cluster.clone()).collect();
        scan.extend(config_clusters);
        if args.against.is_some() || clusters.override_kubeconfig.is_some() {
            // One cluster serves every name: scan it once.
            scan = scan.into_iter().take(1).collect();
            if scan.is_empty() {
                scan.insert(args.context.clone().unwrap_or_else(|| "default".into()));
            }
        }
        let mut known = known;
        for name in &scan {
            if let Ok(c) = clusters.get(name).await {
                let retired =
                    reconcile::retired_envs(c.as_ref(), name, Some(&clusters), &known, &opts).await;
                // Several cluster names may reach one cluster: retire once.
                known.extend(retired.iter().map(|r| r.environment.clone()));
                results.extend(retired);
            }
        }
    }

    let color = args.color.enabled(std::io::stdout().is_terminal());
    let out = match args.output {
        PlanFormat::Text => text(&results, &blocked, dry_run, color),
        PlanFormat::Markdown => markdown(&results, &blocked),
        PlanFormat::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "dryRun": dry_run,
                "blocked": blocked,
                "environments": results,
            }))? + "\n"
        }
    };
    print!("{out}");
    let failed = !blocked.is_empty() || results.iter().any(EnvResult::failed);
    let changed = results.iter().any(EnvResult::changed);
    Ok(ExitCode::from(if failed {
        1
    } else if changed {
        2
    } else {
        0
    }))
}

fn sign(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Create => ("+", "create"),
        Action::Update => ("~", "update"),
        Action::Delete => ("-", "delete"),
        Action::Unchanged => ("=", "unchanged"),
        Action::Skip => ("!", "skip"),
    }
}

/// One line: `prod: 2 to create, 1 to update, 0 to delete` (or, after an
/// apply, `prod: 2 created, 1 updated, 0 deleted`).
pub fn summary_line(env: &str, plan: &Plan, dry_run: bool) -> String {
    let s = plan.summary();
    let mut line = if dry_run {
        format!(
            "{env}: {} to create, {} to update, {} to delete",
            s.create, s.update, s.delete
        )
    } else {
        format!(
            "{env}: {} created, {} updated, {} deleted",
            s.create, s.update, s.delete
        )
    };
    if s.skip > 0 {
        let _ = write!(line, ", {} skipped", s.skip);
    }
    line
}

fn colorize(diff: &str, color: bool) -> String {
    if !color {
        return diff.to_string();
    }
    diff.lines()
        .map(|l| {
            if l.starts_with("+++") || l.starts_with("---") {
                format!("\x1b[1m{l}\x1b[0m")
            } else if l.starts_with('+') {
                format!("\x1b[32m{l}\x1b[0m")
            } else if l.starts_with('-') {
                format!("\x1b[31m{l}\x1b[0m")
            } else if l.starts_with("@@") {
                format!("\x1b[36m{l}\x1b[0m")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn text(results: &[EnvResult], blocked: &[String], dry_run: bool, color: bool) -> String {
    let mut out = String::new();
    for r in results {
        let _ = writeln!(
            out,
            "== {} (cluster {}, namespace {})",
            r.environment, r.cluster, r.namespace
        );
        if let Some(rr) = &r.rancher {
            out.push_str(&rr.text);
            if let Some(e) = &rr.error {
                let _ = writeln!(out, "Rancher error: {e}");
            }
        }
        if let Some(e) = &r.error {
            let _ = writeln!(out, "error: {e}\n");
            continue;
        }
        let Some(plan) = &r.plan else { continue };
        for c in plan
            .changes
            .iter()
            .filter(|c| c.action != Action::Unchanged || !c.notes.is_empty())
        {
            let (s, word) = sign(c.action);
            let _ = writeln!(out, "{s} {word} {}", c.id);
            for n in &c.notes {
                let _ = writeln!(out, "    note: {n}");
            }
            // A deletion's diff is the whole object; the line says enough
            // here (markdown and JSON carry it).
            if !c.diff.is_empty() && c.action != Action::Delete {
                out.push_str(&colorize(&c.diff, color));
            }
        }
        if let Some(reason) = &plan.refused {
            let _ = writeln!(out, "REFUSED: {reason}");
        }
        if let Some(a) = &r.apply {
            if let Some(f) = a.failure_summary() {
                let _ = writeln!(out, "apply failed: {f}");
            }
            for h in &a.health {
                let _ = writeln!(out, "health {}: {}", h.id, h.reason);
            }
        }
        let _ = writeln!(out, "{}\n", summary_line(&r.environment, plan, dry_run));
    }
    for b in blocked {
        let _ = writeln!(out, "{b}: not planned: the spec has errors (see above)\n");
    }
    out
}

fn markdown(results: &[EnvResult], blocked: &[String]) -> String {
    let mut out = String::from("## keelson plan\n\n");
    for r in results {
        if let Some(rr) = &r.rancher {
            let _ = writeln!(out, "#### Rancher: {}\n", r.environment);
            out.push_str(&rr.markdown);
            if let Some(e) = &rr.error {
                let _ = writeln!(out, "\n> **Rancher error:** {e}\n");
            }
        }
        match (&r.error, &r.plan) {
            (Some(e), _) => {
                let _ = writeln!(out, "### ❌ {}\n\n```\n{e}\n```\n", r.environment);
            }
            (None, Some(plan)) => {
                let _ = writeln!(out, "### {}\n", summary_line(&r.environment, plan, true));
                if let Some(reason) = &plan.refused {
                    let _ = writeln!(out, "> **Refused:** {reason}\n");
                }
                for c in plan
                    .changes
                    .iter()
                    .filter(|c| c.action != Action::Unchanged)
                {
                    let (s, word) = sign(c.action);
                    let _ = writeln!(
                        out,
                        "<details><summary><code>{s} {word} {}</code></summary>\n",
                        c.id
                    );
                    for n in &c.notes {
                        let _ = writeln!(out, "- {n}");
                    }
                    if !c.diff.is_empty() {
                        let _ = writeln!(
                            out,
                            "\n```diff\n{}```\n",
                            c.diff.replace("```", "`\u{200b}``")
                        );
                    }
                    out.push_str("</details>\n\n");
                }
            }
            (None, None) => {}
        }
    }
    for b in blocked {
        let _ = writeln!(
            out,
            "### ❌ {b}\n\nNot planned: the spec has errors (run `keelson validate`).\n"
        );
    }
    out
}
