//! Traces: the process's `tracing` spans recorded as OpenTelemetry spans, at the trace
//! level (§4 of `docs/observability.md`), and handed to a running `node_telemetry`
//! receiver, which sends them on like the metrics and logs (§9).
//!
//! - [`layer`] is the `tracing_subscriber` layer that records them, through
//!   `tracing-opentelemetry` and an `opentelemetry_sdk` tracer provider owned by this
//!   module. Its filter reads the trace level on every span: `off` records nothing,
//!   `basic` the `INFO` spans (a request, an engine write, a storage commit or read),
//!   `detailed` every span (also each writer's write and storage append).
//! - A remote caller's trace context arrives as a W3C `traceparent` header;
//!   [`parent_from_traceparent`] turns it into the parent of the request's span.
//! - Finished spans wait in a bounded queue while a `node_telemetry` receiver runs (and are
//!   not kept otherwise).

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use parking_lot::Mutex;

use super::Level;

/// Finished spans kept between two sends of `node_telemetry`; beyond this they are dropped
/// and counted.
const SPAN_CAPACITY: usize = 10_000;

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Set the process's trace level (the observer does, from `Levels::traces`).
pub(crate) fn set_level(level: Level) {
    if LEVEL.swap(level as u8, Ordering::Relaxed) != level as u8 {
        // Callsites cache whether anyone wants them, and `tracing` keeps a global max level
        // from the filters' hints ([`SpanLevel`]); both are recomputed when the level moves.
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Whether a span at `level` is recorded now.
fn wanted(level: &tracing::Level) -> bool {
    match LEVEL.load(Ordering::Relaxed) {
        0 => false,
        1 => *level <= tracing::Level::INFO,
        _ => true,
    }
}

struct Tap {
    users: AtomicUsize,
    spans: Mutex<VecDeque<SpanData>>,
    dropped: AtomicU64,
}

fn tap() -> &'static Tap {
    static TAP: OnceLock<Tap> = OnceLock::new();
    TAP.get_or_init(|| Tap { users: AtomicUsize::new(0), spans: Mutex::new(VecDeque::new()), dropped: AtomicU64::new(0) })
}

/// Hands finished spans to the tap.
#[derive(Debug)]
struct TapProcessor;

impl SpanProcessor for TapProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        let t = tap();
        if t.users.load(Ordering::Relaxed) == 0 || !span.span_context.is_sampled() {
            return;
        }
        let mut q = t.spans.lock();
        if q.len() >= SPAN_CAPACITY {
            t.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            q.push_back(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn provider() -> &'static SdkTracerProvider {
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| SdkTracerProvider::builder().with_span_processor(TapProcessor).build())
}

/// The layer that records the process's spans as OpenTelemetry spans (install it once, in
/// the program's subscriber; `telemetron serve` does).
pub fn layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    let tracer = provider().tracer("telemetron");
    tracing_opentelemetry::layer().with_tracer(tracer).with_tracked_inactivity(false).with_filter(SpanLevel)
}

/// The traces layer's filter: spans at the trace level, and nothing else. It gives `tracing`
/// a max-level hint (off, info or trace): without one the process's global max level is
/// TRACE, and every trace-level event of the network crates (tungstenite, hyper, h2) walks
/// into the subscriber to be refused there, which cost a node fanning out to 1,000
/// streamers about a fifth of its CPU.
struct SpanLevel;

impl<S> tracing_subscriber::layer::Filter<S> for SpanLevel {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        meta.is_span() && wanted(meta.level())
    }

    fn callsite_enabled(&self, meta: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        if meta.is_span() { tracing::subscriber::Interest::sometimes() } else { tracing::subscriber::Interest::never() }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        use tracing::level_filters::LevelFilter;
        Some(match LEVEL.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::INFO,
            _ => LevelFilter::TRACE,
        })
    }
}

struct One<'a>(&'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// The OpenTelemetry context of a W3C `traceparent` value (`None` when it does not parse:
/// the span is then a root, as the W3C specification asks).
pub fn parent_from_traceparent(traceparent: &str) -> Option<opentelemetry::Context> {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = TraceContextPropagator::new().extract(&One(traceparent));
    cx.span().span_context().is_valid().then_some(cx)
}

/// Make `span` a child of the caller's `traceparent` (ignored when it does not parse).
pub fn join(span: &tracing::Span, traceparent: &str) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if let Some(cx) = parent_from_traceparent(traceparent) {
        let _ = span.set_parent(cx);
    }
}

/// A `node_telemetry` receiver starts (`true`) or stops (`false`) taking spans.
pub(crate) fn subscribe(on: bool) {
    if on {
        tap().users.fetch_add(1, Ordering::Relaxed);
    } else {
        tap().users.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The spans finished since the last call, as an OTLP request with the node's resource
/// (`None`: none).
pub(crate) fn drain(node: &str) -> Option<ExportTraceServiceRequest> {
    let t = tap();
    let spans: Vec<SpanData> = t.spans.lock().drain(..).collect();
    let dropped = t.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(key = "observe/traces", dropped, "spans dropped: more than {SPAN_CAPACITY} between two sends of node_telemetry");
    }
    if spans.is_empty() {
        return None;
    }
    let resource = super::node_resource(node);
    let resource_spans = group_spans_by_resource_and_scope(spans, &ResourceAttributesWithSchema::from(&resource));
    Some(ExportTraceServiceRequest { resource_spans })
}
