//! OTLP protobuf messages to and from the flow's signal batches (`flow::schema`).
//!
//! The protobuf types, their decoding and their encoding are `opentelemetry-proto`'s; this
//! file only maps their fields onto rows and back (`docs/observability.md` §8 is the
//! mapping's reference).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, FixedSizeBinaryBuilder, StringBuilder, TimestampNanosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::ArrowError;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::{Map, Value};

use super::super::super::schema::{self, LogRows, MetricKind, MetricRows};

/// Attributes as one JSON object, keys sorted (`serde_json::Map` keeps them sorted), so the
/// same attribute set always gives the same text and the same channel name.
type Attrs = Map<String, Value>;

/// An OTLP value as JSON: strings, booleans, numbers, arrays and maps as themselves, bytes
/// as lowercase hex, a value with nothing set as `null`.
pub(crate) fn json_of(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map(Value::Number).unwrap_or(Value::Null),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(|v| json_of(Some(v))).collect()),
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(attrs_of(&kv.values, None)),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex(b)),
        Some(any_value::Value::StringValueStrindex(_)) | None => Value::Null,
    }
}

/// JSON back as an OTLP value (integers stay integers).
pub(crate) fn any_of(v: &Value) -> AnyValue {
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(any_value::Value::IntValue(i)),
            None => Some(any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Value::Array(a) => Some(any_value::Value::ArrayValue(ArrayValue { values: a.iter().map(any_of).collect() })),
        Value::Object(m) => Some(any_value::Value::KvlistValue(KeyValueList { values: key_values(m) })),
    };
    AnyValue { value }
}

fn key_values(m: &Attrs) -> Vec<KeyValue> {
    m.iter().map(|(k, v)| KeyValue { key: k.clone(), value: Some(any_of(v)), ..Default::default() }).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `attrs` as a JSON map, plus the `keep` resource attributes of `resource`.
fn attrs_of(attrs: &[KeyValue], resource: Option<&Attrs>) -> Attrs {
    let mut m = resource.cloned().unwrap_or_default();
    for kv in attrs {
        m.insert(kv.key.clone(), json_of(kv.value.as_ref()));
    }
    m
}

/// The resource attributes named in `keep`, as a map.
fn kept(resource: Option<&Resource>, keep: &[String]) -> Attrs {
    let mut m = Attrs::new();
    for kv in resource.map(|r| r.attributes.as_slice()).unwrap_or_default() {
        if keep.contains(&kv.key) {
            m.insert(kv.key.clone(), json_of(kv.value.as_ref()));
        }
    }
    m
}

fn text(m: &Attrs) -> String {
    Value::Object(m.clone()).to_string()
}

fn nanos(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// `le` of a histogram bucket: the bound as Prometheus writes it (`+Inf` for the last).
fn le(bound: f64) -> String {
    if bound == f64::INFINITY { "+Inf".into() } else { format!("{bound}") }
}

// ---- OTLP in ----

/// The data points of `req` as metrics rows (`None` when it holds none). Resource
/// attributes named in `keep` are added to every point's attributes.
///
/// Gauges and sums give one row per point (`counter` for a monotonic cumulative sum,
/// `gauge` otherwise). A histogram point gives `<name>:count`, `<name>:sum` and one
/// `<name>:bucket` row per bucket with the cumulative count at or below its `le`
/// attribute; an exponential histogram `:count`, `:sum`, `:min`, `:max` and one `<name>`
/// row per quantile 0.5, 0.9 and 0.99 (attribute `quantile`, estimated from its buckets);
/// a summary `:count`, `:sum` and one `<name>` row per quantile (attribute `quantile`).
pub(crate) fn metrics_batch(req: &ExportMetricsServiceRequest, keep: &[String]) -> Result<Option<RecordBatch>, ArrowError> {
    let mut rows = MetricRows::default();
    for rm in &req.resource_metrics {
        let res = kept(rm.resource.as_ref(), keep);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                push_metric(&mut rows, m, &res);
            }
        }
    }
    if rows.is_empty() { Ok(None) } else { rows.finish().map(Some) }
}

fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => f64::NAN,
    }
}

