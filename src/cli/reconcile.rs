//! `keelson reconcile [--dry-run]`: plan (and apply) every environment, print
//! the plan as text, markdown (a merge-request comment) or JSON. Exit codes
//! as `terraform plan -detailed-exitcode`: 0 nothing to change, 2 changes
//! planned or applied, 1 error.

use crate::cli::output::{erroutln, out};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::specs::{Color, report_diagnostics, selected_envs};
use super::{against_ref, markdown, text};
use crate::check;
use crate::reconcile::{self, Clusters, EnvResult, Options};

/// Output format of `reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Human text with coloured diffs.
    Text,
    /// A merge-request comment, one collapsible section per environment.
    #[value(alias = "md")]
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
    /// Compare against what keelson would have applied for commit REV of the
    /// same Git repository (a branch, tag or commit id), offline: no cluster,
    /// no Rancher, no credentials. Implies --dry-run. For merge requests:
    /// `--against-ref origin/main`.
    #[arg(
        long,
        value_name = "REV",
        conflicts_with_all = ["against", "kubeconfig", "context", "server_dry_run"]
    )]
    pub against_ref: Option<String>,
    /// The keelson config file (clusters → kubeconfig contexts); default:
    /// keelson.yaml in --repo when it exists. Without one, an environment's
    /// `cluster` is taken as a kubeconfig context name.
    #[arg(long, short = 'c', value_name = "FILE", env = "KEELSON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Read this kubeconfig instead of KUBECONFIG or ~/.kube/config. Each
    /// environment still goes to its own cluster: the context the keelson
    /// config names for it, else the context named like its `cluster`.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Send every environment to this kubeconfig context, ignoring `cluster:` names.
    #[arg(long)]
    pub context: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Colour of the text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Print whole objects under creates in the text output (one line each by default).
    #[arg(long)]
    pub show_creates: bool,
    /// Markdown: the most characters to print; a longer plan is cut, with a
    /// note (GitHub refuses comments over 65,536).
    #[arg(long, value_name = "CHARS", default_value_t = super::markdown::DEFAULT_LIMIT)]
    pub markdown_limit: usize,
    /// Markdown: where the full plan is (a CI job's URL), named in the note
    /// printed when the plan is cut.
    #[arg(long, value_name = "URL")]
    pub full_plan_url: Option<String>,
    /// Objects applied at once.
    #[arg(long, default_value_t = 8)]
    pub parallelism: usize,
    /// Environments reconciled at once. Each holds its live objects while it
    /// is planned, so more means more memory; against remote clusters more
    /// also means less waiting on the network.
    #[arg(long, default_value_t = 1)]
    pub env_parallelism: usize,
    /// How long to wait for workloads to become healthy (`5m`, `30s`, or
    /// seconds).
    #[arg(long, default_value = "300s", value_parser = super::parse_duration)]
    pub timeout: Duration,
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
    if let Some(why) = reconcile::retire::unusable(&report) {
        report_diagnostics(&report, args.color);
        erroutln!("error: {why}: nothing planned, nothing deleted");
        return Ok(ExitCode::from(1));
    }
    let base = match &args.against_ref {
        Some(rev) => Some(against_ref::load_base(&args.repo, rev)?),
        None => None,
    };
    let config_path = args.config.clone().or_else(|| {
        let default = args.repo.join("keelson.yaml");
        default.is_file().then_some(default)
    });
    let config = match &config_path {
        Some(p) if base.is_none() => Some(crate::config::load_config(p)?),
        _ => None,
    };
    let previews_cfg = config
        .as_ref()
        .and_then(|c| c.previews.clone())
        .unwrap_or_default();
    let config_clusters: Vec<String> = config
        .iter()
        .flat_map(|c| c.clusters.keys().cloned())
        .collect();
    let dry_run = args.dry_run || args.against.is_some() || base.is_some();
    let opts = Options {
        dry_run,
        server_dry_run: args.server_dry_run,
        apply: crate::apply::ApplyOptions {
            parallelism: args.parallelism,
            timeout: args.timeout,
            wait_health: !args.no_wait,
            ..Default::default()
        },
    };
    let mut clusters = match &base {
        Some(b) => Clusters::captured(b.captured_state()),
        None => Clusters::new(config.clone(), args.against.clone())?,
    };
    if let (Some(dir), Some(0)) = (&args.against, clusters.captured_objects()) {
        erroutln!(
            "warning: {} holds no Kubernetes objects (*.yaml, *.yml, *.json): planning against \
             an empty cluster",
            dir.display()
        );
    }
    if args.kubeconfig.is_some() || args.context.is_some() {
        clusters.override_kubeconfig = Some((args.kubeconfig.clone(), args.context.clone()));
    }
    if base.is_none() && args.against.is_none() {
        // The folders' clusters (those picked, or all) and the templates':
        // a missing kubeconfig is one error before anything is read.
        let mut used: BTreeSet<&str> = report
            .ready
            .iter()
            .filter(|(name, _)| args.envs.is_empty() || args.envs.contains(name))
            .map(|(_, e)| e.cluster.as_str())
            .collect();
        let templates = crate::preview::online::template_clusters(&report.repo);
        used.extend(templates.keys().map(String::as_str));
        check_kubeconfigs(&args, config.as_ref(), &used)?;
    }
    // Previews are environments too (their records are in the clusters);
    // without every record, nothing absent may be retired.
    let included = crate::preview::online::include(report, &clusters, &previews_cfg).await;
    let (mut report, records_complete) = (included.report, included.complete);
    report_diagnostics(&report, args.color);
    report.forget_positions();
    let envs = selected_envs(&report, &args.envs)?;
    // Shared with the environments' tasks, not copied into each: a copy of
    // every resolved app per task was held until its turn came.
    let report = std::sync::Arc::new(report);

    // Environments run concurrently, on every core; one failing does not
    // stop the others.
    let clusters = std::sync::Arc::new(clusters);
    // A bounded number of environments at a time bounds memory (the live
    // objects of an environment are held while it is planned).
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(args.env_parallelism.max(1)));
    let mut blocked = Vec::new();
    let mut blocked_base = Vec::new();
    let mut tasks = Vec::new();
    for name in &envs {
        match report.ready.get(name) {
            Some(env) if base.as_ref().is_some_and(|b| b.blocked(name)) => {
                blocked_base.push(reconcile::EnvResult {
                    environment: name.clone(),
                    cluster: env.cluster.clone(),
                    namespace: env.namespace.clone(),
                    plan: None,
                    apply: None,
                    error: Some(format!(
                        "the base commit's spec of `{name}` has errors, so what it applied is \
                         unknown and no plan against it is possible; run `keelson validate` \
                         on the base commit"
                    )),
                    apps: Vec::new(),
                    rancher: None,
                });
            }
            Some(_) => {
                let (report, name, clusters, opts, slots) = (
                    report.clone(),
                    name.clone(),
                    clusters.clone(),
                    opts.clone(),
                    slots.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let _slot = slots.acquire().await;
                    let env = &report.ready[&name];
                    reconcile::reconcile_named(&clusters, env, &opts).await
                }));
            }
            None => blocked.push(name.clone()),
        }
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    results.extend(blocked_base);

    // Environments whose folder was removed: look on every cluster keelson
    // knows of (in use, in the config, or the one --context names). Only a
    // run over every environment of a checkout that loaded cleanly retires.
    let mut notices = Vec::new();
    // Clusters whose inventories could not be listed, with why: said once
    // after the plan, never counted as environments.
    let mut unscanned: Vec<(String, String)> = Vec::new();
    let evidence = if args.envs.is_empty() && !records_complete {
        notices.push(reconcile::retire::not_retiring(
            "a record of previews could not be read (see the errors above)",
        ));
        None
    } else if args.envs.is_empty() {
        reconcile::Evidence::of(&report)
            .map_err(|why| notices.push(reconcile::retire::not_retiring(&why)))
            .ok()
    } else {
        None
    };
    if let Some(mut evidence) = evidence {
        let mut scan: BTreeSet<String> = report.ready.values().map(|e| e.cluster.clone()).collect();
        scan.extend(config_clusters);
        if args.against.is_some() || base.is_some() || args.context.is_some() {
            // One cluster serves every name: scan it once.
            scan = scan.into_iter().take(1).collect();
            if scan.is_empty() {
                scan.insert(args.context.clone().unwrap_or_else(|| "default".into()));
            }
        }
        for name in &scan {
            if let Ok(c) = clusters.get(name).await {
                match reconcile::retired_envs(c.as_ref(), name, Some(&clusters), &evidence, &opts)
                    .await
                {
                    Ok(retired) => {
                        // Several cluster names may reach one cluster: retire once.
                        for r in &retired {
                            evidence.mark_handled(&r.environment);
                        }
                        results.extend(retired);
                    }
                    Err(e) => unscanned.push((name.clone(), e)),
                }
            }
        }
    }
    for n in &notices {
        erroutln!("warning: {n}");
    }

    if let Some(b) = &base {
        against_ref::plan_rancher(&report, b, &mut results);
    }

    let against = match (&base, &args.against) {
        (Some(b), _) => Some(format!("the base commit {}", b.commit)),
        (None, Some(dir)) => Some(format!("the captured state in {}", dir.display())),
        _ => None,
    };
    let out = match args.output {
        PlanFormat::Text => text::render(
            &results,
            &blocked,
            &text::TextOptions {
                color: args.color.enabled(std::io::stdout().is_terminal()),
                show_creates: args.show_creates,
                dry_run,
                against: against.clone(),
            },
        ),
        PlanFormat::Markdown => markdown::render(
            &results,
            &blocked,
            &markdown::MarkdownOptions {
                dry_run,
                limit: args.markdown_limit,
                full_plan_url: args.full_plan_url.clone(),
                against: against.clone(),
            },
        ),
        PlanFormat::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "dryRun": dry_run,
                "against": against,
                "blocked": blocked,
                "environments": results,
                "retireErrors": unscanned.iter().map(|(cluster, error)| {
                    serde_json::json!({"cluster": cluster, "error": error})
                }).collect::<Vec<_>>(),
            }))? + "\n"
        }
    };
    out!("{out}");
    for line in unscanned_lines(&unscanned) {
        erroutln!("error: {line}");
    }
    let failed =
        !blocked.is_empty() || results.iter().any(EnvResult::failed) || !unscanned.is_empty();
    let changed = results.iter().any(EnvResult::changed);
    Ok(ExitCode::from(if failed {
        1
    } else if changed {
        2
    } else {
        0
    }))
}

