//! The live test stand behind `telemetron serve --demo`.
//!
//! Channels (created if missing; on a cluster node each name starts with `<node>/`):
//! - `stand_time` (index) with `pressure_1`, `pressure_2` (psi), `temperature_1`,
//!   `temperature_2` (°C) and `valve_state` (0/1), sampled at 1 kHz and written in 10 ms
//!   frames;
//! - `valve_cmd`: a virtual u8 command channel. Whoever holds control of it commands the
//!   valve. The simulator's own sequence cycles it (open 2 s, closed 4 s) at authority 50,
//!   so any operator writer with a higher authority takes over at once.
//!
//! Physics: with the valve open the tank pressure rises towards 500 psi; closed, it vents
//! towards ambient (14.7 psi). Temperatures follow the pressure slowly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::{WriteReport, WriterConfig, WriterMode};
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeStamp};
use telemetron::{Engine, Error};

const RATE_HZ: i64 = 1_000;
const FRAME_SAMPLES: usize = 10;
const SEQUENCE_AUTHORITY: u8 = 50;

/// A running simulator; stops (committing) when dropped or on [`Sim::stop`].
#[derive(Debug)]
pub struct Sim {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl Sim {
    /// Stop and wait for the last commit.
    pub fn stop(mut self) -> Result<(), Error> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::InvalidArgument { reason: "the simulator thread panicked".into() }),
            None => Ok(()),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Keys {
    time: ChannelKey,
    p: [ChannelKey; 2],
    temp: [ChannelKey; 2],
    valve_state: ChannelKey,
    cmd: ChannelKey,
}

/// The demo's channel names, in [`Keys`] order: `prefix` then the plain name.
pub fn channel_names(prefix: &str) -> [String; 7] {
    ["stand_time", "pressure_1", "pressure_2", "temperature_1", "temperature_2", "valve_state", "valve_cmd"].map(|n| format!("{prefix}{n}"))
}

fn channels(engine: &Engine, prefix: &str) -> Result<Keys, Error> {
    let [time, p1, p2, t1, t2, valve, cmd] = channel_names(prefix);
    let ch = engine.create_channels_with(
        vec![
            NewChannel::index(&time),
            NewChannel::data(p1, DataType::F64, &time),
            NewChannel::data(p2, DataType::F64, &time),
            NewChannel::data(t1, DataType::F64, &time),
            NewChannel::data(t2, DataType::F64, &time),
            NewChannel::data(valve, DataType::U8, &time),
            NewChannel::virtual_(cmd, DataType::U8),
        ],
        true,
    )?;
    Ok(Keys { time: ch[0].key, p: [ch[1].key, ch[2].key], temp: [ch[3].key, ch[4].key], valve_state: ch[5].key, cmd: ch[6].key })
}

/// Start the simulator on its own thread, its channels named `prefix` then the names above
/// (a cluster node gives `<node>/`, so the stands of several nodes do not share names).
///
/// # Errors
/// Creating the channels or opening the writers failed.
pub fn start(engine: Engine, prefix: &str) -> Result<Sim, Error> {
    let k = channels(&engine, prefix)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::Builder::new()
        .name("telemetron-sim".into())
        .spawn(move || run(&engine, &k, &s))
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the simulator: {e}") })?;
    Ok(Sim { stop, thread: Some(thread) })
}

fn run(engine: &Engine, k: &Keys, stop: &AtomicBool) -> Result<(), Error> {
    // Start after anything already stored (the demo may run repeatedly on one directory).
    let after = engine.time_range(k.time)?.map_or(TimeStamp(0), |r| r.end);
    let start = TimeStamp::now().max(after);
    let data = vec![k.p[0], k.p[1], k.temp[0], k.temp[1], k.valve_state];
    let mut w = engine.open_writer(
        WriterConfig::new(start, data).name("test stand").auto_commit(true).auto_commit_interval(Duration::from_millis(100)),
    )?;
    let mut seq = engine
        .open_writer(WriterConfig::new(start, vec![k.cmd]).name("demo sequence").authority(SEQUENCE_AUTHORITY).mode(WriterMode::Stream))?;
    let mut cmds = engine.open_streamer(StreamerConfig::new(vec![k.cmd]))?;
    let (mut p, mut temp, mut valve) = ([14.7f64, 14.7], [20.0f64, 20.0], false);
    let began = Instant::now();
    let mut t_ns = start.0;
    let mut frame_no: u64 = 0;
    let mut sequence_open = None;
    while !stop.load(Ordering::Acquire) {
        // The demo sequence: open 2 s of every 6 s (only applied if it holds control).
        let open = began.elapsed().as_secs() % 6 < 2;
        if sequence_open != Some(open) {
            let _: WriteReport = seq.write(&Frame::new().with(k.cmd, Series::from_vec(vec![u8::from(open)])))?;
            sequence_open = Some(open);
        }
        while let Ok(Some(f)) = cmds.try_recv() {
            if let Some(v) = f.get(k.cmd).last().and_then(|s| s.as_slice::<u8>().ok().and_then(|x| x.last().copied())) {
                valve = v != 0;
            }
        }
        let mut ts = Vec::with_capacity(FRAME_SAMPLES);
        let mut cols: [Vec<f64>; 4] = Default::default();
        for _ in 0..FRAME_SAMPLES {
            let dt = 1.0 / RATE_HZ as f64;
            for (i, pi) in p.iter_mut().enumerate() {
                let target = if valve { 500.0 - 20.0 * i as f64 } else { 14.7 };
                *pi += (target - *pi) * dt * if valve { 1.5 } else { 0.8 };
            }
            for (i, ti) in temp.iter_mut().enumerate() {
                *ti += ((20.0 + p[i] * 0.05) - *ti) * dt * 0.5;
            }
            let noise = ((t_ns / 1_000_000) % 7) as f64 * 0.01;
            ts.push(t_ns);
            cols[0].push(p[0] + noise);
            cols[1].push(p[1] - noise);
            cols[2].push(temp[0]);
            cols[3].push(temp[1]);
            t_ns += 1_000_000_000 / RATE_HZ;
        }
        let [c0, c1, c2, c3] = cols;
        let f = Frame::new()
            .with(k.time, Series::timestamps(ts))
            .with(k.p[0], Series::from_vec(c0))
            .with(k.p[1], Series::from_vec(c1))
            .with(k.temp[0], Series::from_vec(c2))
            .with(k.temp[1], Series::from_vec(c3))
            .with(k.valve_state, Series::from_vec(vec![u8::from(valve); FRAME_SAMPLES]));
        w.write(&f)?;
        frame_no += 1;
        // Pace to wall-clock time: frame n is due at n * 10 ms.
        let due = began + Duration::from_millis(frame_no * (FRAME_SAMPLES as u64 * 1000 / RATE_HZ as u64));
        if let Some(left) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
    }
    seq.abort();
    w.close()?;
    Ok(())
}
