//! `telemetron bench observe`: what instrumentation costs. Two nodes run side by side as
//! child processes of this program: one with `--metrics-level off --log-level off`, one at
//! the defaults (`basic`) that also writes self-telemetry every second and is scraped at
//! `GET /metrics` every second while it works. Each run measures remote ingest and remote
//! write -> streamer latency on both, alternating which goes first; the summary gives the
//! medians and their ratio, and the median of each run's own B/A pair, which follows the
//! machine's drift over a session far less (docs/benchmarks.md, "Instrumentation").

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use telemetron::Error;
use telemetron::storage::Durability;

use crate::bench::{Common, IngestArgs, Scratch};
use crate::bench_live::LatencyArgs;
use crate::stats::{median, rate};

#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// Data channels of the ingest half (float64, one index).
    #[arg(long, default_value_t = 10)]
    pub channels: usize,
    /// Samples per channel per frame (ingest).
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Frames per ingest run.
    #[arg(long, default_value_t = 300)]
    pub frames: usize,
    /// One-sample frames per latency run, at --rate per second.
    #[arg(long, default_value_t = 3_000)]
    pub latency_frames: usize,
    /// Frames per second of the latency half.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// Node B's trace level (`basic`: every request, engine write and storage commit is
    /// a recorded span; no exporter runs, so this is the cost of making them).
    #[arg(long, default_value = "off")]
    pub trace_level: telemetron::observe::Level,
    #[command(flatten)]
    pub common: Common,
}

/// A `telemetron serve` child process on a scratch directory.
struct Node {
    child: Child,
    url: String,
    _scratch: Scratch,
}

impl Node {
    fn start(base: &std::path::Path, tag: &str, extra: &[&str]) -> Result<Node, Error> {
        let scratch = Scratch::new(base, tag);
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(io)?.port();
        let exe = std::env::current_exe().map_err(io)?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--durability", "interval", "--data"])
            .arg(&scratch.0)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io)?;
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        while out.read_line(&mut line).map_err(io)? > 0 {
            if line.starts_with("telemetron serving") {
                std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
                return Ok(Node { child, url: format!("http://127.0.0.1:{port}"), _scratch: scratch });
            }
            line.clear();
        }
        let _ = child.kill();
        Err(Error::InvalidArgument { reason: format!("the {tag} node did not start") })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) the process `pid` has used, in seconds (Linux: /proc).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3; utime and
    // stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.iter().sum::<u64>() as f64 / hz
}

fn io(e: std::io::Error) -> Error {
    Error::InvalidArgument { reason: e.to_string() }
}

/// Scrape `GET /metrics` of `addr` every second until `stop`; counts the scrapes.
fn scraper(addr: String, stop: Arc<AtomicBool>, scrapes: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                let _ = write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                let mut body = Vec::new();
                if s.read_to_end(&mut body).is_ok() && body.starts_with(b"HTTP/1.1 200") {
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
            }
            for _ in 0..20 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    })
}

