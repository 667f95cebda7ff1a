//! The `flows/*` calls (`docs/protocol.md` §4, "Flows"): the node's [`FlowManager`], which also
//! runs the `--flow` files of `telemetron serve`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Json;
use axum::routing::post;

use super::AppState;
use super::http::{ApiError, body_bytes};
use crate::flow::{DeployRequest, FlowInfo, FlowList, NameRequest, ReconfigureRequest, Reconfigured, StopRequest};
use crate::protocol::messages::Empty;
use crate::protocol::parse_json;

type Reply<R> = std::result::Result<Json<R>, ApiError>;
type St = State<Arc<AppState>>;

/// The routes, to merge into the guarded API.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/flows/list", post(list))
        .route("/api/v1/flows/get", post(get))
        .route("/api/v1/flows/deploy", post(deploy))
        .route("/api/v1/flows/reconfigure", post(reconfigure))
        .route("/api/v1/flows/stop", post(stop))
}

async fn list(State(s): St, body: Body) -> Reply<FlowList> {
    let _: Empty = parse_json(&body_bytes(&s, body).await?)?;
    Ok(Json(FlowList { flows: s.flows.list().await }))
}

async fn get(State(s): St, body: Body) -> Reply<FlowInfo> {
    let q: NameRequest = parse_json(&body_bytes(&s, body).await?)?;
    Ok(Json(s.flows.get(&q.name).await?))
}

async fn deploy(State(s): St, body: Body) -> Reply<FlowInfo> {
    let q: DeployRequest = parse_json(&body_bytes(&s, body).await?)?;
    Ok(Json(s.flows.deploy(&q.config).await?))
}

async fn reconfigure(State(s): St, body: Body) -> Reply<Reconfigured> {
    let q: ReconfigureRequest = parse_json(&body_bytes(&s, body).await?)?;
    Ok(Json(s.flows.reconfigure(&q.name, &q.config, q.drain()).await?))
}

async fn stop(State(s): St, body: Body) -> Reply<FlowInfo> {
    let q: StopRequest = parse_json(&body_bytes(&s, body).await?)?;
    Ok(Json(s.flows.stop(&q.name, q.drain()).await?))
}
