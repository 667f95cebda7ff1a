//! `otlp_exporter`: metrics, logs and traces out of a flow to an OTLP endpoint (a collector,
//! another `otlp_receiver`), over gRPC or HTTP/protobuf.
//!
//! Each message is one export request; its receipt is settled by the answer: ACK on
//! success, a retryable NACK (`unavailable`) when the endpoint cannot be reached or answers
//! that it is overloaded (gRPC `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED`,
//! `ABORTED`; HTTP 429, 502, 503, 504), a permanent NACK (`rejected`) for anything else. Put
//! a `retry` before it to resend, a durable queue to survive a restart.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;
use serde::Deserialize;

use super::super::super::compile::{Role, Signature};
use super::super::super::config::duration;
use super::super::super::message::{Message, Receipt, SignalType, Signals};
use super::super::super::signal::Nack;
use super::super::super::{BoxFuture, Exporter, FlowError};
use super::super::{Built, Component, options};
use super::convert;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Protocol {
    Grpc,
    Http,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExporterOptions {
    /// `http://host:port`: for gRPC the server, for HTTP the base to which `/v1/metrics`,
    /// `/v1/logs` and `/v1/traces` are added.
    endpoint: String,
    /// `grpc` (default) or `http` (HTTP/protobuf).
    #[serde(default = "default_protocol")]
    protocol: Protocol,
    /// How long one export may take before it is NACKed as unavailable.
    #[serde(default = "default_timeout", with = "duration")]
    timeout: Duration,
    /// Row attributes that become resource attributes of the request.
    #[serde(default = "default_resource")]
    resource_attributes: Vec<String>,
}

fn default_protocol() -> Protocol {
    Protocol::Grpc
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_resource() -> Vec<String> {
    vec!["service.name".into(), "service.instance.id".into(), "service.version".into()]
}

pub(crate) fn build(v: &serde_json::Value) -> Result<Built, String> {
    let o: ExporterOptions = options(v)?;
    let uri: axum::http::Uri = o.endpoint.parse().map_err(|e| format!("`endpoint`: {:?} is not a URL: {e}", o.endpoint))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err("`endpoint`: https is not supported yet; use http (on loopback, or through a collector)".into()),
        _ => return Err(format!("`endpoint`: {:?} needs http:// and a host", o.endpoint)),
    }
    let accepts = Signals::of(SignalType::Metrics).with(SignalType::Logs).with(SignalType::Traces);
    Ok(Built {
        signature: Signature { role: Role::Exporter, accepts, ports: vec![] },
        component: Component::Exporter(Box::new(OtlpExporter { o, grpc: None, http: None })),
    })
}

struct OtlpExporter {
    o: ExporterOptions,
    grpc: Option<tonic::transport::Channel>,
    http: Option<HttpClient<HttpConnector, Full<Bytes>>>,
}

/// A failed export as a NACK.
fn grpc_nack(s: &tonic::Status) -> Nack {
    use tonic::Code::*;
    let m = format!("OTLP endpoint answered {:?}: {}", s.code(), s.message());
    match s.code() {
        Unavailable | ResourceExhausted | DeadlineExceeded | Aborted | Cancelled | Unknown => Nack::unavailable(m),
        _ => Nack::rejected(m),
    }
}

impl OtlpExporter {
    async fn send_grpc(&mut self, msg: &Message) -> Result<(), Nack> {
        let channel = match &self.grpc {
            Some(c) => c.clone(),
            None => {
                let ep = tonic::transport::Endpoint::from_shared(self.o.endpoint.clone())
                    .map_err(|e| Nack::rejected(format!("endpoint: {e}")))?
                    .timeout(self.o.timeout)
                    .connect_timeout(self.o.timeout);
                let c = ep.connect_lazy();
                self.grpc = Some(c.clone());
                c
            }
        };
        let lift = &self.o.resource_attributes;
        let r = match msg.signal {
            SignalType::Metrics => {
                let req = convert::metrics_request(&msg.data, lift).map_err(Nack::rejected)?;
                MetricsServiceClient::new(channel).export(req).await.map(drop)
            }
            SignalType::Logs => {
                let req = convert::logs_request(&msg.data, lift).map_err(Nack::rejected)?;
                LogsServiceClient::new(channel).export(req).await.map(drop)
            }
            SignalType::Traces => {
                let req = convert::traces_request(&msg.data, lift).map_err(Nack::rejected)?;
                TraceServiceClient::new(channel).export(req).await.map(drop)
            }
            other => return Err(Nack::rejected(format!("otlp_exporter does not send {other}"))),
        };
        r.map_err(|s| grpc_nack(&s))
    }

    async fn send_http(&mut self, msg: &Message) -> Result<(), Nack> {
        let lift = &self.o.resource_attributes;
        let (path, body) = match msg.signal {
            SignalType::Metrics => ("v1/metrics", convert::metrics_request(&msg.data, lift).map_err(Nack::rejected)?.encode_to_vec()),
            SignalType::Logs => ("v1/logs", convert::logs_request(&msg.data, lift).map_err(Nack::rejected)?.encode_to_vec()),
            SignalType::Traces => ("v1/traces", convert::traces_request(&msg.data, lift).map_err(Nack::rejected)?.encode_to_vec()),
            other => return Err(Nack::rejected(format!("otlp_exporter does not send {other}"))),
        };
        let client = self.http.get_or_insert_with(|| HttpClient::builder(TokioExecutor::new()).build_http()).clone();
        let url = format!("{}/{path}", self.o.endpoint.trim_end_matches('/'));
        let req = axum::http::Request::post(&url)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Nack::rejected(format!("{url}: {e}")))?;
        let resp = match tokio::time::timeout(self.o.timeout, client.request(req)).await {
            Err(_) => return Err(Nack::unavailable(format!("{url}: no answer within {:?}", self.o.timeout))),
            Ok(Err(e)) => return Err(Nack::unavailable(format!("{url}: {e}"))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = match tokio::time::timeout(self.o.timeout, resp.into_body().collect()).await {
            Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).chars().take(300).collect(),
            _ => String::new(),
        };
        let m = format!("{url} answered {status}: {text}");
        if matches!(status.as_u16(), 429 | 502 | 503 | 504) { Err(Nack::unavailable(m)) } else { Err(Nack::rejected(m)) }
    }
}

impl Exporter for OtlpExporter {
    fn export(&mut self, msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>> {
        Box::pin(async move {
            let r = match self.o.protocol {
                Protocol::Grpc => self.send_grpc(&msg).await,
                Protocol::Http => self.send_http(&msg).await,
            };
            match r {
                Ok(()) => {
                    receipt.ack();
                    Ok(())
                }
                Err(nack) => {
                    let e = FlowError::Component(nack.to_string());
                    receipt.nack(nack);
                    Err(e)
                }
            }
        })
    }
}
