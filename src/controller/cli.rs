//! `keelson run` and `keelson status`.

use crate::cli::output::{errout, erroutln, out, outln};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::pipeline::KubeReconciler;
use super::server::StatusReport;
use super::{Controller, Outcome, config};
use crate::record::{EnvStatus, Matrix, Store, SyncRecord};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `keelson run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The keelson config file (its `controller:` section says what to follow).
    #[arg(long, short, default_value = "keelson.yaml", env = "KEELSON_CONFIG")]
    pub config: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Listen on this address instead of `controller.listen` (port 0 picks one).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Confirm each update with a server-side dry-run apply (exact, slower).
    #[arg(long)]
    pub server_dry_run: bool,
    /// Do not wait for workloads to become healthy after applying.
    #[arg(long)]
    pub no_wait: bool,
    /// On SIGTERM, how long in-flight syncs may take before their writes are
    /// abandoned and their Leases released (keep it below the pod's
    /// terminationGracePeriodSeconds, 30s by default).
    #[arg(long, default_value = "20s", value_parser = crate::cli::parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// Colour of the text log lines on stderr (`auto`: when stderr is a
    /// terminal and NO_COLOR is unset).
    #[arg(long, value_enum, default_value_t = crate::cli::specs::Color::Auto)]
    pub color: crate::cli::specs::Color,
}

/// Arguments of `keelson status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Ask a running controller, e.g. `http://127.0.0.1:8080`.
    #[arg(long, conflicts_with_all = ["state_dir", "repo", "kubeconfig"])]
    pub server: Option<String>,
    /// Read every environment's status from the cluster that holds the
    /// controller's Leases (its `KeelsonEnvironment` objects), as written by
    /// whichever replica synced it.
    #[arg(long, conflicts_with_all = ["state_dir", "repo"])]
    pub kubeconfig: Option<PathBuf>,
    /// With --kubeconfig: the context (default: the current one).
    #[arg(long, requires = "kubeconfig")]
    pub context: Option<String>,
    /// With --kubeconfig: the namespace of the Leases and status objects.
    #[arg(long, requires = "kubeconfig", default_value = "keelson-system")]
    pub namespace: String,
    /// Read the status store of a stopped controller directly.
    #[arg(long, conflicts_with = "repo")]
    pub state_dir: Option<PathBuf>,
    /// No controller: show the versions an environments repository declares.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Without --server or --state-dir: ask the controller at this config's `listen` address.
    #[arg(long, short, default_value = "keelson.yaml", env = "KEELSON_CONFIG")]
    pub config: PathBuf,
    /// Show the sync history instead of the matrix.
    #[arg(long)]
    pub history: bool,
    /// Only this environment (history and details).
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// How many history entries.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = StatusFormat::Text)]
    pub output: StatusFormat,
    /// The old spelling of `--output json`.
    #[arg(long, hide = true, conflicts_with = "output")]
    pub json: bool,
    /// Colour of the diagnostics `--repo` prints on stderr.
    #[arg(long, value_enum, default_value_t = crate::cli::specs::Color::Auto)]
    pub color: crate::cli::specs::Color,
}

/// Output format of `keelson status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// A table.
    Text,
    /// JSON.
    Json,
}

fn init_logging(format: LogFormat, color: crate::cli::specs::Color) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color.enabled(std::io::IsTerminal::is_terminal(&std::io::stderr())));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Run the controller until SIGTERM or Ctrl-C.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    super::memory::limit_arenas();
    init_logging(args.log_format, args.color);
    let loaded = match config::load(&args.config) {
        Ok(l) => l,
        Err(e) => {
            errout!("{}", e.rendered);
            return Ok(ExitCode::from(1));
        }
    };
    let mut settings = loaded.settings;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let code = runtime.block_on(async move {
        let options = crate::reconcile::Options {
            dry_run: false,
            server_dry_run: args.server_dry_run,
            apply: crate::apply::ApplyOptions {
                wait_health: !args.no_wait,
                ..Default::default()
            },
        };
        let leases = match &settings.leases {
            Some(l) => Some(connect_leases(l, &loaded.config).await?),
            None => {
                tracing::warn!(
                    "controller.leases is not set: this process assumes it is the only keelson \
                     writing these environments (run one replica, or set controller.leases)"
                );
                None
            }
        };
        if let Some(p) = settings.previews.as_mut() {
            std::sync::Arc::make_mut(p).options = options.clone();
        }
        let pipeline = KubeReconciler::new(Some(loaded.config), options)?;
        let mut controller = Controller::new(settings, pipeline);
        if let Some(l) = leases {
            controller = controller.with_leases(l);
        }
        let running = controller.start().await?;
        outln!("listening on http://{}", running.addr());
        wait_for_signal().await;
        tracing::info!(timeout = ?args.shutdown_timeout, "signal received: finishing in-flight syncs");
        let grace = std::time::Duration::from_secs(1).min(args.shutdown_timeout / 4);
        if !running
            .stop_within(args.shutdown_timeout.saturating_sub(grace), grace)
            .await
        {
            tracing::warn!("stopped with syncs abandoned; their next owner redoes them");
        }
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    });
    // Abandoned reconciles may still hold a blocking thread (a health wait):
    // do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

