//! Instrumentation: what a node is doing, as metrics, for Prometheus, for its own channels,
//! and (later) for OpenTelemetry collectors. `docs/observability.md` is the reference.
//!
//! ## How it is built
//! The layers below (storage, relay, control, flows) count their work in plain atomics
//! where it happens and know nothing of this module ([`Engine::storage_metrics`] and its
//! siblings read them). An [`Observer`] turns those counters into OpenTelemetry instruments
//! of one `SdkMeterProvider` (observable counters and gauges, read at collection time, so
//! the write path pays nothing for them), and owns the histograms and counters that are
//! recorded as events happen (`fdatasync` latency, request latency, connections, failed
//! logins). Everything goes out from one collection:
//! - [`Observer::prometheus`]: the Prometheus text format, served by a node at `GET /metrics`;
//! - [`Observer::samples`]: one `(channel name, value)` per scalar, written by
//!   [`Observer::start_channels`] into channels of the node's own engine under
//!   [`CHANNEL_PREFIX`] (self-telemetry), so SDKs, notebooks and `telemetron stream` read
//!   node health with the tools they already use.
//!
//! ## The experiment tree
//! Every metric carries a `key` attribute: a path naming where in the node it was measured
//! (`storage`, `relay`, `relay/streamer/3`, `control`, `server`, `flow/ingest/queue`). A
//! child's key is its parent's key plus a segment ([`child_key`]); keys never name a
//! sample value, a token or a user.
//!
//! ## Levels
//! [`Levels`] holds one [`Level`] for logs and one for metrics (`off`, `basic`, `detailed`),
//! changed at runtime by [`Observer::set_levels`] (a node's `observe/levels` call, the
//! `telemetron observe` command, `client.observe` in the SDKs), with no restart.

pub mod analytics;
mod channels;
mod client;
mod levels;
pub mod logfile;
mod prometheus;
#[cfg(feature = "otlp")]
mod telemetry;
#[cfg(feature = "otlp")]
pub mod traces;

use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality};
use parking_lot::Mutex;

use crate::Engine;

pub use analytics::{MetricKind, SeriesSummary, Summary, SummaryRequest};
pub use channels::{CHANNEL_PREFIX, DEFAULT_CHANNEL_INTERVAL};
pub use client::{MetricSamples, Observe};
pub use levels::{Level, Levels, LevelsUpdate, UnknownLevel};
#[cfg(feature = "otlp")]
pub use telemetry::{LogTap, register as register_components};

/// The key of `segment` under `parent` (`child_key("relay", "streamer/3")` is
/// `relay/streamer/3`).
pub fn child_key(parent: &str, segment: impl std::fmt::Display) -> String {
    if parent.is_empty() { segment.to_string() } else { format!("{parent}/{segment}") }
}

/// Bucket bounds of the latency histograms, in seconds: 10 µs to 10 s.
const LATENCY_BOUNDS: [f64; 13] = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 1e-1, 1.0, 10.0];

/// A data point's value as `f64` (metric data come as `u64`, `i64` or `f64`).
trait AsF64: Copy {
    fn f(self) -> f64;
}

impl AsF64 for f64 {
    fn f(self) -> f64 {
        self
    }
}

impl AsF64 for u64 {
    fn f(self) -> f64 {
        self as f64
    }
}

impl AsF64 for i64 {
    fn f(self) -> f64 {
        self as f64
    }
}

/// A [`ManualReader`] shared between the provider (which owns its reader) and the
/// observer (which collects from it).
/// The OpenTelemetry resource of node `node`: `service.name=telemetron`,
/// `service.instance.id=<node>`, `service.version`.
fn node_resource(node: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name("telemetron")
        .with_attribute(KeyValue::new("service.instance.id", node.to_string()))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Changes the process's log filter (installed by whoever set up the `tracing` subscriber;
/// the `telemetron` program does, see `bin/telemetron/main.rs`).
pub type LogHook = Arc<dyn Fn(Level) + Send + Sync>;

struct Inner {
    node: String,
    provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    meter: Meter,
    levels: Arc<levels::LevelCell>,
    log_hook: Mutex<Option<LogHook>>,
    channels: Mutex<Option<channels::SelfTelemetry>>,
    /// The engine of [`Observer::watch_engine`], for [`Observer::summary`].
    engine: Mutex<Option<crate::WeakEngine>>,
    /// Where self-telemetry channels are named ([`Observer::set_channel_prefix`]).
    channel_prefix: Mutex<String>,
}

/// The instrumentation of one node (or one embedded engine). Cheap to clone.
#[derive(Clone)]
pub struct Observer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("node", &self.inner.node).field("levels", &self.levels()).finish_non_exhaustive()
    }
}

