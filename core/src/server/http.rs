//! HTTP routes: the unary calls, the guard (version, credentials) and error replies.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Extension, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::Engine;
use crate::channel::{Channel, ChannelRef};
use crate::error::{Error, Result};
use crate::protocol::messages::*;
use crate::protocol::{
    COMPRESS_HEADER, FRAME_CONTENT_TYPE, NetError, PROTOCOL_VERSION, StreamKind, VERSION_HEADER, WireError, codec, parse_json,
};
use crate::ranger::RangeQuery;
use crate::telem::TimeStamp;

/// An error reply: status from the code, body `{code, message, detail}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> ApiError {
        ApiError(e.into())
    }
}

/// The HTTP status for an error code.
pub(crate) fn status(code: &str) -> StatusCode {
    match code {
        c if c.ends_with("not_found") => StatusCode::NOT_FOUND,
        "auth.required" | "auth.invalid_credentials" => StatusCode::UNAUTHORIZED,
        "auth.forbidden" => StatusCode::FORBIDDEN,
        "protocol.too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "channel.name_taken"
        | "channel.busy"
        | "channel.index_in_use"
        | "write.channel_busy"
        | "control.unauthorized"
        | "flow.name_taken" => StatusCode::CONFLICT,
        "engine.closed" | "server.shutdown" | "server.busy" | "node.unavailable" | "cluster.coordination" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        "channel.elsewhere" | "range.elsewhere" => StatusCode::MISDIRECTED_REQUEST,
        c if c.starts_with("storage.") || c == "engine.metadata" || c == "server.internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let w = WireError::from(&self.0);
        (status(&w.code), Json(w)).into_response()
    }
}

/// Check the protocol version header.
pub(crate) fn check_version(headers: &HeaderMap) -> std::result::Result<(), NetError> {
    let Some(v) = headers.get(VERSION_HEADER) else {
        return Err(NetError::protocol(format!(
            "missing the {VERSION_HEADER} header; this node speaks protocol version {PROTOCOL_VERSION}: use a Telemetron client"
        )));
    };
    match v.to_str().ok().and_then(|s| s.trim().parse::<u16>().ok()) {
        Some(PROTOCOL_VERSION) => Ok(()),
        Some(client) => Err(NetError::VersionMismatch { node: PROTOCOL_VERSION, client }),
        None => Err(NetError::protocol(format!("the {VERSION_HEADER} header must be a number"))),
    }
}

/// Who made a request (an admin when the node needs no credentials), for the handlers
/// that check more than the route (writers: channel patterns and authority).
#[derive(Debug, Clone)]
pub(crate) struct Principal(pub crate::users::User);