/// The Leases of `controller.leases`, on the cluster that holds them.
async fn connect_leases(
    l: &super::lease_config::LeaseSettings,
    config: &crate::config::Config,
) -> anyhow::Result<std::sync::Arc<super::lease::Leases>> {
    use crate::observe::kube::KubeCluster;
    crate::observe::kube::set_identity(&l.identity);
    let cluster = match &l.cluster {
        None => KubeCluster::connect(None, None, true).await,
        Some(name) => {
            let cc = config.clusters.get(name).cloned().unwrap_or_default();
            KubeCluster::connect_configured(name, &cc).await
        }
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "controller.leases: cannot reach the cluster {} that holds the Leases: {e}",
            l.cluster.as_deref().unwrap_or("(in-cluster)")
        )
    })?;
    tracing::info!(identity = %l.identity, namespace = %l.namespace, "sharing environments through Leases");
    Ok(std::sync::Arc::new(super::lease::Leases::new(
        cluster.client(),
        &l.namespace,
        &l.identity,
        l.timing,
    )))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Print the app × environment matrix (or the history).
pub fn status(mut args: StatusArgs) -> anyhow::Result<ExitCode> {
    args.json |= args.output == StatusFormat::Json;
    if let Some(dir) = &args.repo {
        return print_declared(dir, args.env.as_deref(), args.json, args.color);
    }
    if let Some(kubeconfig) = &args.kubeconfig {
        return status_from_cluster(kubeconfig, &args);
    }
    if let Some(dir) = &args.state_dir {
        let store = open_state_dir(dir)?;
        if let Some(env) = &args.env {
            let names: Vec<String> = store.all_status()?.into_iter().map(|e| e.env).collect();
            known_env(
                env,
                &names,
                &format!("the status store in {}", dir.display()),
            )?;
        }
        if args.history {
            return print_history(&store.history(args.env.as_deref(), args.limit)?, args.json);
        }
        let envs = store.all_status()?;
        let promotion = promotion_config(&args.config);
        return print_status(
            None,
            &envs,
            args.env.as_deref(),
            args.json,
            promotion.as_ref(),
        );
    }
    let server = match &args.server {
        Some(s) => s.trim_end_matches('/').to_string(),
        None => {
            // No config at all: one error saying what status can read, not
            // a config error followed by a second one.
            if !args.config.exists() {
                anyhow::bail!(
                    "status has nothing to read: there is no keelson config at {} to name a \
                     controller. Pass --server URL to ask a running controller, --repo DIR to \
                     show what a repository declares, --kubeconfig FILE to read the status the \
                     controller wrote to its cluster, or -c/--config FILE (or KEELSON_CONFIG) \
                     for a config whose controller.listen to ask",
                    args.config.display()
                );
            }
            match config::load(&args.config) {
                Ok(loaded) => format!("http://{}", loaded.settings.listen),
                Err(e) => {
                    // Rendered with its file:line:col; nothing to add.
                    errout!("{}", e.rendered);
                    return Ok(ExitCode::from(1));
                }
            }
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = crate::http::client();
        if let (Some(env), true) = (&args.env, args.history) {
            let report: StatusReport =
                fetch_json(client.get(format!("{server}/status")), &server).await?;
            let names: Vec<String> = report.environments.iter().map(|e| e.env.clone()).collect();
            known_env(env, &names, &format!("the controller at {server}"))?;
        }
        if args.history {
            let mut url = format!("{server}/history?limit={}", args.limit);
            if let Some(env) = &args.env {
                url.push_str(&format!("&env={env}"));
            }
            let records: Vec<SyncRecord> = fetch_json(client.get(url), &server).await?;
            return print_history(&records, args.json);
        }
        let report: StatusReport =
            fetch_json(client.get(format!("{server}/status")), &server).await?;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(ExitCode::SUCCESS);
        }
        let promotion = promotion_config(&args.config);
        print_status(
            Some(&report),
            &report.environments,
            args.env.as_deref(),
            false,
            promotion.as_ref(),
        )
    })
}

