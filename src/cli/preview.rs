//! `keelson preview create|delete|list`: preview environments for CI jobs
//! and people. `create` records the preview in the cluster (allocating its
//! port block and id), checks it as an environment and applies it; `delete`
//! releases it (a retirement) and frees its block once its objects are
//! gone; `list` shows what is recorded. Exit codes: 0 done, 1 error (a
//! preview that was applied is a success, changed or not).

use crate::cli::output::{erroutln, out, outln};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value as Json;

use super::specs::{Color, report_diagnostics};
use super::text;
use crate::check::{self, Report};
use crate::diag::{Diagnostic, Severity};
use crate::preview::actions;
use crate::preview::lifecycle::{self, Limits, Request};
use crate::preview::online::{self, with_records};
use crate::preview::record::{PreviewRecord, Previews, State, key};
use crate::preview::store::{ChangeError, Store};
use crate::preview::template::cluster_of;
use crate::preview::{PreviewsConfig, params::preview_name};
use crate::reconcile::{self, Clusters, EnvResult, Options};
use crate::spec::preview::TemplateFiles;

/// `keelson preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(subcommand)]
    command: PreviewCommand,
}

#[derive(Debug, Subcommand)]
enum PreviewCommand {
    /// Create (or update) the preview of a merge request and apply it.
    Create(CreateArgs),
    /// Release a preview: retire everything it created, free its ports and id.
    Delete(DeleteArgs),
    /// List the recorded previews.
    List(ListArgs),
}

/// Where the repository and the clusters are.
#[derive(Debug, Args)]
struct Common {
    /// The environments repository.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The keelson config file; default: keelson.yaml in --repo when it exists.
    #[arg(long, short = 'c', value_name = "FILE", env = "KEELSON_CONFIG")]
    config: Option<PathBuf>,
    /// Read this kubeconfig instead of KUBECONFIG or ~/.kube/config; each
    /// cluster is still its own context in it (as for `reconcile`).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Send every cluster to this kubeconfig context.
    #[arg(long)]
    context: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Colour of the text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human text.
    Text,
    /// Machine-readable.
    Json,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Template name (a folder under environments/_templates/).
    template: String,
    /// Merge request number.
    number: u64,
    /// The merge request's source branch.
    #[arg(long)]
    branch: String,
    /// The merge request's head commit.
    #[arg(long)]
    sha: String,
    /// Image tag built by the merge request's pipeline (default: the template's `tag`).
    #[arg(long)]
    tag: Option<String>,
    /// Time-to-live from now (e.g. 72h), replacing the template's; on an
    /// existing preview this extends (or shortens) it.
    #[arg(long, value_parser = parse_ttl)]
    ttl: Option<Duration>,
    /// Plan only: record nothing, apply nothing.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for workloads to become healthy (`5m`, `30s`, or
    /// seconds).
    #[arg(long, default_value = "300s", value_parser = super::parse_duration)]
    timeout: Duration,
    /// Do not wait for workload health after applying.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    /// Template name.
    template: String,
    /// Merge request number.
    number: u64,
    /// Plan the retirement only: change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Exit 0 when there is no such preview.
    #[arg(long)]
    ignore_not_found: bool,
    /// The cluster of the preview, when its template is gone from the repository.
    #[arg(long)]
    cluster: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only this template's previews.
    template: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// `--ttl`: a unit is required (`72` alone is more likely hours meant than
/// seconds), unlike the plain seconds `--timeout` takes.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration (e.g. 72h): {e}"))
}

/// `keelson preview`.
pub fn run(args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.command {
            PreviewCommand::Create(a) => create(a).await,
            PreviewCommand::Delete(a) => delete(a).await,
            PreviewCommand::List(a) => list(a).await,
        }
    })
}

