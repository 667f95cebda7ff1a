//! Live benchmarks: stream latency, fan-out, control handoff (embedded, and through nodes
//! of a cluster with `--url`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use telemetron::channel::{ChannelKey, Concurrency, NewChannel};
use telemetron::client::ClientWriter;
use telemetron::framer::{WriterConfig, WriterMode};
use telemetron::relay::{StreamError, StreamerConfig};
use telemetron::storage::{Durability, StorageOptions};
use telemetron::telem::{DataType, Frame, Series, TimeStamp};
use telemetron::{Client, ConnectOptions, Credentials, Engine, Error, Options};

use crate::bench::{Common, Scratch, emit, open};
use crate::stats::{percentile, rate};

#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Frames per second (0 = flat out).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Frames per run.
    #[arg(long, default_value_t = 5000)]
    pub frames: usize,
    /// The streamer busy-waits up to this many microseconds before parking its thread
    /// (`StreamerConfig::spin_us`; 0 = park at once). With --url it needs
    /// --blocking-streamer.
    #[arg(long, default_value_t = 0)]
    pub spin_us: u64,
    /// With --url only: drive the writer from the main thread with `block_on` (as the
    /// Python SDK's blocking calls do) instead of running it as a runtime task.
    #[arg(long)]
    pub block_on_writer: bool,
    /// With --url only: receive on a plain thread with `next_blocking` (as the Python SDK
    /// does) instead of in a runtime task.
    #[arg(long)]
    pub blocking_streamer: bool,
    /// With --url only: open the streamer on this node instead (in a cluster, the writer's
    /// node stores the channel and this one streams it through a peer tap;
    /// docs/cluster.md).
    #[arg(long)]
    pub stream_url: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Number of streamers.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Samples per frame.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Frames per second (0 = flat out).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds per run.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Add one streamer that sleeps this many ms per frame (0 = none).
    #[arg(long, default_value_t = 0)]
    pub slow_ms: u64,
    /// Channels in each frame; streamer i follows channel i mod N (1: every streamer on the
    /// one channel).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// A frame for at most this many streamers is queued by the writer itself; for more,
    /// by the relay's dispatcher thread (the engine's default: 32). A number above
    /// --subscribers measures the writer delivering every frame itself.
    #[arg(long)]
    pub inline_targets: Option<usize>,
    /// Runtime threads the streamers' tasks run on.
    #[arg(long, default_value_t = 1)]
    pub receiver_threads: usize,
    /// With --url: after each run, the same fan-out over plain loopback TCP (one thread
    /// writes each frame's encoded bytes to every socket in turn, one task per socket
    /// reads them, no WebSocket, relay or codec): the floor the sockets alone set here.
    #[arg(long)]
    pub tcp_floor: bool,
    /// Embedded only: after each run, the same fan-out with no engine: the writing thread
    /// pushes a shared reference to the series onto each streamer's locked queue and
    /// wakes its task (a tokio `Notify`); the tasks and their bookkeeping are the same. The
    /// floor a relay of this shape can reach on this machine: it builds no frames, stores
    /// nothing, and has no dispatcher.
    #[arg(long)]
    pub floor: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// Handoffs per run.
    #[arg(long, default_value_t = 2000)]
    pub handoffs: usize,
    /// With --url only (the node that stores the channel and arbitrates its control): connect
    /// the holding writer (authority 10) through this node instead. In a cluster its
    /// writer is relayed to --url, and it learns of the loss from the authority notice
    /// relayed back (docs/cluster.md §5).
    #[arg(long)]
    pub holder_url: Option<String>,
    /// With --url only: connect the taking writer (authority 200) through this node instead.
    #[arg(long)]
    pub taker_url: Option<String>,
    /// With --url only: the taker opens a new writer at authority 200 for each handoff and
    /// closes it to hand back, instead of keeping one writer open at authority 1 and
    /// raising it to 200 with `set_authorities` (then lowering it to 1).
    #[arg(long)]
    pub open_taker: bool,
    /// With --url only: the holder's watcher thread looks for the authority notice this
    /// often, sleeping in between (microseconds; 0 = yield only, one core busy). A remote
    /// writer has no call that waits for a notice; the latency it sees is rounded up by
    /// up to one poll period (the mean period is reported).
    #[arg(long, default_value_t = 20)]
    pub poll_us: u64,
    #[command(flatten)]
    pub common: Common,
}