/// Where another subcommand (`keelson promote`) reads the recorded status
/// from: the same sources as `keelson status`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StatusSource {
    /// Ask a running controller, e.g. `http://127.0.0.1:8080`.
    #[arg(long, conflicts_with_all = ["state_dir", "kubeconfig"])]
    pub server: Option<String>,
    /// Read the `KeelsonEnvironment` objects of the cluster that holds the
    /// controller's Leases.
    #[arg(long, conflicts_with = "state_dir")]
    pub kubeconfig: Option<PathBuf>,
    /// With --kubeconfig: the context (default: the current one).
    #[arg(long, requires = "kubeconfig")]
    pub context: Option<String>,
    /// With --kubeconfig: the namespace of the status objects.
    #[arg(long, requires = "kubeconfig", default_value = "keelson-system")]
    pub namespace: String,
    /// Read the status store of a stopped controller directly.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl StatusSource {
    /// Every environment's recorded status. Without a source given, the
    /// controller at `listen` (from the config's `controller:` section) is
    /// asked; `None` there too is an error saying what to pass.
    pub fn read(&self, listen: Option<SocketAddr>) -> anyhow::Result<Vec<EnvStatus>> {
        if let Some(dir) = &self.state_dir {
            return Ok(open_state_dir(dir)?.all_status()?);
        }
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(async {
            if let Some(kubeconfig) = &self.kubeconfig {
                return read_cluster_status(kubeconfig, self.context.as_deref(), &self.namespace)
                    .await;
            }
            let server = match (&self.server, listen) {
                (Some(s), _) => s.trim_end_matches('/').to_string(),
                (None, Some(l)) => format!("http://{l}"),
                (None, None) => anyhow::bail!(
                    "no status to read: pass --server URL (a running controller), --kubeconfig \
                     FILE (its KeelsonEnvironment objects) or --state-dir DIR (its status store), \
                     or a config whose controller section gives its address"
                ),
            };
            let report: StatusReport = fetch_json(
                crate::http::client().get(format!("{server}/status")),
                &server,
            )
            .await?;
            Ok(report.environments)
        })
    }
}

/// The status store of a stopped controller, which must exist.
fn open_state_dir(dir: &std::path::Path) -> anyhow::Result<Store> {
    if !Store::file_in(dir).is_file() {
        anyhow::bail!(
            "--state-dir {}: no status store there ({} does not exist); pass the \
             controller's state directory (`stateDir` in its config)",
            dir.display(),
            Store::file_in(dir).display()
        );
    }
    Ok(Store::open(dir)?)
}

/// Every `KeelsonEnvironment`'s status in `namespace`.
async fn read_cluster_status(
    kubeconfig: &std::path::Path,
    context: Option<&str>,
    namespace: &str,
) -> anyhow::Result<Vec<EnvStatus>> {
    use crate::observe::kube::{ContextBy, KubeCluster, Named};
    let named = Named {
        cluster: None,
        kubeconfig: Some("--kubeconfig".into()),
        context: if context.is_some() {
            ContextBy::Flag
        } else {
            ContextBy::Unsaid
        },
    };
    let cluster = KubeCluster::connect_named(Some(kubeconfig), context, false, &named)
        .await
        .map_err(|e| anyhow::anyhow!("--kubeconfig {}: {e}", kubeconfig.display()))?;
    crate::record::kube::ClusterStatus::new(cluster.client(), namespace)
        .all()
        .await
        .with_context(|| format!("cannot read the environments' status in namespace {namespace}"))
}