/// The config, clusters and preview settings of `c`.
fn connect(c: &Common) -> anyhow::Result<(Clusters, PreviewsConfig)> {
    let path = c.config.clone().or_else(|| {
        let default = c.repo.join("keelson.yaml");
        default.is_file().then_some(default)
    });
    let config = path
        .as_deref()
        .map(crate::config::load_config)
        .transpose()?;
    let previews = config
        .as_ref()
        .and_then(|c| c.previews.clone())
        .unwrap_or_default();
    let mut clusters = Clusters::new(config, None)?;
    if c.kubeconfig.is_some() || c.context.is_some() {
        clusters.override_kubeconfig = Some((c.kubeconfig.clone(), c.context.clone()));
    }
    Ok((clusters, previews))
}

/// The template `name` of a checked repository, with no errors of its own.
fn template<'r>(report: &'r Report, name: &str, color: Color) -> anyhow::Result<&'r TemplateFiles> {
    let Some(t) = report.repo.templates.get(name) else {
        let names: Vec<&str> = report.repo.templates.keys().map(String::as_str).collect();
        let hint = crate::diag::did_you_mean(name, names.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        bail!(
            "no preview template `{name}` in {}{hint}; templates: {}",
            report
                .repo
                .root
                .join("environments")
                .join(crate::spec::preview::TEMPLATES_DIR)
                .display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    };
    let dir = PathBuf::from("environments")
        .join(crate::spec::preview::TEMPLATES_DIR)
        .join(name);
    let errors: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error && d.file.starts_with(&dir))
        .collect();
    if !errors.is_empty() || t.load_failed {
        report_diagnostics(report, color);
        bail!(
            "template `{name}` has {} error{}; fix them first (keelson validate)",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
    }
    Ok(t)
}

async fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    if let Some(tag) = &a.tag
        && !crate::spec::edit::valid_tag(tag)
    {
        bail!(
            "`{tag}` is not a valid image tag: use letters, digits, `_`, `.` and `-`, at most 128 characters, not starting with `.` or `-`"
        );
    }
    let report = check::check_repo(&a.common.repo);
    let t = template(&report, &a.template, a.common.color)?.clone();
    let cluster_name = cluster_of(&t).context("the template names no cluster")?;
    let (clusters, cfg) = connect(&a.common)?;
    let cluster = clusters.get(&cluster_name).await?;
    let store = Store::new(cluster.as_ref(), cfg.namespace());
    let mut read = online::read_records(&report.repo, &clusters, &cfg).await;
    let others: usize = read
        .iter()
        .filter(|(c, _)| **c != cluster_name)
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|p| p.holding().count())
        .sum();
    let spec = t
        .template
        .as_ref()
        .map(|d| d.value.spec.clone())
        .unwrap_or_default();
    let req = Request {
        number: a.number,
        branch: a.branch.clone(),
        sha: a.sha.clone(),
        tag: a.tag.clone(),
        ttl: a.ttl,
        ttl_from_creation: false,
        source: "cli".into(),
        url: None,
    };
    let limits = Limits {
        elsewhere: others,
        max_total: cfg.max_total,
    };
    let now = Utc::now();
    let (record, created) = if a.dry_run {
        let mut previews = match read.get(&cluster_name) {
            Some(Ok(p)) => p.clone(),
            Some(Err(e)) => bail!("reading the preview record on cluster `{cluster_name}`: {e}"),
            None => Previews::default(),
        };
        let out = lifecycle::upsert(&mut previews, &t.name, &spec, &req, limits, now)
            .map_err(|e| anyhow::anyhow!("preview refused: {e}"))?;
        read.insert(cluster_name.clone(), Ok(previews));
        out
    } else {
        let out = store
            .update(|p| lifecycle::upsert(p, &t.name, &spec, &req, limits, now))
            .await
            .map_err(|e| match e {
                ChangeError::Refused(why) => anyhow::anyhow!("preview refused: {why}"),
                ChangeError::Store(e) => anyhow::anyhow!("recording the preview: {e}"),
            })?;
        read = online::read_records(&report.repo, &clusters, &cfg).await;
        out
    };
    drop(report);
    let name = record.name();
    let included = with_records(&a.common.repo, &read);
    report_diagnostics(&included.report, a.common.color);
    let Some(env) = included.report.ready.get(&name) else {
        // Not a half-made environment: a new preview that does not check
        // gives its block back at once.
        if created && !a.dry_run {
            let _ = store
                .update(|p| {
                    lifecycle::forget(p, &record.key());
                    Ok::<_, String>(())
                })
                .await;
        }
        bail!(
            "preview {name} is not applied because of the errors above{}",
            if created { "; it was not recorded" } else { "" }
        );
    };
    let opts = Options {
        dry_run: a.dry_run,
        apply: crate::apply::ApplyOptions {
            timeout: a.timeout,
            wait_health: !a.no_wait,
            ..Default::default()
        },
        ..Options::default()
    };
    let result = reconcile::reconcile_named(&clusters, env, &opts).await;
    print(
        &a.common,
        std::slice::from_ref(&result),
        a.dry_run,
        Some(&record),
    )?;
    if created && !a.dry_run && actions::nothing_applied(&result) {
        // Not a half-made environment: a new preview refused before any
        // object was applied (a Rancher quota, a refused plan) is released.
        let base = check::check_repo(&a.common.repo);
        let what = actions::Release {
            cluster: &cluster_name,
            template: &t.name,
            number: a.number,
            reason: actions::FIRST_APPLY_FAILED,
            tombstone: false,
        };
        match actions::release(&base, &clusters, &cfg, what, &Options::default(), None).await {
            Ok(r) if r.done => erroutln!(
                "preview {name} was not created: nothing of it was applied, and its ports and id are free again"
            ),
            _ => erroutln!(
                "preview {name} stays recorded as releasing; `keelson preview delete {} {}` finishes it",
                t.name,
                a.number
            ),
        }
    }
    Ok(if result.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn delete(a: DeleteArgs) -> anyhow::Result<ExitCode> {
    let report = check::check_repo(&a.common.repo);
    let cluster_name = match (&a.cluster, report.repo.templates.get(&a.template)) {
        (Some(c), _) => c.clone(),
        (None, Some(t)) => cluster_of(t).context("the template names no cluster")?,
        (None, None) => bail!(
            "no preview template `{}` in the repository; name the preview's cluster with --cluster",
            a.template
        ),
    };
    let (clusters, cfg) = connect(&a.common)?;
    let cluster = clusters.get(&cluster_name).await?;
    let store = Store::new(cluster.as_ref(), cfg.namespace());
    let k = key(&a.template, a.number);
    let name = preview_name(&a.template, a.number);
    let (previews, _) = store.read().await?;
    if !previews.by_key.contains_key(&k) {
        if a.ignore_not_found {
            erroutln!("preview {name} does not exist");
            return Ok(ExitCode::SUCCESS);
        }
        bail!(
            "no preview {name} on cluster `{cluster_name}`; `keelson preview list` shows the previews"
        );
    }
    let opts = Options {
        dry_run: a.dry_run,
        ..Options::default()
    };
    let released = actions::release(
        &report,
        &clusters,
        &cfg,
        actions::Release {
            cluster: &cluster_name,
            template: &a.template,
            number: a.number,
            reason: "deleted with keelson preview delete",
            tombstone: false,
        },
        &opts,
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (result, released) = (released.result, released.done);
    let results: Vec<EnvResult> = result.into_iter().collect();
    print(&a.common, &results, a.dry_run, None)?;
    if results.is_empty() {
        erroutln!(
            "preview {name}: nothing was applied to the cluster; {}",
            if a.dry_run {
                "it would be released"
            } else {
                "released"
            }
        );
    } else if !released {
        erroutln!(
            "preview {name} stays recorded as releasing (its ports and id stay held) until its retirement succeeds; run this command again"
        );
    }
    Ok(if released {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print(
    c: &Common,
    results: &[EnvResult],
    dry_run: bool,
    record: Option<&PreviewRecord>,
) -> anyhow::Result<()> {
    match c.output {
        Format::Text => {
            out!(
                "{}",
                text::render(
                    results,
                    &[],
                    &text::TextOptions {
                        color: c.color.enabled(std::io::stdout().is_terminal()),
                        show_creates: false,
                        dry_run,
                        against: None,
                    },
                )
            );
            if let Some(r) = record {
                outln!("{}", describe(r));
            }
        }
        Format::Json => {
            let out = serde_json::json!({
                "dryRun": dry_run,
                "preview": record,
                "environments": results,
            });
            outln!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}

/// One line about a preview: name, ports, id, expiry.
fn describe(r: &PreviewRecord) -> String {
    let ports = r
        .ports
        .map(|b| format!("ports {}-{}", b.first, b.first + b.count - 1))
        .unwrap_or_else(|| "no ports".into());
    let expires = r
        .expires
        .as_deref()
        .map(|e| format!("expires {e}"))
        .unwrap_or_else(|| "no time-to-live".into());
    format!("preview {}: {ports}, id {}, {expires}", r.name(), r.id)
}

async fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let report = check::check_repo(&a.common.repo);
    if let Some(t) = &a.template
        && !report.repo.templates.contains_key(t)
    {
        template(&report, t, a.common.color)?;
    }
    let (clusters, cfg) = connect(&a.common)?;
    let read = online::read_records(&report.repo, &clusters, &cfg).await;
    let mut rows: Vec<(String, PreviewRecord)> = Vec::new();
    let mut failed = BTreeMap::new();
    for (cluster, r) in read {
        match r {
            Ok(p) => rows.extend(
                p.by_key
                    .into_values()
                    .filter(|r| a.template.as_ref().is_none_or(|t| &r.template == t))
                    .map(|r| (cluster.clone(), r)),
            ),
            Err(e) => {
                failed.insert(cluster, e);
            }
        }
    }
    let now = Utc::now();
    match a.common.output {
        Format::Json => {
            let items: Vec<Json> = rows
                .iter()
                .map(|(c, r)| {
                    let mut v = serde_json::to_value(r).unwrap_or(Json::Null);
                    v["name"] = Json::String(r.name());
                    v["cluster"] = Json::String(c.clone());
                    v["expired"] = Json::Bool(r.expired(now));
                    v
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"previews": items, "errors": failed})
                )?
            );
        }
        // "no previews" only when every record was read: a record that
        // could not be read may hold some (the errors below say which).
        Format::Text if rows.is_empty() && !failed.is_empty() => {}
        Format::Text => out!("{}", table(&rows, now)),
    }
    for (cluster, e) in &failed {
        erroutln!("error: the preview record on cluster `{cluster}` cannot be read: {e}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn table(rows: &[(String, PreviewRecord)], now: DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no previews\n".into();
    }
    let mut lines = vec![
        [
            "NAME", "CLUSTER", "BRANCH", "SHA", "PORTS", "ID", "AGE", "EXPIRES", "STATE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (cluster, r) in rows {
        lines.push(vec![
            r.name(),
            cluster.clone(),
            r.branch.clone(),
            r.sha.chars().take(7).collect(),
            r.ports
                .map(|b| format!("{}-{}", b.first, b.first + b.count - 1))
                .unwrap_or_else(|| "-".into()),
            r.id.to_string(),
            r.created_at()
                .map(|c| age(now - c))
                .unwrap_or_else(|| "-".into()),
            match r.expires_at() {
                Some(e) if e <= now => "expired".into(),
                Some(e) => format!("in {}", age(e - now)),
                None => "never".into(),
            },
            match r.state {
                State::Active => "active".into(),
                State::Releasing => "releasing".into(),
                State::Expired => "expired".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `3d4h`, `5h12m`, `40m`, `12s`: the two largest units, as kubectl prints ages.
fn age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{mins}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{s}s")
    }
}