pub fn pace(start: Instant, i: usize, rate: u64) {
    if rate == 0 {
        return;
    }
    // Sleep, never spin: on two cores a spinning writer takes the time slice the receiving
    // thread needs, and the benchmark would measure its own pacing. Due times are absolute,
    // so oversleeping one frame does not lower the rate.
    let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Time from `write()` being called to a streamer on another thread holding the frame.
pub fn stream_latency(a: &LatencyArgs) -> Result<(), Error> {
    if a.block_on_writer || a.blocking_streamer {
        return Err(Error::InvalidArgument { reason: "--block-on-writer and --blocking-streamer apply to remote runs (add --url)".into() });
    }
    if !a.common.json {
        println!(
            "stream-latency: one-sample frames, persist+stream writer -> streamer thread, {} frames at {}, receiver {}",
            a.frames,
            if a.rate == 0 { "full speed".to_string() } else { format!("{} Hz", a.rate) },
            if a.spin_us == 0 { "parks".to_string() } else { format!("spins up to {} us, then parks", a.spin_us) }
        );
        println!("{:>4} {:>10} {:>10} {:>10} {:>10} {:>10}", "run", "p50 us", "p99 us", "p999 us", "max us", "frames/s");
    }
    for run in 0..a.common.runs {
        let scratch = Scratch::new(&a.common.dir, "latency");
        let engine = open(&scratch.0, Durability::default())?;
        let ch = engine.create_channels(vec![NewChannel::index("t"), NewChannel::data("v", DataType::F64, "t")])?;
        let (t, v) = (ch[0].key, ch[1].key);
        let base = Instant::now();
        let sent: Arc<Vec<AtomicU64>> = Arc::new((0..a.frames).map(|_| AtomicU64::new(0)).collect());
        let mut streamer =
            engine.open_streamer(StreamerConfig { capacity: a.frames + 16, spin_us: a.spin_us, ..StreamerConfig::new(vec![v, t]) })?;
        let sent2 = sent.clone();
        let n = a.frames;
        let rx = std::thread::Builder::new()
            .name("bench-streamer".into())
            .spawn(move || {
                let mut lat = Vec::with_capacity(n);
                while lat.len() < n {
                    match streamer.recv_timeout(Duration::from_secs(10)) {
                        Ok(Some(f)) => {
                            let now = base.elapsed().as_nanos() as u64;
                            for s in f.get(t) {
                                for &seq in s.as_timestamps().unwrap_or_default() {
                                    let at = sent2[seq as usize].load(Ordering::Acquire);
                                    lat.push(now.saturating_sub(at) as f64 / 1e3);
                                }
                            }
                        }
                        Ok(None) | Err(StreamError::Closed | StreamError::Disconnected { .. }) => break,
                        Err(StreamError::Lagged { .. }) => {}
                    }
                }
                lat
            })
            .map_err(|e| Error::InvalidArgument { reason: e.to_string() })?;
        let mut w = engine
            .open_writer(WriterConfig::new(TimeStamp(0), vec![v]).auto_commit(true).auto_commit_interval(Duration::from_millis(10)))?;
        let t0 = Instant::now();
        for i in 0..a.frames {
            pace(t0, i, a.rate);
            let f = Frame::new().with(t, Series::timestamps(vec![i as i64])).with(v, Series::from_vec(vec![i as f64]));
            sent[i].store(base.elapsed().as_nanos() as u64, Ordering::Release);
            w.write(&f)?;
        }
        let secs = t0.elapsed().as_secs_f64();
        w.close()?;
        let mut lat = rx.join().unwrap_or_default();
        engine.close()?;
        let (p50, p99, p999) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0), percentile(&mut lat, 99.9));
        let max = lat.iter().copied().fold(0.0, f64::max);
        let fps = a.frames as f64 / secs;
        emit(
            a.common.json,
            json!({"scenario": "stream-latency", "run": run, "rate_hz": a.rate, "frames": a.frames, "spin_us": a.spin_us, "received": lat.len(),
                   "p50_us": p50, "p99_us": p99, "p999_us": p999, "max_us": max,
                   "samples_per_s": fps, "bytes_per_s": fps * 16.0}),
            || format!("{run:>4} {p50:>10.1} {p99:>10.1} {p999:>10.1} {max:>10.1} {:>10}", rate(fps)),
        );
    }
    Ok(())
}

