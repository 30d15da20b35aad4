//! `keelson backup now|list|verify`.

use crate::cli::output::{erroutln, out, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::EtcdClusterConfig;
use super::restore_check::restore_check;
use super::retention::{self, Integrity};
use super::schedule::{self, SystemClock, run_once};
use super::status::BackupStatusHandle;
use super::store::{self, RestoreCheckOutcome, StoredSnapshot, Trigger};
use super::verify::verify_file;
use crate::config::Config;

/// Arguments of `keelson backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The keelson config file.
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "keelson.yaml",
        env = "KEELSON_CONFIG"
    )]
    pub config: PathBuf,
    /// Colour: accepted as by every subcommand; backup prints plain text.
    #[arg(long, global = true, value_enum, default_value_t = crate::cli::specs::Color::Auto)]
    pub color: crate::cli::specs::Color,
    #[command(subcommand)]
    pub command: BackupCommand,
}

/// `keelson backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a snapshot now (on-demand snapshots are never pruned automatically).
    Now {
        /// Only this cluster; every cluster with an `etcd` section otherwise.
        #[arg(long)]
        cluster: Option<String>,
        /// Also restore the new snapshot into a throwaway etcd and read a key.
        #[arg(long)]
        restore_check: bool,
    },
    /// List snapshots in every destination.
    List {
        /// Only this cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Check snapshot files: trailing sha256 and bbolt structure.
    Verify {
        /// Snapshot files to check.
        files: Vec<PathBuf>,
        /// Check every snapshot of every configured cluster (or of `--cluster`).
        #[arg(long, conflicts_with = "files")]
        all: bool,
        /// Only this cluster's snapshots with `--all`.
        #[arg(long, requires = "all")]
        cluster: Option<String>,
        /// Also restore each snapshot into a throwaway etcd and read a key.
        #[arg(long)]
        restore_check: bool,
    },
}

/// Output format of `backup list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table.
    Text,
    /// JSON lines, one snapshot each.
    Json,
}

/// Run `keelson backup`.
pub fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match args.command {
            BackupCommand::Now {
                cluster,
                restore_check,
            } => now(&cfg, cluster.as_deref(), restore_check).await,
            BackupCommand::List { cluster, output } => list(&cfg, cluster.as_deref(), output),
            BackupCommand::Verify {
                files,
                all,
                cluster,
                restore_check,
            } => verify(&cfg, files, all, cluster.as_deref(), restore_check).await,
        }
    })
}

fn load(path: &Path) -> anyhow::Result<Config> {
    // The rendered error already names file:line:col with a snippet.
    Ok(crate::config::load_config(path)?)
}

/// Clusters with an `etcd` section, or just `only` (an error when it has none).
fn clusters<'a>(
    cfg: &'a Config,
    only: Option<&'a str>,
) -> anyhow::Result<Vec<(&'a str, &'a EtcdClusterConfig)>> {
    if let Some(name) = only {
        let Some(cluster) = cfg.clusters.get(name) else {
            bail!("no cluster {name:?} in the keelson config");
        };
        let Some(etcd) = &cluster.etcd else {
            bail!("cluster {name:?} has no `etcd` section in the keelson config");
        };
        return Ok(vec![(name, etcd)]);
    }
    let all: Vec<_> = cfg
        .clusters
        .iter()
        .filter_map(|(name, c)| c.etcd.as_ref().map(|e| (name.as_str(), e)))
        .collect();
    if all.is_empty() {
        bail!("no cluster in the keelson config has an `etcd` section");
    }
    Ok(all)
}

async fn now(cfg: &Config, only: Option<&str>, check: bool) -> anyhow::Result<ExitCode> {
    let status = BackupStatusHandle::new();
    let mut failed = false;
    for (name, etcd) in clusters(cfg, only)? {
        if let Err(err) = schedule::validate(name, etcd) {
            erroutln!("{name}: {err}");
            failed = true;
            continue;
        }
        let state_dir = cfg.state_dir.as_deref();
        match run_once(
            name,
            etcd,
            state_dir,
            &SystemClock,
            &status,
            Trigger::OnDemand,
            check,
        )
        .await
        {
            Ok(record) => {
                let m = &record.meta;
                outln!(
                    "{name}: saved {} ({}, revision {}, sha256 {}, {:.2}s)",
                    record.path.display(),
                    human_size(m.size),
                    m.revision,
                    &m.sha256[..12],
                    m.duration_seconds
                );
                for copy in &record.copies {
                    outln!("{name}: copied to {}", copy.display());
                }
                for pruned in &record.pruned {
                    outln!("{name}: pruned {}", pruned.display());
                }
                if let Some(rc) = status.snapshot().clusters[name].last_restore_check.as_ref() {
                    print_restore_check(name, rc);
                    failed |= !rc.passed;
                }
            }
            Err(err) => {
                erroutln!("{name}: snapshot failed: {err}");
                failed = true;
            }
        }
    }
    Ok(exit(failed))
}

fn print_restore_check(name: &str, rc: &RestoreCheckOutcome) {
    match (&rc.error, rc.keys) {
        (None, Some(keys)) => outln!("{name}: restore check passed ({keys} keys)"),
        (Some(err), _) => erroutln!("{name}: restore check FAILED: {err}"),
        (None, None) => outln!("{name}: restore check passed"),
    }
}