/// A browser cannot set headers on a WebSocket: for stream upgrades, `?protocol=1` and
/// `?access_token=T` stand for the `telemetron-protocol` and `authorization` headers (when
/// those are absent).
fn stream_query_headers(req: &mut Request) {
    if !req.uri().path().starts_with("/api/v1/stream/") {
        return;
    }
    let query = req.uri().query().unwrap_or_default().to_string();
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let (name, value) = match k {
            "protocol" => (axum::http::HeaderName::from_static(crate::protocol::VERSION_HEADER), percent_decode(v)),
            "access_token" => (header::AUTHORIZATION, format!("Bearer {}", percent_decode(v))),
            _ => continue,
        };
        if !req.headers().contains_key(&name)
            && let Ok(value) = axum::http::HeaderValue::from_str(&value)
        {
            req.headers_mut().insert(name, value);
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of a query value (`+` is a space).
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|h| (*h as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A browser opening a WebSocket sends its page's `Origin`, and nothing else stops a page
/// of another site from opening a stream on a node it can reach (a node on loopback
/// without credentials runs every request as an admin). Streams from a page of another
/// origin than the node's own are refused; clients that are not browsers send no `Origin`.
fn check_origin(req: &Request) -> std::result::Result<(), NetError> {
    if !req.uri().path().starts_with("/api/v1/stream/") {
        return Ok(());
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return Ok(()) };
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest).trim_end_matches('/');
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(NetError::Forbidden {
        reason: format!("a page from {origin} may not open streams on this node ({host}); serve the page from the node"),
    })
}

async fn guard(State(s): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    if let Err(e) = check_origin(&req) {
        return ApiError::from(e).into_response();
    }
    stream_query_headers(&mut req);
    if let Err(e) = check_version(req.headers()) {
        return ApiError::from(e).into_response();
    }
    if req.uri().path() != "/api/v1/auth/login" {
        let user = match s.auth.check(req.headers(), s.engine.users()) {
            Ok(u) => u,
            Err(e) => return ApiError::from(e).into_response(),
        };
        // A stream's role is checked once it is open, so the refusal reaches the client as
        // the stream's `closed` error: a browser cannot read the body of a refused upgrade.
        let stream = req.uri().path().starts_with("/api/v1/stream/");
        if !stream && let Err(e) = super::auth::permit(&user, req.uri().path()) {
            tracing::info!(key = "server", user = %user.name, role = %user.role, path = req.uri().path(), "request forbidden");
            return ApiError::from(e).into_response();
        }
        req.extensions_mut().insert(Principal(user));
    }
    if s.shutdown.is_triggered() {
        return ApiError::from(NetError::ServerShutdown).into_response();
    }
    next.run(req).await
}

/// The whole router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/check", post(|| async { Json(Empty {}) }))
        .route("/api/v1/channels/create", post(channels_create))
        .route("/api/v1/channels/retrieve", post(channels_retrieve))
        .route("/api/v1/channels/search", post(channels_search))
        .route("/api/v1/channels/rename", post(channels_rename))
        .route("/api/v1/channels/compression", post(channels_compression))
        .route("/api/v1/channels/delete", post(channels_delete))
        .route("/api/v1/channels/time_range", post(channels_time_range))
        .route("/api/v1/ranges/create", post(ranges_create))
        .route("/api/v1/ranges/retrieve", post(ranges_retrieve))
        .route("/api/v1/ranges/search", post(ranges_search))
        .route("/api/v1/ranges/children", post(ranges_children))
        .route("/api/v1/ranges/labels", post(ranges_labels))
        .route("/api/v1/ranges/rename", post(ranges_rename))
        .route("/api/v1/ranges/delete", post(ranges_delete))
        .route("/api/v1/ranges/meta/get", post(meta_get))
        .route("/api/v1/ranges/meta/set", post(meta_set))
        .route("/api/v1/ranges/meta/delete", post(meta_delete))
        .route("/api/v1/frames/read", post(frames_read))
        .route("/api/v1/frames/write", post(frames_write))
        .route("/api/v1/frames/delete", post(frames_delete))
        .route("/api/v1/control/states", post(control_states))
        .route("/api/v1/stream/writer", any(stream_writer))
        .route("/api/v1/stream/streamer", any(stream_streamer))
        .route("/api/v1/stream/iterator", any(stream_iterator));
    #[cfg(feature = "flow")]
    let api = api.merge(super::flows::routes());
    let api = api.merge(super::observe::routes());
    let api = api.route_layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/api/v1/health", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route("/api/v1/version", get(version))
        .merge(super::dashboard::routes())
        .merge(api)
        .merge(super::observe::metrics_route())
        .route_layer(middleware::from_fn_with_state(state.clone(), super::observe::track))
        .fallback(|| async { ApiError(Error::InvalidArgument { reason: "no such route; see docs/protocol.md".into() }) })
        .with_state(state)
}

/// What a connection over the node's limit is served: every request (stream opens too)
/// gets `server.busy` (HTTP 503) naming the limit.
pub(crate) fn busy_router(limit: usize) -> Router {
    Router::new().fallback(move || async move { ApiError(NetError::Busy { limit: limit as u64 }.into()) })
}

/// `auth.forbidden` unless `user` may write every channel of `keys`.
pub(crate) fn permit_writes(e: &crate::Engine, user: &crate::users::User, keys: &[crate::channel::ChannelKey]) -> crate::Result<()> {
    for &k in keys {
        let ch = e.channels().get(k)?;
        // Index channels are written with the data channels they time, and are not matched
        // against the patterns (a writer adds them itself; a one-shot write carries them).
        if ch.is_index() && user.role >= crate::users::Role::Operator {
            continue;
        }
        if !user.may_write(&ch.name) {
            return Err(NetError::Forbidden {
                reason: format!("{} ({}) may not write {:?}; their channels are {:?}", user.name, user.role, ch.name, user.channels),
            }
            .into());
        }
    }
    Ok(())
}

/// `auth.forbidden` unless `user` may command at every authority of `authorities`.
pub(crate) fn permit_authorities(user: &crate::users::User, authorities: impl IntoIterator<Item = u8>) -> crate::Result<()> {
    match authorities.into_iter().find(|&a| !user.may_command_at(a)) {
        Some(a) => Err(NetError::Forbidden {
            reason: format!("{} ({}) may command at authority {} at most, not {a}", user.name, user.role, user.max_authority),
        }
        .into()),
        None => Ok(()),
    }
}

/// Read a request body, refusing more than the configured limit.
pub(crate) async fn body_bytes(s: &AppState, body: Body) -> std::result::Result<Bytes, ApiError> {
    let limit = s.config.max_message_bytes;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(NetError::TooLarge { size: limit as u64 + 1, limit: limit as u64 }.into())
        }
        Err(e) => Err(NetError::lost(e).into()),
    }
}

