//! Benchmarks through the client API against a node (`--url`): ingest, write -> streamer
//! latency, control round trip between two clients, many streamers during ingest.
//!
//! Every scenario uses separate connections for writers and streamers, as separate
//! programs would; the node runs in its own process (`telemetron serve`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::{WriterConfig, WriterMode};
use telemetron::relay::{StreamError, StreamerConfig};
use telemetron::telem::{DataType, Frame, Series, TimeStamp};
use telemetron::{Client, ConnectOptions, Credentials, Error};

use crate::bench::{Common, IngestArgs, IngestFrames, emit};
use crate::bench_live::{FanoutArgs, LatencyArgs};
use crate::stats::{median, percentile, rate};

#[derive(Debug, Args)]
pub struct RttArgs {
    /// Round trips per run.
    #[arg(long, default_value_t = 5000)]
    pub trips: usize,
    /// Commands per second (0 = back to back).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Drive the commander from the main thread with `block_on` (as the Python SDK's
    /// blocking calls do) instead of running it as a runtime task, like the echoer.
    #[arg(long)]
    pub block_on: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The bench's runtime: `TELEMETRON_BENCH_THREADS` workers (default 2; 1 = a
/// current-thread runtime, which avoids cross-thread wake-ups on the latency path).
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    let threads = std::env::var("TELEMETRON_BENCH_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(2);
    let mut b = if threads <= 1 { tokio::runtime::Builder::new_current_thread() } else { tokio::runtime::Builder::new_multi_thread() };
    if threads > 1 {
        b.worker_threads(threads);
    }
    b.enable_all().build().map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })
}

/// A client for `c`: connected to `--url`, or embedded over a scratch directory.
async fn client(c: &Common) -> Result<(Client, Option<crate::bench::Scratch>), Error> {
    match &c.url {
        Some(url) => {
            let credentials = c.token.clone().map_or(Credentials::None, |token| Credentials::Token { token });
            Ok((telemetron::connect(url, ConnectOptions { credentials, ..ConnectOptions::default() }).await?, None))
        }
        None => {
            let s = crate::bench::Scratch::new(&c.dir, "client");
            let e = crate::bench::open(&s.0, telemetron::storage::Durability::None)?;
            Ok((Client::embedded(e), Some(s)))
        }
    }
}

/// A second connection to the same node (the same client when embedded).
async fn another(c: &Common, first: &Client) -> Result<Client, Error> {
    if c.url.is_some() { Ok(client(c).await?.0) } else { Ok(first.clone()) }
}

/// Open a streamer on another node of a cluster: retried until the node has mirrored the
/// channels just created, then given time for its peer tap to open (the tapper looks at
/// the demand every 5 ms and connects once), so no measured frame is written before it.
async fn open_on_peer(c: &Client, cfg: StreamerConfig) -> Result<telemetron::client::ClientStreamer, Error> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        match c.open_streamer(cfg.clone()).await {
            Ok(s) => break s,
            Err(e) if e.code() == "channel.not_found" && Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return Err(e),
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(s)
}

/// Channel names unique to this process and run, so runs never collide on a node.
fn tag(run: usize) -> String {
    format!("bench{}_{}_{run}", std::process::id(), TimeStamp::now().0 % 1_000_000_000)
}

/// Print one run's latencies; returns (p50, p99) in microseconds.
fn lat_row(scenario: &str, run: usize, mut lat: Vec<f64>, extra: serde_json::Value, json_out: bool) -> (f64, f64) {
    let (p50, p99, p999) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0), percentile(&mut lat, 99.9));
    let max = lat.iter().copied().fold(0.0, f64::max);
    let mut row = json!({"scenario": scenario, "run": run, "remote": true, "received": lat.len(),
                         "p50_us": p50, "p99_us": p99, "p999_us": p999, "max_us": max});
    if let (Some(r), Some(e)) = (row.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    emit(json_out, row, || format!("{run:>4} {p50:>10.1} {p99:>10.1} {p999:>10.1} {max:>10.1} {:>10}", lat.len()));
    (p50, p99)
}