/// One writer, N streamers spread over its channels: delivered samples per second, delivery
/// latency, and what `write()` costs the writer.
pub fn fanout(a: &FanoutArgs) -> Result<(), Error> {
    if a.channels == 0 {
        return Err(Error::InvalidArgument { reason: "--channels must be at least 1".into() });
    }
    if !a.common.json {
        println!(
            "fanout: {} streamers over {} channel(s), {}-sample f64 series, {}, {:.1} s{}",
            a.subscribers,
            a.channels,
            a.batch,
            if a.rate == 0 { "writer flat out".to_string() } else { format!("{} frames/s", a.rate) },
            a.seconds,
            if a.slow_ms > 0 { format!(", plus one streamer sleeping {} ms per frame", a.slow_ms) } else { String::new() }
        );
        println!(
            "{:>4} {:>14} {:>12} {:>12} {:>12} {:>10} {:>10} {:>12} {:>12} {:>12}",
            "run", "delivered/s", "bytes/s", "frames/s", "handed/s", "p50 us", "p99 us", "slow lost", "write p50 us", "write p99 us"
        );
    }
    for run in 0..a.common.runs {
        let scratch = Scratch::new(&a.common.dir, "fanout");
        let engine = Engine::open_with(
            &scratch.0,
            Options {
                storage: StorageOptions { durability: Durability::None, ..StorageOptions::default() },
                relay_inline_targets: a.inline_targets,
                ..Options::default()
            },
        )?;
        let keys: Vec<_> = engine
            .create_channels((0..a.channels).map(|c| NewChannel::virtual_(format!("fan_{c}"), DataType::F64)).collect())?
            .iter()
            .map(|c| c.key)
            .collect();
        let base = Instant::now();
        // Streamers run as async tasks on a runtime (one thread by default, as a server
        // forwards them), the writer on this thread: one core each (the relay's dispatcher
        // shares them).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.receiver_threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| Error::InvalidArgument { reason: e.to_string() })?;
        let mut handles = Vec::new();
        let total = a.subscribers + usize::from(a.slow_ms > 0);
        for i in 0..total {
            let slow = i == a.subscribers;
            let mut s = engine.open_streamer(StreamerConfig { capacity: 256, ..StreamerConfig::new(vec![keys[i % keys.len()]]) })?;
            let slow_ms = a.slow_ms;
            handles.push(rt.spawn(async move {
                let (mut samples, mut bytes, mut lost, mut lat) = (0u64, 0u64, 0u64, Vec::new());
                // No timeout per receive (a timer per frame would cost the receivers more
                // than the relay does): closing the engine ends every stream.
                loop {
                    match s.next().await {
                        Ok(f) => {
                            let now = base.elapsed().as_nanos() as i64;
                            for ser in f.series() {
                                samples += ser.len() as u64;
                                bytes += ser.byte_size() as u64;
                                if !slow {
                                    lat.push((now - ser.time_range().start.0).max(0) as f64 / 1e3);
                                }
                            }
                            if slow {
                                tokio::time::sleep(Duration::from_millis(slow_ms)).await;
                            }
                        }
                        Err(StreamError::Lagged { dropped }) => lost += dropped,
                        Err(_) => break,
                    }
                }
                (slow, samples, bytes, lost, lat)
            }));
        }
        let data = Series::from_vec((0..a.batch).map(|i| i as f64).collect::<Vec<f64>>());
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), keys.clone()).mode(WriterMode::Stream))?;
        let t0 = Instant::now();
        let handed0 = engine.relay_metrics().delivered_frames;
        let mut frames = 0usize;
        let mut writes = Vec::new();
        while t0.elapsed().as_secs_f64() < a.seconds {
            pace(t0, frames, a.rate);
            // The series' time range carries the send instant so receivers can measure latency.
            let now = base.elapsed().as_nanos() as i64;
            let s = data.clone().with_time_range(telemetron::telem::TimeRange::from_nanos(now, now + 1));
            let frame: Frame = keys.iter().map(|&k| (k, s.clone())).collect();
            let w0 = Instant::now();
            w.write(&frame)?;
            writes.push(w0.elapsed().as_secs_f64() * 1e6);
            frames += 1;
        }
        let secs = t0.elapsed().as_secs_f64();
        // Frames handed over to streamers' queues (one per streamer fed per write), against
        // what the streamers actually took out of them (`delivered`, `bytes`).
        let handed = engine.relay_metrics().delivered_frames - handed0;
        w.close()?;
        engine.close()?;
        let (mut delivered, mut delivered_bytes) = (0u64, 0u64);
        let mut lat = Vec::new();
        let mut slow_lost = 0;
        for h in handles {
            if let Ok((slow, samples, bytes, lost, l)) = rt.block_on(h) {
                if slow {
                    slow_lost = lost;
                } else {
                    delivered += samples;
                    delivered_bytes += bytes;
                    lat.extend(l);
                }
            }
        }
        let dps = delivered as f64 / secs;
        let (p50, p99) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));
        let (w50, w99) = (percentile(&mut writes, 50.0), percentile(&mut writes, 99.0));
        drop(rt);
        if a.floor {
            let f = fanout_floor(a)?;
            emit(
                a.common.json,
                json!({"scenario": "fanout_floor", "run": run, "subscribers": a.subscribers, "channels": a.channels, "batch": a.batch,
                       "rate_hz": a.rate, "frames": f.frames, "seconds": f.secs, "samples_per_s": f.delivered as f64 / f.secs,
                       "p50_us": f.p50, "p99_us": f.p99, "write_p50_us": f.w50, "write_p99_us": f.w99}),
                || {
                    format!(
                        "{:>4} {:>14} {:>12} {:>12} {:>12} {:>10.1} {:>10.1} {:>12} {:>12.1} {:>12.1}",
                        "flr",
                        rate(f.delivered as f64 / f.secs),
                        "-",
                        rate(f.frames as f64 / f.secs),
                        "-",
                        f.p50,
                        f.p99,
                        "-",
                        f.w50,
                        f.w99
                    )
                },
            );
        }
        emit(
            a.common.json,
            json!({"scenario": "fanout", "run": run, "subscribers": a.subscribers, "channels": a.channels, "batch": a.batch,
                   "rate_hz": a.rate, "slow_ms": a.slow_ms, "frames": frames, "seconds": secs, "samples_per_s": dps,
                   "bytes_per_s": delivered_bytes as f64 / secs, "frames_handed_per_s": handed as f64 / secs, "p50_us": p50, "p99_us": p99, "slow_lost_frames": slow_lost,
                   "write_p50_us": w50, "write_p99_us": w99}),
            || {
                format!(
                    "{run:>4} {:>14} {:>12} {:>12} {:>12} {p50:>10.1} {p99:>10.1} {slow_lost:>12} {w50:>12.1} {w99:>12.1}",
                    rate(dps),
                    format!("{}B", rate(delivered_bytes as f64 / secs)),
                    rate(frames as f64 / secs),
                    rate(handed as f64 / secs)
                )
            },
        );
    }
    Ok(())
}

