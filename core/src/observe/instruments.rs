//! The instruments of each layer: observable counters and gauges over the layers' own
//! atomics (read at collection time), plus the `fdatasync` histogram fed by the storage
//! layer's observer hook. The list is `docs/observability.md` §3.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::metrics::AsyncInstrument;

use super::{Level, Observer};
use crate::{Engine, WeakEngine};

/// The `key` attribute: where in the node a measurement was taken.
pub(crate) fn key(k: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new("key", k)
}

impl Observer {
    /// One observable counter (`u64`) reading `read` when collected, observing nothing at
    /// metrics level `off`; `None` (the engine is
    /// gone) stops the series rather than dropping it to zero.
    pub(crate) fn counter(
        &self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        attrs: Vec<KeyValue>,
        read: impl Fn() -> Option<u64> + Send + Sync + 'static,
    ) {
        let levels = self.inner.levels.clone();
        let _ = self
            .meter()
            .u64_observable_counter(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                if levels.metrics() != Level::Off
                    && let Some(v) = read()
                {
                    o.observe(v, &attrs);
                }
            })
            .build();
    }

    /// One observable gauge (`f64`), as [`Observer::counter`].
    pub(crate) fn gauge(
        &self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        attrs: Vec<KeyValue>,
        read: impl Fn() -> Option<f64> + Send + Sync + 'static,
    ) {
        let levels = self.inner.levels.clone();
        let _ = self
            .meter()
            .f64_observable_gauge(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |o: &dyn AsyncInstrument<f64>| {
                if levels.metrics() != Level::Off
                    && let Some(v) = read()
                {
                    o.observe(v, &attrs);
                }
            })
            .build();
    }
}

pub(super) fn engine(obs: &Observer, engine: &Engine) {
    use crate::control::ControlMetricsSnapshot as C;
    use crate::relay::RelayMetricsSnapshot as R;
    use crate::storage::StorageMetricsSnapshot as S;
    // Readers of one field of a layer's snapshot, taken when collected. They hold the
    // engine weakly: the engine holds the sync histogram, which holds these callbacks.
    let st = |f: fn(&S) -> u64| {
        let e = engine.downgrade();
        move || e.upgrade().map(|e| f(&e.storage_metrics()))
    };
    let re = |f: fn(&R) -> u64| {
        let e = engine.downgrade();
        move || e.upgrade().map(|e| f(&e.relay_metrics()))
    };
    let co = |f: fn(&C) -> u64| {
        let e = engine.downgrade();
        move || e.upgrade().map(|e| f(&e.control_metrics()))
    };
    let float = |f: Box<dyn Fn() -> Option<u64> + Send + Sync>| move || f().map(|v| v as f64);

    let storage = || vec![key("storage")];
    obs.counter("telemetron.storage.samples", "{sample}", "Samples appended to segment files", storage(), st(|s| s.samples_written));
    obs.counter(
        "telemetron.storage.written",
        "By",
        "Bytes appended to segment files (headers, payloads, commit records)",
        storage(),
        st(|s| s.bytes_written),
    );
    obs.counter("telemetron.storage.commits", "{commit}", "Commit records written", storage(), st(|s| s.commits));
    obs.counter("telemetron.storage.syncs", "{sync}", "fdatasync calls on segment files", storage(), st(|s| s.syncs));
    obs.gauge("telemetron.storage.segments", "{segment}", "Segment files open", storage(), float(Box::new(st(|s| s.segments))));
    obs.counter(
        "telemetron.storage.segments_deleted",
        "{segment}",
        "Segment files deleted once nothing in them was live",
        storage(),
        st(|s| s.segments_deleted),
    );
    obs.counter("telemetron.storage.reclaimed", "By", "Bytes held by deleted segment files", storage(), st(|s| s.reclaimed_bytes));
    let report = engine.recovery_report().clone();
    let (micros, truncated, chunks) = (report.micros, report.truncated_bytes, report.chunks);
    obs.gauge("telemetron.storage.recovery.duration", "s", "How long opening the data directory took (recovery)", storage(), move || {
        Some(micros as f64 / 1e6)
    });
    obs.gauge(
        "telemetron.storage.recovery.truncated",
        "By",
        "Bytes cut from segment tails by recovery (torn or uncommitted)",
        storage(),
        move || Some(truncated as f64),
    );
    obs.gauge("telemetron.storage.recovery.chunks", "{chunk}", "Committed chunks indexed by recovery", storage(), move || {
        Some(chunks as f64)
    });
    let sync = obs.latency_histogram("telemetron.storage.sync.duration", "fdatasync latency of segment files");
    let levels = obs.inner.levels.clone();
    let attrs = storage();
    engine.set_sync_observer(Some(Arc::new(move |d| {
        if levels.metrics() != Level::Off {
            sync.record(d.as_secs_f64(), &attrs);
        }
    })));

    let relay = || vec![key("relay")];
    obs.counter(
        "telemetron.relay.published",
        "{frame}",
        "Frames published by writers to at least one streamer",
        relay(),
        re(|r| r.published_frames),
    );
    obs.counter("telemetron.relay.delivered", "{frame}", "Frames queued to streamers", relay(), re(|r| r.delivered_frames));
    obs.counter(
        "telemetron.relay.dropped",
        "{frame}",
        "Frames dropped from the queues of streamers that fell behind",
        relay(),
        re(|r| r.dropped_frames),
    );
    obs.counter(
        "telemetron.relay.disconnected",
        "{streamer}",
        "Streamers disconnected for falling behind",
        relay(),
        re(|r| r.disconnected_streamers),
    );
    obs.gauge("telemetron.relay.streamers", "{streamer}", "Streamers open", relay(), float(Box::new(re(|r| r.active_streamers))));
    per_streamer(obs, engine.downgrade());

    let control = || vec![key("control")];
    obs.counter(
        "telemetron.control.transfers",
        "{transfer}",
        "Control transfers (acquired, handed over, released)",
        control(),
        co(|c| c.transfers),
    );
    obs.counter(
        "telemetron.control.refused",
        "{series}",
        "Series refused because their writer did not hold control",
        control(),
        co(|c| c.refused),
    );
    obs.gauge(
        "telemetron.control.channels",
        "{channel}",
        "Channels under control (with an open gate)",
        control(),
        float(Box::new(co(|c| c.controlled_channels))),
    );
}

