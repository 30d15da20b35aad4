//! Command-line interface: argument parsing and one small function per
//! subcommand that wires the pipeline stages together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use output::{errout, erroutln};

pub mod against_ref;
pub mod markdown;
pub mod outcome;
pub mod output;
pub mod preview;
pub mod promote;
pub mod promote_mr;
pub mod reconcile;
pub mod specs;
pub mod text;

/// Keelson: declarative GitOps for Kubernetes and Rancher, with verified etcd snapshots.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every spec: schema, ownership, policy rules. Exit 1 on any error.
    Validate(specs::ValidateArgs),
    /// Print the desired Kubernetes objects of environments as YAML.
    Render(specs::RenderArgs),
    /// Set an app's image tag (or digest) in pipeline.yaml, keeping comments.
    SetImage(specs::SetImageArgs),
    /// Plan and apply every environment (`--dry-run` to plan only).
    /// Exit 0: nothing to change, 2: changes planned or applied, 1: error.
    Reconcile(reconcile::ReconcileArgs),
    /// Take, list and verify etcd snapshots.
    Backup(crate::backup::cli::BackupArgs),
    /// Run the controller: sync on push, poll, re-check drift, serve status.
    Run(crate::controller::cli::RunArgs),
    /// Show which version of each app runs in each environment.
    Status(crate::controller::cli::StatusArgs),
    /// Preview environments of merge requests: create, delete, list.
    Preview(preview::PreviewArgs),
    /// Promote an app's version from one environment to the next, as a Git
    /// commit on a branch, once it has run healthy long enough.
    Promote(promote::PromoteArgs),
}

/// Parse a duration flag (`--timeout 5m`): humantime text as the config's
/// durations take it (`30s`, `5m`, `1h30m`; `humantime::parse_duration`),
/// or a plain number of seconds (`300`), as the flags took before.
/// Errors: the text and an example, for clap to print.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(std::time::Duration::from_secs)
            .map_err(|e| format!("`{text}` is not a duration: {e}"));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!(
            "`{text}` is not a duration: {e}; write e.g. `30s`, `5m`, `1h`, or `300` for seconds"
        )
    })
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // Several crates bring rustls; pick one crypto provider for all of them.
    crate::http::install_crypto_provider();
    // clap exits 2 on a usage error, which keelson reserves for "changes
    // planned or applied": every error is 1.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Validate(args) => specs::validate(args),
        Command::Render(args) => specs::render(args),
        Command::SetImage(args) => specs::set_image(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Backup(args) => crate::backup::cli::run(args),
        Command::Run(args) => crate::controller::cli::run(args),
        Command::Status(args) => crate::controller::cli::status(args),
        Command::Preview(args) => preview::run(args),
        Command::Promote(args) => promote::run(args),
    };
    match result {
        Ok(code) => code,
        // `keelson render | head -1`: the reader had enough; say nothing.
        Err(err) if output::is_closed_pipe(&err) => ExitCode::from(output::CLOSED_PIPE_EXIT),
        Err(err) => {
            match err.downcast_ref::<crate::config::ConfigError>() {
                // Already rendered as `error[config]: …` with its position.
                Some(e) => errout!("{}", e.rendered),
                None => erroutln!("error: {err:#}"),
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn duration_flags_take_units_and_plain_seconds() {
        for (text, secs) in [
            ("5s", 5),
            ("2m", 120),
            ("1h30m", 5400),
            ("300", 300),
            (" 7 ", 7),
        ] {
            assert_eq!(
                super::parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in ["", "5x", "-5", "five", "1.5"] {
            let err = super::parse_duration(text).unwrap_err();
            assert!(
                err.contains(&format!("`{text}`")) && err.contains("`5m`"),
                "{err}"
            );
        }
    }
}
