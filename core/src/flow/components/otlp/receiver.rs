//! `otlp_receiver`: OTLP metrics, logs and traces into a flow, over gRPC (default
//! `127.0.0.1:4317`) and HTTP (default `127.0.0.1:4318`, paths `/v1/metrics`, `/v1/logs`,
//! `/v1/traces`; binary protobuf or JSON), as the OpenTelemetry specification names them,
//! uncompressed or gzip-compressed.
//!
//! Each export request becomes one message. The sender gets its answer when the flow has
//! settled the message: success after the ACK (after the commit, behind a
//! `channels_exporter`), `UNAVAILABLE` / HTTP 503 for a retryable NACK (the sender's OTLP
//! exporter retries), `INVALID_ARGUMENT` / HTTP 400 for a permanent one. Nothing is
//! acknowledged to a sender before the flow has it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tonic::codec::CompressionEncoding::Gzip;

use super::super::super::compile::{PortType, Role, Signature};
use super::super::super::message::{Message, SignalType, Signals};
use super::super::super::runtime::ReceiverCx;
use super::super::super::signal::{Control, Nack};
use super::super::super::{BoxFuture, FlowError, Receiver};
use super::super::{Built, Component, options};
use super::convert;

/// Requests larger than this are refused (the OTel collector's default is 4 MiB for gRPC;
/// HTTP bodies get the same limit).
const MAX_REQUEST_BYTES: usize = 16 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverOptions {
    /// gRPC listen address, or `off`.
    #[serde(default = "default_grpc")]
    grpc: String,
    /// HTTP/protobuf listen address, or `off`.
    #[serde(default = "default_http")]
    http: String,
    /// The signals accepted (others are answered `UNIMPLEMENTED` / 404); the output port
    /// carries exactly these.
    #[serde(default = "default_signals")]
    signals: Vec<String>,
    /// Resource attributes copied into every row's attributes (the rest are dropped).
    #[serde(default = "default_resource")]
    resource_attributes: Vec<String>,
}

fn default_grpc() -> String {
    "127.0.0.1:4317".into()
}
fn default_http() -> String {
    "127.0.0.1:4318".into()
}
fn default_signals() -> Vec<String> {
    vec!["metrics".into(), "logs".into(), "traces".into()]
}
fn default_resource() -> Vec<String> {
    vec!["service.name".into()]
}

fn address(v: &str, what: &str) -> Result<Option<SocketAddr>, String> {
    if v == "off" {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| format!("`{what}`: {v:?} is not an address like 127.0.0.1:4317 (or `off`)"))
}

pub(crate) fn build(v: &serde_json::Value) -> Result<Built, String> {
    let o: ReceiverOptions = options(v)?;
    let grpc = address(&o.grpc, "grpc")?;
    let http = address(&o.http, "http")?;
    if grpc.is_none() && http.is_none() {
        return Err("`grpc` and `http` are both off: the receiver would listen nowhere".into());
    }
    let mut signals = Signals::NONE;
    for s in &o.signals {
        match SignalType::parse(s) {
            Some(t @ (SignalType::Metrics | SignalType::Logs | SignalType::Traces)) => signals = signals.with(t),
            _ => return Err(format!("`signals`: {s:?} is not one of metrics, logs, traces")),
        }
    }
    if signals.is_empty() {
        return Err("`signals` names at least one of metrics, logs, traces".into());
    }
    Ok(Built {
        signature: Signature { role: Role::Receiver, accepts: Signals::NONE, ports: vec![("out", PortType::Fixed(signals))] },
        component: Component::Receiver(Box::new(OtlpReceiver { grpc, http, signals, keep: Arc::new(o.resource_attributes) })),
    })
}

struct OtlpReceiver {
    grpc: Option<SocketAddr>,
    http: Option<SocketAddr>,
    signals: Signals,
    keep: Arc<Vec<String>>,
}

/// A decoded request on its way to the flow, and where its outcome goes.
type Submission = (Message, oneshot::Sender<Result<(), Nack>>);

/// What the gRPC services and HTTP handlers share: the way into the receiver's loop.
#[derive(Clone)]
struct Intake {
    tx: mpsc::Sender<Submission>,
    signals: Signals,
    keep: Arc<Vec<String>>,
}

/// Why a request was not taken.
enum Refused {
    /// Not a signal this receiver takes.
    NotServed(SignalType),
    /// The request could not be turned into rows.
    Bad(String),
    /// The flow NACKed it.
    Nack(Nack),
}

