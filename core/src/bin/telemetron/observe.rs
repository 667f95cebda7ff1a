//! `telemetron observe`: a node's instrumentation levels and metrics
//! (docs/observability.md).

use clap::Args;
use telemetron::Error;
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
        let update = LevelsUpdate { logs: a.logs, metrics: a.metrics };
        let levels = if update == LevelsUpdate::default() { observe.levels().await? } else { observe.set_levels(update).await? };
        println!("logs     {}", levels.logs);
        println!("metrics  {}", levels.metrics);
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
