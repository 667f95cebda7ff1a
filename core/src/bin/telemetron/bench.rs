//! `telemetron bench ...`: benchmark programs (not tests). Each run prints a table row, or
//! with `--json` one JSON object per run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use serde_json::json;
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::WriterConfig;
use telemetron::storage::{Durability, StorageOptions};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Engine, Error, Options};

use crate::stats::{median, percentile, rate};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write N float64 data channels sharing one index, in frames of B samples.
    Ingest(IngestArgs),
    /// Read a long range of one channel back (from the page cache).
    Read(ReadArgs),
    /// Commit latency: one-sample frames, commit after each.
    Commit(CommitArgs),
    /// Time from write() to a streamer thread receiving the frame.
    StreamLatency(crate::bench_live::LatencyArgs),
    /// One writer, many streamers: delivered samples/s and latency.
    Fanout(crate::bench_live::FanoutArgs),
    /// Time from a higher-authority writer opening to the transfer on the control channel;
    /// with --url, from a writer taking control through a node to both writers knowing
    /// (--holder-url / --taker-url: through other nodes of a cluster).
    ControlHandoff(crate::bench_live::HandoffArgs),
    /// Control round trip: one client commands, another echoes on a second channel.
    ControlRtt(crate::bench_remote::RttArgs),
    /// The dataflow runtime: throughput, fusion, ACK round trip, durable queue.
    Flow(crate::bench_flow::FlowArgs),
    /// The cost of instrumentation: remote ingest and write -> streamer latency on a node
    /// with metrics off and one at its default level (scraped, writing self-telemetry).
    Observe(crate::bench_observe::ObserveArgs),
    /// A long range reduced to a plot's worth of points (min-max and average), embedded and
    /// through a node on loopback: samples/s and bytes sent.
    Reduce(crate::bench_reduce::ReduceArgs),
    /// Compression codecs (LZ4, Zstandard, byte shuffle, delta-of-delta, Pcodec) on
    /// realistic sensor signals: size ratio and (de)compression throughput.
    Codecs(crate::bench_codecs::CodecsArgs),
    /// Compression on the wire: each realistic signal read whole by a plain client and by
    /// one that asks for compression, on loopback and through links paced to --link-mbps.
    Wire(crate::bench_wire::WireArgs),
    /// A long campaign simulated as fast as the machine writes it (100 f64 channels at
    /// 1 kHz, 10 commits/s): ingest with and without background compaction, disk over raw
    /// bytes, compression, reopen time and memory, whole-channel read.
    LongRun(crate::bench_long::LongRunArgs),
}