/// What one floor run measured (see `FanoutArgs::floor`).
struct Floor {
    frames: usize,
    secs: f64,
    delivered: u64,
    p50: f64,
    p99: f64,
    w50: f64,
    w99: f64,
}

/// One streamer of the floor: a locked queue and the wake-up of its task.
#[derive(Default)]
struct FloorQueue {
    series: parking_lot::Mutex<std::collections::VecDeque<Series>>,
    wake: tokio::sync::Notify,
}

/// The fan-out of [`fanout`] without the engine: same pacing, receivers and bookkeeping;
/// per delivery only a reference count, a locked queue push and a task wake-up.
fn fanout_floor(a: &FanoutArgs) -> Result<Floor, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.receiver_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: e.to_string() })?;
    let base = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let queues: Vec<Arc<FloorQueue>> = (0..a.subscribers).map(|_| Arc::new(FloorQueue::default())).collect();
    // by_channel[c]: the queues of the streamers following channel c.
    let mut by_channel: Vec<Vec<Arc<FloorQueue>>> = vec![Vec::new(); a.channels];
    for (i, q) in queues.iter().enumerate() {
        by_channel[i % a.channels].push(q.clone());
    }
    let handles: Vec<_> = queues
        .iter()
        .map(|q| {
            let (q, done) = (q.clone(), done.clone());
            rt.spawn(async move {
                let (mut samples, mut lat) = (0u64, Vec::new());
                loop {
                    let wake = q.wake.notified();
                    let next = q.series.lock().pop_front();
                    match next {
                        Some(ser) => {
                            let now = base.elapsed().as_nanos() as i64;
                            samples += ser.len() as u64;
                            lat.push((now - ser.time_range().start.0).max(0) as f64 / 1e3);
                        }
                        None if done.load(Ordering::Acquire) => break,
                        None => wake.await,
                    }
                }
                (samples, lat)
            })
        })
        .collect();
    let data = Series::from_vec((0..a.batch).map(|i| i as f64).collect::<Vec<f64>>());
    let t0 = Instant::now();
    let (mut frames, mut writes) = (0usize, Vec::new());
    while t0.elapsed().as_secs_f64() < a.seconds {
        pace(t0, frames, a.rate);
        let now = base.elapsed().as_nanos() as i64;
        let s = data.clone().with_time_range(telemetron::telem::TimeRange::from_nanos(now, now + 1));
        let w0 = Instant::now();
        for subs in &by_channel {
            for q in subs {
                q.series.lock().push_back(s.clone());
                q.wake.notify_one();
            }
        }
        writes.push(w0.elapsed().as_secs_f64() * 1e6);
        frames += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Release);
    for q in &queues {
        q.wake.notify_one();
    }
    let (mut delivered, mut lat) = (0u64, Vec::new());
    for h in handles {
        if let Ok((samples, l)) = rt.block_on(h) {
            delivered += samples;
            lat.extend(l);
        }
    }
    Ok(Floor {
        frames,
        secs,
        delivered,
        p50: percentile(&mut lat, 50.0),
        p99: percentile(&mut lat, 99.0),
        w50: percentile(&mut writes, 50.0),
        w99: percentile(&mut writes, 99.0),
    })
}

