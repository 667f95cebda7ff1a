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
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
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
    /// `http://host:port` or `https://host:port`: for gRPC the server, for HTTP the base to
    /// which `/v1/metrics`, `/v1/logs` and `/v1/traces` are added.
    endpoint: String,
    /// For `https`: a PEM file of the certificate authorities to trust (a collector's own
    /// CA); the web's public roots when absent.
    #[serde(default)]
    ca: Option<std::path::PathBuf>,
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
    let secure = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("`endpoint`: {:?} needs http:// or https:// and a host", o.endpoint)),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| format!("`endpoint`: {:?} has no host", o.endpoint))?;
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    if o.ca.is_some() && !secure {
        return Err("`ca` is for https endpoints; this one is http".into());
    }
    // The CA file is read now, so a wrong path fails the flow file, not every export.
    let ca_pem = match &o.ca {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("`ca`: cannot read {}: {e}", p.display()))?),
        None => None,
    };
    let scheme = if secure { "https" } else { "http" };
    let opts = crate::client::ConnectOptions { ca_cert: o.ca.clone(), timeout: o.timeout, ..Default::default() };
    let dial = crate::client::Endpoint::parse(&format!("{scheme}://{host}:{port}"), &opts).map_err(|e| format!("`endpoint`: {e}"))?;
    let base_path = uri.path().trim_end_matches('/').to_owned();
    let accepts = Signals::of(SignalType::Metrics).with(SignalType::Logs).with(SignalType::Traces);
    Ok(Built {
        signature: Signature { role: Role::Exporter, accepts, ports: vec![] },
        component: Component::Exporter(Box::new(OtlpExporter {
            o,
            dial,
            base_path,
            host: host.to_owned(),
            ca_pem,
            grpc: None,
            http: None,
        })),
    })
}

struct OtlpExporter {
    o: ExporterOptions,
    /// Where HTTP exports connect (TCP, then TLS for https).
    dial: crate::client::Endpoint,
    /// The endpoint's path, before `/v1/<signal>`.
    base_path: String,
    host: String,
    ca_pem: Option<Vec<u8>>,
    grpc: Option<tonic::transport::Channel>,
    /// The HTTP/1.1 connection kept between exports.
    http: Option<SendRequest<Full<Bytes>>>,
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
                let mut ep = tonic::transport::Endpoint::from_shared(self.o.endpoint.clone())
                    .map_err(|e| Nack::rejected(format!("endpoint: {e}")))?
                    .timeout(self.o.timeout)
                    .connect_timeout(self.o.timeout);
                if self.dial.secure() {
                    let name = self.host.trim_start_matches('[').trim_end_matches(']');
                    let tls = tonic::transport::ClientTlsConfig::new().domain_name(name);
                    let tls = match &self.ca_pem {
                        Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                        None => tls.with_webpki_roots(),
                    };
                    ep = ep.tls_config(tls).map_err(|e| Nack::rejected(format!("TLS for {}: {e}", self.o.endpoint)))?;
                }
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

    /// The kept connection if it is still usable, else a new one (TLS for https). A TLS
    /// failure (an untrusted certificate) is permanent: retrying cannot fix it.
    async fn sender(&mut self) -> Result<(SendRequest<Full<Bytes>>, bool), Nack> {
        if let Some(mut s) = self.http.take()
            && !s.is_closed()
            && s.ready().await.is_ok()
        {
            return Ok((s, true));
        }
        let io = self.dial.dial().await.map_err(|e| {
            let m = format!("{}: {e}", self.o.endpoint);
            // Only a certificate it does not trust is for good; a handshake cut short (a
            // collector restarting) is worth retrying.
            if e.code() == "net.tls" && m.contains("certificate") { Nack::rejected(m) } else { Nack::unavailable(m) }
        })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| Nack::unavailable(format!("{}: {e}", self.o.endpoint)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((sender, false))
    }

    async fn send_http(&mut self, msg: &Message) -> Result<(), Nack> {
        let lift = &self.o.resource_attributes;
        let (path, body) = match msg.signal {
            SignalType::Metrics => ("v1/metrics", convert::metrics_request(&msg.data, lift).map_err(Nack::rejected)?.encode_to_vec()),
            SignalType::Logs => ("v1/logs", convert::logs_request(&msg.data, lift).map_err(Nack::rejected)?.encode_to_vec()),
            SignalType::Traces => ("v1/traces", convert::traces_request(&msg.data, lift).map_err(Nack::rejected)?.encode_to_vec()),
            other => return Err(Nack::rejected(format!("otlp_exporter does not send {other}"))),
        };
        let url = format!("{}/{path}", self.o.endpoint.trim_end_matches('/'));
        let req = axum::http::Request::post(format!("{}/{path}", self.base_path))
            .header(axum::http::header::HOST, &self.dial.authority)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Nack::rejected(format!("{url}: {e}")))?;
        let timeout = self.o.timeout;
        let exchange = async {
            let (mut sender, kept) = self.sender().await?;
            let resp = match sender.send_request(req.clone()).await {
                // The collector closed the kept connection while it was idle: dial again, once.
                Err(_) if kept => {
                    sender = self.sender().await?.0;
                    sender.send_request(req).await
                }
                r => r,
            }
            .map_err(|e| Nack::unavailable(format!("{url}: {e}")))?;
            let status = resp.status();
            // Read the answer whole, so the connection can carry the next export.
            let body = resp.into_body().collect().await.map_err(|e| Nack::unavailable(format!("{url}: {e}")))?.to_bytes();
            self.http = Some(sender);
            Ok::<_, Nack>((status, body))
        };
        let (status, body) = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => return Err(Nack::unavailable(format!("{url}: no answer within {timeout:?}"))),
            Ok(r) => r?,
        };
        if status.is_success() {
            return Ok(());
        }
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
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
