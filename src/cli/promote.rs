//! `keelson promote APP --from staging --to prod` (or `--all`): the
//! source's version of each app, written into the target's `pipeline.yaml`
//! as a commit on a branch of its own, after the health gate.

use crate::cli::output::{erroutln, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};

use crate::controller::cli::StatusSource;
use crate::promote::gate::{self, Evidence};
use crate::promote::git::{Repo, short};
use crate::promote::{self, Promotion, PromotionConfig, Selection};

/// Arguments of `keelson promote`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["app", "all"]))]
pub struct PromoteArgs {
    /// The app to promote.
    pub app: Option<String>,
    /// Promote every app whose version differs between the two environments.
    #[arg(long)]
    pub all: bool,
    /// Source environment: where the version runs now.
    #[arg(long)]
    pub from: String,
    /// Target environment: whose pipeline.yaml changes.
    #[arg(long)]
    pub to: String,
    /// The environments repository (a Git clone; the folder holding environments/).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The commit to promote on top of (its pipeline files are read, never the
    /// working tree's).
    #[arg(long, default_value = "HEAD")]
    pub base: String,
    /// Branch to write the commit on (default `promote/<to>/<app>-<version>`,
    /// or `promote/<to>/from-<from>-<base>` for several apps).
    #[arg(long)]
    pub branch: Option<String>,
    /// Push the branch to the remote (`promotion.remote`, default `origin`).
    #[arg(long)]
    pub push: bool,
    /// The remote to push to, instead of `promotion.remote`.
    #[arg(long, requires = "push")]
    pub remote: Option<String>,
    /// The branch the merge request merges into (default: the branch `--base`
    /// names).
    #[arg(long, requires = "push")]
    pub target_branch: Option<String>,
    /// With --push and a `forge:` section: push only, open no merge request.
    #[arg(long, requires = "push")]
    pub no_merge_request: bool,
    /// Promote even when the health gate is not met. The gate's findings are
    /// printed and the commit message records that it was skipped.
    #[arg(long)]
    pub skip_health_gate: bool,
    /// The keelson config (`promotion:`, `forge:`; `controller.listen` to ask
    /// for the status). Default: `keelson.yaml` when there is one.
    #[arg(long, short, env = "KEELSON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the recorded status comes from.
    #[command(flatten)]
    pub status: StatusSource,
    /// Colour: accepted as by every subcommand; promote prints plain text.
    #[arg(long, value_enum, default_value_t = crate::cli::specs::Color::Auto)]
    pub color: crate::cli::specs::Color,
}

/// What the config file gives promotion.
struct Settings {
    promotion: PromotionConfig,
    forge: Option<crate::forge::ForgeConfig>,
    /// The config file's folder, for the forge's relative paths.
    config_dir: PathBuf,
    listen: Option<std::net::SocketAddr>,
    auth: crate::source::Auth,
}

/// The settings of the config named (which must exist), or of
/// `keelson.yaml` when there is one, or the defaults.
fn settings(named: Option<&std::path::Path>) -> anyhow::Result<Settings> {
    let default = std::path::Path::new("keelson.yaml");
    let path = named.unwrap_or(default);
    let mut s = Settings {
        promotion: PromotionConfig::default(),
        forge: None,
        config_dir: path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf(),
        listen: None,
        auth: Default::default(),
    };
    if named.is_none() && !path.is_file() {
        return Ok(s);
    }
    let file = crate::config::read_config(path)?;
    s.promotion = file.config.promotion.clone().unwrap_or_default();
    s.forge = file.config.forge.clone();
    if file.config.controller.is_some() {
        let loaded = crate::controller::config::load(path)?;
        s.listen = Some(loaded.settings.listen);
        s.auth = loaded.settings.repo.auth.clone();
    }
    Ok(s)
}

