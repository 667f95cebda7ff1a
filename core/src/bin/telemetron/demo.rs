//! `telemetron demo`: a simulated test stand written into an embedded data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use telemetron::channel::{Channel, NewChannel};
use telemetron::framer::{IterSpan, IteratorConfig, WriterConfig};
use telemetron::ranger::NewRange;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeSpan, TimeStamp};
use telemetron::{Engine, Error};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data directory (created if missing; runs accumulate).
    #[arg(long, default_value = "telemetron-demo-data")]
    pub data: PathBuf,
    /// Simulated seconds of test-stand data to write.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
}

const SLOW_HZ: i64 = 1_000;
const FAST_HZ: i64 = 100_000;
const FRAME: TimeSpan = TimeSpan::millis(100);

/// Tank pressure (psi) for a valve opened during [1 s, 4 s) of the run.
fn pressure(t: f64, k: f64) -> f64 {
    let base = 14.7 + k;
    if (1.0..4.0).contains(&t) {
        base + 480.0 * (1.0 - (-(t - 1.0) * 3.0).exp())
    } else if t >= 4.0 {
        base + 480.0 * (-(t - 4.0) * 2.0).exp()
    } else {
        base
    }
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().ok();
                    if m.as_ref().is_some_and(|m| m.is_dir()) { dir_size(&e.path()) } else { m.map_or(0, |m| m.len()) }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The demo's channel keys by name.
struct Keys(Vec<Channel>);

impl Keys {
    fn get(&self, name: &str) -> u32 {
        self.0.iter().find(|c| c.name == name).map(|c| c.key).unwrap_or_default()
    }
}

pub fn run(a: &DemoArgs) -> Result<(), Error> {
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        return Err(Error::InvalidArgument { reason: "--seconds must be in (0, 3600]".into() });
    }
    let engine = Engine::open(&a.data)?;
    println!("Telemetron demo: simulated test stand in {}", a.data.display());
    let r = engine.recovery_report();
    if r.segments > 0 {
        println!("  reopened existing data: {} segments, {} chunks recovered", r.segments, r.chunks);
    }
    let keys = create_channels(&engine)?;
    let start = start_after_previous(&engine, &keys);
    let end = write_run(&engine, &keys, start, a.seconds)?;
    let run = mark_range(&engine, TimeRange::new(start, end))?;
    read_back(&engine, &keys, start, a.seconds)?;
    iterate_run(&engine, &keys, run)?;
    engine.close()?;
    println!(
        "  data directory now holds {:.1} MB; run `telemetron channels --data {}` to list channels",
        dir_size(&a.data) as f64 / 1e6,
        a.data.display()
    );
    Ok(())
}

/// Create the stand's channels (or find them, from an earlier run).
fn create_channels(engine: &Engine) -> Result<Keys, Error> {
    let specs = vec![
        NewChannel::index("stand_time"),
        NewChannel::data("pt_1", DataType::F64, "stand_time"),
        NewChannel::data("pt_2", DataType::F64, "stand_time"),
        NewChannel::data("pt_3", DataType::F64, "stand_time"),
        NewChannel::data("tc_1", DataType::F32, "stand_time"),
        NewChannel::data("tc_2", DataType::F32, "stand_time"),
        NewChannel::data("valve_1", DataType::U8, "stand_time"),
        NewChannel::index("daq_time"),
        NewChannel::data("accel_x", DataType::F32, "daq_time"),
        NewChannel::data("accel_y", DataType::F32, "daq_time"),
        NewChannel::index("event_time"),
        NewChannel::data("events", DataType::String, "event_time"),
    ];
    let keys = Keys(engine.create_channels_with(specs, true)?);
    println!(
        "  channels: stand_time @ 1 kHz (pt_1..3 f64 psi, tc_1..2 f32 degC, valve_1 u8), daq_time @ 100 kHz (accel_x/y f32 g), events (string)"
    );
    Ok(keys)
}

/// Now, or a second after any earlier run's data if that is later.
fn start_after_previous(engine: &Engine, keys: &Keys) -> TimeStamp {
    let prev_end = [keys.get("stand_time"), keys.get("daq_time"), keys.get("event_time")]
        .iter()
        .filter_map(|&k| engine.time_range(k).ok().flatten())
        .map(|r| r.end)
        .max();
    prev_end.map_or_else(TimeStamp::now, |e| TimeStamp::now().max(e + TimeSpan::SECOND))
}

