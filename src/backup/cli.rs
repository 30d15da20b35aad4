//! `keelson backup now|list|verify`.

/// Arguments of `keelson backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {}

/// Run `keelson backup`.
pub fn run(_args: BackupArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("keelson backup is not implemented yet")
}