/// Remote ingest: `--channels` f64 channels on one index, `--batch`-sample frames.
/// Returns each run's samples per second.
pub fn ingest(a: &IngestArgs) -> Result<Vec<f64>, Error> {
    let url = a.common.url.clone().unwrap_or_default();
    let per_frame = a.channels * a.batch;
    if per_frame == 0 {
        return Err(Error::InvalidArgument { reason: "--channels and --batch must be at least 1".into() });
    }
    let frames = a.frames.unwrap_or_else(|| (200_000_000 / per_frame).clamp(20, 2_000_000));
    if !a.common.json {
        println!(
            "remote ingest to {url}: {} f64 channels x {}-sample frames, {frames} frames, commit every {}",
            a.channels, a.batch, a.commit_every
        );
        println!("{:>4} {:>10} {:>14} {:>12} {:>14}", "run", "seconds", "samples/s", "MB/s", "frames/s");
    }
    let rt = runtime()?;
    let mut rates = Vec::new();
    for run in 0..a.common.runs {
        let sps = rt.block_on(async {
            let (c, _scratch) = client(&a.common).await?;
            let t = tag(run);
            let mut defs = vec![NewChannel::index(format!("{t}_time"))];
            defs.extend((0..a.channels).map(|i| NewChannel::data(format!("{t}_{i}"), DataType::F64, format!("{t}_time"))));
            let chans = c.create_channels(defs, false).await?;
            let index = chans[0].key;
            let keys: Vec<ChannelKey> = chans[1..].iter().map(|c| c.key).collect();
            let mut frames_gen = IngestFrames::new(index, keys.clone(), a.batch);
            // Committing after every frame is the node's auto-commit (the client does not
            // wait for each commit, so storing frame n overlaps receiving frame n + 1);
            // other intervals are explicit commit round trips.
            let auto = a.commit_every == 1;
            let cfg = WriterConfig::new(TimeStamp(0), keys.clone()).auto_commit(auto).durability(a.durability);
            let mut w = c.open_writer(cfg).await?;
            let t0 = Instant::now();
            for f in 0..frames {
                w.write(&frames_gen.next_frame()).await?;
                if !auto && (f + 1) % a.commit_every == 0 {
                    w.commit().await?;
                }
            }
            let end = w.close().await?;
            let secs = t0.elapsed().as_secs_f64();
            // Everything is stored: the index covers every timestamp written.
            let stored = c.time_range(index).await?;
            let ts = frames_gen.end();
            if end != TimeStamp(ts) || stored.map(|r| (r.start.0, r.end.0)) != Some((0, ts)) {
                return Err(Error::InvalidArgument { reason: format!("the node stored {stored:?} (end {end}), expected [0, {ts})") });
            }
            let samples = (frames * per_frame) as f64;
            let sps = samples / secs;
            emit(
                a.common.json,
                json!({"scenario": "ingest", "remote": true, "run": run, "channels": a.channels, "batch": a.batch,
                       "frames": frames, "seconds": secs, "samples_per_s": sps, "bytes_per_s": samples * 8.0 / secs}),
                || {
                    format!(
                        "{run:>4} {secs:>10.3} {:>14} {:>12.0} {:>14}",
                        rate(sps),
                        samples * 8.0 / secs / 1e6,
                        rate(frames as f64 / secs)
                    )
                },
            );
            Ok::<f64, Error>(sps)
        })?;
        rates.push(sps);
    }
    if !a.common.json {
        println!("median samples/s: {}", rate(median(&rates)));
        println!("(the bench channels stay on the node: delete them or its data directory afterwards)");
    }
    Ok(rates)
}