/// `keelson status --kubeconfig`: the `KeelsonEnvironment` objects.
fn status_from_cluster(
    kubeconfig: &std::path::Path,
    args: &StatusArgs,
) -> anyhow::Result<ExitCode> {
    if args.history {
        anyhow::bail!(
            "the sync history is kept by each replica; ask one with --server URL --history"
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let envs =
            read_cluster_status(kubeconfig, args.context.as_deref(), &args.namespace).await?;
        if let Some(env) = &args.env {
            let names: Vec<String> = envs.iter().map(|e| e.env.clone()).collect();
            known_env(
                env,
                &names,
                &format!("the KeelsonEnvironments in namespace {}", args.namespace),
            )?;
        }
        let promotion = promotion_config(&args.config);
        print_status(
            None,
            &envs,
            args.env.as_deref(),
            args.json,
            promotion.as_ref(),
        )
    })
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    server: &str,
) -> anyhow::Result<T> {
    let resp = req.send().await.with_context(|| {
        format!("cannot reach the controller at {server}; is `keelson run` running there?")
    })?;
    let resp = resp
        .error_for_status()
        .with_context(|| format!("the controller at {server} answered with an error"))?;
    resp.json()
        .await
        .with_context(|| format!("{server} did not answer with keelson status JSON"))
}

/// `--env NAME` must name an environment that is there: a typo is an
/// error, never an empty table.
fn known_env(env: &str, names: &[String], source: &str) -> anyhow::Result<()> {
    if names.iter().any(|n| n == env) {
        return Ok(());
    }
    let hint = crate::diag::did_you_mean(env, names.iter().map(String::as_str))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    anyhow::bail!(
        "no environment `{env}` in {source}{hint}; environments: {}",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )
}

/// The `promotion:` section of the config at `path`, for the promotable
/// apps under the matrix; `None` without a file or without stages (a config
/// that does not load is reported, and the matrix still shown).
fn promotion_config(path: &std::path::Path) -> Option<crate::promote::PromotionConfig> {
    if !path.is_file() {
        return None;
    }
    match crate::config::read_config(path) {
        Ok(f) => f.config.promotion.filter(|p| p.stages.len() > 1),
        Err(e) => {
            errout!("{}", e.rendered);
            erroutln!("warning: promotable apps are not shown: the config above does not load");
            None
        }
    }
}

/// The matrix of versions a repository declares (`status --repo`).
fn print_declared_status(envs: &[EnvStatus], json: bool) -> anyhow::Result<ExitCode> {
    print_matrix(None, envs, None, json, true, None)
}

/// The matrix of recorded status, and what is promotable along
/// `promotion.stages` when they are configured.
fn print_status(
    report: Option<&StatusReport>,
    envs: &[EnvStatus],
    only: Option<&str>,
    json: bool,
    promotion: Option<&crate::promote::PromotionConfig>,
) -> anyhow::Result<ExitCode> {
    print_matrix(report, envs, only, json, false, promotion)
}