/// Run `f` on the engine off the async threads.
pub(crate) async fn blocking<R: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(Engine) -> Result<R> + Send + 'static,
) -> std::result::Result<R, ApiError> {
    let e = s.engine.clone();
    // The request's span goes with the work (its engine and storage spans are children).
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(|| f(e))).await {
        Ok(r) => r.map_err(ApiError),
        Err(e) => Err(NetError::Server { reason: format!("request handler failed: {e}") }.into()),
    }
}

/// Parse a JSON body, run `f` on the engine, reply JSON.
async fn call<Q, R>(
    s: &AppState,
    body: Body,
    f: impl FnOnce(Engine, Q) -> Result<R> + Send + 'static,
) -> std::result::Result<Json<R>, ApiError>
where
    Q: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    let q: Q = parse_json(&body_bytes(s, body).await?)?;
    Ok(Json(blocking(s, move |e| f(e, q)).await?))
}

type Reply<R> = std::result::Result<Json<R>, ApiError>;
type St = State<Arc<AppState>>;

async fn version(State(s): St) -> Json<VersionInfo> {
    Json(VersionInfo {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
        auth_required: s.auth.required(s.engine.users()),
        max_message_bytes: s.config.max_message_bytes as u64,
    })
}

async fn login(State(s): St, body: Body) -> Reply<LoginResponse> {
    let q: LoginRequest = parse_json(&body_bytes(&s, body).await?)?;
    let st = s.clone();
    let token = tokio::task::spawn_blocking(move || st.auth.login(&q.username, &q.password, st.engine.users()))
        .await
        .map_err(|e| NetError::Server { reason: format!("login failed: {e}") })??;
    Ok(Json(LoginResponse { token }))
}

async fn channels_create(State(s): St, body: Body) -> Reply<ChannelList> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: CreateChannels = parse_json(&body_bytes(&s, body).await?)?;
        return Ok(Json(ChannelList { channels: c.create_channels(q.channels, q.retrieve_if_name_exists, q.place.as_deref()).await? }));
    }
    call(&s, body, |e, q: CreateChannels| match q.place {
        Some(node) => Err(Error::InvalidArgument {
            reason: format!("this node is not part of a cluster, so channels cannot be placed on {node:?}; leave out `place`"),
        }),
        None => Ok(ChannelList { channels: e.create_channels_with(q.channels, q.retrieve_if_name_exists)? }),
    })
    .await
}