/// Remote write -> remote streamer latency: one-sample frames from one connection to a
/// streamer on another.
/// Returns each run's p50 in microseconds.
pub fn stream_latency(a: &LatencyArgs) -> Result<Vec<f64>, Error> {
    if a.spin_us > 0 && !a.blocking_streamer {
        return Err(Error::InvalidArgument {
            reason: "--spin-us applies to blocking receives: add --blocking-streamer (a streamer task waits on its socket)".into(),
        });
    }
    if !a.common.json {
        println!(
            "remote stream-latency: one-sample persist+stream frames, writer connection -> streamer connection, {} frames at {} Hz, writer {}, streamer {}",
            a.frames,
            a.rate,
            if a.block_on_writer { "driven by block_on from the main thread" } else { "a runtime task" },
            match (a.blocking_streamer, a.spin_us) {
                (false, _) => "a runtime task".to_string(),
                (true, 0) => "on a plain thread (next_blocking)".to_string(),
                (true, us) => format!("on a plain thread (next_blocking, spinning up to {us} us)"),
            }
        );
        println!("{:>4} {:>10} {:>10} {:>10} {:>10} {:>10}", "run", "p50 us", "p99 us", "p999 us", "max us", "received");
    }
    let rt = runtime()?;
    let mut p50s = Vec::new();
    for run in 0..a.common.runs {
        let p50 = rt.block_on(async {
            let (c, _scratch) = client(&a.common).await?;
            let c2 = match &a.stream_url {
                Some(url) => client(&Common { url: Some(url.clone()), ..a.common.clone() }).await?.0,
                None => another(&a.common, &c).await?,
            };
            let t = tag(run);
            let ch = c
                .create_channels(
                    vec![NewChannel::index(format!("{t}_t")), NewChannel::data(format!("{t}_v"), DataType::F64, format!("{t}_t"))],
                    false,
                )
                .await?;
            let (ti, v) = (ch[0].key, ch[1].key);
            let base = Instant::now();
            let sent: Arc<Vec<AtomicU64>> = Arc::new((0..a.frames).map(|_| AtomicU64::new(0)).collect());
            let cfg = StreamerConfig { capacity: a.frames + 16, spin_us: a.spin_us, ..StreamerConfig::new(vec![v, ti]) };
            let mut s = if a.stream_url.is_some() { open_on_peer(&c2, cfg).await? } else { c2.open_streamer(cfg).await? };
            let (sent2, n) = (sent.clone(), a.frames);
            // Latencies of the frames in one receive result; false at the end of the stream.
            let take = move |r: Result<Option<Frame>, Error>, lat: &mut Vec<f64>| match r {
                Ok(Some(f)) => {
                    let now = base.elapsed().as_nanos() as u64;
                    for ser in f.get(ti) {
                        for &seq in ser.as_timestamps().unwrap_or_default() {
                            let at = sent2.get(seq as usize).map_or(now, |x| x.load(Ordering::Acquire));
                            lat.push(now.saturating_sub(at) as f64 / 1e3);
                        }
                    }
                    true
                }
                Ok(None) | Err(Error::Stream(StreamError::Closed)) => false,
                Err(_) => true,
            };
            let rx = if a.blocking_streamer {
                // As the Python SDK receives: a plain thread in `next_blocking`.
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let mut lat = Vec::with_capacity(n);
                    while lat.len() < n && take(s.next_blocking(Duration::from_secs(10)), &mut lat) {}
                    let _ = tx.send(lat);
                });
                tokio::spawn(async move { rx.await.unwrap_or_default() })
            } else {
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(n);
                    while lat.len() < n && take(s.next_timeout(Duration::from_secs(10)).await, &mut lat) {}
                    lat
                })
            };
            let cfg = WriterConfig::new(TimeStamp(0), vec![v]).auto_commit(true).auto_commit_interval(Duration::from_millis(10));
            let mut w = c.open_writer(cfg).await?;
            let (frames, rate_hz) = (a.frames, a.rate);
            let write_all = async move {
                let t0 = Instant::now();
                for i in 0..frames {
                    pace_async(t0, i, rate_hz).await;
                    let f = Frame::new().with(ti, Series::timestamps(vec![i as i64])).with(v, Series::from_vec(vec![i as f64]));
                    sent[i].store(base.elapsed().as_nanos() as u64, Ordering::Release);
                    w.write(&f).await?;
                }
                w.close().await.map(drop)
            };
            if a.block_on_writer {
                write_all.await?;
            } else {
                tokio::spawn(write_all).await.map_err(|e| Error::InvalidArgument { reason: format!("writer task failed: {e}") })??;
            }
            let lat = rx.await.unwrap_or_default();
            c.delete_channels(&[v, ti]).await?;
            let writer = if a.block_on_writer { "block_on" } else { "task" };
            Ok::<f64, Error>(
                lat_row("stream-latency", run, lat, json!({"rate_hz": a.rate, "frames": a.frames, "writer": writer}), a.common.json).0,
            )
        })?;
        p50s.push(p50);
    }
    Ok(p50s)
}