#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Where to put the temporary data directory (deleted afterwards).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    pub dir: PathBuf,
    /// Repetitions; the table shows each run and the median.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print one JSON object per run instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run against a node (`telemetron serve`) through the client API instead of an
    /// embedded engine (ingest, stream-latency, fanout, control-handoff, control-rtt).
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token for --url.
    #[arg(long)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Data channels (all float64, one shared index).
    #[arg(long, default_value_t = 100)]
    pub channels: usize,
    /// Samples per channel per frame.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// none | interval | commit.
    #[arg(long, default_value = "interval")]
    pub durability: Durability,
    /// Frames to write (default: about 200 M samples, at least 20 frames).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Commit after this many frames.
    #[arg(long, default_value_t = 1)]
    pub commit_every: usize,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Samples of the channel to write and read back.
    #[arg(long, default_value_t = 100_000_000)]
    pub samples: u64,
    /// Samples per written frame.
    #[arg(long, default_value_t = 100_000)]
    pub batch: usize,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commits per run.
    #[arg(long, default_value_t = 2_000)]
    pub commits: usize,
    /// none | interval | commit.
    #[arg(long, default_value = "commit")]
    pub durability: Durability,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(cmd: BenchCommand) -> Result<(), Error> {
    use crate::bench_remote as remote;
    let no_remote = |name: &str| Error::InvalidArgument { reason: format!("bench {name} has no --url variant; run it embedded") };
    match cmd {
        BenchCommand::Ingest(a) if a.common.url.is_some() => remote::ingest(&a).map(drop),
        BenchCommand::StreamLatency(a) if a.common.url.is_some() => remote::stream_latency(&a).map(drop),
        BenchCommand::Observe(a) => crate::bench_observe::run(&a),
        BenchCommand::Reduce(a) => crate::bench_reduce::run(&a),
        BenchCommand::Codecs(a) => crate::bench_codecs::run(&a),
        BenchCommand::Wire(a) => crate::bench_wire::run(&a),
        BenchCommand::LongRun(a) => crate::bench_long::run(&a),
        BenchCommand::Fanout(a) if a.common.url.is_some() => remote::fanout(&a),
        BenchCommand::ControlRtt(a) => remote::control_rtt(&a),
        BenchCommand::Flow(a) if a.common.url.is_some() => Err(no_remote("flow")),
        BenchCommand::Flow(a) => crate::bench_flow::run(&a),
        BenchCommand::Read(a) if a.common.url.is_some() => Err(no_remote("read")),
        BenchCommand::Commit(a) if a.common.url.is_some() => Err(no_remote("commit")),
        BenchCommand::ControlHandoff(a) if a.common.url.is_some() => crate::bench_live::control_handoff_remote(&a),
        BenchCommand::Ingest(a) => ingest(&a),
        BenchCommand::Read(a) => read(&a),
        BenchCommand::Commit(a) => commit(&a),
        BenchCommand::StreamLatency(a) if a.stream_url.is_some() => {
            Err(Error::InvalidArgument { reason: "--stream-url needs --url (the writer's node)".into() })
        }
        BenchCommand::StreamLatency(a) => crate::bench_live::stream_latency(&a),
        BenchCommand::Fanout(a) => crate::bench_live::fanout(&a),
        BenchCommand::ControlHandoff(a) => crate::bench_live::control_handoff(&a),
    }
}

pub fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::None => "none",
        Durability::Interval { .. } => "interval",
        Durability::Commit => "commit",
    }
}

/// A scratch data directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(base: &Path, tag: &str) -> Scratch {
        let p = base.join(format!("telemetron-bench-{tag}-{}-{}", std::process::id(), TimeStamp::now().0));
        let _ = std::fs::remove_dir_all(&p);
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The ingest benches' frames: one index and float64 data channels. The data buffers are
/// generated once and shared by every frame (series are reference counted); timestamps
/// are generated per frame, as a real writer would.
pub struct IngestFrames {
    index: ChannelKey,
    keys: Vec<ChannelKey>,
    data: Vec<Series>,
    batch: usize,
    ts: i64,
}

impl IngestFrames {
    pub fn new(index: ChannelKey, keys: Vec<ChannelKey>, batch: usize) -> IngestFrames {
        let data = (0..keys.len()).map(|c| Series::from_vec((0..batch).map(|i| (i + c) as f64 * 0.5).collect::<Vec<f64>>())).collect();
        IngestFrames { index, keys, data, batch, ts: 0 }
    }

    /// The next frame: `batch` samples per channel, timestamps following the last frame's.
    pub fn next_frame(&mut self) -> Frame {
        let stamps: Vec<i64> = (self.ts..self.ts + self.batch as i64).collect();
        self.ts += self.batch as i64;
        let mut frame = Frame::with_capacity(self.keys.len() + 1);
        frame.push(self.index, Series::timestamps(stamps));
        for (k, s) in self.keys.iter().zip(&self.data) {
            frame.push(*k, s.clone());
        }
        frame
    }

    /// One past the last timestamp generated so far.
    pub fn end(&self) -> i64 {
        self.ts
    }
}

pub fn open(dir: &Path, durability: Durability) -> Result<Engine, Error> {
    Engine::open_with(dir, Options { storage: StorageOptions { durability, ..StorageOptions::default() }, ..Options::default() })
}