fn list(cfg: &Config, only: Option<&str>, output: Output) -> anyhow::Result<ExitCode> {
    let mut rows: Vec<StoredSnapshot> = Vec::new();
    for (name, etcd) in clusters(cfg, only)? {
        for dir in etcd.destinations(cfg.state_dir.as_deref()) {
            let found = store::list_snapshots(&dir, Some(name))
                .with_context(|| format!("cannot list {}", dir.display()))?;
            rows.extend(found);
        }
    }
    rows.sort_by(|a, b| {
        (&a.name.cluster, b.name.time, &a.path).cmp(&(&b.name.cluster, a.name.time, &b.path))
    });
    // What is true now, not what the metadata said when the file was written.
    let checks: Vec<Integrity> = rows.iter().map(retention::check).collect();
    match output {
        Output::Json => {
            for (s, check) in rows.iter().zip(&checks) {
                let problem = match check {
                    Integrity::Corrupt(why) | Integrity::RestoreFailed(why) => Some(why),
                    _ => None,
                };
                let line = serde_json::json!({
                    "cluster": s.name.cluster,
                    "time": s.name.time,
                    "size": s.size,
                    "revision": s.name.revision,
                    "verified": verified_label(s, check),
                    "problem": problem,
                    "location": s.path,
                    "meta": s.meta,
                });
                outln!("{line}");
            }
        }
        Output::Text => {
            out!("{}", table(&rows, &checks));
            for (s, check) in rows.iter().zip(&checks) {
                if let Integrity::Corrupt(why) = check {
                    outln!("{}: CORRUPT: {why}", s.path.display());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders `backup list` as an aligned table; `checks` holds each row's
/// integrity as checked now.
pub fn table(rows: &[StoredSnapshot], checks: &[Integrity]) -> String {
    let header = [
        "CLUSTER", "TIME", "SIZE", "REVISION", "TRIGGER", "VERIFIED", "LOCATION",
    ];
    let mut cells: Vec<[String; 7]> = vec![header.map(String::from)];
    for (s, check) in rows.iter().zip(checks) {
        let trigger = match s.meta.as_ref().map(|m| m.trigger) {
            Some(Trigger::Scheduled) => "scheduled",
            Some(Trigger::OnDemand) => "on-demand",
            None => "-",
        };
        cells.push([
            s.name.cluster.clone(),
            s.name.time.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            human_size(s.size),
            s.name.revision.to_string(),
            trigger.to_string(),
            verified_label(s, check).to_string(),
            s.path.display().to_string(),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn verified_label(s: &StoredSnapshot, check: &Integrity) -> &'static str {
    match check {
        Integrity::Corrupt(_) => "corrupt",
        Integrity::RestoreFailed(_) => "restore-failed",
        Integrity::NoMetadata => "unknown",
        Integrity::Good => match s.meta.as_ref().and_then(|m| m.restore_check.as_ref()) {
            Some(_) => "restored",
            None => "sha256",
        },
    }
}

async fn verify(
    cfg_file: &Config,
    files: Vec<PathBuf>,
    all: bool,
    only: Option<&str>,
    check: bool,
) -> anyhow::Result<ExitCode> {
    // (path, known key for the restore check)
    let mut targets: Vec<(PathBuf, Option<String>)> = Vec::new();
    if all {
        for (name, etcd) in clusters(cfg_file, only)? {
            for dir in etcd.destinations(cfg_file.state_dir.as_deref()) {
                for s in store::list_snapshots(&dir, Some(name))? {
                    targets.push((s.path, etcd.restore_check_key.clone()));
                }
            }
        }
        if targets.is_empty() {
            outln!("no snapshots found");
        }
    } else if files.is_empty() {
        bail!("name snapshot files to verify, or pass --all");
    } else {
        for file in files {
            let key = store::read_meta(&file).and_then(|m| {
                cfg_file
                    .clusters
                    .get(&m.cluster)
                    .and_then(|c| c.etcd.as_ref())
                    .and_then(|e| e.restore_check_key.clone())
            });
            targets.push((file, key));
        }
    }
    let mut failed = false;
    for (path, key) in targets {
        match verify_file(&path) {
            Ok(report) => {
                let rev = report
                    .walk
                    .revision
                    .map_or_else(|| "-".to_string(), |r| r.to_string());
                outln!(
                    "OK      {} ({}, {} pages, {} buckets, {} entries, revision {rev})",
                    path.display(),
                    human_size(report.size),
                    report.walk.pages,
                    report.walk.buckets,
                    report.walk.entries
                );
            }
            Err(err) => {
                outln!("FAILED  {err}");
                failed = true;
                continue;
            }
        }
        if check {
            let checked_at = chrono::Utc::now();
            let outcome = match restore_check(&path, key.as_deref()).await {
                Ok(r) => {
                    outln!(
                        "        restore check passed: {} keys, read {:?} ({} bytes)",
                        r.keys,
                        r.key,
                        r.value_len
                    );
                    RestoreCheckOutcome {
                        checked_at,
                        passed: true,
                        keys: Some(r.keys),
                        error: None,
                    }
                }
                Err(err) => {
                    outln!("        restore check FAILED: {err}");
                    failed = true;
                    RestoreCheckOutcome {
                        checked_at,
                        passed: false,
                        keys: None,
                        error: Some(err.to_string()),
                    }
                }
            };
            if let Some(mut meta) = store::read_meta(&path) {
                meta.restore_check = Some(outcome);
                store::write_meta(&path, &meta)
                    .with_context(|| format!("cannot update metadata of {}", path.display()))?;
            }
        }
    }
    Ok(exit(failed))
}

fn exit(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
