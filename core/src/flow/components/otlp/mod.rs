//! OpenTelemetry in and out of flows (feature `otlp`): `otlp_receiver` takes OTLP over
//! gRPC and HTTP/protobuf and emits metrics, logs and traces batches; `otlp_exporter` sends
//! them to an OTLP endpoint. The protobuf types and the gRPC services are
//! `opentelemetry-proto`'s, served and called with tonic; [`convert`] maps them onto the
//! signal schemas of `flow::schema` and back (`docs/observability.md` §8).

pub(crate) mod convert;
mod exporter;
mod receiver;

pub(crate) use exporter::build as exporter;
pub(crate) use receiver::build as receiver;
