//! Data processors that change what a message holds: `convert` (CP) and `aggregate` (AP).

use std::collections::{BTreeMap, HashMap};

use std::time::Duration;

use arrow_array::RecordBatch;
use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::config::duration;
use super::super::message::{Message, Receipt, SignalType, Signals};
use super::super::runtime::Cx;
use super::super::schema::{MetricKind, MetricRows};
use super::super::signal::{Control, Interests, Nack, SignalKind};
use super::super::{FlowError, Processor};
use super::predicate::{numbers, strings, timestamps};
use super::{Built, Component, Merged, options};

/// The index column of a frames batch: `index`, or the first timestamp column.
fn index_column(batch: &RecordBatch, index: Option<&str>) -> Result<usize, String> {
    let fields = batch.schema().fields().clone();
    match index {
        Some(name) => fields.iter().position(|f| f.name() == name).ok_or_else(|| format!("no index column `{name}`")),
        None => (0..fields.len())
            .find(|&i| timestamps(batch.column(i).as_ref()).is_some())
            .ok_or_else(|| "frames need a timestamp column for the index".to_string()),
    }
}

// ---- convert (CP) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvertOptions {
    /// The signal to produce. From frames: `metrics` (one data point per sample of each
    /// numeric channel, named after the channel).
    into: String,
    /// The index column of the frames (default: the first timestamp column).
    index: Option<String>,
    /// The unit given to every data point.
    #[serde(default)]
    unit: String,
}

struct Convert {
    o: ConvertOptions,
}

pub(super) fn convert(v: &serde_json::Value) -> Result<Built, String> {
    let o: ConvertOptions = options(v)?;
    if o.into != "metrics" {
        return Err(format!("`into: {}`: the converter turns frames into metrics (`into: metrics`)", o.into));
    }
    Ok(Built {
        signature: Signature {
            role: Role::Processor,
            accepts: Signals::of(SignalType::Frames),
            ports: vec![("out", PortType::Fixed(Signals::of(SignalType::Metrics)))],
        },
        component: Component::Processor(Box::new(Convert { o })),
    })
}

impl Convert {
    fn metrics(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let index = index_column(batch, self.o.index.as_deref())?;
        let times = timestamps(batch.column(index).as_ref()).ok_or("the index column is not a timestamp column")?;
        let schema = batch.schema();
        let mut rows = MetricRows::default();
        for (i, field) in schema.fields().iter().enumerate() {
            if i == index {
                continue;
            }
            // Numeric channels become data points; others (strings, bytes) are left out.
            let Some(values) = numbers(batch.column(i).as_ref()) else { continue };
            for (t, v) in times.iter().zip(values) {
                if let Some(v) = v {
                    rows.push(*t, field.name(), &self.o.unit, v, "{}", MetricKind::Gauge);
                }
            }
        }
        rows.finish().map_err(|e| e.to_string())
    }
}

impl Processor for Convert {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        match self.metrics(&msg.data) {
            Ok(data) => {
                msg.data = data;
                msg.signal = SignalType::Metrics;
                cx.emit(msg);
                Ok(())
            }
            Err(e) => {
                msg.take_receipt().nack(Nack::rejected(e.clone()));
                Err(FlowError::Component(format!("convert: {e}")))
            }
        }
    }
}

// ---- aggregate (AP) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateOptions {
    /// Window length: rows are grouped by `floor(time / window)`.
    #[serde(with = "duration")]
    window: Duration,
    /// The numeric column to aggregate (metrics: `value`; frames: a channel).
    value: String,
    /// The column whose values are the keys (metrics: `name`); none: one key.
    key: Option<String>,
    /// The time column (default: the first timestamp column).
    time: Option<String>,
    /// Emit open windows at the latest this long after their end, even if no later row has
    /// arrived to close them (default: 1 s).
    #[serde(default = "linger", with = "duration")]
    linger: Duration,
}

fn linger() -> Duration {
    Duration::from_secs(1)
}