async fn channels_retrieve(State(s): St, body: Body) -> Reply<ChannelList> {
    call(&s, body, |e, q: RetrieveChannels| {
        let channels = q
            .refs
            .iter()
            .map(|r| {
                let c = match r {
                    ChannelRef::Key(k) => e.channels().get(*k)?,
                    ChannelRef::Name(n) => e.channels().by_name(n)?,
                };
                Ok((*c).clone())
            })
            .collect::<Result<Vec<Channel>>>()?;
        Ok(ChannelList { channels })
    })
    .await
}

async fn channels_search(State(s): St, body: Body) -> Reply<ChannelList> {
    call(&s, body, |e, q: Search| Ok(ChannelList { channels: e.channels().search(&q.term).into_iter().map(|c| (*c).clone()).collect() }))
        .await
}

async fn channels_rename(State(s): St, body: Body) -> Reply<ChannelOne> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: RenameChannel = parse_json(&body_bytes(&s, body).await?)?;
        return Ok(Json(ChannelOne { channel: c.rename_channel(q.key, &q.name).await? }));
    }
    call(&s, body, |e, q: RenameChannel| Ok(ChannelOne { channel: e.rename_channel(q.key, &q.name)? })).await
}

async fn channels_compression(State(s): St, body: Body) -> Reply<ChannelOne> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: SetCompression = parse_json(&body_bytes(&s, body).await?)?;
        return Ok(Json(ChannelOne { channel: c.set_channel_compression(q.key, q.compression).await? }));
    }
    call(&s, body, |e, q: SetCompression| Ok(ChannelOne { channel: e.set_channel_compression(q.key, q.compression)? })).await
}

async fn channels_delete(State(s): St, body: Body) -> Reply<Empty> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: Keys = parse_json(&body_bytes(&s, body).await?)?;
        c.delete_channels(&q.keys).await?;
        return Ok(Json(Empty {}));
    }
    call(&s, body, |e, q: Keys| e.delete_channels(&q.keys).map(|_| Empty {})).await
}

async fn channels_time_range(State(s): St, body: Body) -> Reply<Extent> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: Key = parse_json(&body_bytes(&s, body).await?)?;
        return Ok(Json(Extent { range: c.time_range(q.key).await? }));
    }
    call(&s, body, |e, q: Key| Ok(Extent { range: e.time_range(q.key)? })).await
}

async fn ranges_create(State(s): St, body: Body) -> Reply<RangeOne> {
    call(&s, body, |e, q: CreateRange| Ok(RangeOne { range: e.ranges().create(q.range)? })).await
}

async fn ranges_retrieve(State(s): St, body: Body) -> Reply<RangeOne> {
    call(&s, body, |e, q: RangeKey| Ok(RangeOne { range: e.ranges().get(q.key)? })).await
}

async fn ranges_search(State(s): St, body: Body) -> Reply<RangeList> {
    call(&s, body, |e, q: RangeQuery| Ok(RangeList { ranges: e.ranges().query(&q)? })).await
}

async fn ranges_children(State(s): St, body: Body) -> Reply<RangeList> {
    call(&s, body, |e, q: RangeKey| Ok(RangeList { ranges: e.ranges().children(q.key)? })).await
}

async fn ranges_labels(State(s): St, body: Body) -> Reply<RangeOne> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: RangeLabels = parse_json(&body_bytes(&s, body).await?)?;
        return Ok(Json(RangeOne { range: c.set_range_labels(q.key, q.labels).await? }));
    }
    call(&s, body, |e, q: RangeLabels| Ok(RangeOne { range: e.ranges().set_labels(q.key, q.labels)? })).await
}

async fn ranges_rename(State(s): St, body: Body) -> Reply<RangeOne> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: RenameRange = parse_json(&body_bytes(&s, body).await?)?;
        return Ok(Json(RangeOne { range: c.rename_range(q.key, &q.name).await? }));
    }
    call(&s, body, |e, q: RenameRange| Ok(RangeOne { range: e.ranges().rename(q.key, &q.name)? })).await
}

async fn ranges_delete(State(s): St, body: Body) -> Reply<Empty> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: RangeKeys = parse_json(&body_bytes(&s, body).await?)?;
        c.delete_ranges(&q.keys).await?;
        return Ok(Json(Empty {}));
    }
    call(&s, body, |e, q: RangeKeys| Ok(e.ranges().delete(&q.keys).map(|_| Empty {})?)).await
}

