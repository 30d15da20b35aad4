//! The controller's HTTP surface: the status page `/`, `/healthz`,
//! `/readyz`, `/metrics`, `/status`, `/history` and the push webhook
//! `POST /hooks/git`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::engine::{Shared, SourceStatus};
use super::metrics;
use super::page;
use super::webhook::{self, Event};
use crate::record::{EnvStatus, Matrix, SyncRecord};

/// The body of `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Whether every environment had its first sync.
    pub ready: bool,
    /// Where the Git source stands.
    pub source: SourceStatus,
    /// Per environment: last applied commit, last attempt, drift, apps.
    pub environments: Vec<EnvStatus>,
    /// App × environment → version and health.
    pub matrix: Matrix,
    /// etcd backup schedules, when the controller runs them.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub backups: serde_json::Value,
}

/// Serve until `stop` (cancelled once the workers have stopped, so that
/// `/healthz` keeps answering while syncs drain).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: tokio_util::sync::CancellationToken,
) {
    let shutdown = stop;
    let app = Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status))
        .route("/history", get(history))
        .route("/hooks/git", post(hook))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        warn!(error = %e, "HTTP server stopped with an error");
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    match s.is_ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics_text(State(s): State<Arc<Shared>>) -> Response {
    let mut text = s.metrics.render();
    if let Some(backups) = &s.backups {
        text.push_str(&backups.to_prometheus());
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
}

/// What `/status` serves, also the data of the status page. Replicas that
/// share the environments read every environment's status from the
/// cluster, so any replica shows the whole picture.
async fn report(s: &Shared) -> Result<StatusReport, String> {
    // Readiness first: a first sync records its status before it counts as
    // done, so a report that says ready holds every first sync's status.
    // (Read after the statuses, a sync finishing in between made a report
    // "ready" without that environment.)
    let ready = s.is_ready().is_ok();
    let environments = match &s.coord {
        Some(c) => c.status.all().await.map_err(|e| e.to_string())?,
        None => s.store.all_status().map_err(|e| e.to_string())?,
    };
    Ok(StatusReport {
        ready,
        source: s.source.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        matrix: Matrix::from_status(&environments),
        backups: s
            .backups
            .as_ref()
            .and_then(|b| serde_json::to_value(b.snapshot()).ok())
            .unwrap_or_default(),
        environments,
    })
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    match report(&s).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => internal(e),
    }
}

/// Query of `GET /`.
#[derive(Debug, Deserialize)]
struct PageQuery {
    /// Only the content that the page's refresh script swaps in.
    #[serde(default)]
    fragment: Option<String>,
}

async fn status_page(State(s): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    let report = match report(&s).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let history = match s.store.recent_per_env(page::HISTORY_PER_ENV, 2_000) {
        Ok(h) => h.into_iter().collect::<Vec<_>>(),
        Err(e) => return internal(e),
    };
    let body = page::Body::new(&report, &history, chrono::Utc::now());
    let html = if q.fragment.is_some() {
        askama::Template::render(&body)
    } else {
        askama::Template::render(&page::Page {
            refresh: page::REFRESH_SECONDS,
            body,
        })
    };
    match html {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => internal(e),
    }
}

/// Query of `GET /history`.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    env: Option<String>,
    limit: Option<usize>,
}

async fn history(State(s): State<Arc<Shared>>, Query(q): Query<HistoryQuery>) -> Response {
    match s
        .store
        .history(q.env.as_deref(), q.limit.unwrap_or(50).min(1000))
    {
        Ok(records) => Json::<Vec<SyncRecord>>(records).into_response(),
        Err(e) => internal(e),
    }
}

async fn hook(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let sender = match webhook::verify(&headers, &body, s.settings.webhook_secret.as_ref()) {
        Ok(sender) => sender,
        Err(e) => {
            s.metrics.observe_webhook("rejected");
            let agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            warn!(reason = %e, user_agent = agent, "webhook rejected");
            return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response();
        }
    };
    let payload = match webhook::payload(&headers, &body) {
        Ok(p) => p,
        Err(e) => {
            s.metrics.observe_webhook("unreadable");
            warn!(?sender, reason = %e, "webhook payload refused");
            let code = match e {
                webhook::PayloadError::UnsupportedMediaType(_) => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
                webhook::PayloadError::Malformed(_) => StatusCode::BAD_REQUEST,
            };
            return (code, format!("{e}\n")).into_response();
        }
    };
    match webhook::classify(&headers, &payload, &s.settings.repo.branch) {
        Event::Ping => {
            s.metrics.observe_webhook("ping");
            (StatusCode::OK, "pong\n").into_response()
        }
        Event::Ignored { reason } => {
            s.metrics.observe_webhook("ignored");
            info!(?sender, %reason, "webhook ignored");
            (StatusCode::ACCEPTED, format!("ignored: {reason}\n")).into_response()
        }
        Event::MergeRequest if s.settings.previews.is_some() => {
            s.metrics.observe_webhook("accepted");
            info!(
                ?sender,
                "merge request webhook accepted; listing merge requests for previews"
            );
            s.preview_trigger.notify_one();
            (StatusCode::ACCEPTED, "previews triggered\n").into_response()
        }
        Event::MergeRequest => {
            s.metrics.observe_webhook("ignored");
            (
                StatusCode::ACCEPTED,
                "ignored: merge request events drive previews, which this controller does not run\n",
            )
                .into_response()
        }
        Event::Push => {
            s.metrics.observe_webhook("accepted");
            info!(?sender, "webhook accepted; fetching");
            s.trigger.notify_one();
            (StatusCode::ACCEPTED, "sync triggered\n").into_response()
        }
    }
}
