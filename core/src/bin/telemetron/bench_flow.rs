//! `telemetron bench flow`: the dataflow runtime's figures (docs/benchmarks.md, "Dataflow").
//!
//! 1. throughput: generator of ~300-byte log records -> batch -> filter -> discard, on one
//!    worker thread;
//! 2. fusion: a chain of five processors, fused and unfused (one-row messages, so the cost
//!    per message shows);
//! 3. ACK round trip: a source at 1,000 messages/s through a chain of five components, from
//!    send to the ACK arriving back at the source;
//! 4. durable queue: exporter (interval durability) then receiver, in bytes/s of record
//!    batches. Dirty pages are written back (`sync`) before each timed phase, so a phase does
//!    not pay for the previous run's (or another process's) writeback.
//!
//! Each part prints the load average when it starts: the figures depend on what else runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use parking_lot::Mutex;
use telemetron::Error;
use telemetron::flow::{
    self, BoxFuture, BuildEnv, Built, Component, Control, FlowConfig, FlowError, Message, PortType, ReceiverCx, Role, SignalType, Signals,
    Signature,
};

use crate::bench::{Common, Scratch};
use crate::stats::{median, percentile, rate};

#[derive(Debug, Args)]
pub struct FlowArgs {
    #[command(flatten)]
    pub common: Common,
    /// Log records for the throughput run.
    #[arg(long, default_value_t = 20_000_000)]
    pub records: u64,
    /// Records per generated message.
    #[arg(long, default_value_t = 1000)]
    pub rows: u64,
    /// Messages for the fusion runs (one record each).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Messages for the ACK round-trip run (sent at 1,000/s).
    #[arg(long, default_value_t = 5000)]
    pub acks: u64,
    /// Bytes through the durable queue.
    #[arg(long, default_value_t = 2_000_000_000)]
    pub queue_bytes: u64,
    /// Only one part: throughput, fusion, ack or queue.
    #[arg(long)]
    pub only: Option<String>,
}

fn invalid(reason: String) -> Error {
    Error::InvalidArgument { reason }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().map_err(|e| invalid(format!("runtime: {e}")))
}

async fn run_yaml(yaml: &str, env: &BuildEnv) -> Result<flow::FlowReport, Error> {
    let compiled = flow::compile(FlowConfig::parse(yaml).map_err(|e| invalid(e.to_string()))?, env).map_err(|e| invalid(e.to_string()))?;
    let report = compiled.start().map_err(|e| invalid(e.to_string()))?.finish(Duration::from_secs(60)).await;
    if let Some((node, e)) = report.errors.first() {
        return Err(invalid(format!("flow error in `{node}`: {e}")));
    }
    Ok(report)
}

/// The 1-minute load average (Linux), for the record.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(|s| format!(", load {s}")))
        .unwrap_or_default()
}

/// Write back every dirty page of the system and return how long it took.
fn sync() -> Duration {
    let t = Instant::now();
    #[cfg(unix)]
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe {
        libc::sync()
    };
    t.elapsed()
}

/// CPU time (user + system) of this process so far, in seconds.
fn cpu_secs() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is valid.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return tv(u.ru_utime) + tv(u.ru_stime);
        }
    }
    0.0
}

pub fn run(a: &FlowArgs) -> Result<(), Error> {
    let want = |p: &str| a.only.as_deref().is_none_or(|o| o == p);
    if want("throughput") {
        throughput(a)?;
    }
    if want("fusion") {
        fusion(a)?;
    }
    if want("ack") {
        ack_rtt(a)?;
    }
    if want("queue") {
        queue(a)?;
    }
    Ok(())
}

fn throughput(a: &FlowArgs) -> Result<(), Error> {
    let rt = runtime(1)?;
    let count = a.records.div_ceil(a.rows);
    let yaml = format!(
        "flow: throughput
nodes:
  gen: {{type: generator, signal: logs, rows: {rows}, count: {count}, record_bytes: 300, to: [batch]}}
  batch: {{type: batch, max_rows: 8192, timeout: 10ms, to: [filter]}}
  filter: {{type: filter, where: {{column: severity_number, op: '>=', value: 9}}, to: [out]}}
  out: {{type: discard}}
",
        rows = a.rows
    );
    println!(
        "flow throughput: generator ({} records of ~300 B, {} per message) -> batch -> filter -> discard, 1 worker thread{}",
        count * a.rows,
        a.rows,
        load()
    );
    let mut rates = Vec::new();
    for run in 0..a.common.runs {
        let t = Instant::now();
        let report = rt.block_on(run_yaml(&yaml, &BuildEnv::default()))?;
        let secs = t.elapsed().as_secs_f64();
        let generator = report.node("gen").expect("gen");
        let records = generator.emitted * a.rows;
        let r = records as f64 / secs;
        println!(
            "  run {}: {records} records in {secs:.2} s = {}records/s (acked {} of {} messages)",
            run + 1,
            rate(r),
            generator.acked,
            generator.emitted
        );
        rates.push(r);
    }
    println!("  median: {}records/s", rate(median(&rates)));
    Ok(())
}

