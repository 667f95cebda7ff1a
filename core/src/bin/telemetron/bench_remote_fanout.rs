//! `bench fanout --url`: many remote streamers (one connection each) on a stored channel
//! while a writer keeps ingesting it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeStamp};
use telemetron::{ConnectOptions, Credentials, Error};

use crate::bench::emit;
use crate::bench_live::FanoutArgs;
use crate::bench_remote::pace_async;
use crate::stats::{percentile, rate};

pub fn run(a: &FanoutArgs) -> Result<(), Error> {
    let url = a.common.url.clone().unwrap_or_default();
    if !a.common.json {
        println!(
            "remote fanout to {url}: {} streamer connections on a stored f64 channel, {}-sample frames at {}, {:.1} s",
            a.subscribers,
            a.batch,
            if a.rate == 0 { "full speed".to_string() } else { format!("{} frames/s", a.rate) },
            a.seconds
        );
        println!(
            "{:>4} {:>14} {:>12} {:>10} {:>10} {:>10} {:>10}",
            "run", "delivered/s", "frames/s", "p50 us", "p99 us", "lagged", "missing"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: e.to_string() })?;
    let credentials = a.common.token.clone().map_or(Credentials::None, |token| Credentials::Token { token });
    let opts = ConnectOptions { credentials, timeout: Duration::from_secs(30), ..ConnectOptions::default() };
    for run in 0..a.common.runs {
        rt.block_on(async {
            let c = telemetron::connect(&url, opts.clone()).await?;
            let tag = format!("fan{}_{}_{run}", std::process::id(), TimeStamp::now().0 % 1_000_000_000);
            let ch = c
                .create_channels(
                    vec![NewChannel::index(format!("{tag}_t")), NewChannel::data(format!("{tag}_v"), DataType::F64, format!("{tag}_t"))],
                    false,
                )
                .await?;
            let (t, v) = (ch[0].key, ch[1].key);
            let base = Instant::now();
            let stop = Arc::new(AtomicBool::new(false));
            let mut tasks = Vec::with_capacity(a.subscribers);
            for _ in 0..a.subscribers {
                // One connection per streamer, as separate dashboards would have.
                let sc = telemetron::connect(&url, opts.clone()).await?;
                let mut s = sc.open_streamer(StreamerConfig { capacity: 256, ..StreamerConfig::new(vec![t, v]) }).await?;
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut samples, mut lagged, mut lat) = (0u64, 0u64, Vec::new());
                    loop {
                        match s.next_timeout(Duration::from_millis(200)).await {
                            Ok(Some(f)) => {
                                let now = base.elapsed().as_nanos() as i64;
                                samples += f.samples(v) as u64;
                                if let Some(first) = f.get(t).next().and_then(|x| x.as_timestamps().ok().and_then(|ts| ts.first().copied()))
                                {
                                    lat.push((now - first).max(0) as f64 / 1e3);
                                }
                            }
                            Ok(None) if stop.load(Ordering::Acquire) => break,
                            Ok(None) => {}
                            Err(Error::Stream(telemetron::relay::StreamError::Lagged { dropped })) => lagged += dropped,
                            Err(_) => break,
                        }
                    }
                    drop(sc);
                    (samples, lagged, lat)
                }));
            }
            let data = Series::from_vec((0..a.batch).map(|i| i as f64).collect::<Vec<f64>>());
            let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![v]).auto_commit_interval(Duration::from_millis(100))).await?;
            let t0 = Instant::now();
            let (mut frames, mut last) = (0usize, 0i64);
            while t0.elapsed().as_secs_f64() < a.seconds {
                pace_async(t0, frames, a.rate).await;
                // Index timestamps are the send instant (ns since `base`), so receivers can
                // measure latency.
                let now = (base.elapsed().as_nanos() as i64).max(last + a.batch as i64);
                last = now + a.batch as i64 - 1;
                let f = Frame::new().with(t, Series::timestamps((now..=last).collect())).with(v, data.clone());
                w.write(&f).await?;
                frames += 1;
            }
            let secs = t0.elapsed().as_secs_f64();
            w.close().await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            stop.store(true, Ordering::Release);
            let (mut delivered, mut lagged, mut lat) = (0u64, 0u64, Vec::new());
            for h in tasks {
                if let Ok((s, l, mut la)) = h.await {
                    delivered += s;
                    lagged += l;
                    lat.append(&mut la);
                }
            }
            let frame_bytes = {
                let f = Frame::new().with(t, Series::timestamps((0..a.batch as i64).collect())).with(v, data.clone());
                telemetron::protocol::codec::encode(&f).len()
            };
            let expected = (frames * a.batch * a.subscribers) as u64;
            let missing = expected.saturating_sub(delivered);
            let _ = c.delete_channels(&[v, t]).await;
            let dps = delivered as f64 / secs;
            let (p50, p99) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));
            emit(
                a.common.json,
                json!({"scenario": "fanout", "remote": true, "run": run, "subscribers": a.subscribers, "batch": a.batch,
                       "rate_hz": a.rate, "frames": frames, "seconds": secs, "samples_per_s": dps, "p50_us": p50, "p99_us": p99,
                       "lagged_frames": lagged, "missing_samples": missing}),
                || {
                    format!(
                        "{run:>4} {:>14} {:>12} {p50:>10.1} {p99:>10.1} {lagged:>10} {missing:>10}",
                        rate(dps),
                        rate(frames as f64 / secs)
                    )
                },
            );
            if a.tcp_floor {
                let mut floor = tcp_floor(a.subscribers, frame_bytes, frames, a.rate).await?;
                let (f50, f99) = (percentile(&mut floor, 50.0), percentile(&mut floor, 99.0));
                emit(
                    a.common.json,
                    json!({"scenario": "fanout-tcp-floor", "run": run, "subscribers": a.subscribers, "frame_bytes": frame_bytes,
                           "frames": frames, "p50_us": f50, "p99_us": f99, "telemetron_over_floor_p50": p50 / f50,
                           "telemetron_over_floor_p99": p99 / f99}),
                    || {
                        format!(
                            "     plain TCP, {frame_bytes}-byte messages: p50 {f50:.1} us, p99 {f99:.1} us; Telemetron {:.2}x at p50, {:.2}x at p99",
                            p50 / f50,
                            p99 / f99
                        )
                    },
                );
            }
            Ok::<(), Error>(())
        })?;
    }
    Ok(())
}