/// At level `detailed`: each open streamer's queue, deliveries and drops, keyed
/// `relay/streamer/<id>`.
fn per_streamer(obs: &Observer, engine: WeakEngine) {
    let levels = obs.inner.levels.clone();
    let e2 = engine.clone();
    let l2 = obs.inner.levels.clone();
    let _ = obs
        .meter()
        .u64_observable_counter("telemetron.relay.streamer.dropped")
        .with_unit("{frame}")
        .with_description("Frames dropped from one streamer's queue (level detailed)")
        .with_callback(move |o: &dyn AsyncInstrument<u64>| {
            if levels.metrics() == Level::Detailed {
                for s in engine.upgrade().map(|e| e.streamer_metrics()).unwrap_or_default() {
                    o.observe(s.dropped, &[key(format!("relay/streamer/{}", s.id))]);
                }
            }
        })
        .build();
    let _ = obs
        .meter()
        .f64_observable_gauge("telemetron.relay.streamer.queued")
        .with_unit("{frame}")
        .with_description("Frames waiting in one streamer's queue (level detailed)")
        .with_callback(move |o: &dyn AsyncInstrument<f64>| {
            if l2.metrics() == Level::Detailed {
                for s in e2.upgrade().map(|e| e.streamer_metrics()).unwrap_or_default() {
                    o.observe(s.queued as f64, &[key(format!("relay/streamer/{}", s.id))]);
                }
            }
        })
        .build();
}

#[cfg(feature = "flow")]
pub(super) fn flows(obs: &Observer, flows: Arc<crate::flow::FlowManager>) {
    use crate::flow::Counts;
    type Read = fn(&Counts) -> u64;
    let per_node: [(&'static str, &'static str, &'static str, Read); 8] = [
        ("telemetron.flow.received", "{message}", "Messages a flow node took in", |c| c.received),
        ("telemetron.flow.rows", "{row}", "Rows a flow node took in", |c| c.rows),
        ("telemetron.flow.emitted", "{message}", "Messages a flow node sent on", |c| c.emitted),
        ("telemetron.flow.acked", "{message}", "Messages ACKed back to a flow node", |c| c.acked),
        ("telemetron.flow.nacked", "{message}", "Messages NACKed back to a flow node", |c| c.nacked),
        ("telemetron.flow.expired", "{message}", "Messages whose deadline passed in front of a flow node", |c| c.expired),
        ("telemetron.flow.dropped", "{message}", "Messages NACKed because a flow node's queue was full (overflow: nack)", |c| c.dropped),
        ("telemetron.flow.errors", "{error}", "Errors a flow node returned", |c| c.errors),
    ];
    // The last list seen, for a collection that finds the list busy (a deploy under way).
    // The manager is held weakly: it holds the engine, which holds these callbacks.
    let last: Arc<parking_lot::Mutex<Vec<crate::flow::FlowInfo>>> = Arc::default();
    let flows = Arc::downgrade(&flows);
    let list = Arc::new(move || {
        let mut last = last.lock();
        match flows.upgrade() {
            Some(m) => {
                if let Some(now) = m.try_list() {
                    *last = now;
                }
            }
            None => last.clear(),
        }
        last.clone()
    });
    let levels = obs.inner.levels.clone();
    let l2 = list.clone();
    let _ = obs
        .meter()
        .f64_observable_gauge("telemetron.flow.queued")
        .with_unit("{message}")
        .with_description("Messages waiting in a flow node's input queue")
        .with_callback(move |o: &dyn AsyncInstrument<f64>| {
            if levels.metrics() == Level::Off {
                return;
            }
            for f in l2() {
                for n in &f.nodes {
                    o.observe(n.counts.queued as f64, &[key(crate::flow::key(&f.name, Some(&n.name)))]);
                }
            }
        })
        .build();
    for (name, unit, description, read) in per_node {
        let levels = obs.inner.levels.clone();
        let list = list.clone();
        let _ = obs
            .meter()
            .u64_observable_counter(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |o: &dyn AsyncInstrument<u64>| {
                if levels.metrics() == Level::Off {
                    return;
                }
                for f in list() {
                    for n in &f.nodes {
                        o.observe(read(&n.counts), &[key(crate::flow::key(&f.name, Some(&n.name)))]);
                    }
                }
            })
            .build();
    }
    obs.gauge("telemetron.flow.running", "{flow}", "Flows running", vec![key("flow")], move || {
        Some(list().iter().filter(|i| i.state == crate::flow::FlowState::Running).count() as f64)
    });
}
