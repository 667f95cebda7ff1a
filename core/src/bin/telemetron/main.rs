//! The `telemetron` command-line program.

mod bench;
mod bench_codecs;
mod bench_flow;
mod bench_live;
mod bench_long;
mod bench_observe;
mod bench_reduce;
mod bench_remote;
mod bench_remote_fanout;
mod bench_wire;
mod cluster;
mod demo;
mod export;
mod flow;
mod node;
mod observe;
mod serve;
mod sim;
mod stats;
mod stream;
mod users;

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
    Serve(Box<serve::ServeArgs>),
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
    /// Print a node's log (kept in rolling files in its data directory), or follow it.
    Logs(observe::LogsArgs),
    /// Users and roles of a data directory: add, list, remove, passwd (docs/protocol.md §2).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// A cluster of nodes (`serve --cluster`): its members, leases and channel placement
    /// (docs/cluster.md).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
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
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let env = std::env::var("TELEMETRON_LOG").ok();
    let f = filter.map(str::to_string).or(env);
    EXPLICIT_LOG.store(f.is_some(), std::sync::atomic::Ordering::Relaxed);
    let f = f.unwrap_or_else(|| "warn".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&f).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let file = tracing_subscriber::fmt::layer().with_writer(FileSink).with_ansi(false);
    // The log events also go to a running `node_telemetry` flow (--otlp-endpoint).
    let tap = telemetron::observe::LogTap;
    // The log filter takes events only: spans are the trace level's (observe::traces), so
    // a span is created only when traces are on, whatever the log level. The events-only
    // half hints TRACE so that the EnvFilter's own hint sets the process's max level (an
    // `and` of two filters hints the lower, and a filter without a hint counts as lowest).
    let events = tracing_subscriber::filter::filter_fn(|m| m.is_event()).with_max_level_hint(tracing::level_filters::LevelFilter::TRACE);
    let logs = fmt.and_then(file).and_then(tap).with_filter(filter.and(events));
    if tracing_subscriber::registry().with(logs).with(telemetron::observe::traces::layer()).try_init().is_ok() {
        let _ = LOG_RELOAD.set(handle);
    }
}

/// The node's rolling log files, once `serve` has opened them (`<data>/logs`, after it
/// holds the data directory's lock); in every other command the file layer writes nothing.
static LOG_FILES: std::sync::OnceLock<telemetron::observe::logfile::RollingWriter> = std::sync::OnceLock::new();

/// Lines logged before the files open (recovery, while the engine opens), kept to go first
/// into the file: `Some` from [`buffer_early_logs`] until [`open_log_files`].
static EARLY: parking_lot::Mutex<Option<Vec<u8>>> = parking_lot::Mutex::new(None);

/// At most this much is kept before the files open.
const EARLY_CAP: usize = 1 << 20;

/// Keep what is logged from now on until [`open_log_files`].
pub(crate) fn buffer_early_logs() {
    *EARLY.lock() = Some(Vec::new());
}

/// Send the log to `files` from now on, the lines kept since [`buffer_early_logs`] first.
pub(crate) fn open_log_files(files: telemetron::observe::logfile::RollingWriter) {
    let mut early = EARLY.lock();
    if let Some(buf) = early.take().filter(|b| !b.is_empty()) {
        let _ = files.append(&buf);
    }
    let _ = LOG_FILES.set(files);
}

/// The writer of the file layer.
struct FileSink;

/// Where one event goes: the files, the early buffer, or nowhere.
enum FileLine {
    File(telemetron::observe::logfile::LineBuffer<'static>),
    Early(Vec<u8>),
    Nowhere,
}

impl std::io::Write for FileLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            FileLine::File(w) => w.write(b),
            FileLine::Early(v) => {
                v.extend_from_slice(b);
                Ok(b.len())
            }
            FileLine::Nowhere => Ok(b.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for FileLine {
    fn drop(&mut self) {
        let FileLine::Early(line) = self else { return };
        let mut early = EARLY.lock();
        match early.as_mut() {
            Some(buf) if buf.len() + line.len() <= EARLY_CAP => buf.extend_from_slice(line),
            Some(_) => {}
            // The files opened while this line was being formatted.
            None => {
                drop(early);
                if let Some(w) = LOG_FILES.get() {
                    let _ = w.append(line);
                }
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for FileSink {
    type Writer = FileLine;
    fn make_writer(&'a self) -> FileLine {
        if let Some(w) = LOG_FILES.get() {
            return FileLine::File(w.make_writer());
        }
        let early = EARLY.lock();
        // Checked again under the lock: `open_log_files` sets the files while holding it.
        match LOG_FILES.get() {
            Some(w) => FileLine::File(w.make_writer()),
            None if early.is_some() => FileLine::Early(Vec::with_capacity(256)),
            None => FileLine::Nowhere,
        }
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
        // Records of the `log` crate (from dependencies) are turned into events only under
        // `log`'s own max level, set once at start: keep it in step with the new filter.
        log::set_max_level(match tracing::level_filters::LevelFilter::current().into_level() {
            None => log::LevelFilter::Off,
            Some(tracing::Level::ERROR) => log::LevelFilter::Error,
            Some(tracing::Level::WARN) => log::LevelFilter::Warn,
            Some(tracing::Level::INFO) => log::LevelFilter::Info,
            Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
            Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
        });
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

/// Printing commands (`bench`, `stream`, `channels`, `logs`, ...) end quietly when what
/// reads their output goes away (`telemetron bench codecs | head`), as Unix tools do,
/// instead of panicking on the failed write. Rust ignores SIGPIPE by default; this restores
/// the default action. Sockets are unaffected (Rust sends with `MSG_NOSIGNAL`), and the
/// long-running commands (`serve`, `demo`, `flow`) keep ignoring it.
fn quiet_on_closed_stdout() {
    // SAFETY: resetting a signal's disposition to its default is async-signal-safe and
    // touches no memory; it runs before this command starts any thread of its own.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    if !matches!(cli.command, Command::Serve(_) | Command::Demo(_) | Command::Flow(_)) {
        quiet_on_closed_stdout();
    }
    let r = match cli.command {
        Command::Demo(a) => demo::run(&a),
        Command::Bench(b) => bench::run(b),
        Command::Serve(a) => serve::run(*a),
        Command::Stream(a) => stream::run(a),
        Command::Export(a) => export::run(a),
        Command::Flow(c) => flow::run(c),
        Command::Observe(a) => observe::run(a),
        Command::Logs(a) => observe::logs(a),
        Command::Users(c) => users::run(c),
        Command::Cluster(c) => cluster::run(c),
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
