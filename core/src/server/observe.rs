//! The node's instrumentation (`docs/observability.md`): `GET /metrics`, the
//! `observe/levels` call, and the server's own instruments (connections, requests and their
//! latency, authentication failures).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;

use super::AppState;
use super::http::{ApiError, blocking, body_bytes};
use crate::observe::{Levels, LevelsUpdate, MetricSamples, Observer, Summary, SummaryRequest};
use crate::protocol::parse_json;

/// Connections of the accept loop, counted where they start and end.
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    accepted: AtomicU64,
    refused: AtomicU64,
    open: AtomicI64,
}

impl ConnStats {
    /// A connection was accepted (`served`) or refused for the connection limit; the
    /// returned guard counts it open until dropped.
    pub(crate) fn accepted(self: &Arc<Self>, served: bool) -> OpenConn {
        if served {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConn(self.clone())
    }
}

/// Counts one connection open while it lives.
#[derive(Debug)]
pub(crate) struct OpenConn(Arc<ConnStats>);

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The server's instruments.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    pub conns: Arc<ConnStats>,
    requests: Histogram<f64>,
    auth_failures: Arc<AtomicU64>,
}

impl ServerMetrics {
    pub(crate) fn new(obs: &Observer) -> ServerMetrics {
        let conns = Arc::new(ConnStats::default());
        let auth_failures = Arc::new(AtomicU64::new(0));
        let attrs = || vec![KeyValue::new("key", "server")];
        obs.counter("telemetron.server.connections", "{connection}", "Connections accepted and served", attrs(), {
            let c = conns.clone();
            move || Some(c.accepted.load(Ordering::Relaxed))
        });
        obs.counter(
            "telemetron.server.connections_refused",
            "{connection}",
            "Connections refused with server.busy (over the connection limit)",
            attrs(),
            {
                let c = conns.clone();
                move || Some(c.refused.load(Ordering::Relaxed))
            },
        );
        obs.gauge("telemetron.server.connections_open", "{connection}", "Connections open now (every stream is one)", attrs(), {
            let c = conns.clone();
            move || Some(c.open.load(Ordering::Relaxed) as f64)
        });
        obs.counter(
            "telemetron.server.auth_failures",
            "{request}",
            "Requests refused for missing or wrong credentials (auth.required, auth.invalid_credentials)",
            attrs(),
            {
                let f = auth_failures.clone();
                move || Some(f.load(Ordering::Relaxed))
            },
        );
        let requests = obs.latency_histogram(
            "telemetron.server.request.duration",
            "Time from a request's arrival to its reply (for a stream: to the upgrade), per route and status",
        );
        ServerMetrics { conns, requests, auth_failures }
    }
}

/// Time every routed request; count authentication failures. The route is the pattern
/// (`/api/v1/channels/create`), never the query, a body or a credential.
pub(crate) async fn track(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let on = s.observer.metrics_on();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let t0 = Instant::now();
    // The request's span (trace level basic), a child of the caller's W3C `traceparent`.
    let span = tracing::info_span!(
        "telemetron.request",
        key = super::conn_key().as_str(),
        http.route = route.as_deref().unwrap_or("unmatched"),
        http.response.status_code = tracing::field::Empty
    );
    #[cfg(feature = "otlp")]
    if !span.is_disabled()
        && let Some(tp) = req.headers().get("traceparent").and_then(|v| v.to_str().ok())
    {
        crate::observe::traces::join(&span, tp);
    }
    let resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = resp.status();
    span.record("http.response.status_code", status.as_u16());
    if status == StatusCode::UNAUTHORIZED {
        // Counted at every level, like the layers' counters; only the histogram is gated.
        s.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
    }
    if on {
        let attrs = [
            KeyValue::new("key", "server"),
            KeyValue::new("route", route.unwrap_or_else(|| "unmatched".into())),
            KeyValue::new("status", i64::from(status.as_u16())),
        ];
        s.metrics.requests.record(t0.elapsed().as_secs_f64(), &attrs);
    }
    resp
}

/// `GET /metrics` (outside the versioned API: Prometheus sends no protocol header; with
/// authentication on, it needs the bearer token like any other request).
pub(crate) fn metrics_route() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = s.auth.check(&headers, s.engine.users()) {
        return ApiError::from(e).into_response();
    }
    let text = s.observer.prometheus();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// The `observe/*` calls, to merge into the guarded API.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/observe/levels", post(levels))
        .route("/api/v1/observe/metrics", post(samples))
        .route("/api/v1/observe/summary", post(summary))
}

/// The self-telemetry history over a window, summarized next to the data.
async fn summary(State(s): State<Arc<AppState>>, body: Body) -> std::result::Result<Json<Summary>, ApiError> {
    let req: SummaryRequest = parse_json(&body_bytes(&s, body).await?)?;
    let obs = s.observer.clone();
    Ok(Json(blocking(&s, move |_| obs.summary(&req)).await?))
}

/// Every scalar metric now, by self-telemetry channel name.
async fn samples(State(s): State<Arc<AppState>>, body: Body) -> std::result::Result<Json<MetricSamples>, ApiError> {
    let _: crate::protocol::messages::Empty = parse_json(&body_bytes(&s, body).await?)?;
    Ok(Json(MetricSamples { samples: s.observer.samples() }))
}

/// Read (empty body `{}`) or change the levels; replies with the levels in force.
async fn levels(State(s): State<Arc<AppState>>, body: Body) -> std::result::Result<Json<Levels>, ApiError> {
    let u: LevelsUpdate = parse_json(&body_bytes(&s, body).await?)?;
    if u == LevelsUpdate::default() {
        return Ok(Json(s.observer.levels()));
    }
    Ok(Json(s.observer.set_levels(u)))
}
