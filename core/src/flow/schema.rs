//! The Arrow schema of each signal type (`docs/dataflow.md` §2).
//!
//! OpenTelemetry signals follow the OTel-Arrow layout where it is practical in one record
//! batch: one row per log record, data point, span or event, with the OTLP field names
//! (`time_unix_nano`, `severity_number`, ...). OTel-Arrow keeps attributes in separate
//! child batches keyed by a parent id; a flow message here is one batch, so attributes are
//! one JSON object per row in an `attributes` column. Channel frames are
//! [`crate::telem::arrow`]'s batches: one column per channel (its name, with the engine data
//! type in the field metadata), the index channel included, sharing the series' buffers.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{ArrayBuilder, Float64Builder, Int32Builder, StringBuilder, TimestampNanosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::message::SignalType;

/// A schema built once per process: every message of a signal points at the same one.
fn once(cell: &'static OnceLock<SchemaRef>, fields: fn() -> Vec<Field>) -> SchemaRef {
    cell.get_or_init(|| Arc::new(Schema::new(fields()))).clone()
}

/// The time zone of every timestamp column of the signal schemas (shared, not reallocated
/// per message).
pub fn utc() -> Arc<str> {
    static UTC: OnceLock<Arc<str>> = OnceLock::new();
    UTC.get_or_init(|| Arc::from("UTC")).clone()
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(utc()))
}

/// Logs: `time_unix_nano`, `severity_number` (i32, OTel severity 1-24), `severity_text`,
/// `body`, `attributes` (JSON object text).
pub fn logs() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    once(&SCHEMA, || {
        vec![
            Field::new("time_unix_nano", ts(), false),
            Field::new("severity_number", DataType::Int32, false),
            Field::new("severity_text", DataType::Utf8, false),
            Field::new("body", DataType::Utf8, false),
            Field::new("attributes", DataType::Utf8, false),
        ]
    })
}

/// Rows of the logs schema, built column by column.
#[derive(Debug)]
pub struct LogRows {
    time: TimestampNanosecondBuilder,
    severity: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    attributes: StringBuilder,
}

impl Default for LogRows {
    fn default() -> Self {
        LogRows {
            time: TimestampNanosecondBuilder::new().with_timezone(utc()),
            severity: Int32Builder::new(),
            severity_text: StringBuilder::new(),
            body: StringBuilder::new(),
            attributes: StringBuilder::new(),
        }
    }
}

impl LogRows {
    /// Append one record; `attributes` is a JSON object's text.
    pub fn push(&mut self, time: i64, severity: i32, severity_text: &str, body: &str, attributes: &str) {
        self.time.append_value(time);
        self.severity.append_value(severity);
        self.severity_text.append_value(severity_text);
        self.body.append_value(body);
        self.attributes.append_value(attributes);
    }

    /// The record batch, `None` when no row was pushed.
    pub fn finish(mut self) -> Result<Option<RecordBatch>, arrow_schema::ArrowError> {
        if self.severity.len() == 0 {
            return Ok(None);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.attributes.finish()),
        ];
        RecordBatch::try_new(logs(), cols).map(Some)
    }
}

/// Metrics: one data point per row: `time_unix_nano`, `name`, `unit`, `value` (f64),
/// `attributes` (JSON object text), `kind` ([`MetricKind`]: `gauge` or `counter`).
/// Histograms and summaries arrive as several rows (`<name>:count`, `<name>:sum`,
/// `<name>:bucket` with an `le` attribute; `docs/observability.md` §8).
pub fn metrics() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    once(&SCHEMA, || {
        vec![
            Field::new("time_unix_nano", ts(), false),
            Field::new("name", DataType::Utf8, false),
            Field::new("unit", DataType::Utf8, false),
            Field::new("value", DataType::Float64, false),
            Field::new("attributes", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
        ]
    })
}

/// What a metrics row's value means: the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricKind {
    /// The current value (a gauge, a non-monotonic sum, an aggregate).
    Gauge,
    /// A monotonic cumulative total since the stream started (an OTel monotonic sum, a
    /// histogram's count, sum and buckets).
    Counter,
}

impl MetricKind {
    /// `gauge` or `counter`.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }

    /// The kind named `s` (anything but `counter` is a gauge: it claims the least).
    pub fn parse(s: &str) -> MetricKind {
        if s == "counter" { MetricKind::Counter } else { MetricKind::Gauge }
    }
}

/// Rows of the metrics schema, built column by column.
#[derive(Debug)]
pub struct MetricRows {
    time: TimestampNanosecondBuilder,
    name: StringBuilder,
    unit: StringBuilder,
    value: Float64Builder,
    attributes: StringBuilder,
    kind: StringBuilder,
}

impl Default for MetricRows {
    fn default() -> Self {
        MetricRows {
            time: TimestampNanosecondBuilder::new().with_timezone(utc()),
            name: StringBuilder::new(),
            unit: StringBuilder::new(),
            value: Float64Builder::new(),
            attributes: StringBuilder::new(),
            kind: StringBuilder::new(),
        }
    }
}

impl MetricRows {
    /// Append one data point; `attributes` is a JSON object's text.
    pub fn push(&mut self, time: i64, name: &str, unit: &str, value: f64, attributes: &str, kind: MetricKind) {
        self.time.append_value(time);
        self.name.append_value(name);
        self.unit.append_value(unit);
        self.value.append_value(value);
        self.attributes.append_value(attributes);
        self.kind.append_value(kind.name());
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record batch.
    pub fn finish(mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.attributes.finish()),
            Arc::new(self.kind.finish()),
        ];
        RecordBatch::try_new(metrics(), cols)
    }
}

/// Traces: one span per row: `trace_id` (16 bytes), `span_id` (8), `parent_span_id` (8,
/// zeros for a root), `name`, `start_time_unix_nano`, `end_time_unix_nano`, `attributes`.
pub fn traces() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    once(&SCHEMA, || {
        vec![
            Field::new("trace_id", DataType::FixedSizeBinary(16), false),
            Field::new("span_id", DataType::FixedSizeBinary(8), false),
            Field::new("parent_span_id", DataType::FixedSizeBinary(8), false),
            Field::new("name", DataType::Utf8, false),
            Field::new("start_time_unix_nano", ts(), false),
            Field::new("end_time_unix_nano", ts(), false),
            Field::new("attributes", DataType::Utf8, false),
        ]
    })
}

/// Events: `time_unix_nano`, `name`, `attributes`.
pub fn events() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    once(&SCHEMA, || {
        vec![
            Field::new("time_unix_nano", ts(), false),
            Field::new("name", DataType::Utf8, false),
            Field::new("attributes", DataType::Utf8, false),
        ]
    })
}

/// The fixed schema of an OpenTelemetry signal (`None` for frames, whose columns are the
/// channels).
pub fn of(signal: SignalType) -> Option<SchemaRef> {
    match signal {
        SignalType::Frames => None,
        SignalType::Metrics => Some(metrics()),
        SignalType::Logs => Some(logs()),
        SignalType::Traces => Some(traces()),
        SignalType::Events => Some(events()),
    }
}
