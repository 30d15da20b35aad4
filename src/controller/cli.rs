//! `keelson run` and `keelson status`.

/// Arguments of `keelson run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Arguments of `keelson status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Run the controller.
pub fn run(_args: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("keelson run is not implemented yet")
}

/// Print the app × environment matrix.
pub fn status(_args: StatusArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("keelson status is not implemented yet")
}