impl Observer {
    /// An observer for the node `node` (its name in the `service.instance.id` resource
    /// attribute) at `levels`. It observes nothing until given an engine
    /// ([`Observer::watch_engine`]) or flows.
    pub fn new(node: impl Into<String>, levels: Levels) -> Observer {
        let node = node.into();
        let reader = Arc::new(ManualReader::builder().build());
        let resource = node_resource(&node);
        #[cfg(feature = "otlp")]
        traces::set_level(levels.traces);
        let provider = SdkMeterProvider::builder().with_resource(resource).with_reader(SharedReader(reader.clone())).build();
        let meter = provider.meter("telemetron");
        Observer {
            inner: Arc::new(Inner {
                node,
                provider,
                reader,
                meter,
                levels: Arc::new(levels::LevelCell::new(levels)),
                log_hook: Mutex::new(None),
                channels: Mutex::new(None),
                engine: Mutex::new(None),
                channel_prefix: Mutex::new(CHANNEL_PREFIX.to_string()),
            }),
        }
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Name the self-telemetry channels `<prefix><metric path>` instead of
    /// [`CHANNEL_PREFIX`]`<metric path>` (their index is `<prefix>time`). A cluster node
    /// uses `_telemetron/<node name>/`: channel names are cluster-wide, and every node
    /// writes its own (docs/cluster.md). Set it before [`Observer::start_channels`].
    /// [`Observer::samples`] keeps the plain names.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] unless `prefix` starts with [`CHANNEL_PREFIX`]
    /// and ends with `/`.
    pub fn set_channel_prefix(&self, prefix: impl Into<String>) -> crate::Result<()> {
        let prefix = prefix.into();
        if !prefix.starts_with(CHANNEL_PREFIX) || !prefix.ends_with('/') {
            return Err(crate::Error::InvalidArgument {
                reason: format!("a self-telemetry channel prefix starts with {CHANNEL_PREFIX:?} and ends with '/' (got {prefix:?})"),
            });
        }
        *self.inner.channel_prefix.lock() = prefix;
        Ok(())
    }

    /// The prefix of the self-telemetry channels' names ([`Observer::set_channel_prefix`]).
    pub fn channel_prefix(&self) -> String {
        self.inner.channel_prefix.lock().clone()
    }

    /// The meter every instrument of this node is made from.
    pub fn meter(&self) -> &Meter {
        &self.inner.meter
    }

    /// The levels in force.
    pub fn levels(&self) -> Levels {
        self.inner.levels.get()
    }

    /// True when metrics are collected at all (level `basic` or `detailed`).
    pub fn metrics_on(&self) -> bool {
        self.inner.levels.metrics() != Level::Off
    }

    /// Change some levels at once; returns the levels now in force. A log level change
    /// reaches the process's log filter through the [`LogHook`], if one is installed.
    pub fn set_levels(&self, update: LevelsUpdate) -> Levels {
        let now = self.inner.levels.update(update);
        #[cfg(feature = "otlp")]
        traces::set_level(now.traces);
        if update.logs.is_some()
            && let Some(hook) = self.inner.log_hook.lock().clone()
        {
            hook(now.logs);
        }
        tracing::info!(key = "observe", logs = %now.logs, metrics = %now.metrics, traces = %now.traces, "instrumentation levels changed");
        now
    }

    /// Install the function that applies a log level to the process's log filter. It is
    /// called on every later change of the log level (not now: the process may have chosen
    /// a filter of its own, `--log`, which stands until someone changes the level).
    pub fn set_log_hook(&self, hook: LogHook) {
        *self.inner.log_hook.lock() = Some(hook);
    }

    /// A latency histogram (seconds) with this module's bucket bounds.
    pub fn latency_histogram(&self, name: &'static str, description: &'static str) -> Histogram<f64> {
        self.inner.meter.f64_histogram(name).with_unit("s").with_description(description).with_boundaries(LATENCY_BOUNDS.to_vec()).build()
    }

    /// Observe `engine`: storage, relay and control counters, and the `fdatasync` latency
    /// histogram (`docs/observability.md` lists them).
    pub fn watch_engine(&self, engine: &Engine) {
        instruments::engine(self, engine);
        *self.inner.engine.lock() = Some(engine.downgrade());
    }

    /// Summarize the self-telemetry stored in the watched engine over a window
    /// (`analytics`): counters' increase and rate, gauges' min, mean and max, histograms'
    /// rate, mean and p50/p90/p99. Works at every metrics level: it reads history.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when no engine is watched or it holds no
    /// self-telemetry, or for a bad window; read errors of the engine.
    pub fn summary(&self, req: &SummaryRequest) -> crate::Result<Summary> {
        let engine = self.inner.engine.lock().as_ref().and_then(crate::WeakEngine::upgrade);
        let engine = engine.ok_or_else(|| crate::Error::InvalidArgument { reason: "no engine is observed here to summarize".into() })?;
        let known = self.collect().map(|rm| channels::scalars(&rm)).unwrap_or_default();
        analytics::summarize(&engine, &known, &self.channel_prefix(), req)
    }

    /// Observe a node's flows: per flow node, messages in and out, ACKs, NACKs, expiries.
    #[cfg(feature = "flow")]
    pub fn watch_flows(&self, flows: Arc<crate::flow::FlowManager>) {
        instruments::flows(self, flows);
    }

    /// Collect every instrument now.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] if the provider was shut down.
    pub fn collect(&self) -> crate::Result<ResourceMetrics> {
        let mut rm = ResourceMetrics::default();
        self.inner
            .reader
            .collect(&mut rm)
            .map_err(|e| crate::Error::InvalidArgument { reason: format!("metrics collection failed: {e}") })?;
        Ok(rm)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4). Empty at
    /// metrics level `off`.
    pub fn prometheus(&self) -> String {
        if !self.metrics_on() {
            return String::new();
        }
        match self.collect() {
            Ok(rm) => prometheus::render(&rm),
            Err(e) => format!("# {e}\n"),
        }
    }

    /// Every scalar now, as `(channel name under CHANNEL_PREFIX, value)`: counters and
    /// gauges one each, histograms as `<name>/count` and `<name>/sum`. Empty at level `off`.
    pub fn samples(&self) -> Vec<(String, f64)> {
        if !self.metrics_on() {
            return Vec::new();
        }
        self.collect().map(|rm| channels::flatten(&rm)).unwrap_or_default()
    }

    /// Write [`Observer::samples`] into channels of `engine` now and then every `interval`,
    /// from a thread of its own, until [`Observer::stop_channels`] (or the engine closes).
    /// The channels are created as metrics appear, under [`Observer::channel_prefix`];
    /// their index is `<prefix>time`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for a zero interval.
    pub fn start_channels(&self, engine: Engine, interval: Duration) -> crate::Result<()> {
        if interval.is_zero() {
            return Err(crate::Error::InvalidArgument { reason: "the self-telemetry interval must be above zero".into() });
        }
        let mut slot = self.inner.channels.lock();
        if let Some(old) = slot.take() {
            old.stop();
        }
        *slot = Some(channels::SelfTelemetry::start(self, &engine, interval));
        Ok(())
    }

    /// Stop writing self-telemetry (it writes one last time first).
    pub fn stop_channels(&self) {
        if let Some(t) = self.inner.channels.lock().take() {
            t.stop();
        }
    }

    /// Stop self-telemetry and shut the meter provider down.
    pub fn shutdown(&self) {
        self.stop_channels();
        let _ = self.inner.provider.shutdown();
    }
}

mod instruments;
