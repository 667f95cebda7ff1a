//! The node's own telemetry as a flow receiver, `node_telemetry`: its metrics (the
//! observer's collection, §1), its log events (through [`LogTap`]) and its spans (through
//! `observe::traces`) as metrics, logs and traces batches, so `telemetron serve --otlp-endpoint` is a flow like any other
//! (`node_telemetry → otlp_exporter`), with the runtime's counters, backpressure and
//! shutdown (`docs/observability.md` §9).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arrow_array::RecordBatch;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use parking_lot::Mutex;
use serde::Deserialize;
use tracing::field::{Field, Visit};

use super::Observer;
use crate::flow::components::otlp::convert;
use crate::flow::components::{BuildEnv, Built, Component, options};
use crate::flow::{BoxFuture, FlowError, Message, PortType, Receiver, ReceiverCx, Role, SignalType, Signals, Signature, schema};

/// Log events kept for `node_telemetry` between two of its sends; beyond this, events are
/// dropped and counted (a node logging in a loop must not grow without bound).
const TAP_CAPACITY: usize = 10_000;

/// One log event, as the tap keeps it.
struct LogEvent {
    time: i64,
    severity: i32,
    severity_text: &'static str,
    body: String,
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// The process's log events for `node_telemetry`: a `tracing_subscriber` layer that keeps
/// each event (after the process's log filter, so the log level decides what is sent)
/// while a `node_telemetry` receiver runs, and nothing otherwise (one atomic load per
/// event).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogTap;

struct TapState {
    /// Running `node_telemetry` receivers that send logs (they share the events).
    on: AtomicUsize,
    events: Mutex<VecDeque<LogEvent>>,
    dropped: AtomicU64,
}

fn tap() -> &'static TapState {
    static TAP: std::sync::OnceLock<TapState> = std::sync::OnceLock::new();
    TAP.get_or_init(|| TapState { on: AtomicUsize::new(0), events: Mutex::new(VecDeque::new()), dropped: AtomicU64::new(0) })
}

struct Fields {
    body: String,
    attributes: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.body = value.into();
        } else {
            self.attributes.insert(field.name().into(), value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.insert(field.name().into(), value.into());
    }
}

