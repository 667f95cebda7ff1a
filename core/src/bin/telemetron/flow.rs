//! `telemetron flow ...`: compile and run dataflow files in this process (`check`, `run`,
//! `types`), and manage the flows of a running node (`deploy`, `list`, `status`,
//! `reconfigure`, `stop`; docs/dataflow.md §8).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use telemetron::Error;
use telemetron::flow::{self, BuildEnv, FlowConfig, FlowError, FlowInfo, Flows};

use crate::node::NodeArgs;

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Compile a flow file and print the graph it runs as (after dead-path elimination and
    /// chain fusion), or every error with its line.
    Check {
        /// The flow file (YAML).
        file: PathBuf,
    },
    /// Run a flow file until its receivers finish or Ctrl-C, printing counters each second.
    Run(RunArgs),
    /// List the component types a flow file can use.
    Types,
    /// Deploy a flow file on a node (it runs there, on the node's engine, until stopped).
    Deploy {
        /// The flow file (YAML).
        file: PathBuf,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// List a node's flows with their state and message counts.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Show one flow of a node: every node's counters and the latest errors.
    Status {
        /// The flow's name.
        name: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Apply a new version of a flow file on a node: live (CFG) when only options of nodes
    /// that take it changed, else by draining and restarting the flow. A wrong file changes
    /// nothing.
    Reconfigure {
        /// The flow's name.
        name: String,
        /// The new flow file (YAML).
        file: PathBuf,
        /// When restarting, wait this long for the old flow to drain.
        #[arg(long, default_value = "10s", value_parser = duration)]
        drain: Duration,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Stop a flow on a node (draining it) and print its final counters.
    Stop {
        /// The flow's name.
        name: String,
        /// Wait this long for messages in flight.
        #[arg(long, default_value = "10s", value_parser = duration)]
        drain: Duration,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The flow file (YAML).
    file: PathBuf,
    /// The data directory that channel and queue components use (opened in this process).
    #[arg(long, conflicts_with = "url")]
    data: Option<PathBuf>,
    /// The node that channel components use (`http://host:port`).
    #[arg(long)]
    url: Option<String>,
    /// Bearer token for --url.
    #[arg(long)]
    token: Option<String>,
    /// At shutdown, wait this long for messages in flight (`10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = duration)]
    drain: Duration,
    /// Stop after this long (default: when the receivers finish, or Ctrl-C).
    #[arg(long, value_parser = duration)]
    duration: Option<Duration>,
    /// No progress lines.
    #[arg(short, long)]
    quiet: bool,
}

fn duration(s: &str) -> Result<Duration, String> {
    flow::parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration (write 500ms, 10s, 1m)"))
}

fn invalid(reason: String) -> Error {
    Error::InvalidArgument { reason }
}

fn load(file: &Path) -> Result<FlowConfig, Error> {
    let src = std::fs::read_to_string(file).map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?;
    FlowConfig::parse(&src).map_err(|e| invalid(format!("{}: {e}", file.display())))
}

fn flow_err(file: &Path, e: FlowError) -> Error {
    invalid(format!("{}: {e}", file.display()))
}

pub fn run(cmd: FlowCommand) -> Result<(), Error> {
    match cmd {
        FlowCommand::Types => {
            for (name, about) in flow::components::TYPES {
                println!("{name:<18} {about}");
            }
            Ok(())
        }
        FlowCommand::Check { file } => {
            let env = BuildEnv::for_check();
            let compiled = flow::compile(load(&file)?, &env).map_err(|e| flow_err(&file, e))?;
            print!("{compiled}");
            Ok(())
        }
        FlowCommand::Run(a) => runtime()?.block_on(run_flow(a)),
        cmd => runtime()?.block_on(manage(cmd)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| invalid(format!("cannot start the async runtime: {e}")))
}

fn read(file: &Path) -> Result<String, Error> {
    std::fs::read_to_string(file).map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))
}

/// The commands that manage a node's flows through the protocol.
async fn manage(cmd: FlowCommand) -> Result<(), Error> {
    let flows = |node: &NodeArgs| {
        let node = node.clone();
        async move { node.connect().await.map(|c| Flows::new(&c)) }
    };
    match cmd {
        FlowCommand::Deploy { file, node } => {
            let info = flows(&node).await?.deploy(&read(&file)?).await?;
            println!("flow `{}` deployed on {} ({} nodes running)", info.name, node.url, info.nodes.len());
        }
        FlowCommand::List { node } => {
            let all = flows(&node).await?.list().await?;
            if all.is_empty() {
                println!("no flows run on {}", node.url);
            }
            for f in all {
                let (received, errors) = f.nodes.iter().fold((0, 0), |(r, e), n| (r + n.counts.received, e + n.counts.errors));
                println!(
                    "{:<24} {:<9} {:>2} nodes {received:>12} messages handled {errors:>6} errors",
                    f.name,
                    f.state.to_string(),
                    f.nodes.len()
                );
            }
        }
        FlowCommand::Status { name, node } => print_info(&flows(&node).await?.get(&name).await?),
        FlowCommand::Reconfigure { name, file, drain, node } => {
            let r = flows(&node).await?.reconfigure(&name, &read(&file)?, drain).await?;
            let nodes = if r.nodes.is_empty() { String::new() } else { format!(" (changed: {})", r.nodes.join(", ")) };
            println!("flow `{name}`: {}{nodes}{}", r.applied, r.reason.map(|w| format!("; restarted because {w}")).unwrap_or_default());
        }
        FlowCommand::Stop { name, drain, node } => {
            let info = flows(&node).await?.stop(&name, drain).await?;
            print_info(&info);
            if info.drained == Some(false) {
                println!("the drain deadline passed: what the flow still held was NACKed");
            }
        }
        FlowCommand::Check { .. } | FlowCommand::Run(_) | FlowCommand::Types => unreachable!("handled by run()"),
    }
    Ok(())
}

fn print_info(f: &FlowInfo) {
    println!("flow `{}`: {}", f.name, f.state);
    print_counts(f.nodes.iter().map(|n| (n.name.as_str(), &n.counts)));
    for e in &f.errors {
        println!("error in `{}`: {}", e.node, e.error);
    }
}

/// The counter table `run`, `status` and `stop` print.
fn print_counts<'a>(rows: impl Iterator<Item = (&'a str, &'a flow::Counts)>) {
    println!(
        "{:<20} {:>12} {:>14} {:>12} {:>10} {:>10} {:>8} {:>8} {:>7} {:>7}",
        "node", "received", "rows", "emitted", "acked", "nacked", "expired", "dropped", "errors", "queued"
    );
    for (node, c) in rows {
        println!(
            "{node:<20} {:>12} {:>14} {:>12} {:>10} {:>10} {:>8} {:>8} {:>7} {:>7}",
            c.received, c.rows, c.emitted, c.acked, c.nacked, c.expired, c.dropped, c.errors, c.queued
        );
    }
}

async fn run_flow(a: RunArgs) -> Result<(), Error> {
    let config = load(&a.file)?;
    let client = match (&a.data, &a.url) {
        (Some(dir), _) => Some(telemetron::open(dir)?),
        (None, Some(url)) => Some(crate::node::connect(url, a.token.as_deref(), None).await?),
        (None, None) => None,
    };
    let env = client.clone().map(BuildEnv::with_client).unwrap_or_default();
    let compiled = flow::compile(config, &env).map_err(|e| flow_err(&a.file, e))?;
    let name = compiled.name().to_string();
    let handle = compiled.start().map_err(|e| flow_err(&a.file, e))?;
    if !a.quiet {
        eprintln!("flow `{name}` running (Ctrl-C stops it, draining for up to {:?})", a.drain);
    }
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let progress = !a.quiet;
    let tty = std::io::stderr().is_terminal();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                if progress { eprintln!("\nstopping: draining messages in flight"); }
                break;
            }
            _ = tick.tick() => {
                if progress {
                    let line = status_line(&handle.counters());
                    if tty { eprint!("\r\x1b[2K{line}"); } else { eprintln!("{line}"); }
                }
                if handle.receivers_done() || a.duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
            }
        }
    }
    let report = handle.shutdown(a.drain).await;
    if progress && tty {
        eprintln!();
    }
    println!(
        "flow `{name}` ran {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if report.drained { "" } else { " (drain deadline passed: what was held was NACKed)" }
    );
    print_counts(report.counts.iter().map(|(n, c)| (n.as_str(), c)));
    let shown = report.errors.len().min(20);
    if report.errors.len() > shown {
        eprintln!("{} component errors kept; the last {shown}:", report.errors.len());
    }
    for (node, e) in &report.errors[report.errors.len() - shown..] {
        eprintln!("error in `{node}`: {e}");
    }
    if let Some(c) = client {
        c.close().await?;
    }
    Ok(())
}

fn status_line(counts: &[(String, flow::Counts)]) -> String {
    counts
        .iter()
        .filter(|(_, c)| c.received > 0 || c.emitted > 0)
        .map(
            |(n, c)| if c.received == 0 { format!("{n}: {} out, {} acked", c.emitted, c.acked) } else { format!("{n}: {} in", c.received) },
        )
        .collect::<Vec<_>>()
        .join(" | ")
}
