//! `telemetron bench wire`: compression on the wire (`ConnectOptions::compress`), measured.
//!
//! Writes the codecs bench's realistic signals (one channel each, one shared 1 kHz index)
//! into a node served on loopback, then reads each channel whole with a plain client and
//! with one that asks for compression, alternating, `--runs` times. The reads go straight
//! to the node (loopback) and through a proxy in this process that paces what the node
//! sends to `--link-mbps` (a slower link, measured end to end rather than computed). The
//! bytes the node sends are counted by the proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::server::{ServerConfig, serve};
use telemetron::storage::Durability;
use telemetron::telem::{Frame, TimeRange, TimeStamp};
use telemetron::{ConnectOptions, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::bench::{Common, Scratch, emit, open};
use crate::stats::median;

#[derive(Debug, Args)]
pub struct WireArgs {
    /// Samples per channel.
    #[arg(long, default_value_t = 2_000_000)]
    pub samples: usize,
    /// Link rates to pace the node's replies to, in Mbit/s (0: loopback, unpaced).
    #[arg(long, value_delimiter = ',', default_value = "0,1000,100")]
    pub link_mbps: Vec<u64>,
    #[command(flatten)]
    pub common: Common,
}

/// A TCP proxy to `upstream` that forwards the client's bytes as they come and the node's
/// at most `bytes_per_s` (per connection), counting the node's bytes in `sent`.
async fn paced_proxy(upstream: std::net::SocketAddr, bytes_per_s: u64, sent: Arc<AtomicU64>) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(node) = TcpStream::connect(upstream).await else { continue };
            let _ = (client.set_nodelay(true), node.set_nodelay(true));
            let (mut cr, mut cw) = client.into_split();
            let (mut nr, mut nw) = node.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut cr, &mut nw).await });
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                // When the link is free again: each chunk takes n / rate on it, starting no
                // earlier than it arrives. An idle link earns no credit beyond `SLACK`, which
                // absorbs the timer's 1 ms granularity (a sleep ends up to a tick late).
                const SLACK: Duration = Duration::from_millis(3);
                let mut free = Instant::now();
                loop {
                    let n = match nr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    if bytes_per_s > 0 {
                        free = free.max(Instant::now() - SLACK) + Duration::from_secs_f64(n as f64 / bytes_per_s as f64);
                        tokio::time::sleep_until(free.into()).await;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

pub fn run(a: &WireArgs) -> Result<(), Error> {
    if a.common.url.is_some() {
        return Err(Error::InvalidArgument { reason: "bench wire starts its own node on loopback; drop --url".into() });
    }
    let n = a.samples.max(1);
    let scratch = Scratch::new(&a.common.dir, "wire");
    let engine = open(&scratch.0, Durability::None)?;
    let signals = crate::bench_codecs::signals(n);
    let stored: Vec<_> = signals.iter().filter(|(_, dt, _)| *dt != "timestamp").collect();
    let mut defs = vec![NewChannel::index("time")];
    defs.extend(stored.iter().enumerate().map(|(i, (_, _, s))| NewChannel::data(format!("s{i}"), s.data_type(), "time")));
    let chans = engine.create_channels(defs)?;
    let keys: Vec<_> = chans.iter().map(|c| c.key).collect();
    // The index: the regular 1 ms clock of the codecs bench.
    let index = signals.iter().find(|(name, _, _)| name.contains("regular")).map(|(_, _, s)| s.clone()).expect("a regular clock");
    let start = index.as_timestamps()?[0];
    let mut frame = Frame::new().with(keys[0], index);
    for (k, (_, _, s)) in keys[1..].iter().zip(&stored) {
        frame.push(*k, s.clone());
    }
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(start), keys.clone()))?;
    w.write(&frame)?;
    w.close()?;
    let mut names: Vec<&str> = vec!["timestamps, regular 1 ms (index)"];
    names.extend(stored.iter().map(|(name, _, _)| *name));

    let rt = crate::bench_remote::runtime()?;
    let server =
        rt.block_on(serve(engine.clone(), ServerConfig { listen: "127.0.0.1:0".parse().expect("address"), ..ServerConfig::default() }))?;
    if !a.common.json {
        println!("wire: {n} samples per channel, each channel read whole; time is the median of {} runs", a.common.runs);
        println!(
            "{:>6} {:<34} {:>9} {:>11} {:>7} {:>10} {:>10} {:>8}",
            "link", "signal", "raw MB", "sent MB", "ratio", "plain ms", "compr. ms", "speedup"
        );
    }
    for &mbps in &a.link_mbps {
        let sent = Arc::new(AtomicU64::new(0));
        let addr = rt
            .block_on(paced_proxy(server.local_addr(), mbps * 1_000_000 / 8, sent.clone()))
            .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the paced proxy: {e}") })?;
        let url = format!("http://{addr}");
        let plain = rt.block_on(telemetron::connect(&url, ConnectOptions::default()))?;
        let packed = rt.block_on(telemetron::connect(&url, ConnectOptions { compress: true, ..ConnectOptions::default() }))?;
        for (k, name) in keys.iter().zip(&names) {
            let (mut times, mut bytes) = ([Vec::new(), Vec::new()], [0u64; 2]);
            for _ in 0..a.common.runs {
                for (i, c) in [&plain, &packed].into_iter().enumerate() {
                    let before = sent.load(Ordering::Relaxed);
                    let t0 = Instant::now();
                    let f = rt.block_on(c.read(TimeRange::MAX, &[*k]))?;
                    times[i].push(t0.elapsed().as_secs_f64());
                    bytes[i] = sent.load(Ordering::Relaxed) - before;
                    if f.samples(*k) != n {
                        return Err(Error::InvalidArgument { reason: format!("{name}: read {} of {n} samples", f.samples(*k)) });
                    }
                }
            }
            let raw = n as u64 * chans.iter().find(|c| c.key == *k).and_then(|c| c.data_type.density()).unwrap_or(8) as u64;
            let (tp, tc) = (median(&times[0]), median(&times[1]));
            let link = if mbps == 0 { "lo".to_string() } else { format!("{mbps}M") };
            emit(
                a.common.json,
                json!({"scenario": "wire", "link_mbps": mbps, "signal": name, "samples": n, "raw_bytes": raw,
                       "sent_plain": bytes[0], "sent_compressed": bytes[1], "plain_s": tp, "compressed_s": tc}),
                || {
                    format!(
                        "{link:>6} {name:<34} {:>9.2} {:>11.2} {:>7.3} {:>10.1} {:>10.1} {:>8.2}",
                        raw as f64 / 1e6,
                        bytes[1] as f64 / 1e6,
                        bytes[1] as f64 / bytes[0] as f64,
                        tp * 1e3,
                        tc * 1e3,
                        tp / tc
                    )
                },
            );
        }
        rt.block_on(plain.close())?;
        rt.block_on(packed.close())?;
    }
    rt.block_on(server.shutdown())?;
    engine.close()?;
    Ok(())
}