/// The quantiles kept of an exponential histogram point.
const EXPONENTIAL_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// [`EXPONENTIAL_QUANTILES`] of an exponential histogram point, estimated from its buckets
/// (interpolated inside a bucket, clamped to the point's `min` and `max` when it has them);
/// none without observations. Bucket `i` of scale `s` holds magnitudes in
/// `(base^i, base^(i+1)]`, `base = 2^(2^-s)`.
fn exponential_quantiles(p: &ExponentialHistogramDataPoint) -> Vec<(f64, f64)> {
    let base_log2 = (-f64::from(p.scale)).exp2();
    let bound = |i: i64| (i as f64 * base_log2).exp2();
    // Ascending: negative buckets from the largest magnitude, zero, positive buckets.
    let mut cum = Vec::new();
    let mut below = 0.0;
    let mut start = None;
    if let Some(neg) = &p.negative {
        for (k, n) in neg.bucket_counts.iter().enumerate().rev() {
            let i = i64::from(neg.offset) + k as i64;
            start.get_or_insert(-bound(i + 1));
            below += *n as f64;
            cum.push((-bound(i), below));
        }
    }
    // The three regions need not touch: an empty entry at each region's lower edge keeps
    // the next bucket from stretching down to the previous region's top.
    let edge = |cum: &mut Vec<(f64, f64)>, start: &mut Option<f64>, at: f64, below: f64| {
        if start.is_none() {
            *start = Some(at);
        } else {
            cum.push((at, below));
        }
    };
    if p.zero_count > 0 {
        let zt = p.zero_threshold.abs();
        edge(&mut cum, &mut start, -zt, below);
        below += p.zero_count as f64;
        cum.push((zt, below));
    }
    if let Some(pos) = p.positive.as_ref().filter(|b| !b.bucket_counts.is_empty()) {
        edge(&mut cum, &mut start, bound(i64::from(pos.offset)), below);
        for (k, n) in pos.bucket_counts.iter().enumerate() {
            let i = i64::from(pos.offset) + k as i64;
            below += *n as f64;
            cum.push((bound(i + 1), below));
        }
    }
    let (lo, hi) = (p.min.unwrap_or(f64::NEG_INFINITY), p.max.unwrap_or(f64::INFINITY));
    EXPONENTIAL_QUANTILES
        .iter()
        .filter_map(|&q| crate::telem::bucket_quantile(q, start.unwrap_or(0.0), &cum).map(|v| (q, v.clamp(lo, hi))))
        .collect()
}