fn print_matrix(
    report: Option<&StatusReport>,
    envs: &[EnvStatus],
    only: Option<&str>,
    json: bool,
    declared: bool,
    promotion: Option<&crate::promote::PromotionConfig>,
) -> anyhow::Result<ExitCode> {
    if let Some(o) = only {
        let names: Vec<String> = envs.iter().map(|e| e.env.clone()).collect();
        let source = match report {
            Some(r) => format!("the controller's status ({})", r.source.url),
            None => "the status".to_string(),
        };
        known_env(o, &names, &source)?;
    }
    let all_envs = envs;
    let envs: Vec<EnvStatus> = envs
        .iter()
        .filter(|e| only.is_none_or(|o| o == e.env))
        .cloned()
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&envs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(r) = report {
        let head = r.source.head.as_ref().map_or("-".to_string(), |h| {
            format!(
                "{} {} ({})",
                crate::record::matrix::short(&h.id),
                h.summary,
                h.author
            )
        });
        outln!(
            "source: {} @ {}  head: {head}",
            r.source.url,
            r.source.branch
        );
        if let Some(e) = &r.source.error {
            outln!("source error: {e}");
        }
        outln!();
    }
    // Columns in promotion order when stages are configured.
    let matrix = Matrix::from_status(&envs)
        .in_stage_order(promotion.map(|p| p.stages.as_slice()).unwrap_or_default());
    // Promotion compares stages, so it needs every environment, not the
    // `--env` selection.
    let promotable = promotion.map(|p| {
        let list = crate::promote::status::promotable(
            all_envs,
            &p.stages,
            p.min_healthy(),
            std::time::SystemTime::now(),
        );
        crate::promote::status::render(&list, p)
    });
    out!(
        "{}",
        if declared {
            matrix.render_declared()
        } else {
            matrix.render()
        }
    );
    if let Some(p) = promotable {
        out!("{p}");
    }
    let mut problems = false;
    for e in &envs {
        let Some(a) = &e.last_attempt else { continue };
        if matches!(a.outcome, Outcome::Invalid { .. } | Outcome::Failed { .. }) {
            if !problems {
                outln!();
                problems = true;
            }
            outln!(
                "{} at {}{}: {}",
                e.env,
                crate::record::matrix::short(&a.commit),
                if a.at.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", a.at)
                },
                a.outcome.word()
            );
            match &a.outcome {
                Outcome::Invalid { diagnostics } => {
                    diagnostics.iter().for_each(|d| outln!("  {d}"))
                }
                Outcome::Failed { message } => outln!("  {message}"),
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_history(records: &[SyncRecord], json: bool) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(records)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in records {
        outln!(
            "{}  {:<12} {}  {:<7} {:>6}ms  {}  [{}] {}",
            r.at,
            r.env,
            crate::record::matrix::short(&r.commit),
            r.trigger.as_str(),
            r.duration_ms,
            r.outcome.summary(),
            r.author,
            r.summary
        );
        for c in &r.changes {
            outln!("    {c}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The versions `dir` declares per environment (nothing is observed), and
/// the errors that would block an environment.
fn print_declared(
    dir: &std::path::Path,
    only: Option<&str>,
    json: bool,
    color: crate::cli::specs::Color,
) -> anyhow::Result<ExitCode> {
    use super::{AppStatus, Health};
    use crate::record::{Attempt, CommitRef, Trigger};
    if !dir.is_dir() {
        anyhow::bail!(
            "--repo {}: no such directory; pass the environments repository (the folder holding environments/)",
            dir.display()
        );
    }
    let report = crate::check::check_repo(dir);
    if report.repo.environments.is_empty() {
        crate::cli::specs::report_diagnostics(&report, color);
        anyhow::bail!(
            "no environments in {}; --repo must point at an environments repository (the folder holding environments/)",
            dir.join("environments").display()
        );
    }
    let names: Vec<String> = report.repo.environments.keys().cloned().collect();
    if let Some(o) = only {
        known_env(o, &names, &dir.join("environments").display().to_string())?;
    }
    let head = git2::Repository::discover(dir)
        .ok()
        .and_then(|r| {
            r.head()
                .ok()?
                .peel_to_commit()
                .ok()
                .map(|c| c.id().to_string())
        })
        .unwrap_or_else(|| "work tree".into());
    let mut envs = Vec::new();
    for name in report.repo.environments.keys() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let mut st = EnvStatus {
            env: name.clone(),
            ..EnvStatus::default()
        };
        let outcome = match report.ready.get(name) {
            Some(resolved) => {
                st.apps = resolved
                    .apps
                    .iter()
                    .map(|a| AppStatus {
                        name: a.name.clone(),
                        version: a.version(),
                        health: Health::Unknown,
                        healthy_since: None,
                    })
                    .collect();
                st.last_applied = Some(CommitRef {
                    commit: head.clone(),
                    at: String::new(),
                });
                Outcome::NoChange
            }
            None => Outcome::Invalid {
                diagnostics: report
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == crate::diag::Severity::Error)
                    .map(|d| d.one_line())
                    .collect(),
            },
        };
        st.last_attempt = Some(Attempt {
            commit: head.clone(),
            at: String::new(),
            trigger: Trigger::Commit,
            outcome,
        });
        envs.push(st);
    }
    if !json {
        outln!(
            "declared in {} (not observed; ask a controller with --server for live versions and health)\n",
            dir.display()
        );
    }
    print_declared_status(&envs, json)
}
