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
            Ok::<(), Error>(())
        })?;
    }
    Ok(())
}
