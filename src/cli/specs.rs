//! `keelson validate`, `keelson render` and `keelson set-image`.

use crate::cli::output::{errout, erroutln, out, outln};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::check::{self, Report};
use crate::diag;
use crate::render;
use crate::spec::edit::{self, Field};

/// Output format of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    /// rustc-style text with source snippets.
    Text,
    /// One JSON object with every diagnostic.
    Json,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When stdout/stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Whether to colour a stream that is (or is not) a terminal.
    pub fn enabled(self, is_tty: bool) -> bool {
        match self {
            Color::Auto => is_tty && std::env::var_os("NO_COLOR").is_none(),
            Color::Always => true,
            Color::Never => false,
        }
    }
}

/// Arguments of `keelson validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The environments repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = DiagFormat::Text)]
    pub output: DiagFormat,
    /// Colour.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// Arguments of `keelson render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The environments repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Only these environments (repeatable); all when absent.
    #[arg(long = "env", short = 'e')]
    pub envs: Vec<String>,
    /// Colour of diagnostics on stderr.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// Arguments of `keelson set-image`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// Environment.
    pub env: String,
    /// App.
    pub app: String,
    /// New tag (or digest with --digest).
    pub tag: String,
    /// Set the digest (`sha256:…`) instead of the tag.
    #[arg(long)]
    pub digest: bool,
    /// The environments repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Colour: accepted as by every subcommand; set-image prints plain text.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// The diagnostics as text (with the closing count line), coloured when
/// `color` is on; empty when there are none.
fn diagnostics_text(report: &Report, color: bool) -> String {
    if report.diagnostics.is_empty() {
        return String::new();
    }
    diag::render(&report.diagnostics, &report.repo.sources, color)
}

/// Print diagnostics to stderr (text), beside a command whose stdout is its
/// product (`render`'s YAML, `reconcile`'s plan).
pub fn report_diagnostics(report: &Report, color: Color) {
    errout!(
        "{}",
        diagnostics_text(report, color.enabled(std::io::stderr().is_terminal()))
    );
}

/// `keelson validate`. Its findings are its output, so they go to stdout as
/// a linter's do (kubeconform, check-jsonschema, yamllint), and
/// `keelson validate > findings.txt` keeps them; a checkout that cannot be
/// read at all (no `environments/`, nothing in it) is an error about the
/// run and goes to stderr, as bad flags do. Exit 1 on any error.
pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let report = check::check_repo(&args.repo);
    match args.output {
        DiagFormat::Text => {
            if crate::reconcile::retire::unusable(&report).is_some() {
                report_diagnostics(&report, args.color);
            } else {
                out!(
                    "{}",
                    diagnostics_text(&report, args.color.enabled(std::io::stdout().is_terminal()))
                );
            }
            if report.errors() == 0 {
                let envs = report.ready.len();
                let apps: usize = report.ready.values().map(|e| e.apps.len()).sum();
                outln!(
                    "ok: {envs} environment{}, {apps} app{}, {} polic{} valid",
                    if envs == 1 { "" } else { "s" },
                    if apps == 1 { "" } else { "s" },
                    report.repo.policies.len(),
                    if report.repo.policies.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                );
            }
        }
        DiagFormat::Json => {
            let out = serde_json::json!({
                "ok": report.errors() == 0,
                "errors": report.errors(),
                "warnings": report.diagnostics.len() - report.errors(),
                "environments": report.repo.environments.keys().collect::<Vec<_>>(),
                "blocked": report.blocked,
                "diagnostics": report.diagnostics,
            });
            outln!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if report.errors() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Check `repo` and pick the environments asked for, failing on unknown names.
pub fn selected_envs(report: &Report, wanted: &[String]) -> anyhow::Result<Vec<String>> {
    let all: Vec<String> = report.repo.environments.keys().cloned().collect();
    if wanted.is_empty() {
        return Ok(all);
    }
    for w in wanted {
        if !all.contains(w) {
            let hint = diag::did_you_mean(w, all.iter().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            bail!(
                "no environment `{w}` in {}{hint}; environments: {}",
                report.repo.root.join("environments").display(),
                all.join(", ")
            );
        }
    }
    Ok(wanted.to_vec())
}

/// `keelson render`.
pub fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let report = check::check_repo(&args.repo);
    report_diagnostics(&report, args.color);
    if let Some(why) = crate::reconcile::retire::unusable(&report) {
        erroutln!("error: {why}: nothing rendered");
        return Ok(ExitCode::from(1));
    }
    let envs = selected_envs(&report, &args.envs)?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for name in &envs {
        match report.ready.get(name) {
            Some(env) => {
                let objects = render::render_env(env);
                writeln!(out, "# environment: {name} ({} objects)", objects.len())?;
                out.write_all(render::emit::documents(&objects).as_bytes())?;
            }
            None => {
                failed = true;
                erroutln!(
                    "error: environment `{name}` is not rendered because of the errors above"
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `keelson set-image`.
pub fn set_image(args: SetImageArgs) -> anyhow::Result<ExitCode> {
    let field = if args.digest {
        Field::Digest
    } else {
        Field::Tag
    };
    match field {
        Field::Tag if !edit::valid_tag(&args.tag) => bail!(
            "`{}` is not a valid image tag: use letters, digits, `_`, `.` and `-`, at most 128 characters, not starting with `.` or `-`",
            args.tag
        ),
        Field::Digest if !valid_digest(&args.tag) => {
            bail!(
                "`{}` is not a valid digest: expected sha256: followed by 64 hex digits",
                args.tag
            )
        }
        _ => {}
    }
    let env_dir = args.repo.join("environments").join(&args.env);
    let env_file = env_dir.join("environment.yaml");
    let pipe = env_dir.join("pipeline.yaml");
    // Read and write only inside the repository: a linked environment
    // folder or pipeline.yaml would make set-image write elsewhere.
    for p in [&env_file, &pipe] {
        crate::spec::confine::check(&args.repo, p)?;
    }
    if !env_file.is_file() {
        bail!(
            "no environment `{}`: {} does not exist",
            args.env,
            env_file.display()
        );
    }
    let (repo, _) = crate::spec::load_repo(&args.repo);
    let env_doc = repo
        .environments
        .get(&args.env)
        .and_then(|e| e.environment.as_ref())
        .with_context(|| {
            format!(
                "{} has errors; run `keelson validate` first",
                env_file.display()
            )
        })?;
    if !env_doc.value.spec.apps.iter().any(|a| a.name == args.app) {
        let names: Vec<&str> = env_doc
            .value
            .spec
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        let hint = diag::did_you_mean(&args.app, names.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        bail!(
            "environment `{}` has no app `{}`{hint}; apps: {}",
            args.env,
            args.app,
            names.join(", ")
        );
    }
    let new_text = if pipe.is_file() {
        let text = std::fs::read_to_string(&pipe)
            .with_context(|| format!("reading {}", pipe.display()))?;
        edit::set_field(
            &crate::spec::rel(&args.repo, &pipe),
            &text,
            &args.app,
            field,
            &args.tag,
        )?
    } else {
        edit::new_pipeline(&args.app, field, &args.tag)
    };
    write_atomic(&pipe, &new_text)?;
    erroutln!(
        "{}: {} {} = {}",
        pipe.display(),
        args.app,
        if args.digest { "digest" } else { "tag" },
        args.tag
    );
    Ok(ExitCode::SUCCESS)
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

/// Write a file so that readers see the old or the new content, never half.
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("yaml.keelson-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
