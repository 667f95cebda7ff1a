//! Analytics: what the node's self-telemetry history says over a window
//! (`docs/observability.md` §7, "Summaries over a window").
//!
//! Self-telemetry (§6) stores every scalar of the node's metrics in channels, one sample
//! per interval. A [`Summary`] reads a window of those channels where they are stored and
//! answers the questions an operator asks of them without moving the history to the
//! client: how fast the node stored (a counter's increase and rate, across restarts that
//! reset it), how full its queues were (a gauge's min, mean, max), how slow its
//! `fdatasync` calls or requests were (a histogram's rate, mean and p50/p90/p99, estimated
//! from the increase of its cumulative buckets, as Prometheus's `histogram_quantile` does).
//!
//! The kind of each series comes from the observer's own instruments (what is counted
//! now); a series no instrument names any more (a flow that was removed, a data directory
//! written by another node) is a histogram when its `bucket` channels say so, and
//! `unknown` otherwise, with every statistic given.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::CHANNEL_PREFIX;
use super::channels::Scalar;
use crate::Engine;
use crate::channel::ChannelKey;
use crate::error::{Error, Result};
use crate::telem::{DataType, TimeRange, TimeStamp, bucket_quantile};

/// What kind of metric a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A monotonic count (reset to zero when the node restarts).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution: `<name>/count`, `<name>/sum` and cumulative `<name>/bucket/<le>`.
    Histogram,
    /// Not named by any instrument of this observer (see the module docs).
    #[default]
    Unknown,
}

impl std::fmt::Display for MetricKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Unknown => "unknown",
        })
    }
}

/// The window a summary covers when none is given: five minutes.
pub const DEFAULT_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// The request of `observe/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryRequest {
    /// The window's length in seconds ([`DEFAULT_WINDOW`] when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<f64>,
    /// The window's end, nanoseconds since the Unix epoch (inclusive); when absent, the
    /// last self-telemetry sample, so a data directory copied from a finished run is
    /// summarized over its own last minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    /// Only series whose name contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

impl SummaryRequest {
    /// A request from what a user typed: `window` as `30s`, `5m`, `1h` or a number of
    /// seconds. The SDKs and the CLI all build their request here.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a window that is not a duration above zero.
    pub fn parse(window: Option<&str>, end: Option<i64>, filter: Option<String>) -> Result<SummaryRequest> {
        let window = match window {
            None => None,
            Some(w) => match crate::telem::parse_duration(w) {
                Some(d) if !d.is_zero() => Some(d.as_secs_f64()),
                _ => {
                    return Err(Error::InvalidArgument {
                        reason: format!("{w:?} is not a window: write a duration above zero such as 30s, 5m or 1h"),
                    });
                }
            },
        };
        Ok(SummaryRequest { window, end, filter })
    }

    fn window_ns(&self) -> Result<i64> {
        let w = self.window.unwrap_or(DEFAULT_WINDOW.as_secs_f64());
        if !(w.is_finite() && w > 0.0) {
            return Err(Error::InvalidArgument { reason: format!("the window must be a number of seconds above zero, not {w}") });
        }
        Ok((w * 1e9).min(i64::MAX as f64) as i64)
    }
}

/// One series over the window. Which statistics are set depends on its kind:
///
/// | kind | set |
/// |---|---|
/// | counter | `increase`, `rate` |
/// | gauge | `min`, `mean`, `max` |
/// | histogram | `increase` and `rate` (observations), `mean` (the mean observation), `p50`, `p90`, `p99` |
/// | unknown | `min`, `mean`, `max`, `increase`, `rate` |
///
/// `rate` is per second, over the time from the first to the last sample in the window;
/// it needs two samples. A histogram's quantiles need observations in the window and
/// stored buckets; they are estimates, exact to the width of the bucket they fall in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// The self-telemetry channel (for a histogram, its base name without `/count`).
    pub name: String,
    /// What the metric is.
    pub kind: MetricKind,
    /// The metric's unit (`s`, `By`, `{commit}`); empty when unknown.
    #[serde(default)]
    pub unit: String,
    /// Samples in the window (of `/count` for a histogram).
    pub points: u64,
    /// Time of the first and of the last of them (ns since the Unix epoch).
    pub first_time: i64,
    /// See `first_time`.
    pub last_time: i64,
    /// The last value (a histogram: its total count).
    pub last: f64,
    /// Smallest value in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Mean of the values in the window (a histogram: the mean observation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Largest value in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// How much a counter grew in the window, counting a drop (a restart) as a reset to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increase: Option<f64>,
    /// `increase` per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Estimated median observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    /// Estimated 90th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    /// Estimated 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
}