pub fn emit(json: bool, row: serde_json::Value, table: impl FnOnce() -> String) {
    if json {
        println!("{row}");
    } else {
        println!("{}", table());
    }
}

fn ingest(a: &IngestArgs) -> Result<(), Error> {
    let per_frame = a.channels * a.batch;
    if per_frame == 0 {
        return Err(Error::InvalidArgument { reason: "--channels and --batch must be at least 1".into() });
    }
    let frames = a.frames.unwrap_or_else(|| (200_000_000 / per_frame).clamp(20, 2_000_000));
    let d = durability_name(a.durability);
    if !a.common.json {
        println!(
            "ingest: {} float64 channels x {}-sample frames, {} frames, durability {d}, commit every {}",
            a.channels, a.batch, frames, a.commit_every
        );
        println!("{:>4} {:>10} {:>14} {:>12} {:>14}", "run", "seconds", "samples/s", "MB/s", "frames/s");
    }
    let mut rates = Vec::new();
    for run in 0..a.common.runs {
        let scratch = Scratch::new(&a.common.dir, "ingest");
        let engine = open(&scratch.0, a.durability)?;
        let mut batch = vec![NewChannel::index("time")];
        batch.extend((0..a.channels).map(|i| NewChannel::data(format!("ch_{i}"), DataType::F64, "time")));
        let chans = engine.create_channels(batch)?;
        let keys: Vec<u32> = chans[1..].iter().map(|c| c.key).collect();
        let mut frames_gen = IngestFrames::new(chans[0].key, keys.clone(), a.batch);
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), keys).auto_commit(false).durability(a.durability))?;
        let t0 = Instant::now();
        for f in 0..frames {
            w.write(&frames_gen.next_frame())?;
            if (f + 1) % a.commit_every == 0 {
                w.commit()?;
            }
        }
        w.close()?;
        let secs = t0.elapsed().as_secs_f64();
        engine.close()?;
        drop(engine);
        let samples = (frames * per_frame) as f64;
        let bytes = samples * 8.0;
        let sps = samples / secs;
        rates.push(sps);
        emit(
            a.common.json,
            json!({"scenario": "ingest", "run": run, "channels": a.channels, "batch": a.batch, "durability": d,
                   "frames": frames, "commit_every": a.commit_every, "samples": samples as u64, "seconds": secs,
                   "samples_per_s": sps, "bytes_per_s": bytes / secs, "frames_per_s": frames as f64 / secs}),
            || format!("{run:>4} {secs:>10.3} {:>14} {:>12.0} {:>14}", rate(sps), bytes / secs / 1e6, rate(frames as f64 / secs)),
        );
    }
    if !a.common.json {
        println!("median samples/s: {}", rate(median(&rates)));
    }
    Ok(())
}

