//! Relay stress: writers and streamers opening, writing, receiving, updating their channels
//! and closing concurrently for about a second. Every thread must finish (a watchdog fails
//! the test instead of hanging), frames must respect demand and per-writer order, stored
//! data must be exactly what was written, and afterwards no streamer may be left active.
//! A crowd of streamers on every channel stays open throughout, so writers' frames go
//! through the relay's dispatcher while small fan-outs mix in.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{open, read_ts};
use telemetron::Engine;
use telemetron::channel::{ChannelKey, Concurrency, NewChannel};
use telemetron::framer::{WriterConfig, WriterMode};
use telemetron::relay::{LagPolicy, StreamError, StreamerConfig};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

const WRITERS: usize = 8;
const STREAMERS: usize = 16;
const VIRTUALS: usize = 4;
/// Streamers on every channel, open throughout (more than a writer feeds itself).
const CROWD: usize = 40;
/// How long the threads keep going (they stop at the next iteration after it).
const RUN: Duration = Duration::from_millis(1_000);
/// Far beyond any healthy run: reaching it means a thread is stuck.
const WATCHDOG: Duration = Duration::from_secs(90);

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// A value carries its writer thread and a per-thread sequence number.
fn encode(thread: usize, seq: u32) -> u32 {
    ((thread as u32) << 24) | seq
}

fn decode(v: u32) -> (usize, u32) {
    ((v >> 24) as usize, v & 0x00FF_FFFF)
}

#[derive(Debug, Clone)]
struct Layout {
    virtuals: Vec<ChannelKey>,
    /// Per writer thread: (index, data) of its own stored group.
    stored: Vec<(ChannelKey, ChannelKey)>,
    control: ChannelKey,
}

impl Layout {
    fn all(&self) -> Vec<ChannelKey> {
        let mut v = self.virtuals.clone();
        for &(i, d) in &self.stored {
            v.push(i);
            v.push(d);
        }
        v.push(self.control);
        v
    }
}

/// One writer thread: open a writer (persist+stream or stream-only) on the shared virtual
/// channels and its own stored group, write a few frames, close or drop it; repeat.
/// Returns the timestamps it stored.
fn writer_thread(engine: Engine, layout: Layout, me: usize, stop: Arc<AtomicBool>) -> Vec<i64> {
    let mut rng = Rng::new(me as u64 + 1);
    let (idx, data) = layout.stored[me];
    let mut t = 1_000i64;
    let mut seq = 0u32;
    let mut stored = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let stream_only = rng.chance(3);
        let mut keys: Vec<ChannelKey> = layout.virtuals.iter().copied().filter(|_| rng.chance(2)).collect();
        if keys.is_empty() || rng.chance(2) {
            keys.push(data);
        }
        let mode = if stream_only { WriterMode::Stream } else { WriterMode::PersistStream };
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(t), keys.clone()).mode(mode)).unwrap();
        let mut pending = Vec::new();
        for _ in 0..1 + rng.below(8) {
            t += 1 + rng.below(3) as i64;
            seq += 1;
            let n = 1 + rng.below(3) as usize;
            let mut f = Frame::new();
            for &k in &keys {
                if k == data {
                    let ts: Vec<i64> = (0..n as i64).map(|i| t + i).collect();
                    f.push(idx, Series::timestamps(ts));
                    f.push(data, Series::from_vec(vec![encode(me, seq); n]));
                } else {
                    f.push(k, Series::from_vec(vec![encode(me, seq)]));
                }
            }
            let r = w.write(&f).unwrap();
            assert!(r.all_written(), "each thread owns its group, virtual channels are shared: {r:?}");
            if keys.contains(&data) && !stream_only {
                pending.extend((0..n as i64).map(|i| t + i));
            }
            t += n as i64;
            if rng.chance(4) {
                w.commit().unwrap();
            }
        }
        // Auto-commit after every write: dropping loses nothing either.
        if rng.chance(3) {
            drop(w);
        } else {
            w.close().unwrap();
        }
        stored.extend(pending);
    }
    stored
}

#[derive(Debug, Default)]
struct StreamStats {
    frames: u64,
    lagged: u64,
    disconnected: u64,
}