/// Write `seconds` of simulated data from `start`, one commit per frame; returns the
/// committed end.
fn write_run(engine: &Engine, keys: &Keys, start: TimeStamp, seconds: f64) -> Result<TimeStamp, Error> {
    let writes: Vec<u32> =
        ["pt_1", "pt_2", "pt_3", "tc_1", "tc_2", "valve_1", "accel_x", "accel_y", "events"].iter().map(|n| keys.get(n)).collect();
    let mut w = engine.open_writer(WriterConfig::new(start, writes).auto_commit(false).name("demo stand"))?;
    let frames = (seconds * 1e9 / FRAME.0 as f64).ceil() as i64;
    let t0 = Instant::now();
    let mut samples = 0u64;
    let mut bytes = 0u64;
    for f in 0..frames {
        let frame = stand_frame(keys, start, start.0 + f * FRAME.0);
        samples += frame.series().iter().map(|s| s.len() as u64).sum::<u64>();
        bytes += frame.byte_size() as u64;
        w.write(&frame)?;
        w.commit()?;
    }
    let end = w.close()?;
    let took = t0.elapsed().as_secs_f64();
    println!(
        "  wrote {seconds:.1} simulated s: {samples} samples ({:.1} MB) in {took:.3} s wall = {:.1} M samples/s, committed to {end}",
        bytes as f64 / 1e6,
        samples as f64 / took / 1e6
    );
    Ok(end)
}

/// The frame of the run started at `start` that begins at `f0`.
fn stand_frame(keys: &Keys, start: TimeStamp, f0: i64) -> Frame {
    let key = |name: &str| keys.get(name);
    let slow_n = FRAME.0 * SLOW_HZ / 1_000_000_000;
    let fast_n = FRAME.0 * FAST_HZ / 1_000_000_000;
    let slow_t: Vec<i64> = (0..slow_n).map(|i| f0 + i * (1_000_000_000 / SLOW_HZ)).collect();
    let fast_t: Vec<i64> = (0..fast_n).map(|i| f0 + i * (1_000_000_000 / FAST_HZ)).collect();
    let secs = |t: i64| (t - start.0) as f64 / 1e9;
    let mut frame = Frame::new()
        .with(key("pt_1"), Series::from_vec(slow_t.iter().map(|&t| pressure(secs(t), 0.0)).collect::<Vec<f64>>()))
        .with(key("pt_2"), Series::from_vec(slow_t.iter().map(|&t| pressure(secs(t), 5.0) * 0.98).collect::<Vec<f64>>()))
        .with(key("pt_3"), Series::from_vec(slow_t.iter().map(|&t| pressure(secs(t), -3.0) * 0.5).collect::<Vec<f64>>()))
        .with(key("tc_1"), Series::from_vec(slow_t.iter().map(|&t| 20.0 + secs(t) as f32 * 2.0).collect::<Vec<f32>>()))
        .with(key("tc_2"), Series::from_vec(slow_t.iter().map(|&t| 21.0 + (secs(t) as f32 * 0.7).sin()).collect::<Vec<f32>>()))
        .with(key("valve_1"), Series::from_vec(slow_t.iter().map(|&t| u8::from((1.0..4.0).contains(&secs(t)))).collect::<Vec<u8>>()))
        .with(
            key("accel_x"),
            Series::from_vec(
                fast_t.iter().map(|&t| (secs(t) * 2.0 * std::f64::consts::PI * 440.0).sin() as f32 * 0.2).collect::<Vec<f32>>(),
            ),
        )
        .with(
            key("accel_y"),
            Series::from_vec(
                fast_t.iter().map(|&t| (secs(t) * 2.0 * std::f64::consts::PI * 60.0).cos() as f32 * 0.1).collect::<Vec<f32>>(),
            ),
        )
        .with(key("stand_time"), Series::timestamps(slow_t))
        .with(key("daq_time"), Series::timestamps(fast_t));
    let events: Vec<(i64, &str)> = [(1.0, "valve_1 open"), (4.0, "valve_1 close")]
        .iter()
        .map(|&(at, what)| (start.0 + (at * 1e9) as i64, what))
        .filter(|(t, _)| *t >= f0 && *t < f0 + FRAME.0)
        .collect();
    if !events.is_empty() {
        frame.push(key("event_time"), Series::timestamps(events.iter().map(|e| e.0).collect()));
        frame.push(key("events"), Series::strings(&events.iter().map(|e| e.1).collect::<Vec<_>>()));
    }
    frame
}

