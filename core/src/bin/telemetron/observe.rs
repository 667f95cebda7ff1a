//! `telemetron observe` (a node's instrumentation levels and metrics) and `telemetron
//! logs` (its log files), docs/observability.md.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use telemetron::Error;
use telemetron::observe::logfile::LogFiles;
use telemetron::observe::{Level, LevelsUpdate, Observe};

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
    /// Only metrics whose name contains this (with --values).
    #[arg(long, requires = "values")]
    pub filter: Option<String>,
}

pub fn run(a: ObserveArgs) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })?;
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
        client.close().await
    })
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