impl Intake {
    /// Hand `batch` (if any rows) to the flow and wait for its outcome.
    async fn submit(
        &self,
        signal: SignalType,
        convert: impl FnOnce(&[String]) -> Result<Option<arrow_array::RecordBatch>, arrow_schema::ArrowError>,
    ) -> Result<(), Refused> {
        if !self.signals.contains(signal) {
            return Err(Refused::NotServed(signal));
        }
        let Some(batch) = convert(&self.keep).map_err(|e| Refused::Bad(e.to_string()))? else { return Ok(()) };
        let (tx, rx) = oneshot::channel();
        if self.tx.send((Message::new(signal, batch), tx)).await.is_err() {
            return Err(Refused::Nack(Nack::unavailable("the flow is stopping")));
        }
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(nack)) => Err(Refused::Nack(nack)),
            Err(_) => Err(Refused::Nack(Nack::unavailable("the flow stopped before the data was stored"))),
        }
    }
}

impl Refused {
    fn status(self) -> tonic::Status {
        match self {
            Refused::NotServed(s) => tonic::Status::unimplemented(format!("this receiver does not take {s}")),
            Refused::Bad(m) => tonic::Status::invalid_argument(m),
            Refused::Nack(n) if n.retryable => tonic::Status::unavailable(n.to_string()),
            Refused::Nack(n) => tonic::Status::invalid_argument(n.to_string()),
        }
    }

    fn http(self) -> Response {
        let (code, m) = match self {
            Refused::NotServed(s) => (StatusCode::NOT_FOUND, format!("this receiver does not take {s}")),
            Refused::Bad(m) => (StatusCode::BAD_REQUEST, m),
            Refused::Nack(n) if n.retryable => (StatusCode::SERVICE_UNAVAILABLE, n.to_string()),
            Refused::Nack(n) => (StatusCode::BAD_REQUEST, n.to_string()),
        };
        let mut r = (code, m).into_response();
        if code == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

#[tonic::async_trait]
impl MetricsService for Intake {
    async fn export(
        &self,
        r: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let req = r.into_inner();
        self.submit(SignalType::Metrics, |k| convert::metrics_batch(&req, k)).await.map_err(Refused::status)?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl LogsService for Intake {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let req = r.into_inner();
        self.submit(SignalType::Logs, |k| convert::logs_batch(&req, k)).await.map_err(Refused::status)?;
        Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl TraceService for Intake {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = r.into_inner();
        self.submit(SignalType::Traces, |k| convert::traces_batch(&req, k)).await.map_err(Refused::status)?;
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// How an OTLP/HTTP body is encoded (its `Content-Type`); the answer uses the same.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Undo a `Content-Encoding` of `gzip`, `deflate` (zlib) or none, at most
/// [`MAX_REQUEST_BYTES`] out, so a small compressed body cannot expand without bound.
fn decompress(headers: &HeaderMap, body: &Bytes) -> Result<Bytes, (StatusCode, String)> {
    use std::io::Read;
    let enc = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    let reader: Box<dyn Read + '_> = match enc.to_ascii_lowercase().as_str() {
        "" | "identity" => return Ok(body.clone()),
        "gzip" => Box::new(flate2::read::GzDecoder::new(body.as_ref())),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(body.as_ref())),
        _ => return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("content encoding {enc:?}: send gzip, deflate or uncompressed"))),
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(MAX_REQUEST_BYTES));
    reader
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("the body is not valid {enc}: {e}")))?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, format!("the body expands beyond {MAX_REQUEST_BYTES} bytes; send smaller batches")));
    }
    Ok(out.into())
}

/// Decode an HTTP body: binary protobuf (`application/x-protobuf`) or OTLP's JSON
/// (`application/json`: lowerCamelCase fields, hex trace and span ids, integer enums),
/// uncompressed, gzip or deflate.
fn decode<T: prost::Message + Default + serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(T, Encoding), (StatusCode, String)> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let enc = match ct.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            let m = format!("content type {ct:?}: this receiver takes application/x-protobuf or application/json");
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, m));
        }
    };
    let body = decompress(headers, body)?;
    let req = match enc {
        Encoding::Protobuf => T::decode(body.as_ref()).map_err(|e| format!("not an OTLP protobuf message: {e}")),
        Encoding::Json => serde_json::from_slice(&body)
            .map(|mut v| {
                normalize_json(&mut v);
                v
            })
            .and_then(serde_json::from_value)
            .map_err(|e| format!("not an OTLP JSON message: {e}")),
    };
    req.map(|r| (r, enc)).map_err(|m| (StatusCode::BAD_REQUEST, m))
}

