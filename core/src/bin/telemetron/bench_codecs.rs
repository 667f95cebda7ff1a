//! `telemetron bench codecs`: the compression codecs of `storage::compress` on realistic
//! sensor signals, to choose a channel's codec by measurement (issue 12, item 3).
//!
//! Each signal is one compacted chunk of a 1 kHz channel (`--samples`, default 1 M, about
//! 17 minutes). Per signal and codec: compressed size over raw size, and compression and
//! decompression throughput in raw MB/s (medians of `--runs`). Every decompression is
//! checked against the original samples.

use std::time::Instant;

use clap::Args;
use serde_json::json;
use telemetron::Error;
use telemetron::storage::compress::Codec;
use telemetron::telem::Series;

use crate::bench::{Common, emit};
use crate::stats::median;

#[derive(Debug, Args)]
pub struct CodecsArgs {
    /// Samples per signal (one compacted chunk).
    #[arg(long, default_value_t = 1_000_000)]
    pub samples: usize,
    #[command(flatten)]
    pub common: Common,
}

/// A small deterministic generator (xorshift64*), so every run sees the same signals.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn gauss(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

/// Seconds at sample `i` of a 1 kHz channel.
fn t(i: usize) -> f64 {
    i as f64 / 1_000.0
}

/// A pressure transducer through a 16-bit ADC, scaled to bar: a slow sine of period
/// `period_s`, noise of a few counts. The values are counts times a constant, as most
/// acquisition chains store them.
pub fn adc_pressure(r: &mut Rng, n: usize, period_s: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let counts =
                (32_768.0 + 20_000.0 * (std::f64::consts::TAU * t(i) / period_s).sin() + 3.0 * r.gauss()).round().clamp(0.0, 65_535.0);
            counts * (100.0 / 65_535.0)
        })
        .collect()
}

/// The same sensor after floating-point filtering: full-precision noise in every sample.
pub fn filtered_pressure(r: &mut Rng, n: usize, period_s: f64) -> Vec<f64> {
    (0..n).map(|i| 50.0 + 30.0 * (std::f64::consts::TAU * t(i) / period_s).sin() + 0.05 * r.gauss()).collect()
}

/// A valve command: 0 or 1, switching every 2-10 s.
pub fn valve_command(r: &mut Rng, n: usize) -> Vec<f64> {
    let mut state = 0.0;
    let mut next_switch = 0usize;
    (0..n)
        .map(|i| {
            if i >= next_switch {
                state = 1.0 - state;
                next_switch = i + 2_000 + (r.next() % 8_000) as usize;
            }
            state
        })
        .collect()
}

/// The signals: what a test stand records, at 1 kHz.
pub fn signals(n: usize) -> Vec<(&'static str, &'static str, Series)> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let adc = adc_pressure(&mut r, n, 10.0);
    let filtered = filtered_pressure(&mut r, n, 10.0);
    // A thermocouple as f32, slow drift and noise.
    let temp: Vec<f32> = (0..n).map(|i| (293.0 + 0.001 * t(i) + 0.02 * r.gauss()) as f32).collect();
    let valve = valve_command(&mut r, n);
    // A frame counter and an event counter that moves now and then.
    let counter: Vec<u64> = (0..n as u64).map(|i| 1_000_000 + i).collect();
    let mut events = 0i64;
    let event_count: Vec<i64> = (0..n)
        .map(|_| {
            if r.next().is_multiple_of(500) {
                events += 1;
            }
            events
        })
        .collect();
    // Timestamps: a disciplined clock (exactly 1 ms), and a free-running one with jitter.
    let start = 1_780_000_000_000_000_000i64;
    let regular: Vec<i64> = (0..n as i64).map(|i| start + i * 1_000_000).collect();
    let jitter: Vec<i64> = (0..n as i64).map(|i| start + i * 1_000_000 + (r.gauss() * 20_000.0) as i64).collect();
    vec![
        ("pressure, 16-bit ADC in bar", "f64", Series::from_vec(adc)),
        ("pressure, filtered", "f64", Series::from_vec(filtered)),
        ("temperature", "f32", Series::from_vec(temp)),
        ("valve command", "f64", Series::from_vec(valve)),
        ("frame counter", "u64", Series::from_vec(counter)),
        ("event counter", "i64", Series::from_vec(event_count)),
        ("timestamps, regular 1 ms", "timestamp", Series::timestamps(regular)),
        ("timestamps, 20 us jitter", "timestamp", Series::timestamps(jitter)),
    ]
}

const CODECS: [Codec; 10] = [
    Codec::Raw,
    Codec::Lz4,
    Codec::ShuffleLz4,
    Codec::Zstd(1),
    Codec::Zstd(3),
    Codec::ShuffleZstd(1),
    Codec::ShuffleZstd(3),
    Codec::DeltaDeltaZstd(1),
    Codec::Pco(4),
    Codec::Pco(8),
];

pub fn run(a: &CodecsArgs) -> Result<(), Error> {
    if a.common.url.is_some() {
        return Err(Error::InvalidArgument { reason: "bench codecs runs in this process; drop --url".into() });
    }
    let runs = a.common.runs.max(1);
    let n = a.samples.max(1);
    if !a.common.json {
        println!("codecs: {n} samples per signal, {runs} runs; ratio = compressed / raw, MB/s of raw bytes");
        println!("{:<30} {:<16} {:>8} {:>12} {:>12}", "signal", "codec", "ratio", "comp MB/s", "decomp MB/s");
    }
    for (name, dt, s) in signals(n) {
        let raw = s.data().len() as f64;
        for codec in CODECS.iter().copied().filter(|c| c.applies_to(s.data_type())) {
            let (mut enc, mut dec, mut size) = (Vec::new(), Vec::new(), 0usize);
            for _ in 0..runs {
                let t = Instant::now();
                let z = codec.compress(&s).map_err(|e| Error::InvalidArgument { reason: e.to_string() })?;
                enc.push(raw / t.elapsed().as_secs_f64() / 1e6);
                let t = Instant::now();
                let back = codec.decompress(s.data_type(), s.len(), &z).map_err(|e| Error::InvalidArgument { reason: e.to_string() })?;
                dec.push(raw / t.elapsed().as_secs_f64() / 1e6);
                if back.data() != s.data() {
                    return Err(Error::InvalidArgument { reason: format!("{codec} did not round-trip {name}") });
                }
                size = z.len();
            }
            let ratio = size as f64 / raw;
            let (e, d) = (median(&enc), median(&dec));
            emit(
                a.common.json,
                json!({"bench": "codecs", "signal": name, "data_type": dt, "codec": codec.to_string(), "samples": n, "raw_bytes": raw, "bytes": size, "ratio": ratio, "compress_mb_s": e, "decompress_mb_s": d}),
                || format!("{name:<30} {:<16} {ratio:>8.3} {e:>12.0} {d:>12.0}", codec.to_string()),
            );
        }
    }
    Ok(())
}