async fn meta_get(State(s): St, body: Body) -> Reply<Meta> {
    call(&s, body, |e, q: RangeKey| Ok(Meta { key: q.key, entries: e.ranges().meta_data(q.key)? })).await
}

async fn meta_set(State(s): St, body: Body) -> Reply<Empty> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: Meta = parse_json(&body_bytes(&s, body).await?)?;
        c.set_range_meta(q.key, q.entries).await?;
        return Ok(Json(Empty {}));
    }
    call(&s, body, |e, q: Meta| Ok(e.ranges().set_meta_data(q.key, &q.entries).map(|_| Empty {})?)).await
}

async fn meta_delete(State(s): St, body: Body) -> Reply<Empty> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: MetaNames = parse_json(&body_bytes(&s, body).await?)?;
        c.delete_range_meta(q.key, q.names).await?;
        return Ok(Json(Empty {}));
    }
    call(&s, body, |e, q: MetaNames| {
        let names: Vec<&str> = q.names.iter().map(String::as_str).collect();
        Ok(e.ranges().delete_meta_data(q.key, &names).map(|_| Empty {})?)
    })
    .await
}

/// The frame goes out as a list of buffers (series data straight from the mapped segment
/// files), so a large read never builds its whole encoding in the node's memory.
/// With [`COMPRESS_HEADER`], series are compressed where it pays, on the blocking pool.
async fn frames_read(State(s): St, headers: HeaderMap, body: Body) -> std::result::Result<Response, ApiError> {
    let q: ReadFrames = parse_json(&body_bytes(&s, body).await?)?;
    let compress = wants_compression(&headers);
    #[cfg(feature = "cluster")]
    if let Some(c) = s.config.cluster.as_ref().filter(|c| q.keys.iter().any(|k| !c.is_local(*k))) {
        let f = c.read(q.range, &q.keys, q.reduce).await?;
        let chunks = if compress { blocking(&s, move |_| Ok(codec::encode_chunks_for(&f, true))).await? } else { codec::encode_chunks(&f) };
        return Ok(frame_response(chunks));
    }
    let chunks = blocking(&s, move |e| {
        let f = match &q.reduce {
            Some(r) => e.read_reduced(q.range, &q.keys, r)?,
            None => e.read(q.range, &q.keys)?,
        };
        Ok(codec::encode_chunks_for(&f, compress))
    })
    .await?;
    Ok(frame_response(chunks))
}

/// A frame's encoding, in `chunks`, as a response body.
fn frame_response(chunks: Vec<Bytes>) -> Response {
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let body = Body::from_stream(futures_util::stream::iter(chunks.into_iter().map(Ok::<Bytes, std::convert::Infallible>)));
    ([(header::CONTENT_TYPE, FRAME_CONTENT_TYPE.to_string()), (header::CONTENT_LENGTH, len.to_string())], body).into_response()
}

async fn frames_write(State(s): St, Extension(Principal(user)): Extension<Principal>, RawQuery(query): RawQuery, body: Body) -> Reply<End> {
    let start = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("start="))
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| NetError::protocol("frames/write needs ?start=<nanoseconds>"))?;
    let frame = codec::decode(body_bytes(&s, body).await?).map_err(|e| NetError::protocol(format!("undecodable frame: {e}")))?;
    #[cfg(feature = "cluster")]
    if let Some(c) = s.config.cluster.as_ref().filter(|c| frame.unique_keys().iter().any(|k| !c.is_local(*k))) {
        permit_writes(&s.engine, &user, &frame.unique_keys())?;
        return Ok(Json(End { end: c.write_at(TimeStamp(start), frame, user.max_authority).await? }));
    }
    Ok(Json(End {
        end: blocking(&s, move |e| {
            permit_writes(&e, &user, &frame.unique_keys())?;
            // An operator writes at their highest authority, never above it.
            e.write_at(TimeStamp(start), frame, user.max_authority)
        })
        .await?,
    }))
}