/// Check a received frame: only channels asked for (`ever`), and per (channel, writer
/// thread) sequence numbers that never go back (`last`).
fn check_frame(f: &Frame, layout: &Layout, ever: &HashSet<ChannelKey>, last: &mut HashMap<(ChannelKey, usize), u32>) {
    for (k, series) in f.iter() {
        assert!(ever.contains(&k), "streamer got channel {k} it never asked for");
        if k == layout.control || layout.stored.iter().any(|&(i, _)| i == k) {
            continue;
        }
        for &v in series.as_slice::<u32>().unwrap() {
            let (w, seq) = decode(v);
            assert!(w < WRITERS, "value from an unknown writer: {v:#x}");
            if let Some(&prev) = last.get(&(k, w)) {
                // Samples of one frame repeat its seq; frames only go forward.
                assert!(seq >= prev, "channel {k} writer {w}: seq {seq} after {prev}");
            }
            last.insert((k, w), seq);
        }
    }
}

/// The crowd: `CROWD` streamers on every channel, open throughout, polled in turn. With
/// them every writer's frames go to more streamers than it feeds itself, so they pass
/// through the relay's dispatcher while the churning streamers' frames mix in.
fn crowd_thread(engine: Engine, layout: Layout, stop: Arc<AtomicBool>) -> StreamStats {
    let all: HashSet<ChannelKey> = layout.all().into_iter().collect();
    let mut crowd: Vec<_> = (0..CROWD).map(|_| engine.open_streamer(StreamerConfig::new(layout.all())).unwrap()).collect();
    let mut last: Vec<HashMap<(ChannelKey, usize), u32>> = vec![HashMap::new(); CROWD];
    let mut stats = StreamStats::default();
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for (s, last) in crowd.iter_mut().zip(&mut last) {
            match s.try_recv() {
                Ok(Some(f)) => {
                    idle = false;
                    stats.frames += 1;
                    check_frame(&f, &layout, &all, last);
                }
                Ok(None) => {}
                Err(StreamError::Lagged { dropped }) => {
                    assert!(dropped > 0);
                    stats.lagged += 1;
                }
                Err(e) => panic!("a crowd streamer failed: {e}"),
            }
        }
        if idle {
            thread::sleep(Duration::from_micros(200));
        }
    }
    stats
}

/// One streamer thread: open a streamer on a random set of channels with random settings,
/// receive for a while, update its channels now and then, close or drop it; repeat.
fn streamer_thread(engine: Engine, layout: Layout, me: usize, stop: Arc<AtomicBool>) -> StreamStats {
    let mut rng = Rng::new(1_000 + me as u64);
    let all = layout.all();
    let mut stats = StreamStats::default();
    let pick = |rng: &mut Rng| -> Vec<ChannelKey> { all.iter().copied().filter(|_| rng.chance(3)).collect() };
    while !stop.load(Ordering::Relaxed) {
        let mut cfg = StreamerConfig::new(pick(&mut rng));
        cfg.capacity = [2usize, 16, 1024][rng.below(3) as usize];
        cfg.lag_policy = if rng.chance(4) { LagPolicy::Disconnect } else { LagPolicy::Notify };
        cfg.decimate = if rng.chance(4) { 2 } else { 1 };
        cfg.throttle_hz = if rng.chance(6) { 200.0 } else { 0.0 };
        let mut s = engine.open_streamer(cfg.clone()).unwrap();
        // Every channel this streamer ever asked for: frames queued before an update may
        // still carry the old ones, never any other.
        let mut ever: HashSet<ChannelKey> = cfg.channels.iter().copied().collect();
        // Per (channel, writer thread): the last sequence number seen.
        let mut last: HashMap<(ChannelKey, usize), u32> = HashMap::new();
        let mut alive = true;
        for _ in 0..1 + rng.below(20) {
            if !alive {
                break;
            }
            if rng.chance(5) {
                let keys = pick(&mut rng);
                ever.extend(keys.iter().copied());
                s.update_channels(keys).unwrap();
            }
            match s.recv_timeout(Duration::from_millis(rng.below(3))) {
                Ok(Some(f)) => {
                    stats.frames += 1;
                    check_frame(&f, &layout, &ever, &mut last);
                }
                Ok(None) => {}
                Err(StreamError::Lagged { dropped }) => {
                    assert!(dropped > 0);
                    assert_eq!(cfg.lag_policy, LagPolicy::Notify);
                    stats.lagged += 1;
                }
                Err(StreamError::Disconnected { .. }) => {
                    assert_eq!(cfg.lag_policy, LagPolicy::Disconnect);
                    assert_eq!(s.try_recv(), Err(StreamError::Closed));
                    stats.disconnected += 1;
                    alive = false;
                }
                Err(StreamError::Closed) => panic!("closed while the engine is open and nobody closed it"),
            }
        }
        if rng.chance(2) {
            s.close();
        }
        drop(s);
    }
    stats
}