/// Time from a higher-authority writer opening to the transfer arriving on the control
/// channel at a streamer.
pub fn control_handoff(a: &HandoffArgs) -> Result<(), Error> {
    if a.holder_url.is_some() || a.taker_url.is_some() || a.open_taker {
        return Err(Error::InvalidArgument { reason: "--holder-url, --taker-url and --open-taker need --url (the channel's node)".into() });
    }
    if !a.common.json {
        println!("control-handoff: writer at authority 200 opens over one at 10; time to the transfer on the control channel");
        println!("{:>4} {:>10} {:>10} {:>10} {:>10}", "run", "p50 us", "p99 us", "p999 us", "max us");
    }
    for run in 0..a.common.runs {
        let scratch = Scratch::new(&a.common.dir, "handoff");
        let engine: Engine = open(&scratch.0, Durability::None)?;
        let cmd = engine.create_channel(NewChannel::virtual_("valve_cmd", DataType::U8).with_concurrency(Concurrency::Exclusive))?.key;
        let low = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![cmd]).authority(10).name("panel"))?;
        let mut s = engine.open_streamer(StreamerConfig::new(vec![engine.control_channel()]))?;
        let _snapshot = s.recv_timeout(Duration::from_secs(5))?;
        let mut lat = Vec::with_capacity(a.handoffs);
        for _ in 0..a.handoffs {
            let t0 = Instant::now();
            let high = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![cmd]).authority(200).name("sequence"))?;
            loop {
                let f = s.recv_timeout(Duration::from_secs(5))?.ok_or(Error::InvalidArgument { reason: "no transfer seen".into() })?;
                let body = f.series().first().and_then(|x| x.value_str(0)).unwrap_or_default().to_string();
                if body.contains("\"sequence\"") {
                    lat.push(t0.elapsed().as_secs_f64() * 1e6);
                    break;
                }
            }
            high.close()?;
            // Drain the handback.
            while s.recv_timeout(Duration::from_millis(1))?.is_some() {}
        }
        low.close()?;
        engine.close()?;
        let (p50, p99, p999) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0), percentile(&mut lat, 99.9));
        let max = lat.iter().copied().fold(0.0, f64::max);
        emit(
            a.common.json,
            json!({"scenario": "control-handoff", "run": run, "handoffs": a.handoffs, "p50_us": p50, "p99_us": p99,
                   "p999_us": p999, "max_us": max, "samples_per_s": a.handoffs as f64, "bytes_per_s": 0}),
            || format!("{run:>4} {p50:>10.1} {p99:>10.1} {p999:>10.1} {max:>10.1}"),
        );
    }
    Ok(())
}

/// A client connected to `url` with `--token`.
async fn connect_to(c: &Common, url: &str) -> Result<Client, Error> {
    let credentials = c.token.clone().map_or(Credentials::None, |token| Credentials::Token { token });
    telemetron::connect(url, ConnectOptions { credentials, ..ConnectOptions::default() }).await
}