/// count, sum, min, max of one key in one window.
#[derive(Clone, Copy)]
struct Stats {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn new() -> Stats {
        Stats { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
    fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

struct Aggregate {
    o: AggregateOptions,
    window_ns: i64,
    /// Open windows: start -> key -> stats.
    open: BTreeMap<i64, HashMap<String, Stats>>,
    /// Receipts of the messages whose rows are in open windows, with the end of the last
    /// window each one touched.
    pending: Vec<(i64, Receipt)>,
    /// Emitted aggregates waiting for their ACK/NACK, with the receipts they settle.
    merged: Merged,
    /// The latest row time seen: windows that end at or before it are complete.
    watermark: i64,
}

pub(super) fn aggregate(v: &serde_json::Value) -> Result<Built, String> {
    let o: AggregateOptions = options(v)?;
    let window_ns = i64::try_from(o.window.as_nanos()).ok().filter(|w| *w > 0).ok_or("`window` must be a positive duration")?;
    Ok(Built {
        signature: Signature {
            role: Role::Processor,
            accepts: Signals::of(SignalType::Metrics).with(SignalType::Frames),
            ports: vec![("out", PortType::Fixed(Signals::of(SignalType::Metrics)))],
        },
        component: Component::Processor(Box::new(Aggregate {
            o,
            window_ns,
            open: BTreeMap::new(),
            pending: Vec::new(),
            merged: Merged::default(),
            watermark: i64::MIN,
        })),
    })
}

impl Aggregate {
    /// Add a message's rows to their windows; returns the end of the last window touched.
    fn add(&mut self, batch: &RecordBatch) -> Result<Option<i64>, String> {
        let time_col = match &self.o.time {
            Some(name) => batch.column_by_name(name).ok_or_else(|| format!("no time column `{name}`"))?.clone(),
            None => batch.column(index_column(batch, None)?).clone(),
        };
        let times = timestamps(time_col.as_ref()).ok_or("the time column is not a timestamp column")?;
        let value_col = batch.column_by_name(&self.o.value).ok_or_else(|| format!("no value column `{}`", self.o.value))?;
        let values = numbers(value_col.as_ref()).ok_or_else(|| format!("column `{}` is not numeric", self.o.value))?;
        let keys: Option<Vec<Option<&str>>> = match &self.o.key {
            Some(k) => Some(
                strings(batch.column_by_name(k).ok_or_else(|| format!("no key column `{k}`"))?.as_ref())
                    .ok_or_else(|| format!("key column `{k}` is not a string column"))?,
            ),
            None => None,
        };
        let mut last_end = None;
        for (i, (t, v)) in times.iter().zip(values).enumerate() {
            let Some(v) = v else { continue };
            let start = t.div_euclid(self.window_ns) * self.window_ns;
            let key = match &keys {
                Some(k) => k[i].unwrap_or(""),
                None => self.o.value.as_str(),
            };
            self.open.entry(start).or_default().entry(key.to_string()).or_insert_with(Stats::new).add(v);
            self.watermark = self.watermark.max(*t);
            last_end = Some(last_end.unwrap_or(i64::MIN).max(start + self.window_ns));
        }
        Ok(last_end)
    }

    /// Emit the windows that end at or before `upto` as one metrics message: per window
    /// and key, data points `<key>.count`, `.sum`, `.min`, `.max`, `.mean` at the window's
    /// start.
    fn emit(&mut self, upto: i64, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let closed: Vec<i64> = self.open.keys().copied().take_while(|s| s.saturating_add(self.window_ns) <= upto).collect();
        if closed.is_empty() {
            return Ok(());
        }
        let mut rows = MetricRows::default();
        let window = format!("{{\"window_ns\":{}}}", self.window_ns);
        for start in closed {
            let mut keys: Vec<(String, Stats)> = self.open.remove(&start).expect("present").into_iter().collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, s) in keys {
                rows.push(start, &format!("{key}.count"), "", s.count as f64, &window, MetricKind::Gauge);
                rows.push(start, &format!("{key}.sum"), "", s.sum, &window, MetricKind::Gauge);
                rows.push(start, &format!("{key}.min"), "", s.min, &window, MetricKind::Gauge);
                rows.push(start, &format!("{key}.max"), "", s.max, &window, MetricKind::Gauge);
                rows.push(start, &format!("{key}.mean"), "", s.sum / s.count as f64, &window, MetricKind::Gauge);
            }
        }
        let mut msg = Message::new(SignalType::Metrics, rows.finish().map_err(|e| FlowError::Component(e.to_string()))?);
        // The inputs whose windows are all emitted now are settled by this message.
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending).into_iter().partition(|(end, _)| *end <= upto);
        self.pending = rest;
        self.merged.attach(&mut msg, done.into_iter().map(|(_, r)| r), cx);
        cx.emit(msg);
        Ok(())
    }

    fn rearm(&self, cx: &mut Cx<'_>) {
        if self.open.is_empty() {
            cx.clear_timer();
        } else {
            cx.set_timer(self.o.linger);
        }
    }
}

impl Processor for Aggregate {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let receipt = msg.take_receipt();
        match self.add(&msg.data) {
            Ok(Some(end)) => self.pending.push((end, receipt)),
            // No rows with values: nothing to wait for.
            Ok(None) => receipt.ack(),
            Err(e) => {
                receipt.nack(Nack::rejected(e.clone()));
                return Err(FlowError::Component(format!("aggregate: {e}")));
            }
        }
        // Windows that end at or before the latest row time are complete. (A row older than
        // an emitted window opens it again: it is emitted later as a partial aggregate.)
        self.emit(self.watermark, cx)?;
        self.rearm(cx);
        Ok(())
    }

    fn control(&mut self, signal: Control, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        if self.merged.settle(&signal) {
            return Ok(());
        }
        match signal {
            // Lingered long enough, or shutting down: emit every open window.
            Control::Timer | Control::Kill { .. } => {
                self.emit(i64::MAX, cx)?;
                self.rearm(cx);
            }
            _ => {}
        }
        Ok(())
    }

    fn interests(&self) -> Interests {
        Interests::NONE.with(SignalKind::Timer).with(SignalKind::Kill)
    }

    fn held(&self) -> usize {
        self.pending.len()
    }
}
