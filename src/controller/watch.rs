//! Watching a local repository: a commit touches files under `.git` (and an
//! edit touches the work tree), so any change under the directory triggers a
//! fetch. Bursts of events (a commit writes many files) are debounced into one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Quiet time after the last event before a fetch is triggered.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watch `path` recursively and notify `trigger` after each debounced burst
/// of changes, until `shutdown`. Changes under `ignore` (keelson's own state
/// directory, when it sits inside the repository) do not count.
pub fn spawn(
    path: &Path,
    ignore: &Path,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let ignore = std::fs::canonicalize(ignore).unwrap_or_else(|_| ignore.to_path_buf());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(e) = event else { return };
        if !e.kind.is_access() && !e.paths.iter().all(|p| p.starts_with(&ignore)) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(path, RecursiveMode::Recursive)?;
    Ok(tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                got = rx.recv() => if got.is_none() { break },
            }
            // Swallow the rest of the burst.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            debug!("local repository changed; fetching");
            trigger.notify_one();
        }
    }))
}
