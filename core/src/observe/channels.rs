//! Self-telemetry: the node's own metrics written into channels of its own engine.
//!
//! Every scalar of a collection becomes one `f64` channel named
//! `<prefix><key>/<leaf>`, indexed by `<prefix>time`: the metric `telemetron.storage.commits`
//! with key `storage` is `_telemetron/storage/commits`, `telemetron.relay.streamer.dropped`
//! with key `relay/streamer/3` is `_telemetron/relay/streamer/3/dropped`, and a histogram
//! gives `<...>/count`, `<...>/sum` and the cumulative `<...>/bucket/<le>`
//! (`_telemetron/storage/sync.duration/count`, `.../bucket/0.0005`). The
//! leaf is the metric name without `telemetron.` and the key's own leading segments.
//!
//! One writer (named `self-telemetry`) holds these channels, so they show in control
//! states like any other writer's; nothing else should write them.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};

use super::analytics::MetricKind;
use super::prometheus::number;
use super::{AsF64, Observer};
use crate::Engine;
use crate::channel::{ChannelKey, NewChannel};
use crate::framer::{Writer, WriterConfig};
use crate::telem::{DataType, Frame, Series, TimeStamp};

/// The prefix of self-telemetry channel names.
pub const CHANNEL_PREFIX: &str = "_telemetron/";

/// How often `telemetron serve --demo` writes self-telemetry (`--self-telemetry` sets it).
pub const DEFAULT_CHANNEL_INTERVAL: Duration = Duration::from_secs(1);

/// The channel name (under [`CHANNEL_PREFIX`]) of metric `name` measured at `key`.
pub(super) fn channel_name(name: &str, key: &str) -> String {
    let mut leaf: Vec<&str> = name.strip_prefix("telemetron.").unwrap_or(name).split('.').collect();
    // Drop the leading segments the key already says (`relay`, then `streamer`).
    for seg in key.split('/') {
        if leaf.len() > 1 && leaf[0] == seg {
            leaf.remove(0);
        } else {
            break;
        }
    }
    let leaf = leaf.join(".");
    if key.is_empty() { format!("{CHANNEL_PREFIX}{leaf}") } else { format!("{CHANNEL_PREFIX}{key}/{leaf}") }
}

fn key_of<'a>(mut attrs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
    attrs.find(|kv| kv.key.as_str() == "key").map(|kv| kv.value.as_str().into_owned()).unwrap_or_default()
}

/// One scalar of a collection: its channel name, value, and what the metric it comes from
/// is (histogram parts carry the histogram's kind).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scalar {
    pub name: String,
    pub value: f64,
    pub kind: MetricKind,
    pub unit: String,
}

fn push<T: AsF64>(out: &mut Vec<Scalar>, name: &str, unit: &str, data: &MetricData<T>) {
    let scalar = |name: String, value: f64, kind: MetricKind| Scalar { name, value, kind, unit: unit.to_owned() };
    match data {
        MetricData::Sum(s) => {
            let kind = if s.is_monotonic() { MetricKind::Counter } else { MetricKind::Gauge };
            out.extend(s.data_points().map(|p| scalar(channel_name(name, &key_of(p.attributes())), p.value().f(), kind)));
        }
        MetricData::Gauge(g) => {
            out.extend(g.data_points().map(|p| scalar(channel_name(name, &key_of(p.attributes())), p.value().f(), MetricKind::Gauge)));
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                let base = channel_name(name, &key_of(p.attributes()));
                out.push(scalar(format!("{base}/count"), p.count() as f64, MetricKind::Histogram));
                out.push(scalar(format!("{base}/sum"), p.sum().f(), MetricKind::Histogram));
                // Cumulative counts at or below each bound, as Prometheus has them, so a
                // window's quantiles come from two readings (`analytics`).
                let mut cum = 0u64;
                for (bound, n) in p.bounds().zip(p.bucket_counts()) {
                    cum += n;
                    out.push(scalar(format!("{base}/bucket/{}", number(bound)), cum as f64, MetricKind::Histogram));
                }
                out.push(scalar(format!("{base}/bucket/+Inf"), p.count() as f64, MetricKind::Histogram));
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// Every scalar of a collection, sorted by name: counters and gauges one each, histograms
/// as `<name>/count`, `<name>/sum` and `<name>/bucket/<le>`. Histograms with attributes
/// beyond `key` (requests per route) are summed per key.
pub(super) fn scalars(rm: &ResourceMetrics) -> Vec<Scalar> {
    let mut raw = Vec::new();
    for sm in rm.scope_metrics() {
        for m in sm.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => push(&mut raw, m.name(), m.unit(), d),
                AggregatedMetrics::U64(d) => push(&mut raw, m.name(), m.unit(), d),
                AggregatedMetrics::I64(d) => push(&mut raw, m.name(), m.unit(), d),
            }
        }
    }
    let mut merged: HashMap<String, Scalar> = HashMap::with_capacity(raw.len());
    for s in raw {
        match merged.entry(s.name.clone()) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().value += s.value,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(s);
            }
        }
    }
    let mut out: Vec<Scalar> = merged.into_values().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// [`scalars`] as `(channel name, value)`.