fn push_metric(rows: &mut MetricRows, m: &Metric, res: &Attrs) {
    let cumulative = |t: i32| t == AggregationTemporality::Cumulative as i32;
    let (name, unit) = (m.name.as_str(), m.unit.as_str());
    let part = |suffix: &str| format!("{name}:{suffix}");
    match &m.data {
        Some(Data::Gauge(g)) => {
            for p in &g.data_points {
                rows.push(nanos(p.time_unix_nano), name, unit, number(p), &text(&attrs_of(&p.attributes, Some(res))), MetricKind::Gauge);
            }
        }
        Some(Data::Sum(s)) => {
            let kind = if s.is_monotonic && cumulative(s.aggregation_temporality) { MetricKind::Counter } else { MetricKind::Gauge };
            for p in &s.data_points {
                rows.push(nanos(p.time_unix_nano), name, unit, number(p), &text(&attrs_of(&p.attributes, Some(res))), kind);
            }
        }
        Some(Data::Histogram(h)) => {
            let kind = if cumulative(h.aggregation_temporality) { MetricKind::Counter } else { MetricKind::Gauge };
            for p in &h.data_points {
                let (t, attrs) = (nanos(p.time_unix_nano), attrs_of(&p.attributes, Some(res)));
                let a = text(&attrs);
                rows.push(t, &part("count"), "", p.count as f64, &a, kind);
                if let Some(sum) = p.sum {
                    rows.push(t, &part("sum"), unit, sum, &a, kind);
                }
                let mut below = 0u64;
                for (i, n) in p.bucket_counts.iter().enumerate() {
                    below += n;
                    let bound = p.explicit_bounds.get(i).copied().unwrap_or(f64::INFINITY);
                    let mut b = attrs.clone();
                    b.insert("le".into(), Value::String(le(bound)));
                    rows.push(t, &part("bucket"), "", below as f64, &text(&b), kind);
                }
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            let kind = if cumulative(h.aggregation_temporality) { MetricKind::Counter } else { MetricKind::Gauge };
            for p in &h.data_points {
                let (t, attrs) = (nanos(p.time_unix_nano), attrs_of(&p.attributes, Some(res)));
                let a = text(&attrs);
                rows.push(t, &part("count"), "", p.count as f64, &a, kind);
                if let Some(sum) = p.sum {
                    rows.push(t, &part("sum"), unit, sum, &a, kind);
                }
                for (suffix, v) in [("min", p.min), ("max", p.max)] {
                    if let Some(v) = v {
                        rows.push(t, &part(suffix), unit, v, &a, MetricKind::Gauge);
                    }
                }
                // Its buckets move with its scale, so they are not kept as series of their
                // own: the quantiles they give are, as a summary's.
                for (q, v) in exponential_quantiles(p) {
                    let mut b = attrs.clone();
                    b.insert("quantile".into(), Value::from(q));
                    rows.push(t, name, unit, v, &text(&b), MetricKind::Gauge);
                }
            }
        }
        Some(Data::Summary(s)) => {
            for p in &s.data_points {
                let (t, attrs) = (nanos(p.time_unix_nano), attrs_of(&p.attributes, Some(res)));
                let a = text(&attrs);
                rows.push(t, &part("count"), "", p.count as f64, &a, MetricKind::Counter);
                rows.push(t, &part("sum"), unit, p.sum, &a, MetricKind::Counter);
                for q in &p.quantile_values {
                    let mut b = attrs.clone();
                    b.insert("quantile".into(), Value::from(q.quantile));
                    rows.push(t, name, unit, q.value, &text(&b), MetricKind::Gauge);
                }
            }
        }
        None => {}
    }
}

/// A log body as text: a string as itself, anything else as JSON.
fn body_text(v: Option<&AnyValue>) -> String {
    match json_of(v) {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The log records of `req` as logs rows. The time is `time_unix_nano`, or the observed
/// time when the record has none; a record tied to a span gets `trace_id` and `span_id`
/// attributes (hex).
pub(crate) fn logs_batch(req: &ExportLogsServiceRequest, keep: &[String]) -> Result<Option<RecordBatch>, ArrowError> {
    let mut rows = LogRows::default();
    for rl in &req.resource_logs {
        let res = kept(rl.resource.as_ref(), keep);
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let t = if r.time_unix_nano != 0 { r.time_unix_nano } else { r.observed_time_unix_nano };
                let mut a = attrs_of(&r.attributes, Some(&res));
                if !r.trace_id.is_empty() {
                    a.insert("trace_id".into(), Value::String(hex(&r.trace_id)));
                    a.insert("span_id".into(), Value::String(hex(&r.span_id)));
                }
                rows.push(nanos(t), r.severity_number, &r.severity_text, &body_text(r.body.as_ref()), &text(&a));
            }
        }
    }
    rows.finish()
}

/// `id` as exactly `n` bytes: zeros when it is empty or the wrong length.
fn id_bytes(id: &[u8], n: usize) -> Vec<u8> {
    if id.len() == n { id.to_vec() } else { vec![0; n] }
}

/// The spans of `req` as traces rows (`parent_span_id` zeros for a root). The span kind and
/// a status other than unset are kept as `span.kind` and `status.code` attributes.
pub(crate) fn traces_batch(req: &ExportTraceServiceRequest, keep: &[String]) -> Result<Option<RecordBatch>, ArrowError> {
    let (mut trace, mut span, mut parent) =
        (FixedSizeBinaryBuilder::new(16), FixedSizeBinaryBuilder::new(8), FixedSizeBinaryBuilder::new(8));
    let (mut name, mut attrs) = (StringBuilder::new(), StringBuilder::new());
    let mut start = TimestampNanosecondBuilder::new().with_timezone(schema::utc());
    let mut end = TimestampNanosecondBuilder::new().with_timezone(schema::utc());
    for rs in &req.resource_spans {
        let res = kept(rs.resource.as_ref(), keep);
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                trace.append_value(id_bytes(&s.trace_id, 16))?;
                span.append_value(id_bytes(&s.span_id, 8))?;
                parent.append_value(id_bytes(&s.parent_span_id, 8))?;
                name.append_value(&s.name);
                start.append_value(nanos(s.start_time_unix_nano));
                end.append_value(nanos(s.end_time_unix_nano));
                let mut a = attrs_of(&s.attributes, Some(&res));
                if s.kind != 0 {
                    a.insert("span.kind".into(), Value::from(s.kind));
                }
                if let Some(st) = s.status.as_ref().filter(|st| st.code != 0) {
                    a.insert("status.code".into(), Value::from(st.code));
                }
                attrs.append_value(text(&a));
            }
        }
    }
    if name.len() == 0 {
        return Ok(None);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(trace.finish()),
        Arc::new(span.finish()),
        Arc::new(parent.finish()),
        Arc::new(name.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(attrs.finish()),
    ];
    RecordBatch::try_new(schema::traces(), cols).map(Some)
}