fn read(a: &ReadArgs) -> Result<(), Error> {
    let scratch = Scratch::new(&a.common.dir, "read");
    let batch = a.batch.max(1);
    {
        let engine = open(&scratch.0, Durability::None)?;
        let chans = engine.create_channels(vec![NewChannel::index("time"), NewChannel::data("value", DataType::F64, "time")])?;
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![chans[1].key]).auto_commit(false))?;
        let mut written = 0u64;
        while written < a.samples {
            let n = (a.samples - written).min(batch as u64) as usize;
            let stamps: Vec<i64> = (0..n as i64).map(|i| written as i64 + i).collect();
            let values: Vec<f64> = (0..n).map(|i| (written as usize + i) as f64).collect();
            w.write(&Frame::new().with(chans[0].key, Series::timestamps(stamps)).with(chans[1].key, Series::from_vec(values)))?;
            written += n as u64;
            if written.is_multiple_of(batch as u64 * 16) {
                w.commit()?;
            }
        }
        w.close()?;
        engine.close()?;
    }
    if !a.common.json {
        println!("read: one float64 channel, {} samples ({:.0} MB), page cache warm", a.samples, a.samples as f64 * 8.0 / 1e6);
        println!("{:>4} {:>14} {:>14} {:>12} {:>10} {:>12}", "run", "read (s)", "samples/s", "MB/s", "series", "sum+read MB/s");
    }
    let mut rates = Vec::new();
    for run in 0..a.common.runs {
        // Reopen each run so checksums are verified again (nothing cached in the engine).
        let engine = open(&scratch.0, Durability::None)?;
        let key = engine.channels().by_name("value")?.key;
        let t0 = Instant::now();
        let frame = engine.read(TimeRange::MAX, &[key])?;
        let t_read = t0.elapsed().as_secs_f64();
        let mut sum = 0.0f64;
        let mut n = 0usize;
        for s in frame.get(key) {
            let v = s.as_slice::<f64>()?;
            n += v.len();
            sum += v.iter().sum::<f64>();
        }
        let t_all = t0.elapsed().as_secs_f64();
        if n as u64 != a.samples {
            return Err(Error::InvalidArgument { reason: format!("read back {n} samples, wrote {}", a.samples) });
        }
        let expect = (a.samples as f64 - 1.0) * a.samples as f64 / 2.0;
        if (sum - expect).abs() > expect * 1e-9 {
            return Err(Error::InvalidArgument { reason: format!("checksum of values {sum} != {expect}") });
        }
        let bytes = n as f64 * 8.0;
        rates.push(bytes / t_read);
        emit(
            a.common.json,
            json!({"scenario": "read", "run": run, "samples": n, "batch": batch, "seconds": t_read,
                   "samples_per_s": n as f64 / t_read, "bytes_per_s": bytes / t_read, "series": frame.len(),
                   "read_and_sum_bytes_per_s": bytes / t_all}),
            || {
                format!(
                    "{run:>4} {t_read:>14.4} {:>14} {:>12.0} {:>10} {:>12.0}",
                    rate(n as f64 / t_read),
                    bytes / t_read / 1e6,
                    frame.len(),
                    bytes / t_all / 1e6
                )
            },
        );
        engine.close()?;
    }
    if !a.common.json {
        println!("median read throughput: {:.2} GB/s", median(&rates) / 1e9);
    }
    Ok(())
}

fn commit(a: &CommitArgs) -> Result<(), Error> {
    let d = durability_name(a.durability);
    if !a.common.json {
        println!("commit: one-sample frames on 1 channel + index, commit after each, durability {d}");
        println!("{:>4} {:>10} {:>10} {:>10} {:>10} {:>12}", "run", "p50 us", "p99 us", "p999 us", "max us", "commits/s");
    }
    for run in 0..a.common.runs {
        let scratch = Scratch::new(&a.common.dir, "commit");
        let engine = open(&scratch.0, a.durability)?;
        let chans = engine.create_channels(vec![NewChannel::index("time"), NewChannel::data("cmd", DataType::F64, "time")])?;
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![chans[1].key]).auto_commit(false).durability(a.durability))?;
        let mut lat = Vec::with_capacity(a.commits);
        let t0 = Instant::now();
        for i in 0..a.commits {
            w.write(
                &Frame::new().with(chans[0].key, Series::timestamps(vec![i as i64])).with(chans[1].key, Series::from_vec(vec![i as f64])),
            )?;
            let t = Instant::now();
            w.commit()?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let secs = t0.elapsed().as_secs_f64();
        w.close()?;
        engine.close()?;
        let (p50, p99, p999) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0), percentile(&mut lat, 99.9));
        let max = lat.iter().copied().fold(0.0, f64::max);
        let cps = a.commits as f64 / secs;
        emit(
            a.common.json,
            json!({"scenario": "commit", "run": run, "durability": d, "commits": a.commits, "seconds": secs,
                   "p50_us": p50, "p99_us": p99, "p999_us": p999, "max_us": max,
                   "samples_per_s": cps, "bytes_per_s": cps * 16.0}),
            || format!("{run:>4} {p50:>10.1} {p99:>10.1} {p999:>10.1} {max:>10.1} {:>12}", rate(cps)),
        );
    }
    Ok(())
}