fn fusion(a: &FlowArgs) -> Result<(), Error> {
    let rt = runtime(1)?;
    let chain = |fuse: bool| {
        format!(
            "flow: fusion
fuse: {fuse}
nodes:
  gen: {{type: generator, signal: logs, rows: 1, count: {n}, record_bytes: 100, ack: false, to: [p1]}}
  p1: {{type: deadline, after: 60s, to: [p2]}}
  p2: {{type: filter, where: {{column: severity_number, op: '>=', value: 0}}, to: [p3]}}
  p3: {{type: sample, every: 1, to: [p4]}}
  p4: {{type: ack, mode: downstream, to: [p5]}}
  p5: {{type: deadline, after: 30s, to: [out]}}
  out: {{type: discard}}
",
            n = a.messages
        )
    };
    println!("flow fusion: {} one-record messages through 5 processors, 1 worker thread{}", a.messages, load());
    let mut ratios = Vec::new();
    for run in 0..a.common.runs {
        let mut r = [0.0; 2];
        for (i, fuse) in [true, false].into_iter().enumerate() {
            let t = Instant::now();
            let report = rt.block_on(run_yaml(&chain(fuse), &BuildEnv::default()))?;
            let n = report.node("out").expect("out").received;
            r[i] = n as f64 / t.elapsed().as_secs_f64();
        }
        println!("  run {}: fused {}msg/s, unfused {}msg/s, ratio {:.2}", run + 1, rate(r[0]), rate(r[1]), r[0] / r[1]);
        ratios.push(r[0] / r[1]);
    }
    println!("  median ratio fused/unfused: {:.2}", median(&ratios));
    Ok(())
}

/// A source that sends one-row messages at a fixed rate and records each ACK's round trip.
struct Pacer {
    count: u64,
    every: Duration,
    rtts: Arc<Mutex<Vec<f64>>>,
}

impl flow::Receiver for Pacer {
    fn run(self: Box<Self>, mut cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        Box::pin(async move {
            let schema = flow::schema::events();
            let batch = flow::RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(arrow_array::TimestampNanosecondArray::from(vec![0i64]).with_timezone("UTC")),
                    Arc::new(arrow_array::StringArray::from(vec!["tick"])),
                    Arc::new(arrow_array::StringArray::from(vec!["{}"])),
                ],
            )
            .map_err(|e| FlowError::Component(e.to_string()))?;
            let start = Instant::now();
            let mut sent_at = Vec::with_capacity(self.count as usize);
            let mut tick = tokio::time::interval(self.every);
            for i in 0..self.count {
                // Wait for the next send time, taking ACKs as they arrive.
                loop {
                    tokio::select! {
                        _ = tick.tick() => break,
                        c = cx.next_control() => match c {
                            Some(c) => record(&c, &sent_at, start, &self.rtts),
                            None => return Ok(()),
                        },
                    }
                }
                let mut m = Message::new(SignalType::Events, batch.clone());
                cx.subscribe(&mut m, i);
                sent_at.push(start.elapsed());
                let _ = cx.send(m).await;
            }
            while cx.outstanding() > 0 {
                let Some(c) = cx.next_control().await else { break };
                record(&c, &sent_at, start, &self.rtts);
            }
            Ok(())
        })
    }
}

fn record(c: &Control, sent_at: &[Duration], start: Instant, rtts: &Mutex<Vec<f64>>) {
    if let Control::Ack { token, .. } = c {
        let now = start.elapsed();
        rtts.lock().push((now - sent_at[*token as usize]).as_secs_f64() * 1e6);
    }
}