pub fn run(a: &ObserveArgs) -> Result<(), Error> {
    if a.common.url.is_some() {
        return Err(Error::InvalidArgument { reason: "bench observe starts its own two nodes; drop --url".into() });
    }
    let off = Node::start(&a.common.dir, "observe-off", &["--metrics-level", "off", "--log-level", "off"])?;
    let traces = a.trace_level.to_string();
    let on = Node::start(&a.common.dir, "observe-on", &["--self-telemetry", "1s", "--trace-level", &traces])?;
    println!(
        "instrumentation cost: node A metrics+logs off; node B at the defaults (basic, traces {traces}), self-telemetry every 1 s, GET /metrics every 1 s\n\
         each run: remote ingest ({} f64 channels x {}-sample frames, {} frames) and write -> streamer latency ({} frames at {} Hz) on A and B, alternating the order",
        a.channels, a.batch, a.frames, a.latency_frames, a.rate
    );
    let quiet = |url: &str| Common { dir: a.common.dir.clone(), runs: 1, json: true, url: Some(url.to_string()), token: None };
    let ingest = |url: &str| IngestArgs {
        channels: a.channels,
        batch: a.batch,
        durability: Durability::default(),
        frames: Some(a.frames),
        commit_every: 1,
        common: quiet(url),
    };
    let latency = |url: &str| LatencyArgs {
        rate: a.rate,
        frames: a.latency_frames,
        spin_us: 0,
        block_on_writer: false,
        blocking_streamer: false,
        stream_url: None,
        common: quiet(url),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let scraping = scraper(on.url.trim_start_matches("http://").to_string(), stop.clone(), scrapes.clone());
    let (mut rate_off, mut rate_on, mut p50_off, mut p50_on) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The nodes' CPU seconds in the ingest and the latency phases: wall-clock rates on
    // shared cores vary by more than the cost measured; CPU time summed over runs does not.
    let (mut cpu_ingest, mut cpu_live) = ([0.0f64; 2], [0.0f64; 2]);
    let runs = a.common.runs.max(1);
    for run in 0..runs {
        let order: [(&Node, bool); 2] = if run % 2 == 0 { [(&off, false), (&on, true)] } else { [(&on, true), (&off, false)] };
        for (node, instrumented) in order {
            let pid = node.child.id();
            let c0 = cpu_seconds(pid);
            let sps = crate::bench_remote::ingest(&ingest(&node.url))?;
            let c1 = cpu_seconds(pid);
            let p50 = crate::bench_remote::stream_latency(&latency(&node.url))?;
            let c2 = cpu_seconds(pid);
            let i = usize::from(instrumented);
            cpu_ingest[i] += c1 - c0;
            cpu_live[i] += c2 - c1;
            let (r, p) = if instrumented { (&mut rate_on, &mut p50_on) } else { (&mut rate_off, &mut p50_off) };
            r.extend(sps);
            p.extend(p50);
        }
    }
    let samples = (runs * a.frames * a.channels * a.batch) as f64;
    let live_frames = (runs * a.latency_frames) as f64;
    stop.store(true, Ordering::Relaxed);
    let _ = scraping.join();
    let (ro, rn, lo, ln) = (median(&rate_off), median(&rate_on), median(&p50_off), median(&p50_on));
    println!("{:<34} {:>16} {:>16}", "", "A: off", "B: basic");
    println!("{:<34} {:>16} {:>16}", "ingest samples/s (median)", rate(ro), rate(rn));
    println!("{:<34} {:>16.1} {:>16.1}", "write -> streamer p50 us (median)", lo, ln);
    let per_m = |c: f64| c / samples * 1e6 * 1e3;
    let per_frame = |c: f64| c / live_frames * 1e6;
    println!("{:<34} {:>16.2} {:>16.2}", "node CPU ms per M samples ingested", per_m(cpu_ingest[0]), per_m(cpu_ingest[1]));
    println!("{:<34} {:>16.2} {:>16.2}", "node CPU us per live frame", per_frame(cpu_live[0]), per_frame(cpu_live[1]));
    println!(
        "node CPU B/A: ingest {:.3}, live {:.3} (CPU summed over runs; the wall-clock figures carry more of the shared cores' noise)",
        cpu_ingest[1] / cpu_ingest[0],
        cpu_live[1] / cpu_live[0]
    );
    // Each run measures A and B back to back, so the pair shares the machine's state then
    // (writeback, the other work on these cores); the median of the pairs' ratios follows
    // that drift far less than the ratio of two medians taken over the whole session.
    let pairs = |on: &[f64], off: &[f64], f: fn(f64, f64) -> f64| median(&on.iter().zip(off).map(|(b, a)| f(*b, *a)).collect::<Vec<_>>());
    let ratio = pairs(&rate_on, &rate_off, |b, a| b / a);
    let delta = pairs(&p50_on, &p50_off, |b, a| b - a);
    println!("ratio of the medians: ingest B/A = {:.3}; latency p50 B - A = {:+.1} us", rn / ro, ln - lo);
    println!(
        "median of the runs' pairs: ingest B/A = {ratio:.3} (cost {:+.1} %); latency p50 B - A = {delta:+.1} us; {} scrapes of B",
        (1.0 - ratio) * 100.0,
        scrapes.load(Ordering::Relaxed)
    );
    println!("targets (issue 11): ingest cost at most 3 %, p50 at most +1 us");
    Ok(())
}