/// Mark the run as a range with metadata; returns its time range.
fn mark_range(engine: &Engine, run: TimeRange) -> Result<TimeRange, Error> {
    let mut meta = BTreeMap::new();
    meta.insert("operator".to_string(), "demo".to_string());
    meta.insert("valve_open_s".to_string(), "1.0".to_string());
    meta.insert("valve_close_s".to_string(), "4.0".to_string());
    let runs = engine.ranges().search("demo hotfire", None)?.len();
    let range = engine.ranges().create(NewRange {
        name: format!("demo hotfire {}", runs + 1),
        time_range: run,
        labels: vec!["demo".into(), "hotfire".into()],
        color: None,
        meta_data: meta,
        parent: None,
    })?;
    println!("  marked range {:?} {} (key {})", range.name, range.time_range, range.key);
    // The valve-open window as a child of the run, so analysis can align runs on it.
    let open = TimeRange::new(run.start + TimeSpan::millis(1_000), (run.start + TimeSpan::millis(4_000)).min(run.end));
    let child = engine.ranges().create(NewRange {
        name: "valve open".into(),
        time_range: open,
        labels: vec!["valve".into()],
        parent: Some(range.key),
        ..NewRange::default()
    })?;
    println!("  marked child range {:?} {}", child.name, child.time_range);
    Ok(range.time_range)
}

/// Read half a second around the valve opening back and print what it holds.
fn read_back(engine: &Engine, keys: &Keys, start: TimeStamp, seconds: f64) -> Result<(), Error> {
    let win = TimeRange::new(start + TimeSpan::millis(1_000), start + TimeSpan::millis(1_500).min(TimeSpan((seconds * 1e9) as i64)));
    let read_t = Instant::now();
    let frame = engine.read(win, &[keys.get("pt_1"), keys.get("accel_x"), keys.get("valve_1")])?;
    let took = read_t.elapsed();
    let pt = frame.concat(keys.get("pt_1"))?.unwrap_or_else(|| Series::empty_of(DataType::F64));
    let ax = frame.concat(keys.get("accel_x"))?.unwrap_or_else(|| Series::empty_of(DataType::F32));
    let p = pt.as_slice::<f64>()?;
    let (min, max) = p.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    println!("  read back {win} in {:.0} us:", took.as_secs_f64() * 1e6);
    if !p.is_empty() {
        println!(
            "    pt_1: {} samples, min {min:.1} psi, max {max:.1} psi, mean {:.1} psi",
            p.len(),
            p.iter().sum::<f64>() / p.len() as f64
        );
    }
    println!(
        "    accel_x: {} samples at 100 kHz, rms {:.4} g",
        ax.len(),
        (ax.as_slice::<f32>()?.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / ax.len().max(1) as f64).sqrt()
    );
    Ok(())
}

/// Iterate the whole run in chunks and print its events.
fn iterate_run(engine: &Engine, keys: &Keys, run: TimeRange) -> Result<(), Error> {
    let accel_x = keys.get("accel_x");
    let mut it = engine.open_iterator(IteratorConfig { chunk_size: 50_000, ..IteratorConfig::new(run, vec![accel_x]) })?;
    it.seek_first()?;
    let mut chunks = 0;
    let mut n = 0;
    while it.next(IterSpan::Auto)? {
        chunks += 1;
        n += it.value().samples(accel_x);
    }
    println!("    iterated accel_x over the whole run: {n} samples in {chunks} chunks of <= 50,000");
    let ev = engine.read(run, &[keys.get("events")])?;
    for s in ev.get(keys.get("events")) {
        for i in 0..s.len() {
            println!("    event: {}", s.value_str(i).unwrap_or("?"));
        }
    }
    Ok(())
}