/// Sleep until frame `i` is due. Never spins: on two cores a spinning writer takes the
/// time slice the node and the receiving task need. Due times are absolute, so a late
/// wake-up does not lower the rate.
pub async fn pace_async(t0: Instant, i: usize, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = t0 + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
    if due > Instant::now() {
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Control round trip: client A commands on one channel, client B (another connection)
/// echoes each command on another channel; A measures command -> echo.
pub fn control_rtt(a: &RttArgs) -> Result<(), Error> {
    if !a.common.json {
        println!(
            "control-rtt ({}): A writes a command, B echoes it on another channel, A receives the echo; {} trips at {} Hz, commander {}",
            if a.common.url.is_some() { "two remote clients" } else { "embedded" },
            a.trips,
            a.rate,
            if a.block_on { "driven by block_on from the main thread" } else { "and echoer as runtime tasks" }
        );
        println!("{:>4} {:>10} {:>10} {:>10} {:>10} {:>10}", "run", "p50 us", "p99 us", "p999 us", "max us", "trips");
    }
    let rt = runtime()?;
    for run in 0..a.common.runs {
        rt.block_on(async {
            let (ca, _scratch) = client(&a.common).await?;
            let cb = another(&a.common, &ca).await?;
            let t = tag(run);
            let ch = ca
                .create_channels(
                    vec![NewChannel::virtual_(format!("{t}_cmd"), DataType::U64), NewChannel::virtual_(format!("{t}_echo"), DataType::U64)],
                    false,
                )
                .await?;
            let (cmd, echo) = (ch[0].key, ch[1].key);
            let mut b_in = cb.open_streamer(StreamerConfig::new(vec![cmd])).await?;
            let mut b_out = cb.open_writer(WriterConfig::new(TimeStamp(0), vec![echo]).mode(WriterMode::Stream).name("echo")).await?;
            let echoer = tokio::spawn(async move {
                while let Ok(f) = b_in.next().await {
                    for s in f.get(cmd) {
                        if b_out.write(&Frame::new().with(echo, s.clone())).await.is_err() {
                            return;
                        }
                    }
                }
            });
            let mut a_in = ca.open_streamer(StreamerConfig::new(vec![echo])).await?;
            let mut a_out = ca.open_writer(WriterConfig::new(TimeStamp(0), vec![cmd]).mode(WriterMode::Stream).name("commander")).await?;
            let (trips, rate_hz) = (a.trips, a.rate);
            let commander = async move {
                let mut lat = Vec::with_capacity(trips);
                let t0 = Instant::now();
                for i in 0..trips {
                    pace_async(t0, i, rate_hz).await;
                    let sent = Instant::now();
                    a_out.write(&Frame::new().with(cmd, Series::from_vec(vec![i as u64]))).await?;
                    loop {
                        let f = a_in
                            .next_timeout(Duration::from_secs(5))
                            .await?
                            .ok_or(Error::InvalidArgument { reason: "no echo within 5 s".into() })?;
                        if f.get(echo).any(|s| s.as_slice::<u64>().is_ok_and(|v| v.contains(&(i as u64)))) {
                            lat.push(sent.elapsed().as_secs_f64() * 1e6);
                            break;
                        }
                    }
                }
                a_out.close().await?;
                a_in.close().await;
                Ok::<Vec<f64>, Error>(lat)
            };
            let lat = if a.block_on {
                commander.await
            } else {
                tokio::spawn(commander).await.map_err(|e| Error::InvalidArgument { reason: format!("commander task failed: {e}") })?
            };
            echoer.abort();
            let lat = lat?;
            let _ = ca.delete_channels(&[cmd, echo]).await;
            let commander = if a.block_on { "block_on" } else { "task" };
            lat_row("control-rtt", run, lat, json!({"trips": a.trips, "rate_hz": a.rate, "commander": commander}), a.common.json);
            Ok::<(), Error>(())
        })?;
    }
    Ok(())
}

/// Many remote streamers on one stored channel while a writer keeps ingesting.
pub fn fanout(a: &FanoutArgs) -> Result<(), Error> {
    crate::bench_remote_fanout::run(a)
}