#[test]
fn writers_and_streamers_churn_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let mut batch = Vec::new();
    for i in 0..VIRTUALS {
        // Every churn thread writes every virtual channel: they are shared on purpose.
        batch.push(NewChannel::virtual_(format!("v{i}"), DataType::U32).with_concurrency(Concurrency::Shared));
    }
    for w in 0..WRITERS {
        batch.push(NewChannel::index(format!("w{w}_time")));
        batch.push(NewChannel::data(format!("w{w}_val"), DataType::U32, format!("w{w}_time")));
    }
    let chans = engine.create_channels(batch).unwrap();
    let layout = Layout {
        virtuals: chans[..VIRTUALS].iter().map(|c| c.key).collect(),
        stored: chans[VIRTUALS..].chunks(2).map(|p| (p[0].key, p[1].key)).collect(),
        control: engine.control_channel(),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for me in 0..WRITERS {
        let (engine, layout, stop, done, finished) = (engine.clone(), layout.clone(), stop.clone(), done_tx.clone(), finished.clone());
        writers.push(thread::spawn(move || {
            let r = writer_thread(engine, layout, me, stop);
            finished.fetch_add(1, Ordering::SeqCst);
            let _ = done.send(());
            r
        }));
    }
    let mut streamers = Vec::new();
    for me in 0..STREAMERS {
        let (engine, layout, stop, done, finished) = (engine.clone(), layout.clone(), stop.clone(), done_tx.clone(), finished.clone());
        streamers.push(thread::spawn(move || {
            let r = streamer_thread(engine, layout, me, stop);
            finished.fetch_add(1, Ordering::SeqCst);
            let _ = done.send(());
            r
        }));
    }
    let crowd = {
        let (engine, layout, stop) = (engine.clone(), layout.clone(), stop.clone());
        thread::spawn(move || crowd_thread(engine, layout, stop))
    };
    drop(done_tx);
    thread::sleep(RUN);
    stop.store(true, Ordering::SeqCst);

    // Watchdog: every thread reports (or dies, which closes its sender) before the deadline.
    let deadline = Instant::now() + WATCHDOG;
    for _ in 0..WRITERS + STREAMERS {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => {}
            // A thread panicked (its sender is gone): join below reports the panic.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{} of {} threads finished within {WATCHDOG:?}: stuck", finished.load(Ordering::SeqCst), WRITERS + STREAMERS)
            }
        }
    }
    let stored: Vec<Vec<i64>> = writers.into_iter().map(|h| h.join().expect("writer thread panicked")).collect();
    let stats: Vec<StreamStats> = streamers.into_iter().map(|h| h.join().expect("streamer thread panicked")).collect();
    let crowd = crowd.join().expect("crowd thread panicked");
    assert!(crowd.frames > 0, "the crowd received frames");
    eprintln!("crowd: frames {}, lag notices {}", crowd.frames, crowd.lagged);

    let m = engine.relay_metrics();
    assert_eq!(m.active_streamers, 0, "every streamer released its demand: {m:?}");
    assert!(engine.control_states(&[]).is_empty(), "every writer released control");
    let frames: u64 = stats.iter().map(|s| s.frames).sum();
    assert!(frames > 0 && m.published_frames > 0 && m.delivered_frames > 0, "something was streamed: {m:?}");
    eprintln!(
        "frames received {frames}, lag notices {}, disconnects {}, metrics {m:?}",
        stats.iter().map(|s| s.lagged).sum::<u64>(),
        stats.iter().map(|s| s.disconnected).sum::<u64>()
    );
    // A streamer closed before it read its notice is counted too.
    assert!(m.disconnected_streamers >= stats.iter().map(|s| s.disconnected).sum::<u64>());

    // Storage holds exactly what the persisting writers wrote, in order.
    for (me, want) in stored.iter().enumerate() {
        let (idx, _) = layout.stored[me];
        let got = read_ts(&engine, TimeRange::MAX, idx);
        assert_eq!(&got, want, "writer thread {me}'s stored timestamps");
    }

    // New streamers still work, and closing the engine ends them.
    let mut s = engine.open_streamer(StreamerConfig::new(layout.virtuals.clone())).unwrap();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![layout.virtuals[0]]).mode(WriterMode::Stream)).unwrap();
    w.write(&Frame::new().with(layout.virtuals[0], Series::from_vec(vec![encode(0, 1)]))).unwrap();
    assert!(s.recv_timeout(Duration::from_secs(10)).unwrap().is_some());
    w.close().unwrap();
    engine.close().unwrap();
    assert_eq!(s.recv_timeout(Duration::from_secs(10)), Err(StreamError::Closed));
}