/// Open a writer, retried while the node has not mirrored the channel just created on
/// another node (`channel.not_found`).
async fn open_writer_on(c: &Client, cfg: WriterConfig) -> Result<ClientWriter, Error> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.open_writer(cfg.clone()).await {
            Ok(w) => return Ok(w),
            Err(e) if e.code() == "channel.not_found" && Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return Err(e),
        }
    }
}

/// What the holder's watcher thread saw: whether it holds control, and when it first saw it.
type Seen = (bool, Instant);

/// Follow `w`'s control of `key` on a plain thread, polling `has_control` (which takes in
/// the notices the node has pushed, without waiting) every `poll_us`, and report every
/// change from `held` (what the caller saw last: the thread may start after a change).
/// Returns the writer, the polls made and the time spent when `stop` is set.
fn watch(
    w: ClientWriter,
    key: ChannelKey,
    mut held: bool,
    poll_us: u64,
    stop: Arc<AtomicBool>,
    tx: tokio::sync::mpsc::UnboundedSender<Seen>,
) -> std::thread::JoinHandle<(ClientWriter, u64, Duration)> {
    std::thread::spawn(move || {
        // Sleep as asked, not up to the default 50 µs timer slack longer.
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only this thread.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        }
        let (t0, mut polls) = (Instant::now(), 0u64);
        while !stop.load(Ordering::Acquire) {
            let now = w.has_control(key);
            polls += 1;
            if now != held {
                held = now;
                let _ = tx.send((now, Instant::now()));
            }
            if poll_us == 0 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(poll_us));
            }
        }
        (w, polls, t0.elapsed())
    })
}

/// The next change the watcher saw; it must be to `held`.
async fn seen(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>, held: bool) -> Result<Instant, Error> {
    let what = if held { "regained" } else { "lost" };
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some((h, at))) if h == held => Ok(at),
        Ok(Some(_)) => Err(Error::InvalidArgument { reason: format!("the holder's control flapped: expected it {what}") }),
        Ok(None) | Err(_) => Err(Error::InvalidArgument { reason: format!("the holder never saw its control {what} (5 s)") }),
    }
}

