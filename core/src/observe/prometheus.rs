//! The Prometheus text exposition format (0.0.4) of one collection, named as the OpenTelemetry
//! specification's Prometheus compatibility section says: dots become underscores, the unit
//! is a suffix (`s` -> `_seconds`, `By` -> `_bytes`; annotations like `{frame}` are dropped),
//! monotonic sums end in `_total`, histograms give `_bucket` (cumulative, with `le`),
//! `_sum` and `_count`. Attributes become labels; the resource's `service.instance.id` is
//! the `service_instance_id` label of `target_info`.

use std::fmt::Write as _;

use opentelemetry::KeyValue;

use super::AsF64;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// The name of a metric in Prometheus: `telemetron.storage.sync.duration` with unit `s`
/// is `telemetron_storage_sync_duration_seconds`.
pub(super) fn metric_name(name: &str, unit: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    let suffix = match unit {
        "s" => "seconds",
        "By" => "bytes",
        "ms" => "milliseconds",
        _ => "",
    };
    if !suffix.is_empty() && !out.ends_with(suffix) {
        out.push('_');
        out.push_str(suffix);
    }
    out
}

fn label_name(k: &str) -> String {
    let s: String = k.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) { format!("_{s}") } else { s }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> =
        attrs.map(|kv| format!("{}=\"{}\"", label_name(kv.key.as_str()), escape_value(&kv.value.as_str()))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

pub(super) fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn write_data<T: AsF64>(out: &mut String, m: &Metric, data: &MetricData<T>) {
    let base = metric_name(m.name(), m.unit());
    let help = m.description().replace('\\', "\\\\").replace('\n', "\\n");
    match data {
        MetricData::Sum(sum) => {
            let (name, kind) = if sum.is_monotonic() { (format!("{base}_total"), "counter") } else { (base.clone(), "gauge") };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in sum.data_points() {
                let _ = writeln!(out, "{name}{} {}", labels(p.attributes(), None), number(p.value().f()));
            }
        }
        MetricData::Gauge(g) => {
            let _ = writeln!(out, "# HELP {base} {help}\n# TYPE {base} gauge");
            for p in g.data_points() {
                let _ = writeln!(out, "{base}{} {}", labels(p.attributes(), None), number(p.value().f()));
            }
        }
        MetricData::Histogram(h) => {
            let _ = writeln!(out, "# HELP {base} {help}\n# TYPE {base} histogram");
            for p in h.data_points() {
                let mut cum = 0u64;
                let counts: Vec<u64> = p.bucket_counts().collect();
                for (i, bound) in p.bounds().enumerate() {
                    cum += counts.get(i).copied().unwrap_or(0);
                    let _ = writeln!(out, "{base}_bucket{} {cum}", labels(p.attributes(), Some(("le", number(bound)))));
                }
                let _ = writeln!(out, "{base}_bucket{} {}", labels(p.attributes(), Some(("le", "+Inf".into()))), p.count());
                let _ = writeln!(out, "{base}_sum{} {}", labels(p.attributes(), None), number(p.sum().f()));
                let _ = writeln!(out, "{base}_count{} {}", labels(p.attributes(), None), p.count());
            }
        }
        // Not configured by any instrument here (explicit-bucket histograms only).
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// Render one collection.
pub(super) fn render(rm: &ResourceMetrics) -> String {
    let mut out = String::with_capacity(8 << 10);
    let res = rm.resource();
    let _ = writeln!(out, "# HELP target_info Target metadata\n# TYPE target_info gauge");
    let _ = writeln!(
        out,
        "target_info{} 1",
        labels(res.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect::<Vec<_>>().iter(), None)
    );
    for sm in rm.scope_metrics() {
        for m in sm.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => write_data(&mut out, m, d),
                AggregatedMetrics::U64(d) => write_data(&mut out, m, d),
                AggregatedMetrics::I64(d) => write_data(&mut out, m, d),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_otel_prometheus_rules() {
        assert_eq!(metric_name("telemetron.storage.sync.duration", "s"), "telemetron_storage_sync_duration_seconds");
        assert_eq!(metric_name("telemetron.storage.written", "By"), "telemetron_storage_written_bytes");
        assert_eq!(metric_name("telemetron.relay.dropped", "{frame}"), "telemetron_relay_dropped");
        assert_eq!(label_name("service.instance.id"), "service_instance_id");
        assert_eq!(escape_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