/// The reply to `observe/summary`: every self-telemetry series over `[start, end]`, sorted
/// by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The window's start (ns since the Unix epoch, inclusive).
    pub start: i64,
    /// The window's end (inclusive).
    pub end: i64,
    /// One entry per series with samples in the window.
    pub series: Vec<SeriesSummary>,
}

impl Summary {
    /// The series named `name`, if it had samples in the window.
    pub fn get(&self, name: &str) -> Option<&SeriesSummary> {
        self.series.iter().find(|s| s.name == name)
    }
}

/// One channel's samples in the window.
struct Samples {
    values: Vec<f64>,
    first: i64,
    last: i64,
}

/// Summarize `engine`'s self-telemetry; `known` are the observer's scalars now (their kinds
/// and units).
pub(super) fn summarize(engine: &Engine, known: &[Scalar], prefix: &str, req: &SummaryRequest) -> Result<Summary> {
    let window = req.window_ns()?;
    let time_name = format!("{prefix}time");
    let no_history = || Error::InvalidArgument {
        reason: "this engine holds no self-telemetry to summarize: start the node with --self-telemetry 1s (or Observer::start_channels)"
            .into(),
    };
    let time = engine.channels().by_name(&time_name).map_err(|_| no_history())?;
    let end = match req.end {
        Some(e) => e,
        None => engine.time_range(time.key)?.ok_or_else(no_history)?.end.0 - 1,
    };
    let start = end.saturating_sub(window);
    let wanted = |name: &str| req.filter.as_deref().is_none_or(|f| name.contains(f));
    let chans: Vec<(ChannelKey, String)> = engine
        .channels()
        .list_all()
        .into_iter()
        .filter(|c| c.name.starts_with(prefix) && c.data_type == DataType::F64 && c.index_key() == Some(time.key) && wanted(&c.name))
        // Under the plain names the observer's scalars have.
        .map(|c| (c.key, format!("{CHANNEL_PREFIX}{}", &c.name[prefix.len()..])))
        .collect();
    let mut summary = Summary { start, end, series: Vec::new() };
    if chans.is_empty() {
        return Ok(summary);
    }
    let keys: Vec<ChannelKey> = chans.iter().map(|(k, _)| *k).collect();
    let frame = engine.read(TimeRange { start: TimeStamp(start), end: TimeStamp(end.saturating_add(1)) }, &keys)?;
    let mut by_name: BTreeMap<String, Samples> = BTreeMap::new();
    for (key, name) in chans {
        let mut s = Samples { values: Vec::new(), first: i64::MAX, last: i64::MIN };
        for series in frame.get(key) {
            if series.is_empty() {
                continue;
            }
            s.values.extend_from_slice(series.as_slice::<f64>()?);
            let tr = series.time_range();
            s.first = s.first.min(tr.start.0);
            s.last = s.last.max(tr.end.0 - 1);
        }
        if !s.values.is_empty() {
            by_name.insert(name, s);
        }
    }
    let kinds: HashMap<&str, (MetricKind, &str)> = known.iter().map(|s| (s.name.as_str(), (s.kind, s.unit.as_str()))).collect();
    // Histograms first: their parts are not series of their own.
    let mut parts: std::collections::HashSet<String> = std::collections::HashSet::new();
    let bases: Vec<String> = by_name
        .keys()
        .filter_map(|n| n.strip_suffix("/count"))
        .filter(|b| {
            let count = format!("{b}/count");
            matches!(kinds.get(count.as_str()), Some((MetricKind::Histogram, _)))
                || by_name.range(format!("{b}/bucket/")..).next().is_some_and(|(k, _)| k.starts_with(&format!("{b}/bucket/")))
        })
        .map(str::to_owned)
        .collect();
    for base in bases {
        let count = format!("{base}/count");
        let sum = format!("{base}/sum");
        let prefix = format!("{base}/bucket/");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for (name, s) in by_name.range(prefix.clone()..) {
            let Some(le) = name.strip_prefix(&prefix) else { break };
            if let Ok(le) = le.parse::<f64>() {
                buckets.push((le, increase(&s.values)));
            }
            parts.insert(name.clone());
        }
        let c = &by_name[&count];
        let n = increase(&c.values);
        let unit = kinds.get(count.as_str()).map_or("", |(_, u)| *u);
        let mut out = scalar_summary(base.clone(), MetricKind::Histogram, unit, c);
        out.increase = Some(n);
        out.rate = rate(n, c);
        if let Some(s) = by_name.get(&sum) {
            out.mean = (n > 0.0).then(|| increase(&s.values) / n);
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Prometheus's convention: the lowest bucket starts at 0.
        out.p50 = bucket_quantile(0.5, 0.0, &buckets);
        out.p90 = bucket_quantile(0.9, 0.0, &buckets);
        out.p99 = bucket_quantile(0.99, 0.0, &buckets);
        parts.insert(count);
        parts.insert(sum);
        summary.series.push(out);
    }
    for (name, s) in &by_name {
        if parts.contains(name) {
            continue;
        }
        let (kind, unit) = kinds.get(name.as_str()).copied().unwrap_or((MetricKind::Unknown, ""));
        let mut out = scalar_summary(name.clone(), kind, unit, s);
        if matches!(kind, MetricKind::Gauge | MetricKind::Unknown) {
            out.min = s.values.iter().copied().reduce(f64::min);
            out.max = s.values.iter().copied().reduce(f64::max);
            out.mean = Some(s.values.iter().sum::<f64>() / s.values.len() as f64);
        }
        if matches!(kind, MetricKind::Counter | MetricKind::Unknown) {
            let n = increase(&s.values);
            out.increase = Some(n);
            out.rate = rate(n, s);
        }
        summary.series.push(out);
    }
    summary.series.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(summary)
}

fn scalar_summary(name: String, kind: MetricKind, unit: &str, s: &Samples) -> SeriesSummary {
    SeriesSummary {
        name,
        kind,
        unit: unit.to_owned(),
        points: s.values.len() as u64,
        first_time: s.first,
        last_time: s.last,
        last: s.values.last().copied().unwrap_or(0.0),
        ..Default::default()
    }
}

/// How much a cumulative count grew over `values`: the sum of its rises, where a drop is a
/// reset to zero (a restarted node counts from 0 again), so the value after it is all rise.
fn increase(values: &[f64]) -> f64 {
    values.windows(2).map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] }).sum()
}

