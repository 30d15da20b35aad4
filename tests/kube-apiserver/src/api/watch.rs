//! Watch: newline-delimited JSON events, resumable from a resourceVersion within the history.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::read::{Filter, present};
use crate::registry::ResourceType;
use crate::server::Shared;
use crate::status::ApiError;
use crate::store::{Event, EventType};
use crate::util::Query;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

struct Scope {
    rt: ResourceType,
    ns: Option<String>,
    filter: Filter,
    /// `includeObject` mode when the client asked for Table events (`kubectl get -w`).
    table: Option<String>,
    /// Events carry `PartialObjectMetadata` (kube-rs `watch_metadata`).
    metadata_only: bool,
}

impl Scope {
    fn render(&self, obj: &Value) -> Value {
        let o = present(&self.rt, obj);
        if self.metadata_only {
            return super::read::partial(&o);
        }
        match &self.table {
            Some(include) => {
                let meta = json!({"resourceVersion": o["metadata"]["resourceVersion"]});
                super::read::table(&self.rt, &[o], meta, include)
            }
            None => o,
        }
    }

    /// The event type this watcher should see for `ev`, if any (objects moving out of the
    /// selector are seen as DELETED, moving in as ADDED, as the real server does).
    fn translate(&self, ev: &Event) -> Option<&'static str> {
        if ev.group != self.rt.group || ev.resource != self.rt.resource {
            return None;
        }
        if self.ns.as_deref().is_some_and(|n| n != ev.namespace) {
            return None;
        }
        let now = self.filter.matches(&ev.object);
        match ev.kind {
            EventType::Modified => {
                let before = ev.old.as_ref().is_some_and(|o| self.filter.matches(o));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
            k => now.then_some(k.as_str()),
        }
    }
}

/// Start a watch; returns the body stream.
pub fn start(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &Query,
    accept: &str,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let scope = Scope {
        rt: rt.clone(),
        ns: ns.map(String::from),
        filter: Filter::from_query(q)?,
        metadata_only: super::read::wants_metadata(accept),
        table: super::read::wants_table(accept)
            .then(|| q.get("includeObject").unwrap_or("Metadata").to_string()),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let from = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| v.parse::<u64>().unwrap_or(0));
    let send_initial = q.flag("sendInitialEvents") || from.is_none();
    let bookmarks = q.flag("allowWatchBookmarks");

    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let mut first: Vec<Bytes> = Vec::new();
    let (events, last_rv) = {
        let store = shared.store();
        let events = store.events.subscribe();
        if let Some(rv) = from.filter(|_| !q.flag("sendInitialEvents")) {
            if rv < store.oldest_resumable() {
                let err = ApiError::gone(format!(
                    "too old resource version: {rv} ({})",
                    store.oldest_resumable() + 1
                ));
                first.push(line("ERROR", &err.to_status()));
                let _ = tx.try_send(first.remove(0));
                return Ok(rx);
            }
            for ev in store.history.iter().filter(|e| e.rv > rv) {
                if let Some(kind) = scope.translate(ev) {
                    first.push(line(kind, &scope.render(&ev.object)));
                }
            }
        } else if send_initial {
            for (_, obj) in store.scan(rt, ns, None) {
                if scope.filter.matches(obj) {
                    first.push(line("ADDED", &scope.render(obj)));
                }
            }
            if q.flag("sendInitialEvents") && bookmarks {
                let bm = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {
                    "resourceVersion": store.rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"}}});
                first.push(line("BOOKMARK", &bm));
            }
        }
        (events, store.rv)
    };
    let mut shutdown = shared.shutdown.clone();
    let mut closer = shared.close_watches.subscribe();
    tokio::spawn(async move {
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let sleep_until = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(sleep_until);
        let mut events = events;
        loop {
            // Events already published go out before any reason to stop: a watcher must see every
            // change made before a timeout or close_watches().
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv { continue; }
                        if let Some(kind) = scope.translate(&ev)
                            && tx.send(line(kind, &scope.render(&ev.object))).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let err = ApiError::gone("too old resource version: the watch fell behind; list again");
                        let _ = tx.send(line("ERROR", &err.to_status())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = &mut sleep_until => return,
                _ = tx.closed() => return,
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
                _ = closer.changed() => return,
            }
        }
    });
    Ok(rx)
}