// ---- OTLP out ----

/// A column of `batch` by name, as the type the schema gives it.
fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch.column_by_name(name).ok_or_else(|| format!("the batch has no `{name}` column"))
}

fn parse_attrs(s: &str) -> Attrs {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => m,
        _ => Attrs::new(),
    }
}

/// Rows grouped by the resource they belong to: the `lift` attributes move from each row's
/// attributes to its resource.
fn by_resource(attributes: &arrow_array::StringArray, lift: &[String]) -> BTreeMap<String, (Attrs, Vec<(usize, Attrs)>)> {
    let mut groups: BTreeMap<String, (Attrs, Vec<(usize, Attrs)>)> = BTreeMap::new();
    for i in 0..attributes.len() {
        let mut a = parse_attrs(attributes.value(i));
        let mut res = Attrs::new();
        for k in lift {
            if let Some(v) = a.remove(k) {
                res.insert(k.clone(), v);
            }
        }
        groups.entry(text(&res)).or_insert_with(|| (res, Vec::new())).1.push((i, a));
    }
    groups
}

fn resource(res: &Attrs) -> Option<Resource> {
    Some(Resource { attributes: key_values(res), ..Default::default() })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: "telemetron".into(), version: env!("CARGO_PKG_VERSION").into(), ..Default::default() })
}

/// Metrics rows as an OTLP request: a `counter` row becomes a point of a monotonic
/// cumulative sum, a `gauge` row a gauge point; rows of one name, unit and kind are one
/// metric. The `lift` attributes become resource attributes.
pub(crate) fn metrics_request(batch: &RecordBatch, lift: &[String]) -> Result<ExportMetricsServiceRequest, String> {
    let time = column(batch, "time_unix_nano")?.as_primitive::<TimestampNanosecondType>();
    let name = column(batch, "name")?.as_string::<i32>();
    let unit = column(batch, "unit")?.as_string::<i32>();
    let value = column(batch, "value")?.as_primitive::<Float64Type>();
    let kind = column(batch, "kind")?.as_string::<i32>();
    let mut out = Vec::new();
    for (_, (res, rows)) in by_resource(column(batch, "attributes")?.as_string::<i32>(), lift) {
        let mut metrics: BTreeMap<(&str, &str, MetricKind), Vec<NumberDataPoint>> = BTreeMap::new();
        for (i, attrs) in rows {
            let point = NumberDataPoint {
                attributes: key_values(&attrs),
                time_unix_nano: time.value(i).max(0) as u64,
                value: Some(number_data_point::Value::AsDouble(value.value(i))),
                ..Default::default()
            };
            metrics.entry((name.value(i), unit.value(i), MetricKind::parse(kind.value(i)))).or_default().push(point);
        }
        let metrics = metrics
            .into_iter()
            .map(|((name, unit, kind), data_points)| Metric {
                name: name.into(),
                unit: unit.into(),
                data: Some(match kind {
                    MetricKind::Gauge => Data::Gauge(Gauge { data_points }),
                    MetricKind::Counter => Data::Sum(Sum {
                        data_points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    }),
                }),
                ..Default::default()
            })
            .collect();
        out.push(ResourceMetrics {
            resource: resource(&res),
            scope_metrics: vec![ScopeMetrics { scope: scope(), metrics, ..Default::default() }],
            ..Default::default()
        });
    }
    Ok(ExportMetricsServiceRequest { resource_metrics: out })
}