/// One line per distinct reason the retire scan could not look at clusters
/// (an unreachable cluster fails every environment on it with the same
/// words: the scan's failure is said once, naming every cluster it hit).
fn unscanned_lines(unscanned: &[(String, String)]) -> Vec<String> {
    let mut by_error: Vec<(&str, Vec<&str>)> = Vec::new();
    for (cluster, error) in unscanned {
        match by_error.iter_mut().find(|(e, _)| e == error) {
            Some((_, clusters)) => clusters.push(cluster),
            None => by_error.push((error, vec![cluster])),
        }
    }
    by_error
        .into_iter()
        .map(|(error, clusters)| {
            let names: Vec<String> = clusters.iter().map(|c| format!("`{c}`")).collect();
            format!(
                "environments removed from the repository are not retired on cluster{} {}: {error}",
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            )
        })
        .collect()
}

/// The kubeconfig files the environments need, checked once before any
/// environment is planned: a missing file is one error that names every way
/// on, not the same error once per environment.
fn check_kubeconfigs(
    args: &ReconcileArgs,
    config: Option<&crate::config::Config>,
    clusters: &BTreeSet<&str>,
) -> anyhow::Result<()> {
    use crate::observe::kube::{kubeconfig_files, missing_kubeconfig};
    // Each file, with who named it (for the error).
    let mut needed: BTreeSet<(Option<PathBuf>, Option<String>)> = BTreeSet::new();
    if args.kubeconfig.is_some() || args.context.is_some() {
        needed.insert((args.kubeconfig.clone(), Some("--kubeconfig".into())));
    } else {
        for c in clusters {
            match config {
                Some(cfg) => match cfg.clusters.get(*c) {
                    Some(cc) if !cc.in_cluster => {
                        let named = crate::observe::kube::Named::config(c, cc);
                        needed.insert((cc.kubeconfig.clone(), named.kubeconfig));
                    }
                    // In-cluster, or a name the config lacks (its own error).
                    _ => {}
                },
                None => {
                    needed.insert((None, None));
                }
            }
        }
    }
    for (path, named_by) in &needed {
        let (files, from) = kubeconfig_files(path.as_deref(), named_by.as_deref());
        if !files.iter().any(|f| f.is_file()) {
            let mut message = missing_kubeconfig(&files, &from, path.is_some());
            if path.is_none() {
                // Only a plan can do without a cluster.
                message.push_str(
                    "; or plan without a cluster: --against DIR (captured objects) or \
                     --against-ref REV (another commit)",
                );
            }
            anyhow::bail!("{message}");
        }
    }
    Ok(())
}