/// Make OTLP JSON what `opentelemetry-proto`'s serde reads. Two gaps of that crate (0.32):
/// - a metric point's `asInt` is read as a number only, and OTLP JSON writes 64-bit
///   integers as strings (a string would leave the point without a value);
/// - a few messages have no field defaults (exponential histogram points and their
///   buckets, exemplars, summary quantiles), and JSON encoders leave zero values out, as
///   the protobuf JSON mapping allows; those get their zero values here.
fn normalize_json(v: &mut serde_json::Value) {
    use serde_json::{Value, json};
    fn fill(v: &mut Value, defaults: &Value) {
        if let (Value::Object(m), Value::Object(d)) = (v, defaults) {
            for (k, x) in d {
                m.entry(k.clone()).or_insert_with(|| x.clone());
            }
        }
    }
    fn each(v: &mut Value, key: &str, defaults: &Value) {
        if let Some(Value::Array(a)) = v.get_mut(key) {
            a.iter_mut().for_each(|x| fill(x, defaults));
        }
    }
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(h)) = m.get_mut("exponentialHistogram")
                && let Some(Value::Array(points)) = h.get_mut("dataPoints")
            {
                let point = json!({"attributes": [], "startTimeUnixNano": "0", "timeUnixNano": "0", "count": "0", "scale": 0,
                    "zeroCount": "0", "flags": 0, "exemplars": [], "zeroThreshold": 0.0});
                for p in points.iter_mut() {
                    fill(p, &point);
                    for side in ["positive", "negative"] {
                        if let Some(b) = p.get_mut(side) {
                            fill(b, &json!({"offset": 0, "bucketCounts": []}));
                        }
                    }
                }
            }
            each(v, "exemplars", &json!({"filteredAttributes": [], "timeUnixNano": "0", "spanId": "", "traceId": ""}));
            each(v, "quantileValues", &json!({"quantile": 0.0, "value": 0.0}));
            let Value::Object(m) = v else { return };
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(s) if k == "asInt" => {
                        if let Ok(n) = s.trim().parse::<i64>() {
                            *x = n.into();
                        }
                    }
                    _ => normalize_json(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_json),
        _ => {}
    }
}

/// Rows of a decoded request.
type Rows<R> = fn(&R, &[String]) -> Result<Option<arrow_array::RecordBatch>, arrow_schema::ArrowError>;

/// One OTLP/HTTP export: decode, hand to the flow, answer with the (empty) response `A`,
/// in the request's encoding, once the flow has settled it.
async fn http_export<R, A>(i: &Intake, headers: &HeaderMap, body: &Bytes, signal: SignalType, rows: Rows<R>) -> Response
where
    R: prost::Message + Default + serde::de::DeserializeOwned + 'static,
    A: prost::Message + Default + serde::Serialize,
{
    // Inflating and parsing up to 16 MiB is work for a blocking thread, not the runtime's.
    let (h, b) = (headers.clone(), body.clone());
    let decoded = tokio::task::spawn_blocking(move || decode::<R>(&h, &b))
        .await
        .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, format!("decoding the request failed: {e}"))));
    let (req, enc): (R, Encoding) = match decoded {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match i.submit(signal, |k| rows(&req, k)).await {
        Ok(()) => {
            let answer = match enc {
                Encoding::Protobuf => A::default().encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&A::default()).unwrap_or_else(|_| b"{}".to_vec()),
            };
            ([(header::CONTENT_TYPE, enc.content_type())], answer).into_response()
        }
        Err(r) => r.http(),
    }
}

async fn http_metrics(State(i): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    http_export::<ExportMetricsServiceRequest, ExportMetricsServiceResponse>(
        &i,
        &headers,
        &body,
        SignalType::Metrics,
        convert::metrics_batch,
    )
    .await
}

async fn http_logs(State(i): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    http_export::<ExportLogsServiceRequest, ExportLogsServiceResponse>(&i, &headers, &body, SignalType::Logs, convert::logs_batch).await
}