/// OTel severity number and text of a tracing level.
fn severity(level: &tracing::Level) -> (i32, &'static str) {
    match *level {
        tracing::Level::TRACE => (1, "TRACE"),
        tracing::Level::DEBUG => (5, "DEBUG"),
        tracing::Level::INFO => (9, "INFO"),
        tracing::Level::WARN => (13, "WARN"),
        tracing::Level::ERROR => (17, "ERROR"),
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogTap {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let t = tap();
        if t.on.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut f = Fields { body: String::new(), attributes: serde_json::Map::new() };
        event.record(&mut f);
        f.attributes.insert("target".into(), event.metadata().target().into());
        let (severity, severity_text) = severity(event.metadata().level());
        let e = LogEvent { time: crate::telem::TimeStamp::now().0, severity, severity_text, body: f.body, attributes: f.attributes };
        let mut q = t.events.lock();
        if q.len() >= TAP_CAPACITY {
            t.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            q.push_back(e);
        }
    }
}

/// The events kept since the last call, as a logs batch (`None`: none). A count of events
/// dropped meanwhile is reported as one more record.
fn drain_logs(node: &str) -> Result<Option<RecordBatch>, arrow_schema::ArrowError> {
    let t = tap();
    let mut events: Vec<LogEvent> = t.events.lock().drain(..).collect();
    let dropped = t.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        events.push(LogEvent {
            time: crate::telem::TimeStamp::now().0,
            severity: 13,
            severity_text: "WARN",
            body: format!("{dropped} log events were dropped: more than {TAP_CAPACITY} between two sends"),
            attributes: serde_json::Map::new(),
        });
    }
    if events.is_empty() {
        return Ok(None);
    }
    let mut rows = schema::LogRows::default();
    for mut e in events {
        e.attributes.insert("service.name".into(), "telemetron".into());
        e.attributes.insert("service.instance.id".into(), node.into());
        rows.push(e.time, e.severity, e.severity_text, &e.body, &serde_json::Value::Object(e.attributes).to_string());
    }
    rows.finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetryOptions {
    /// How often metrics are collected and kept log events sent.
    #[serde(default = "default_interval", with = "crate::flow::duration")]
    interval: Duration,
    /// Any of `metrics`, `logs`, `traces`.
    #[serde(default = "default_signals")]
    signals: Vec<String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_signals() -> Vec<String> {
    vec!["metrics".into(), "logs".into(), "traces".into()]
}

/// The resource attributes of the node's metrics, kept on every row (an `otlp_exporter`
/// lifts them back to the resource).
const RESOURCE: [&str; 3] = ["service.name", "service.instance.id", "service.version"];

fn resource_keys() -> Vec<String> {
    RESOURCE.iter().map(|s| s.to_string()).collect()
}

/// Add the `node_telemetry` component, reading `observer`, to `env`.
pub fn register(env: &mut BuildEnv, observer: &Observer) {
    let observer = observer.clone();
    env.register("node_telemetry", move |v, _| {
        let o: TelemetryOptions = options(v)?;
        if o.interval.is_zero() {
            return Err("`interval` must be above zero".into());
        }
        let mut signals = Signals::NONE;
        for s in &o.signals {
            match s.as_str() {
                "metrics" => signals = signals.with(SignalType::Metrics),
                "logs" => signals = signals.with(SignalType::Logs),
                "traces" => signals = signals.with(SignalType::Traces),
                other => return Err(format!("`signals`: {other:?} is not one of metrics, logs, traces")),
            }
        }
        if signals.is_empty() {
            return Err("`signals` names at least one of metrics, logs, traces".into());
        }
        Ok(Built {
            signature: Signature { role: Role::Receiver, accepts: Signals::NONE, ports: vec![("out", PortType::Fixed(signals))] },
            component: Component::Receiver(Box::new(NodeTelemetry { observer: observer.clone(), interval: o.interval, signals })),
        })
    });
}

struct NodeTelemetry {
    observer: Observer,
    interval: Duration,
    signals: Signals,
}

impl NodeTelemetry {
    /// One round: the metrics collected now (when the metrics level is not off) and the log
    /// events kept since the last round. Best effort, as live data: not resent when NACKed.
    async fn send(&self, cx: &mut ReceiverCx) -> Result<(), FlowError> {
        let err = |e: arrow_schema::ArrowError| FlowError::Component(e.to_string());
        if self.signals.contains(SignalType::Metrics) && self.observer.metrics_on() {
            let rm = self.observer.collect()?;
            if let Some(b) = convert::metrics_batch(&ExportMetricsServiceRequest::from(&rm), &resource_keys()).map_err(err)? {
                let _ = cx.send(Message::new(SignalType::Metrics, b)).await;
            }
        }
        if self.signals.contains(SignalType::Logs)
            && let Some(b) = drain_logs(self.observer.node()).map_err(err)?
        {
            let _ = cx.send(Message::new(SignalType::Logs, b)).await;
        }
        if self.signals.contains(SignalType::Traces)
            && let Some(req) = super::traces::drain(self.observer.node())
            && let Some(b) = convert::traces_batch(&req, &resource_keys()).map_err(err)?
        {
            let _ = cx.send(Message::new(SignalType::Traces, b)).await;
        }
        Ok(())
    }
}

impl Receiver for NodeTelemetry {
    fn run(self: Box<Self>, mut cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        Box::pin(async move {
            let (logs, traces) = (self.signals.contains(SignalType::Logs), self.signals.contains(SignalType::Traces));
            if logs {
                tap().on.fetch_add(1, Ordering::Relaxed);
            }
            if traces {
                super::traces::subscribe(true);
            }
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let r = loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = cx.stopped() => break Ok(()),
                }
                while cx.try_control().is_some() {}
                if let Err(e) = self.send(&mut cx).await {
                    break Err(e);
                }
            };
            // What was measured up to the stop goes out too.
            let last = self.send(&mut cx).await;
            if logs {
                tap().on.fetch_sub(1, Ordering::Relaxed);
            }
            if traces {
                super::traces::subscribe(false);
            }
            r.and(last)
        })
    }
}