fn ack_rtt(a: &FlowArgs) -> Result<(), Error> {
    let rt = runtime(1)?;
    println!(
        "flow ACK round trip: {} messages at 1,000/s through 5 components (4 processors and an exporter), send -> ACK at the source, 1 worker thread{}",
        a.acks,
        load()
    );
    let yaml = "flow: ack
nodes:
  src: {type: pacer, to: [p1]}
  p1: {type: deadline, after: 60s, to: [p2]}
  p2: {type: ack, mode: downstream, to: [p3]}
  p3: {type: retry, attempts: 3, to: [p4]}
  p4: {type: sample, every: 1, to: [out]}
  out: {type: discard}
";
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for run in 0..a.common.runs {
        let rtts = Arc::new(Mutex::new(Vec::new()));
        let mut env = BuildEnv::default();
        let (r, count) = (rtts.clone(), a.acks);
        env.register("pacer", move |_, _| {
            Ok(Built {
                signature: Signature {
                    role: Role::Receiver,
                    accepts: Signals::NONE,
                    ports: vec![("out", PortType::Fixed(Signals::of(SignalType::Events)))],
                },
                component: Component::Receiver(Box::new(Pacer { count, every: Duration::from_millis(1), rtts: r.clone() })),
            })
        });
        rt.block_on(run_yaml(yaml, &env))?;
        let mut v = rtts.lock().clone();
        if v.len() as u64 != a.acks {
            return Err(invalid(format!("only {} of {} messages were acknowledged", v.len(), a.acks)));
        }
        let (p50, p99, max) = (percentile(&mut v, 50.0), percentile(&mut v, 99.0), percentile(&mut v, 100.0));
        println!("  run {}: p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs", run + 1);
        p50s.push(p50);
        p99s.push(p99);
    }
    println!("  median: p50 {:.1} µs, p99 {:.1} µs", median(&p50s), median(&p99s));
    Ok(())
}

fn queue(a: &FlowArgs) -> Result<(), Error> {
    let rt = runtime(2)?;
    let rows = 4000u64;
    // One message: 4,000 records of ~300 B, about 1.2 MB of Arrow buffers.
    let per_message = 1_200_000u64;
    let count = a.queue_bytes.div_ceil(per_message).max(1);
    println!(
        "flow durable queue: {count} messages of {rows} log records (~1.2 MB) -> queue_exporter (interval durability), then queue_receiver -> discard, in {}{}",
        a.common.dir.display(),
        load()
    );
    let mut w = Vec::new();
    let mut r = Vec::new();
    for run in 0..a.common.runs {
        let dir = Scratch::new(&a.common.dir, "flowq");
        let path = dir.0.display().to_string();
        let write = format!(
            "flow: qw\nnodes:\n  gen: {{type: generator, signal: logs, rows: {rows}, count: {count}, to: [q]}}\n  q: {{type: queue_exporter, name: bench, path: '{path}', durability: interval}}\n"
        );
        let read = format!(
            "flow: qr\nnodes:\n  q: {{type: queue_receiver, name: bench, path: '{path}', until_empty: true, to: [out]}}\n  out: {{type: discard}}\n"
        );
        let synced = sync();
        let (t, cpu) = (Instant::now(), cpu_secs());
        let report = rt.block_on(run_yaml(&write, &BuildEnv::default()))?;
        let (ws, wcpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
        let bytes = dir_bytes(&dir.0);
        let acked = report.node("gen").expect("gen").acked;
        let synced = synced + sync();
        let (t, cpu) = (Instant::now(), cpu_secs());
        let report = rt.block_on(run_yaml(&read, &BuildEnv::default()))?;
        let (rs, rcpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
        let got = report.node("out").expect("out").received;
        if acked != count || got != count {
            return Err(invalid(format!("queue lost messages: {count} sent, {acked} acknowledged, {got} received back")));
        }
        println!(
            "  run {}: {:.0} MB on disk; write {:.2} GB/s ({ws:.2} s, CPU {wcpu:.2} s), read back {:.2} GB/s ({rs:.2} s, CPU {rcpu:.2} s); sync before the phases {:.2} s, not timed",
            run + 1,
            bytes as f64 / 1e6,
            bytes as f64 / ws / 1e9,
            bytes as f64 / rs / 1e9,
            synced.as_secs_f64()
        );
        w.push(bytes as f64 / ws);
        r.push(bytes as f64 / rs);
    }
    println!("  median: write {:.2} GB/s, read back {:.2} GB/s", median(&w) / 1e9, median(&r) / 1e9);
    Ok(())
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