async fn http_traces(State(i): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    http_export::<ExportTraceServiceRequest, ExportTraceServiceResponse>(&i, &headers, &body, SignalType::Traces, convert::traces_batch)
        .await
}

async fn bind(addr: SocketAddr, what: &str) -> Result<tokio::net::TcpListener, FlowError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| FlowError::Io { context: format!("OTLP {what} receiver: binding {addr}"), source })
}

impl Receiver for OtlpReceiver {
    fn run(self: Box<Self>, mut cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        Box::pin(async move {
            let (tx, mut rx) = mpsc::channel::<Submission>(64);
            let intake = Intake { tx, signals: self.signals, keep: self.keep.clone() };
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let mut servers = tokio::task::JoinSet::new();
            if let Some(addr) = self.grpc {
                let listener = bind(addr, "gRPC").await?;
                tracing::info!(key = cx.key(), %addr, "OTLP gRPC receiver listening");
                let router = tonic::transport::Server::builder()
                    .add_service(
                        MetricsServiceServer::new(intake.clone()).max_decoding_message_size(MAX_REQUEST_BYTES).accept_compressed(Gzip),
                    )
                    .add_service(
                        LogsServiceServer::new(intake.clone()).max_decoding_message_size(MAX_REQUEST_BYTES).accept_compressed(Gzip),
                    )
                    .add_service(
                        TraceServiceServer::new(intake.clone()).max_decoding_message_size(MAX_REQUEST_BYTES).accept_compressed(Gzip),
                    );
                let mut stop = stop_rx.clone();
                servers.spawn(async move {
                    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                    let _ = router.serve_with_incoming_shutdown(incoming, async move { drop(stop.wait_for(|s| *s).await) }).await;
                });
            }
            if let Some(addr) = self.http {
                let listener = bind(addr, "HTTP").await?;
                tracing::info!(key = cx.key(), %addr, "OTLP HTTP receiver listening");
                let app = axum::Router::new()
                    .route("/v1/metrics", axum::routing::post(http_metrics))
                    .route("/v1/logs", axum::routing::post(http_logs))
                    .route("/v1/traces", axum::routing::post(http_traces))
                    .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
                    .with_state(intake.clone());
                let mut stop = stop_rx.clone();
                servers.spawn(async move {
                    let _ = axum::serve(listener, app).with_graceful_shutdown(async move { drop(stop.wait_for(|s| *s).await) }).await;
                });
            }
            drop(intake);
            let mut waiting: std::collections::HashMap<u64, oneshot::Sender<Result<(), Nack>>> = Default::default();
            let mut next = 0u64;
            loop {
                while let Some(c) = cx.try_control() {
                    settle(&mut waiting, c);
                }
                if cx.stopping() {
                    break;
                }
                tokio::select! {
                    s = rx.recv() => {
                        let Some((mut msg, done)) = s else { break };
                        next += 1;
                        cx.subscribe(&mut msg, next);
                        waiting.insert(next, done);
                        if let Err(nack) = cx.send(msg).await
                            && let Some(done) = waiting.remove(&next)
                        {
                            let _ = done.send(Err(nack));
                        }
                    }
                    c = cx.next_control() => match c {
                        Some(c) => settle(&mut waiting, c),
                        None => break,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            // Stop listening, then wait for the outcome of what was sent: each sender
            // still gets its answer.
            let _ = stop_tx.send(true);
            rx.close();
            while let Ok((msg, done)) = rx.try_recv() {
                drop(msg);
                let _ = done.send(Err(Nack::unavailable("the flow is stopping")));
            }
            cx.end_of_input();
            while !waiting.is_empty() {
                match cx.next_control().await {
                    Some(c) => settle(&mut waiting, c),
                    None => break,
                }
            }
            for (_, done) in waiting.drain() {
                let _ = done.send(Err(Nack::unavailable("the flow stopped before the data was stored")));
            }
            while servers.join_next().await.is_some() {}
            Ok(())
        })
    }
}

fn settle(waiting: &mut std::collections::HashMap<u64, oneshot::Sender<Result<(), Nack>>>, c: Control) {
    match c {
        Control::Ack { token, .. } => {
            if let Some(done) = waiting.remove(&token) {
                let _ = done.send(Ok(()));
            }
        }
        Control::Nack { token, nack, .. } => {
            if let Some(done) = waiting.remove(&token) {
                let _ = done.send(Err(nack));
            }
        }
        _ => {}
    }
}