/// The fan-out of `frames` messages of `bytes` each to `n` loopback TCP connections, with
/// nothing but the sockets: a thread writes each message to every connection in turn (its
/// first 8 bytes the send instant), and one task per connection reads them. Returns each
/// delivery's latency in µs.
async fn tcp_floor(n: usize, bytes: usize, frames: usize, rate: u64) -> Result<Vec<f64>, Error> {
    use tokio::io::AsyncReadExt as _;
    let fail = |e: std::io::Error| Error::InvalidArgument { reason: format!("tcp floor: {e}") };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?;
    let addr = listener.local_addr().map_err(fail)?;
    let base = Instant::now();
    let mut senders = Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(addr).await.map_err(fail)?;
        let (s, _) = listener.accept().await.map_err(fail)?;
        c.set_nodelay(true).map_err(fail)?;
        let s = s.into_std().map_err(fail)?;
        s.set_nonblocking(false).map_err(fail)?;
        s.set_nodelay(true).map_err(fail)?;
        senders.push(s);
        readers.push(tokio::spawn(async move {
            let (mut buf, mut lat) = (vec![0u8; bytes], Vec::with_capacity(frames));
            for _ in 0..frames {
                if c.read_exact(&mut buf).await.is_err() {
                    break;
                }
                let sent = i64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
                lat.push((base.elapsed().as_nanos() as i64 - sent).max(0) as f64 / 1e3);
            }
            lat
        }));
    }
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let mut msg = vec![0u8; bytes.max(8)];
        let t0 = Instant::now();
        for k in 0..frames {
            if rate > 0 {
                let due = t0 + Duration::from_secs_f64(k as f64 / rate as f64);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            msg[..8].copy_from_slice(&(base.elapsed().as_nanos() as i64).to_le_bytes());
            for s in &mut senders {
                s.write_all(&msg)?;
            }
        }
        Ok::<_, std::io::Error>(senders)
    });
    let mut lat = Vec::with_capacity(n * frames);
    for r in readers {
        lat.extend(r.await.map_err(|e| Error::InvalidArgument { reason: format!("tcp floor: {e}") })?);
    }
    drop(writer.join().map_err(|_| Error::InvalidArgument { reason: "tcp floor: the writer thread panicked".into() })?.map_err(fail)?);
    if lat.len() != n * frames {
        return Err(Error::InvalidArgument { reason: format!("tcp floor: {} of {} messages arrived", lat.len(), n * frames) });
    }
    Ok(lat)
}