/// `keelson promote`.
pub fn run(args: PromoteArgs) -> anyhow::Result<ExitCode> {
    if args.from == args.to {
        bail!(
            "--from and --to are both `{}`: name two environments",
            args.from
        );
    }
    let settings = settings(args.config.as_deref())?;
    let repo = Repo::open(&args.repo)?;
    let base = repo.commit(&args.base)?;
    let read = |rel: String| -> anyhow::Result<(String, Option<String>)> {
        let text = repo.read(&base, &rel)?;
        Ok((rel, text))
    };
    for env in [&args.from, &args.to] {
        if read(format!("environments/{env}/environment.yaml"))?
            .1
            .is_none()
        {
            bail!(
                "no environment `{env}` in commit {} ({} does not exist there)",
                short(base.id()),
                repo.path_of(&format!("environments/{env}/environment.yaml"))
            );
        }
    }
    let (from_file, from_text) = read(format!("environments/{}/pipeline.yaml", args.from))?;
    let (to_file, to_text) = read(format!("environments/{}/pipeline.yaml", args.to))?;
    let (env_file, env_text) = read(format!("environments/{}/environment.yaml", args.to))?;
    let Some(from_text) = from_text else {
        bail!(
            "environment `{}` has no pipeline.yaml in commit {}: it has no versions to promote",
            args.from,
            short(base.id())
        );
    };
    let to_text = to_text.unwrap_or_default();
    let source = promote::versions(from_file.as_ref(), &from_text)?;
    let target = promote::versions(to_file.as_ref(), &to_text)?;
    let target_apps = promote::declared_apps(env_file.as_ref(), &env_text.unwrap_or_default())?;
    let selection = match &args.app {
        Some(app) => Selection::App(app.clone()),
        None => Selection::All,
    };
    let moves = promote::select(
        &selection,
        &args.from,
        &source,
        &args.to,
        &target,
        &target_apps,
    )?;
    if moves.is_empty() {
        match &args.app {
            Some(app) => outln!(
                "nothing to promote: `{}` already has {app} {}",
                args.to,
                source.get(app).map(ToString::to_string).unwrap_or_default()
            ),
            None => outln!(
                "nothing to promote: every app `{}` runs has the version it has in `{}`",
                args.to,
                args.from
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }

    let evidence = run_gate(&args, &settings, &moves)?;
    let Some(evidence) = evidence else {
        return Ok(ExitCode::from(1));
    };

    let new_text = if to_text.is_empty() {
        // No pipeline.yaml yet: start one, then write every version in.
        let first = &moves[0];
        let (field, value) = match (&first.version.tag, &first.version.digest) {
            (Some(t), _) => (crate::spec::edit::Field::Tag, t),
            (None, Some(d)) => (crate::spec::edit::Field::Digest, d),
            (None, None) => unreachable!("select() skips apps without a version"),
        };
        let fresh = crate::spec::edit::new_pipeline(&first.app, field, value);
        let mut rest = moves.clone();
        rest[0].replaces = promote::versions(to_file.as_ref(), &fresh)?
            .remove(&first.app)
            .unwrap_or_default();
        promote::apply(to_file.as_ref(), &fresh, &rest)?
    } else {
        promote::apply(to_file.as_ref(), &to_text, &moves)?
    };
    let open_mr = args.push && !args.no_merge_request && settings.forge.is_some();
    let target_branch = if open_mr {
        Some(super::promote_mr::target_branch(
            &repo,
            &args.base,
            args.target_branch.as_deref(),
        )?)
    } else {
        None
    };
    let branch = args
        .branch
        .clone()
        .unwrap_or_else(|| default_branch(&args, &moves, &short(base.id())));
    let message = commit_message(&args, &moves, &evidence);
    let sig = repo.signature(settings.promotion.author.as_ref())?;
    let id = repo.commit_on_branch(
        &base,
        &branch,
        &[(to_file.clone(), new_text)],
        &sig,
        &message,
    )?;
    outln!(
        "committed {} on branch {branch} (base {}): {}",
        short(id),
        short(base.id()),
        message.lines().next().unwrap_or_default()
    );
    for m in &moves {
        outln!("  {}: {} -> {}", m.app, m.replaces, m.version);
    }
    if args.push {
        let remote = args
            .remote
            .clone()
            .or_else(|| settings.promotion.remote.clone())
            .unwrap_or_else(|| "origin".into());
        repo.push(&remote, &branch, &settings.auth)?;
        outln!(
            "pushed {branch} to {remote} ({})",
            repo.remote_url(&remote).unwrap_or_default()
        );
    }
    if let (Some(target), Some(forge)) = (target_branch, &settings.forge) {
        let description = super::promote_mr::description(
            &repo,
            &args.repo,
            &super::promote_mr::Description {
                from: &args.from,
                to: &args.to,
                moves: &moves,
                evidence: &evidence,
                branch: &branch,
                commit: id,
                base: base.id(),
            },
        )?;
        let client = crate::forge::Forge::from_config(forge, &settings.config_dir)?;
        let new = crate::forge::NewMergeRequest {
            title: message.lines().next().unwrap_or_default().to_string(),
            description,
            head_branch: branch.clone(),
            base_branch: target.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mr = runtime
            .block_on(client.create_merge_request(&new))
            .with_context(|| {
                format!("the branch {branch} is pushed, but no merge request was opened")
            })?;
        outln!(
            "opened merge request #{} into {target}: {}",
            mr.number,
            mr.web_url
        );
    } else if args.push && settings.forge.is_none() {
        outln!("no `forge:` section in the config: open the merge request of {branch} by hand");
    }
    Ok(ExitCode::SUCCESS)
}

/// The gate's evidence per app (`None` for each when skipped), or `None`
/// after printing why it refused.
fn run_gate(
    args: &PromoteArgs,
    settings: &Settings,
    moves: &[Promotion],
) -> anyhow::Result<Option<Vec<Option<Evidence>>>> {
    let min = settings.promotion.min_healthy();
    let statuses = match args.status.read(settings.listen) {
        Ok(s) => s,
        Err(e) if args.skip_health_gate => {
            erroutln!(
                "warning: health gate skipped (--skip-health-gate); the status could not be read: {e:#}"
            );
            return Ok(Some(vec![None; moves.len()]));
        }
        Err(e) => {
            return Err(e.context(
                "the health gate cannot run (--skip-health-gate promotes without it, labelled as such)",
            ));
        }
    };
    let now = SystemTime::now();
    let mut out = Vec::new();
    let mut refused = false;
    for m in moves {
        match gate::check(
            &statuses,
            &args.from,
            &m.app,
            &m.version.recorded(),
            min,
            now,
        ) {
            Ok(ev) => out.push(Some(ev)),
            Err(why) if args.skip_health_gate => {
                erroutln!(
                    "warning: health gate skipped (--skip-health-gate) for {}: {why}",
                    m.app
                );
                out.push(None);
            }
            Err(why) => {
                erroutln!("refused: {}: {why}", m.app);
                refused = true;
            }
        }
    }
    if refused {
        erroutln!(
            "error: the health gate is not met (promotion.minHealthy {}); nothing was committed",
            humantime::format_duration(Duration::from_secs(min.as_secs()))
        );
        return Ok(None);
    }
    Ok(Some(out))
}

/// `promote/prod/orders-1.43.0`, or `promote/prod/from-staging-<base>` for
/// several apps.
fn default_branch(args: &PromoteArgs, moves: &[Promotion], base: &str) -> String {
    match moves {
        [one] => {
            let version = match (&one.version.tag, &one.version.digest) {
                (Some(t), _) => t.clone(),
                (None, Some(d)) => d.trim_start_matches("sha256:").chars().take(12).collect(),
                (None, None) => "latest".into(),
            };
            format!("promote/{}/{}-{version}", args.to, one.app)
        }
        _ => format!(
            "promote/{}/from-{}-{}",
            args.to,
            args.from,
            &base[..base.len().min(7)]
        ),
    }
}

fn commit_message(
    args: &PromoteArgs,
    moves: &[Promotion],
    evidence: &[Option<Evidence>],
) -> String {
    let subject = match moves {
        [one] => format!(
            "promote {} {} from {} to {}",
            one.app, one.version, args.from, args.to
        ),
        _ => format!(
            "promote {} apps from {} to {}",
            moves.len(),
            args.from,
            args.to
        ),
    };
    let mut body = String::new();
    for (m, ev) in moves.iter().zip(evidence) {
        let gate = match ev {
            Some(ev) => format!("{} in {}", ev, args.from),
            None => "health gate skipped (--skip-health-gate)".into(),
        };
        body.push_str(&format!(
            "{}: {} -> {} ({gate})\n",
            m.app, m.replaces, m.version
        ));
    }
    format!(
        "{subject}\n\n{body}\nKeelson-Promotion: {} -> {}\n",
        args.from, args.to
    )
}