async fn frames_delete(State(s): St, body: Body) -> Reply<Empty> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: RangeOfKeys = parse_json(&body_bytes(&s, body).await?)?;
        c.delete(q.range, &q.keys).await?;
        return Ok(Json(Empty {}));
    }
    call(&s, body, |e, q: RangeOfKeys| e.delete(q.range, &q.keys).map(|_| Empty {})).await
}

async fn control_states(State(s): St, body: Body) -> Reply<States> {
    #[cfg(feature = "cluster")]
    if let Some(c) = &s.config.cluster {
        let q: Keys = parse_json(&body_bytes(&s, body).await?)?;
        return Ok(Json(States { states: c.control_states(&q.keys).await? }));
    }
    call(&s, body, |e, q: Keys| Ok(States { states: e.control_states(&q.keys) })).await
}

/// The upgrade of a stream of `kind`: messages up to the node's limit, and a small read
/// buffer where the node receives only small requests.
fn upgrade(s: &AppState, ws: WebSocketUpgrade, kind: StreamKind) -> WebSocketUpgrade {
    let limit = s.config.max_message_bytes;
    let ws = ws.max_message_size(limit).max_frame_size(limit);
    if kind.server_reads_small() { ws.read_buffer_size(crate::protocol::SMALL_READ_BUFFER) } else { ws }
}

/// What one stream runs in after its upgrade: its connection's number (the upgraded stream
/// runs in a task of its own, so it is taken in the handler), its key `server/conn/<n>/<kind>`
/// and the span of its whole life (trace level basic). The span is a child of the upgrade
/// request's span, so of the caller's `traceparent`; the engine and storage work of the
/// stream nests under it.
struct StreamContext {
    conn: Option<u64>,
    key: String,
    span: tracing::Span,
}

fn stream_context(kind: StreamKind) -> StreamContext {
    let conn = super::conn_id();
    let key = super::conn_key_of(conn, kind.as_str());
    let span = tracing::info_span!("telemetron.stream", key = key.as_str(), stream = kind.as_str());
    StreamContext { conn, key, span }
}

/// Run an upgraded stream in its context, logging (level detailed) when it starts and ends.
async fn run_stream(cx: StreamContext, f: impl std::future::Future<Output = ()>) {
    let StreamContext { conn, key, span } = cx;
    let run = async move {
        let t0 = std::time::Instant::now();
        tracing::debug!(key = key.as_str(), "stream started");
        f.await;
        tracing::debug!(key = key.as_str(), took_ms = t0.elapsed().as_millis() as u64, "stream ended");
    };
    super::in_conn(conn, tracing::Instrument::instrument(run, span)).await
}

async fn stream_writer(State(s): St, Extension(Principal(user)): Extension<Principal>, ws: WebSocketUpgrade) -> Response {
    let cx = stream_context(StreamKind::Writer);
    let st = s.clone();
    upgrade(&s, ws, StreamKind::Writer).on_upgrade(move |socket| run_stream(cx, super::ws_writer::run(st, socket, user)))
}

async fn stream_streamer(State(s): St, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let cx = stream_context(StreamKind::Streamer);
    let (st, compress) = (s.clone(), wants_compression(&headers));
    upgrade(&s, ws, StreamKind::Streamer).on_upgrade(move |socket| run_stream(cx, super::ws_streamer::run(st, socket, compress)))
}

async fn stream_iterator(State(s): St, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let cx = stream_context(StreamKind::Iterator);
    let (st, compress) = (s.clone(), wants_compression(&headers));
    upgrade(&s, ws, StreamKind::Iterator).on_upgrade(move |socket| run_stream(cx, super::ws_iterator::run(st, socket, compress)))
}

/// True when the request carries [`COMPRESS_HEADER`]`: 1`: the client decodes compressed
/// series, so the frames sent back may carry them (`codec::encode_chunks_for`).
fn wants_compression(headers: &HeaderMap) -> bool {
    headers.get(COMPRESS_HEADER).is_some_and(|v| v.as_bytes() == b"1")
}
