//! `telemetron bench reduce`: a long range reduced to a plot's worth of points on the node.
//!
//! One float64 channel (a noisy sine with rare spikes) and its index are written, then each
//! run reduces the whole range embedded (min-max and average) and through a node served on
//! loopback, counting the bytes the node sends against the bytes of the samples reduced.

use std::time::Instant;

use clap::Args;
use serde_json::json;
use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::protocol::codec;
use telemetron::server::{ServerConfig, serve};
use telemetron::storage::Durability;
use telemetron::telem::{DataType, Frame, ReduceMethod, Reduction, Series, TimeRange, TimeStamp};
use telemetron::{ConnectOptions, Error};

use crate::bench::{Common, Scratch, emit, open};
use crate::stats::{median, rate};

#[derive(Debug, Args)]
pub struct ReduceArgs {
    /// Samples of the channel to write and reduce.
    #[arg(long, default_value_t = 100_000_000)]
    pub samples: u64,
    /// Points to reduce to.
    #[arg(long, default_value_t = 2_000)]
    pub points: u32,
    /// Samples per written frame.
    #[arg(long, default_value_t = 1_000_000)]
    pub batch: usize,
    #[command(flatten)]
    pub common: Common,
}

/// A sensor: a slow sine with noise and a spike every 10 million samples.
fn signal(from: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let k = from + i;
            let noise = ((k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64) - 0.5;
            let spike = if k % 10_000_000 == 1_234_567 { 50.0 } else { 0.0 };
            (k as f64 / 1e6).sin() * 10.0 + noise + spike
        })
        .collect()
}

pub fn run(a: &ReduceArgs) -> Result<(), Error> {
    if a.common.url.is_some() {
        return Err(Error::InvalidArgument { reason: "bench reduce starts its own node on loopback; drop --url".into() });
    }
    let scratch = Scratch::new(&a.common.dir, "reduce");
    let batch = a.batch.max(1);
    let engine = open(&scratch.0, Durability::None)?;
    let chans = engine.create_channels(vec![NewChannel::index("time"), NewChannel::data("value", DataType::F64, "time")])?;
    let (t, v) = (chans[0].key, chans[1].key);
    let t0 = Instant::now();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![v]).auto_commit(false))?;
    let mut written = 0u64;
    while written < a.samples {
        let n = (a.samples - written).min(batch as u64) as usize;
        // 1 kHz timestamps.
        let stamps: Vec<i64> = (0..n as i64).map(|i| (written as i64 + i) * 1_000_000).collect();
        w.write(&Frame::new().with(t, Series::timestamps(stamps)).with(v, Series::from_vec(signal(written, n))))?;
        written += n as u64;
        w.commit()?;
    }
    w.close()?;
    if !a.common.json {
        println!(
            "reduce: one float64 channel + index, {} samples ({:.0} MB with its index, written in {:.1} s), to {} points, page cache warm",
            a.samples,
            a.samples as f64 * 16.0 / 1e6,
            t0.elapsed().as_secs_f64(),
            a.points
        );
        println!(
            "{:>4} {:>8} {:>9} {:>10} {:>14} {:>8} {:>12} {:>10}",
            "run", "method", "where", "time (s)", "samples/s", "points", "bytes sent", "raw/sent"
        );
    }
    let rt = crate::bench_remote::runtime()?;
    let server =
        rt.block_on(serve(engine.clone(), ServerConfig { listen: "127.0.0.1:0".parse().expect("address"), ..ServerConfig::default() }))?;
    let client = rt.block_on(telemetron::connect(&server.url(), ConnectOptions::default()))?;
    let raw_bytes = a.samples as f64 * 16.0;
    let mut rates: Vec<(ReduceMethod, &str, f64)> = Vec::new();
    for run in 0..a.common.runs {
        for method in [ReduceMethod::MinMax, ReduceMethod::Average] {
            let r = Reduction { points: a.points, method };
            for place in ["embedded", "remote"] {
                let t0 = Instant::now();
                let f = match place {
                    "embedded" => engine.read_reduced(TimeRange::MAX, &[t, v], &r)?,
                    _ => rt.block_on(client.read_reduced(TimeRange::MAX, &[t, v], r))?,
                };
                let secs = t0.elapsed().as_secs_f64();
                let points = f.samples(v);
                if points == 0 || points > a.points as usize || points != f.samples(t) {
                    return Err(Error::InvalidArgument { reason: format!("{r} gave {points} points") });
                }
                if method == ReduceMethod::MinMax && a.samples > 1_234_567 {
                    let max = f.concat(v)?.map(|s| s.as_slice::<f64>().map(|x| x.iter().copied().fold(f64::MIN, f64::max))).transpose()?;
                    if max < Some(40.0) {
                        return Err(Error::InvalidArgument { reason: format!("the spike was lost: max {max:?}") });
                    }
                }
                let sent = codec::encoded_len(&f);
                let sps = a.samples as f64 / secs;
                rates.push((method, place, sps));
                emit(
                    a.common.json,
                    json!({"scenario": "reduce", "run": run, "method": method.to_string(), "where": place, "samples": a.samples,
                           "points": points, "seconds": secs, "samples_per_s": sps, "bytes_sent": sent, "raw_bytes": raw_bytes}),
                    || {
                        format!(
                            "{run:>4} {:>8} {place:>9} {secs:>10.4} {:>14} {points:>8} {sent:>12} {:>10.0}",
                            method.to_string(),
                            rate(sps),
                            raw_bytes / sent as f64
                        )
                    },
                );
            }
        }
    }
    if !a.common.json {
        for method in [ReduceMethod::MinMax, ReduceMethod::Average] {
            for place in ["embedded", "remote"] {
                let v: Vec<f64> = rates.iter().filter(|(m, p, _)| *m == method && *p == place).map(|(_, _, r)| *r).collect();
                println!("median {method:>8} {place:>9}: {} samples/s", rate(median(&v)));
            }
        }
    }
    rt.block_on(client.close())?;
    rt.block_on(server.shutdown())?;
    engine.close()?;
    Ok(())
}