/// `increase` per second over the samples' time span (two samples at least).
fn rate(increase: f64, s: &Samples) -> Option<f64> {
    (s.values.len() > 1 && s.last > s.first).then(|| increase / ((s.last - s.first) as f64 / 1e9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increase_counts_a_reset_as_starting_from_zero() {
        assert_eq!(increase(&[]), 0.0);
        assert_eq!(increase(&[5.0]), 0.0);
        assert_eq!(increase(&[5.0, 7.0, 10.0]), 5.0);
        // 10 → 3 is a restart: 3 counted since, so 5 + 3 + 4.
        assert_eq!(increase(&[5.0, 10.0, 3.0, 7.0]), 12.0);
    }

    #[test]
    fn windows_parse_like_every_other_duration() {
        assert_eq!(SummaryRequest::parse(Some("5m"), None, None).unwrap().window, Some(300.0));
        assert_eq!(SummaryRequest::parse(Some("90"), None, None).unwrap().window, Some(90.0));
        // As Python and JavaScript print numbers.
        assert_eq!(SummaryRequest::parse(Some("1e-05"), None, None).unwrap().window, Some(1e-5));
        assert_eq!(SummaryRequest::parse(Some("1.5e2s"), None, None).unwrap().window, Some(150.0));
        assert_eq!(SummaryRequest::parse(None, None, None).unwrap().window, None);
        // Beyond what a duration holds: refused, not a panic.
        for bad in ["0s", "soon", "-1m", "", "100000000000000000000000", "6000000000000000h"] {
            let e = SummaryRequest::parse(Some(bad), None, None).unwrap_err();
            assert!(e.to_string().contains("is not a window"), "{bad}: {e}");
        }
    }
}
