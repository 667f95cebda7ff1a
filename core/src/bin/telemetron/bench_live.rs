//! Live benchmarks: stream latency, fan-out, control handoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use telemetron::channel::NewChannel;
use telemetron::framer::{WriterConfig, WriterMode};
use telemetron::relay::{StreamError, StreamerConfig};
use telemetron::storage::Durability;
use telemetron::telem::{DataType, Frame, Series, TimeStamp};
use telemetron::{Engine, Error};

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
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// Handoffs per run.
    #[arg(long, default_value_t = 2000)]
    pub handoffs: usize,
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
            "{:>4} {:>14} {:>12} {:>10} {:>10} {:>12} {:>12} {:>12}",
            "run", "delivered/s", "frames/s", "p50 us", "p99 us", "slow lost", "write p50 us", "write p99 us"
        );
    }
    for run in 0..a.common.runs {
        let scratch = Scratch::new(&a.common.dir, "fanout");
        let engine = open(&scratch.0, Durability::None)?;
        let keys: Vec<_> = engine
            .create_channels((0..a.channels).map(|c| NewChannel::virtual_(format!("fan_{c}"), DataType::F64)).collect())?
            .iter()
            .map(|c| c.key)
            .collect();
        let base = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        // Streamers run as async tasks on one runtime thread (as a server forwards them),
        // the writer on this thread: one core each.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::InvalidArgument { reason: e.to_string() })?;
        let mut handles = Vec::new();
        let total = a.subscribers + usize::from(a.slow_ms > 0);
        for i in 0..total {
            let slow = i == a.subscribers;
            let mut s = engine.open_streamer(StreamerConfig { capacity: 256, ..StreamerConfig::new(vec![keys[i % keys.len()]]) })?;
            let stop = stop.clone();
            let slow_ms = a.slow_ms;
            handles.push(rt.spawn(async move {
                let (mut samples, mut lost, mut lat) = (0u64, 0u64, Vec::new());
                loop {
                    match tokio::time::timeout(Duration::from_millis(50), s.next()).await {
                        Ok(Ok(f)) => {
                            let now = base.elapsed().as_nanos() as i64;
                            for ser in f.series() {
                                samples += ser.len() as u64;
                                if !slow {
                                    lat.push((now - ser.time_range().start.0).max(0) as f64 / 1e3);
                                }
                            }
                            if slow {
                                tokio::time::sleep(Duration::from_millis(slow_ms)).await;
                            }
                        }
                        Err(_) if stop.load(Ordering::Acquire) => break,
                        Err(_) => {}
                        Ok(Err(StreamError::Lagged { dropped })) => lost += dropped,
                        Ok(Err(_)) => break,
                    }
                }
                (slow, samples, lost, lat)
            }));
        }
        let data = Series::from_vec((0..a.batch).map(|i| i as f64).collect::<Vec<f64>>());
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), keys.clone()).mode(WriterMode::Stream))?;
        let t0 = Instant::now();
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
        stop.store(true, Ordering::Release);
        let mut delivered = 0u64;
        let mut lat = Vec::new();
        let mut slow_lost = 0;
        for h in handles {
            if let Ok((slow, samples, lost, l)) = rt.block_on(h) {
                if slow {
                    slow_lost = lost;
                } else {
                    delivered += samples;
                    lat.extend(l);
                }
            }
        }
        w.close()?;
        engine.close()?;
        let dps = delivered as f64 / secs;
        let (p50, p99) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));
        let (w50, w99) = (percentile(&mut writes, 50.0), percentile(&mut writes, 99.0));
        emit(
            a.common.json,
            json!({"scenario": "fanout", "run": run, "subscribers": a.subscribers, "channels": a.channels, "batch": a.batch,
                   "rate_hz": a.rate, "slow_ms": a.slow_ms, "frames": frames, "seconds": secs, "samples_per_s": dps,
                   "bytes_per_s": dps * 8.0, "p50_us": p50, "p99_us": p99, "slow_lost_frames": slow_lost,
                   "write_p50_us": w50, "write_p99_us": w99}),
            || {
                format!(
                    "{run:>4} {:>14} {:>12} {p50:>10.1} {p99:>10.1} {slow_lost:>12} {w50:>12.1} {w99:>12.1}",
                    rate(dps),
                    rate(frames as f64 / secs)
                )
            },
        );
    }
    Ok(())
}

/// Time from a higher-authority writer opening to the transfer arriving on the control
/// channel at a streamer.
pub fn control_handoff(a: &HandoffArgs) -> Result<(), Error> {
    if !a.common.json {
        println!("control-handoff: writer at authority 200 opens over one at 10; time to the transfer on the control channel");
        println!("{:>4} {:>10} {:>10} {:>10} {:>10}", "run", "p50 us", "p99 us", "p999 us", "max us");
    }
    for run in 0..a.common.runs {
        let scratch = Scratch::new(&a.common.dir, "handoff");
        let engine: Engine = open(&scratch.0, Durability::None)?;
        let cmd = engine
            .create_channel(NewChannel::virtual_("valve_cmd", DataType::U8).with_concurrency(telemetron::channel::Concurrency::Exclusive))?
            .key;
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