/// Logs rows as an OTLP request (the body as a string value).
pub(crate) fn logs_request(batch: &RecordBatch, lift: &[String]) -> Result<ExportLogsServiceRequest, String> {
    let time = column(batch, "time_unix_nano")?.as_primitive::<TimestampNanosecondType>();
    let sev = column(batch, "severity_number")?.as_primitive::<Int32Type>();
    let sev_text = column(batch, "severity_text")?.as_string::<i32>();
    let body = column(batch, "body")?.as_string::<i32>();
    let mut out = Vec::new();
    for (_, (res, rows)) in by_resource(column(batch, "attributes")?.as_string::<i32>(), lift) {
        let log_records = rows
            .into_iter()
            .map(|(i, attrs)| LogRecord {
                time_unix_nano: time.value(i).max(0) as u64,
                observed_time_unix_nano: time.value(i).max(0) as u64,
                severity_number: sev.value(i),
                severity_text: sev_text.value(i).into(),
                body: Some(AnyValue { value: Some(any_value::Value::StringValue(body.value(i).into())) }),
                attributes: key_values(&attrs),
                ..Default::default()
            })
            .collect();
        out.push(ResourceLogs {
            resource: resource(&res),
            scope_logs: vec![ScopeLogs { scope: scope(), log_records, ..Default::default() }],
            ..Default::default()
        });
    }
    Ok(ExportLogsServiceRequest { resource_logs: out })
}