pub(super) fn flatten(rm: &ResourceMetrics) -> Vec<(String, f64)> {
    scalars(rm).into_iter().map(|s| (s.name, s.value)).collect()
}

/// The writing thread of [`Observer::start_channels`].
#[derive(Debug)]
pub(super) struct SelfTelemetry {
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SelfTelemetry {
    pub(super) fn start(obs: &Observer, engine: &Engine, interval: Duration) -> SelfTelemetry {
        let (stop, rx) = mpsc::channel::<()>();
        // The first write happens now, so the channels exist once the node is serving.
        let mut w = Channels::default();
        if let Err(e) = w.tick(obs, engine) {
            tracing::warn!(key = "observe/self-telemetry", error = %e, "self-telemetry write failed; trying again next interval");
            w = Channels::default();
        }
        // The thread holds the observer and the engine weakly: the observer owns this
        // value, so a strong hold would keep both (and the engine's mapped segments) alive
        // after their owners dropped them. It ends when either is gone.
        let (weak_obs, weak_engine) = (std::sync::Arc::downgrade(&obs.inner), engine.downgrade());
        let thread = std::thread::Builder::new()
            .name("telemetron-self-telemetry".into())
            .spawn(move || {
                loop {
                    let last = !matches!(rx.recv_timeout(interval), Err(mpsc::RecvTimeoutError::Timeout));
                    let (Some(inner), Some(engine)) = (weak_obs.upgrade(), weak_engine.upgrade()) else { break };
                    let obs = Observer { inner };
                    if let Err(e) = w.tick(&obs, &engine) {
                        if engine.is_closed() {
                            break;
                        }
                        tracing::warn!(key = "observe/self-telemetry", error = %e, "self-telemetry write failed; trying again next interval");
                        w = Channels::default();
                    }
                    if last {
                        break;
                    }
                }
                if let Some(wr) = w.writer.take() {
                    let _ = wr.close();
                }
            })
            .expect("spawn the self-telemetry thread");
        SelfTelemetry { stop, thread: Some(thread) }
    }

    /// Write once more, then stop and wait for the thread.
    pub(super) fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SelfTelemetry {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// The channels written so far and the writer that holds them.
#[derive(Default)]
struct Channels {
    keys: HashMap<String, ChannelKey>,
    /// Names that cannot be written (a user channel of that name with another type or
    /// index, or an invalid name): warned about once, then left out.
    skipped: std::collections::HashSet<String>,
    time: Option<ChannelKey>,
    writer: Option<Writer>,
    /// The last timestamp written: each write is later, even if the clock steps back.
    last: i64,
}

/// The channel a sample named `name` (under [`CHANNEL_PREFIX`]) is written to when the
/// channels are named under `prefix` ([`Observer::set_channel_prefix`]).
pub(super) fn stored_name(prefix: &str, name: &str) -> String {
    match name.strip_prefix(CHANNEL_PREFIX) {
        Some(rest) if prefix != CHANNEL_PREFIX => format!("{prefix}{rest}"),
        _ => name.to_string(),
    }
}

/// Per-streamer series stay out of the channels: streamer ids are never reused, so they
/// would add channels without end (they are in `/metrics` and `observe/metrics`).
fn wanted(name: &str) -> bool {
    !name.contains("/relay/streamer/")
}

impl Channels {
    /// Create the missing channels; check what already existed under those names.
    fn create(&mut self, engine: &Engine, prefix: &str, missing: &[&String]) -> crate::Result<()> {
        let time_name = format!("{prefix}time");
        let time = match engine.create_channels_with(vec![NewChannel::index(time_name.clone())], true)?.pop() {
            Some(ch) if ch.is_index() => ch.key,
            _ => {
                return Err(crate::Error::InvalidArgument {
                    reason: format!(
                        "the channel {time_name:?} exists and is not an index: rename it so the node can write its self-telemetry"
                    ),
                });
            }
        };
        if self.time.is_none() {
            // Continue after what an earlier run of the node wrote.
            self.last = engine.time_range(time)?.map_or(0, |r| r.end.0 - 1);
        }
        self.time = Some(time);
        let batch: Vec<NewChannel> = missing.iter().map(|n| NewChannel::data(n.as_str(), DataType::F64, time_name.clone())).collect();
        // One call for all; one by one if that fails, so a bad name costs only itself.
        let made = match engine.create_channels_with(batch.clone(), true) {
            Ok(made) => made.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(_) => batch.into_iter().map(|b| engine.create_channels_with(vec![b], true).map(|mut v| v.remove(0))).collect(),
        };
        for (name, r) in missing.iter().zip(made) {
            match r {
                Ok(ch) if ch.data_type == DataType::F64 && ch.index_key() == Some(time) => {
                    self.keys.insert(ch.name.clone(), ch.key);
                }
                Ok(ch) => {
                    tracing::warn!(key = "observe/self-telemetry", channel = %ch.name, data_type = %ch.data_type, "a channel of this name exists with another type or index; its self-telemetry is left out");
                    self.skipped.insert((*name).clone());
                }
                Err(e) => {
                    tracing::warn!(key = "observe/self-telemetry", channel = %name, error = %e, "cannot create this self-telemetry channel; it is left out");
                    self.skipped.insert((*name).clone());
                }
            }
        }
        Ok(())
    }

    fn tick(&mut self, obs: &Observer, engine: &Engine) -> crate::Result<()> {
        let prefix = obs.channel_prefix();
        let samples: Vec<(String, f64)> = obs
            .samples()
            .into_iter()
            .map(|(n, v)| (stored_name(&prefix, &n), v))
            .filter(|(n, _)| wanted(n) && !self.skipped.contains(n))
            .collect();
        if samples.is_empty() {
            return Ok(());
        }
        let missing: Vec<&String> = samples.iter().map(|(n, _)| n).filter(|n| !self.keys.contains_key(*n)).collect();
        if !missing.is_empty() || self.time.is_none() {
            if let Some(w) = self.writer.take() {
                w.close()?;
            }
            self.create(engine, &prefix, &missing)?;
        }
        let time = self.time.expect("created above");
        let now = TimeStamp::now().0.max(self.last + 1);
        if self.writer.is_none() {
            let mut keys: Vec<ChannelKey> = self.keys.values().copied().collect();
            keys.push(time);
            self.writer = Some(engine.open_writer(WriterConfig::new(TimeStamp(now), keys).name("self-telemetry"))?);
        }
        let mut frame = Frame::new().with(time, Series::timestamps(vec![now]));
        for (name, v) in &samples {
            if let Some(&k) = self.keys.get(name) {
                frame = frame.with(k, Series::from_vec(vec![*v]));
            }
        }
        let w = self.writer.as_mut().expect("opened above");
        w.write(&frame)?;
        self.last = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::channel_name;

    #[test]
    fn channel_names_drop_what_the_key_says() {
        assert_eq!(channel_name("telemetron.storage.commits", "storage"), "_telemetron/storage/commits");
        assert_eq!(channel_name("telemetron.storage.sync.duration", "storage"), "_telemetron/storage/sync.duration");
        assert_eq!(channel_name("telemetron.relay.streamer.dropped", "relay/streamer/3"), "_telemetron/relay/streamer/3/dropped");
        assert_eq!(channel_name("telemetron.flow.acked", "flow/ingest/queue"), "_telemetron/flow/ingest/queue/acked");
        assert_eq!(channel_name("telemetron.server.requests", "server"), "_telemetron/server/requests");
    }
}
