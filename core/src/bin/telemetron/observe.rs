//! `telemetron observe` (a node's instrumentation levels and metrics) and `telemetron
//! logs` (its log files), docs/observability.md.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use telemetron::Error;
use telemetron::observe::logfile::LogFiles;
use telemetron::observe::{Level, LevelsUpdate, MetricKind, Observe, Summary, SummaryRequest};

use crate::node::NodeArgs;

/// Show a node's levels and metrics, or change its levels at runtime.
#[derive(Debug, Args)]
pub struct ObserveArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Set the log level: off, basic or detailed.
    #[arg(long)]
    pub logs: Option<Level>,
    /// Set the metrics level: off, basic or detailed.
    #[arg(long)]
    pub metrics: Option<Level>,
    /// Set the trace level: off, basic (requests, engine writes, storage commits) or
    /// detailed. Spans go out through --otlp-endpoint.
    #[arg(long)]
    pub traces: Option<Level>,
    /// Also print every metric now (name and value), after the levels.
    #[arg(long)]
    pub values: bool,
    /// Also summarize the node's self-telemetry history over this window, ending at its
    /// last sample (30s, 5m, 1h): counters' increase and rate, gauges' min/mean/max,
    /// histograms' rate, mean and p50/p90/p99. Needs a node started with --self-telemetry.
    #[arg(long, value_name = "WINDOW")]
    pub summary: Option<String>,
    /// Only metrics whose name contains this (with --values or --summary).
    #[arg(long)]
    pub filter: Option<String>,
}

pub fn run(a: ObserveArgs) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })?;
    if a.filter.is_some() && !a.values && a.summary.is_none() {
        return Err(Error::InvalidArgument { reason: "--filter chooses what --values or --summary prints: add one of them".into() });
    }
    // A bad window fails before anything is asked of the node.
    let summary = a.summary.as_deref().map(|w| SummaryRequest::parse(Some(w), None, a.filter.clone())).transpose()?;
    rt.block_on(async move {
        let client = a.node.connect().await?;
        let observe = Observe::new(&client);
        let update = LevelsUpdate { logs: a.logs, metrics: a.metrics, traces: a.traces };
        let levels = if update == LevelsUpdate::default() { observe.levels().await? } else { observe.set_levels(update).await? };
        println!("logs     {}", levels.logs);
        println!("metrics  {}", levels.metrics);
        println!("traces   {}", levels.traces);
        if a.values {
            let m = observe.metrics().await?;
            let shown: Vec<_> = m.samples.iter().filter(|(n, _)| a.filter.as_deref().is_none_or(|f| n.contains(f))).collect();
            let width = shown.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (n, v) in shown {
                println!("{n:<width$}  {v}");
            }
        }
        if let Some(req) = summary {
            print_summary(&observe.summary(&req).await?);
        }
        client.close().await
    })
}

/// One line per series: its kind and the statistics its kind has, in its unit.
fn print_summary(s: &Summary) {
    let secs = (s.end - s.start) as f64 / 1e9;
    println!();
    let window = match secs {
        x if x >= 3600.0 && x % 3600.0 == 0.0 => format!("{}h", x / 3600.0),
        x if x >= 60.0 && x % 60.0 == 0.0 => format!("{}m", x / 60.0),
        x => format!("{x}s"),
    };
    println!("summary over {window} ending {}", telemetron::telem::TimeStamp(s.end));
    if s.series.is_empty() {
        println!("(no self-telemetry samples in this window)");
        return;
    }
    let width = s.series.iter().map(|x| x.name.len()).max().unwrap_or(0);
    for x in &s.series {
        let u = x.unit.as_str();
        let per_s = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{}/s", human(r, count_unit(u))));
        let stats = match x.kind {
            MetricKind::Counter => format!("+{}  {}", human(x.increase.unwrap_or(0.0), count_unit(u)), per_s(x.rate)),
            MetricKind::Gauge => format!("min {}  mean {}  max {}", opt(x.min, u), opt(x.mean, u), opt(x.max, u)),
            MetricKind::Histogram => format!(
                "{} observed  {}  mean {}  p50 {}  p90 {}  p99 {}",
                x.increase.unwrap_or(0.0),
                per_s(x.rate),
                opt(x.mean, u),
                opt(x.p50, u),
                opt(x.p90, u),
                opt(x.p99, u)
            ),
            MetricKind::Unknown => format!(
                "min {}  mean {}  max {}  +{}  {}",
                opt(x.min, u),
                opt(x.mean, u),
                opt(x.max, u),
                human(x.increase.unwrap_or(0.0), u),
                per_s(x.rate)
            ),
        };
        println!("{:<width$}  {:<9}  {stats}", x.name, x.kind.to_string());
    }
}

/// A counter's unit, for its increase: bytes stay bytes, `{commit}` is a plain count.
fn count_unit(u: &str) -> &str {
    if u == "By" { u } else { "" }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "-".to_owned(), |v| human(v, unit))
}

/// `v` in `unit` for a person: seconds as ms or µs, bytes as KiB, MiB or GiB.
fn human(v: f64, unit: &str) -> String {
    match unit {
        "s" if v != 0.0 && v.abs() < 1e-3 => format!("{:.1}µs", v * 1e6),
        "s" if v != 0.0 && v.abs() < 1.0 => format!("{:.2}ms", v * 1e3),
        "s" => format!("{v:.3}s"),
        "By" => {
            let (mut x, mut i) = (v, 0);
            while x.abs() >= 1024.0 && i < 3 {
                x /= 1024.0;
                i += 1;
            }
            format!("{x:.1}{}", ["B", "KiB", "MiB", "GiB"][i])
        }
        _ if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// Print the last lines of a node's log, or follow it.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The node's data directory (its log is in `<data>/logs`).
    #[arg(long, default_value = "telemetron-data")]
    pub data: PathBuf,
    /// The log directory, if the node was started with `--log-dir`.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// How many of the last lines to print.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
    /// Keep printing lines as the node writes them (Ctrl-C stops).
    #[arg(short, long)]
    pub follow: bool,
}

pub fn logs(a: LogsArgs) -> Result<(), Error> {
    let dir = a.log_dir.clone().unwrap_or_else(|| a.data.join("logs"));
    if !telemetron::observe::logfile::has_log(&dir) {
        return Err(Error::InvalidArgument {
            reason: format!("no log in {}: is that a node's data directory (--data), or did it log elsewhere (--log-dir)?", dir.display()),
        });
    }
    let files = LogFiles::new(&dir);
    let io = |e: std::io::Error| Error::InvalidArgument { reason: format!("cannot read the log in {}: {e}", dir.display()) };
    let (lines, at) = files.tail_at(a.lines).map_err(io)?;
    for line in lines {
        println!("{line}");
    }
    if a.follow {
        files
            .follow(Duration::from_millis(100), at, |line| {
                use std::io::Write as _;
                // Stop quietly when the reader of our output goes away (`| head`).
                writeln!(std::io::stdout(), "{line}").is_ok()
            })
            .map_err(io)?;
    }
    Ok(())
}