/// Remote control handoff (`--url`, optionally with `--holder-url` and `--taker-url` on
/// other nodes of a cluster). Writer X ("panel", authority 10) holds an exclusive channel
/// stored on `--url`; writer Y ("sequence") takes it at authority 200, by raising its
/// authority (or opening, with `--open-taker`), then hands it back.
///
/// Per handoff, from the instant before Y's call is made:
/// - ack: Y's `set_authorities` (or `open_writer`) has returned and Y holds control;
/// - notice: X has seen the authority notice that it lost control (polled, see --poll-us);
/// - handoff: both, i.e. the later of the two (the headline p50 / p99);
/// - back: from Y's lowering (or close) to X seeing its control regained.
pub fn control_handoff_remote(a: &HandoffArgs) -> Result<(), Error> {
    let url = a.common.url.clone().unwrap_or_default();
    let holder_url = a.holder_url.clone().unwrap_or_else(|| url.clone());
    let taker_url = a.taker_url.clone().unwrap_or_else(|| url.clone());
    let take = if a.open_taker { "open" } else { "raise" };
    if !a.common.json {
        println!(
            "remote control-handoff: channel on {url}; holder (authority 10) through {holder_url}, taker (200) through {taker_url}, \
             taking by {}; {} handoffs; µs from the taker's call to both writers knowing (ack: the taker's call returned with \
             control; notice: the holder saw its loss, polled every {} µs)",
            if a.open_taker { "opening a writer" } else { "set_authorities 1 -> 200" },
            a.handoffs,
            a.poll_us
        );
        println!(
            "{:>4} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>11} {:>9}",
            "run", "p50 us", "p99 us", "p999 us", "max us", "notice p99", "ack p99", "back p99", "poll us"
        );
    }
    let rt = crate::bench_remote::runtime()?;
    for run in 0..a.common.runs {
        rt.block_on(async {
            let store = connect_to(&a.common, &url).await?;
            let holder = connect_to(&a.common, &holder_url).await?;
            let taker = connect_to(&a.common, &taker_url).await?;
            let name = format!("handoff{}_{}_{run}", std::process::id(), TimeStamp::now().0 % 1_000_000_000);
            let cmd = store
                .create_channels(vec![NewChannel::virtual_(name, DataType::U8).with_concurrency(Concurrency::Exclusive)], false)
                .await?[0]
                .key;
            let x = open_writer_on(&holder, WriterConfig::new(TimeStamp(0), vec![cmd]).authority(10).name("panel")).await?;
            if !x.has_control(cmd) {
                return Err(Error::InvalidArgument { reason: "the holder did not get control of a fresh channel".into() });
            }
            let y_cfg = |auth| WriterConfig::new(TimeStamp(0), vec![cmd]).authority(auth).name("sequence");
            let mut y = if a.open_taker { None } else { Some(open_writer_on(&taker, y_cfg(1)).await?) };
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let stop = Arc::new(AtomicBool::new(false));
            let watcher = watch(x, cmd, true, a.poll_us, stop.clone(), tx);
            let n = a.handoffs;
            let (mut ack, mut notice, mut both, mut back) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            let result = async {
                for _ in 0..n {
                    let t0 = Instant::now();
                    let taken = match y.as_mut() {
                        Some(y) => {
                            y.set_authorities(&[(cmd, 200)]).await?;
                            None
                        }
                        None => Some(open_writer_on(&taker, y_cfg(200)).await?),
                    };
                    let yw = y.as_ref().or(taken.as_ref()).ok_or(Error::InvalidArgument { reason: "no taker".into() })?;
                    while !yw.has_control(cmd) {
                        if t0.elapsed() > Duration::from_secs(5) {
                            return Err(Error::InvalidArgument { reason: "the taker did not get control (5 s)".into() });
                        }
                        tokio::task::yield_now().await;
                    }
                    let acked = t0.elapsed();
                    let lost = seen(&mut rx, false).await?.saturating_duration_since(t0);
                    ack.push(acked.as_secs_f64() * 1e6);
                    notice.push(lost.as_secs_f64() * 1e6);
                    both.push(acked.max(lost).as_secs_f64() * 1e6);
                    let t1 = Instant::now();
                    match (y.as_mut(), taken) {
                        (Some(y), _) => y.set_authorities(&[(cmd, 1)]).await?,
                        (None, Some(w)) => drop(w.close().await?),
                        (None, None) => {}
                    }
                    back.push(seen(&mut rx, true).await?.saturating_duration_since(t1).as_secs_f64() * 1e6);
                }
                Ok::<(), Error>(())
            }
            .await;
            stop.store(true, Ordering::Release);
            let (x, polls, watched) =
                watcher.join().map_err(|_| Error::InvalidArgument { reason: "the holder's watcher thread panicked".into() })?;
            result?;
            if let Some(y) = y {
                y.close().await?;
            }
            x.close().await?;
            store.delete_channels(&[cmd]).await?;
            let poll = watched.as_secs_f64() * 1e6 / polls.max(1) as f64;
            let (p50, p99, p999) = (percentile(&mut both, 50.0), percentile(&mut both, 99.0), percentile(&mut both, 99.9));
            let max = both.iter().copied().fold(0.0, f64::max);
            let (n50, n99) = (percentile(&mut notice, 50.0), percentile(&mut notice, 99.0));
            let (a50, a99) = (percentile(&mut ack, 50.0), percentile(&mut ack, 99.0));
            let (b50, b99) = (percentile(&mut back, 50.0), percentile(&mut back, 99.0));
            emit(
                a.common.json,
                json!({"scenario": "control-handoff", "remote": true, "run": run, "handoffs": n, "take": take,
                       "url": url, "holder_url": holder_url, "taker_url": taker_url,
                       "cross_node": holder_url != url || taker_url != url,
                       "p50_us": p50, "p99_us": p99, "p999_us": p999, "max_us": max,
                       "notice_p50_us": n50, "notice_p99_us": n99, "ack_p50_us": a50, "ack_p99_us": a99,
                       "back_p50_us": b50, "back_p99_us": b99, "poll_us": a.poll_us, "poll_period_us": poll}),
                || format!("{run:>4} {p50:>10.1} {p99:>10.1} {p999:>10.1} {max:>10.1} {n99:>11.1} {a99:>11.1} {b99:>11.1} {poll:>9.1}"),
            );
            Ok::<(), Error>(())
        })?;
    }
    Ok(())
}