/// Traces rows as an OTLP request (an all-zero parent is no parent).
pub(crate) fn traces_request(batch: &RecordBatch, lift: &[String]) -> Result<ExportTraceServiceRequest, String> {
    let trace = column(batch, "trace_id")?.as_fixed_size_binary();
    let span = column(batch, "span_id")?.as_fixed_size_binary();
    let parent = column(batch, "parent_span_id")?.as_fixed_size_binary();
    let name = column(batch, "name")?.as_string::<i32>();
    let start = column(batch, "start_time_unix_nano")?.as_primitive::<TimestampNanosecondType>();
    let end = column(batch, "end_time_unix_nano")?.as_primitive::<TimestampNanosecondType>();
    let mut out = Vec::new();
    for (_, (res, rows)) in by_resource(column(batch, "attributes")?.as_string::<i32>(), lift) {
        let spans = rows
            .into_iter()
            .map(|(i, mut attrs)| {
                let kind = attrs.remove("span.kind").and_then(|v| v.as_i64()).unwrap_or(0) as i32;
                let p = parent.value(i);
                Span {
                    trace_id: trace.value(i).to_vec(),
                    span_id: span.value(i).to_vec(),
                    parent_span_id: if p.iter().all(|b| *b == 0) { Vec::new() } else { p.to_vec() },
                    name: name.value(i).into(),
                    kind,
                    start_time_unix_nano: start.value(i).max(0) as u64,
                    end_time_unix_nano: end.value(i).max(0) as u64,
                    attributes: key_values(&attrs),
                    ..Default::default()
                }
            })
            .collect();
        out.push(ResourceSpans {
            resource: resource(&res),
            scope_spans: vec![ScopeSpans { scope: scope(), spans, ..Default::default() }],
            ..Default::default()
        });
    }
    Ok(ExportTraceServiceRequest { resource_spans: out })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::{Histogram, HistogramDataPoint};

    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource { attributes: vec![kv("service.name", "rig"), kv("host.name", "h1")], ..Default::default() }),
                scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn sums_histograms_and_back() {
        let sum = Metric {
            name: "valve.cycles".into(),
            unit: "1".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("valve", "v1")],
                    time_unix_nano: 5,
                    value: Some(number_data_point::Value::AsInt(42)),
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let hist = Metric {
            name: "lat".into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: 6,
                    count: 3,
                    sum: Some(0.6),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![0.1, 0.5],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let batch = metrics_batch(&request(vec![sum, hist]), &["service.name".into()]).unwrap().unwrap();
        let names: Vec<&str> = batch.column(1).as_string::<i32>().iter().map(Option::unwrap).collect();
        assert_eq!(names, ["valve.cycles", "lat:count", "lat:sum", "lat:bucket", "lat:bucket", "lat:bucket"]);
        let values: Vec<f64> = batch.column(3).as_primitive::<Float64Type>().values().to_vec();
        assert_eq!(values, [42.0, 3.0, 0.6, 1.0, 3.0, 3.0]);
        let attrs = batch.column(4).as_string::<i32>();
        assert_eq!(attrs.value(0), r#"{"service.name":"rig","valve":"v1"}"#, "resource attributes only as kept");
        assert_eq!(attrs.value(5), r#"{"le":"+Inf","service.name":"rig"}"#);
        assert_eq!(batch.column(5).as_string::<i32>().value(0), "counter");

        let back = metrics_request(&batch, &["service.name".into()]).unwrap();
        assert_eq!(back.resource_metrics.len(), 1);
        let rm = &back.resource_metrics[0];
        assert_eq!(rm.resource.as_ref().unwrap().attributes, vec![kv("service.name", "rig")]);
        let cycles = rm.scope_metrics[0].metrics.iter().find(|m| m.name == "valve.cycles").unwrap();
        let Some(Data::Sum(s)) = &cycles.data else { panic!("a counter goes out as a sum: {cycles:?}") };
        assert!(s.is_monotonic);
        assert_eq!(s.data_points[0].attributes, vec![kv("valve", "v1")]);
        assert_eq!(number(&s.data_points[0]), 42.0);
    }

    #[test]
    fn values_of_every_kind_round_trip_through_json() {
        let v = serde_json::json!({"a": [1, 2.5, "x", true, null], "b": {"c": -3}});
        assert_eq!(json_of(Some(&any_of(&v))), v);
    }
}

#[cfg(test)]
mod exponential_tests {
    use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

    use super::exponential_quantiles;

    #[test]
    fn exponential_quantiles_come_from_the_buckets() {
        // Scale 0 (base 2): 10 observations in (1, 2], 10 in (2, 4], none in (4, 8], 10 in (8, 16].
        let p = ExponentialHistogramDataPoint {
            count: 30,
            scale: 0,
            positive: Some(Buckets { offset: 0, bucket_counts: vec![10, 10, 0, 10] }),
            ..Default::default()
        };
        let q = exponential_quantiles(&p);
        assert_eq!(q[0], (0.5, 3.0), "the 15th of 30: halfway through (2, 4]");
        assert_eq!(q[1], (0.9, 8.0 + 8.0 * 0.7), "the 27th: 7/10 into (8, 16]");
        // min and max bound the estimate; a zero bucket and negative ones sit below.
        let p = ExponentialHistogramDataPoint {
            count: 20,
            scale: 1,
            zero_count: 10,
            negative: Some(Buckets { offset: 0, bucket_counts: vec![10] }),
            min: Some(-1.2),
            max: Some(0.0),
            ..Default::default()
        };
        let q = exponential_quantiles(&p);
        let p_max = ExponentialHistogramDataPoint { max: Some(10.0), ..Default::default() };
        assert!(exponential_quantiles(&p_max).is_empty());
        // Scale 1: base √2; the negative bucket holds [-√2, -1); the median is its top.
        assert_eq!(q[0], (0.5, -1.0));
        assert_eq!(q[2].1, 0.0, "in the zero bucket: {q:?}");
        // A zero bucket far below the positive ones: the first positive bucket spans its own
        // bounds, not everything above zero. Scale 0, 10 zeros, 90 in (1024, 2048].
        let p = ExponentialHistogramDataPoint {
            count: 100,
            zero_count: 10,
            positive: Some(Buckets { offset: 10, bucket_counts: vec![90] }),
            ..Default::default()
        };
        let q = exponential_quantiles(&p);
        assert_eq!(q[0], (0.5, 1024.0 + 1024.0 * 40.0 / 90.0));
        assert_eq!(q[1], (0.9, 1024.0 + 1024.0 * 80.0 / 90.0));
        assert!(exponential_quantiles(&ExponentialHistogramDataPoint::default()).is_empty(), "no observations, no quantiles");
    }
}
