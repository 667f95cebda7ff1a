//! The `telemetron` command-line program.

mod bench;
mod bench_flow;
mod bench_live;
mod bench_observe;
mod bench_remote;
mod bench_remote_fanout;
mod demo;
mod export;
mod flow;
mod node;
mod observe;
mod serve;
mod sim;
mod stats;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Telemetron: a real-time telemetry and control engine.
#[derive(Debug, Parser)]
#[command(name = "telemetron", version, about, long_about = None)]
struct Cli {
    /// Log filter, e.g. `info` or `telemetron=debug` (also TELEMETRON_LOG).
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a simulated test stand (1 kHz and 100 kHz channels) into an embedded data
    /// directory and read a range back, printing what happens.
    Demo(demo::DemoArgs),
    /// Measure the engine: ingest, read or commit latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run a node: serve a data directory over the network (`--demo` adds a live,
    /// simulated test stand).
    Serve(serve::ServeArgs),
    /// Print live values of channels from a node.
    Stream(stream::StreamArgs),
    /// Write channels of a node or a data directory to a Parquet or CSV file, in bounded
    /// memory, with progress.
    Export(export::ExportArgs),
    /// Dataflows: check a flow file, run it, list component types (docs/dataflow.md).
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// A node's instrumentation: show or change its log and metrics levels at runtime, print
    /// its metrics (docs/observability.md; Prometheus reads GET /metrics).
    Observe(observe::ObserveArgs),
    /// List the channels of a data directory.
    Channels {
        /// The data directory.
        #[arg(long, default_value = "telemetron-data")]
        data: PathBuf,
    },
}

/// Changes the log filter of this process at runtime (`observe/levels`, `telemetron
/// observe --logs`); set once by [`init_logging`].
static LOG_RELOAD: std::sync::OnceLock<tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>> =
    std::sync::OnceLock::new();

/// Set when `--log` or `TELEMETRON_LOG` chose the filter: `serve` then keeps it until a
/// level is changed at runtime.
pub(crate) static EXPLICIT_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let env = std::env::var("TELEMETRON_LOG").ok();
    let f = filter.map(str::to_string).or(env);
    EXPLICIT_LOG.store(f.is_some(), std::sync::atomic::Ordering::Relaxed);
    let f = f.unwrap_or_else(|| "warn".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&f).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = LOG_RELOAD.set(handle);
    }
}

/// The log filter of a level: `off`; `basic` (warnings, and Telemetron's lifecycle events);
/// `detailed` (also Telemetron's debug events: each writer, streamer, request).
pub(crate) fn log_filter(level: telemetron::observe::Level) -> &'static str {
    match level {
        telemetron::observe::Level::Off => "off",
        telemetron::observe::Level::Basic => "warn,telemetron=info",
        telemetron::observe::Level::Detailed => "info,telemetron=debug",
    }
}

/// The hook an observer calls to apply a log level to this process.
pub(crate) fn log_hook() -> Option<telemetron::observe::LogHook> {
    let handle = LOG_RELOAD.get()?.clone();
    Some(std::sync::Arc::new(move |level| {
        let _ = handle.reload(tracing_subscriber::EnvFilter::new(log_filter(level)));
    }))
}

/// glibc gives freed memory back to the kernel as soon as 128 KiB at the top of the heap
/// are free, and serves blocks over its (adaptive) mmap threshold with fresh mappings. A
/// flow frees and allocates record batches of hundreds of KiB all the time: the kernel then
/// spent about 70 % of `bench flow`'s CPU unmapping and faulting pages (perf). This program
/// keeps up to 256 MiB of freed heap, serves blocks up to 64 MiB from the heap, and grows it
/// 16 MiB at a time. Embedding processes (the SDKs) keep their own allocator settings;
/// `TELEMETRON_MALLOC=default` keeps glibc's defaults here too (low-memory hosts, A/B runs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    if std::env::var("TELEMETRON_MALLOC").is_ok_and(|v| v == "default") {
        return;
    }
    // SAFETY: mallopt only changes glibc's allocator parameters; it is called once, first
    // thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let r = match cli.command {
        Command::Demo(a) => demo::run(&a),
        Command::Bench(b) => bench::run(b),
        Command::Serve(a) => serve::run(a),
        Command::Stream(a) => stream::run(a),
        Command::Export(a) => export::run(a),
        Command::Flow(c) => flow::run(c),
        Command::Observe(a) => observe::run(a),
        Command::Channels { data } => list_channels(&data),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list_channels(data: &std::path::Path) -> Result<(), telemetron::Error> {
    let engine = telemetron::Engine::open(data)?;
    println!("{:>6}  {:<24} {:<10} {:<10} range", "key", "name", "type", "kind");
    for c in engine.channels().list() {
        let kind = match c.kind {
            telemetron::channel::ChannelKind::Index => "index".to_string(),
            telemetron::channel::ChannelKind::Data { index } => format!("data({index})"),
            telemetron::channel::ChannelKind::Virtual => "virtual".to_string(),
        };
        let range = if c.is_virtual() { None } else { engine.time_range(c.key)? };
        println!(
            "{:>6}  {:<24} {:<10} {:<10} {}",
            c.key,
            c.name,
            c.data_type.to_string(),
            kind,
            range.map(|r| r.to_string()).unwrap_or_else(|| "-".into())
        );
    }
    engine.close()
}
