//! The live relay end to end: demand (only the channels asked for, exactly the frames
//! written), runtime channel updates, closing, zero-copy fan-out, lagging (notify and
//! disconnect, slow next to fast), rejected writes, tap before persistence, decimation,
//! throttling and the async receive.

use crate::common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{create_group, open, read_ts, ts_range};
use telemetron::Engine;
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::{WriterConfig, WriterMode};
use telemetron::relay::{LagPolicy, MirrorRoute, StreamError, Streamer, StreamerConfig};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

/// Generous bound for one receive; only reached if a frame never arrives (a failure).
const RECV: Duration = Duration::from_secs(10);

/// Receive one frame, failing the test on timeout or a stream error.
#[track_caller]
fn recv(s: &mut Streamer) -> Frame {
    match s.recv_timeout(RECV) {
        Ok(Some(f)) => f,
        Ok(None) => panic!("no frame within {RECV:?}"),
        Err(e) => panic!("stream error: {e}"),
    }
}

/// Assert nothing is queued for `s` right now.
#[track_caller]
fn assert_nothing(s: &mut Streamer) {
    match s.try_recv() {
        Ok(None) => {}
        other => panic!("expected nothing queued, got {other:?}"),
    }
}

/// Every `u32` sample of `key` in `f`, concatenated.
fn u32s(f: &Frame, key: ChannelKey) -> Vec<u32> {
    f.get(key).flat_map(|s| s.as_slice::<u32>().unwrap().to_vec()).collect()
}

fn virtual_u32(engine: &Engine, name: &str) -> ChannelKey {
    engine.create_channel(NewChannel::virtual_(name, DataType::U32)).unwrap().key
}

/// A stream-only writer on `keys`.
fn stream_writer(engine: &Engine, keys: Vec<ChannelKey>) -> telemetron::framer::Writer {
    engine.open_writer(WriterConfig::new(TimeStamp(0), keys).mode(WriterMode::Stream)).unwrap()
}

fn one(key: ChannelKey, v: u32) -> Frame {
    Frame::new().with(key, Series::from_vec(vec![v]))
}

#[test]
fn streamer_receives_exactly_its_channels_from_persist_and_stream_writers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "stand", &[DataType::F64, DataType::U32]);
    let (press, count) = (g.data[0].key, g.data[1].key);
    let cmd = virtual_u32(&engine, "cmd");
    let other = virtual_u32(&engine, "other");

    // Wants the F64 data channel and the virtual command, not the index, not `count`.
    let mut s = engine.open_streamer(StreamerConfig::new(vec![press, cmd])).unwrap();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(1_000), vec![press, count, cmd])).unwrap();
    let mut sent = Vec::new();
    for i in 0..5u32 {
        let ts = ts_range(1_000 + i64::from(i) * 100, 3, 10);
        let p = Series::from_vec(vec![f64::from(i), f64::from(i) + 0.5, f64::from(i) + 0.25]);
        let f = Frame::new()
            .with(g.idx(), Series::timestamps(ts))
            .with(press, p.clone())
            .with(count, Series::from_vec(vec![i, i, i]))
            .with(cmd, Series::from_vec(vec![100 + i]));
        w.write(&f).unwrap();
        sent.push(Frame::new().with(press, p).with(cmd, Series::from_vec(vec![100 + i])));
    }
    // A frame with only channels nobody in `s` wants is not delivered to `s` at all.
    w.write(
        &Frame::new()
            .with(g.idx(), Series::timestamps(vec![5_000]))
            .with(count, Series::from_vec(vec![9u32]))
            .with(press, Series::from_vec(vec![9.0f64])),
    )
    .unwrap();
    sent.push(Frame::new().with(press, Series::from_vec(vec![9.0f64])));
    w.close().unwrap();

    for want in &sent {
        let got = recv(&mut s);
        assert_eq!(&got, want, "streamed frame");
        assert!(!got.contains(g.idx()) && !got.contains(count), "only demanded channels: {:?}", got.keys());
    }
    assert_nothing(&mut s);

    // A stream-only writer: streamed, never stored.
    let mut sw = engine.open_writer(WriterConfig::new(TimeStamp(10_000), vec![press, cmd, other]).mode(WriterMode::Stream)).unwrap();
    sw.write(&Frame::new().with(g.idx(), Series::timestamps(vec![10_000])).with(press, Series::from_vec(vec![42.0f64]))).unwrap();
    sw.write(&Frame::new().with(other, Series::from_vec(vec![1u32]))).unwrap();
    sw.write(&one(cmd, 7)).unwrap();
    sw.close().unwrap();
    assert_eq!(recv(&mut s), Frame::new().with(press, Series::from_vec(vec![42.0f64])));
    assert_eq!(recv(&mut s), one(cmd, 7), "the frame with only `other` was not delivered");
    assert_nothing(&mut s);
    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()).len(), 16, "the stream-only write stored nothing");
}

#[test]
fn virtual_channels_stream_between_independent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let b = virtual_u32(&engine, "b");
    let mut sa = engine.open_streamer(StreamerConfig::new(vec![a])).unwrap();
    let mut sab = engine.open_streamer(StreamerConfig::new(vec![a, b])).unwrap();
    // A persist+stream writer of only virtual channels works like a stream-only one.
    let mut wa = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![a])).unwrap();
    let mut wb = stream_writer(&engine, vec![b]);
    for i in 0..20u32 {
        wa.write(&one(a, i)).unwrap();
        wb.write(&one(b, 1_000 + i)).unwrap();
    }
    let got_a: Vec<u32> = (0..20).flat_map(|_| u32s(&recv(&mut sa), a)).collect();
    assert_eq!(got_a, (0..20).collect::<Vec<_>>());
    assert_nothing(&mut sa);
    let mut ga = Vec::new();
    let mut gb = Vec::new();
    for _ in 0..40 {
        let f = recv(&mut sab);
        assert_eq!(f.len(), 1, "one writer's frame at a time");
        ga.extend(u32s(&f, a));
        gb.extend(u32s(&f, b));
    }
    assert_eq!(ga, (0..20).collect::<Vec<_>>());
    assert_eq!(gb, (1_000..1_020).collect::<Vec<_>>());
    assert_nothing(&mut sab);
    // A type mismatch on a virtual channel is rejected and not streamed.
    let err = wa.write(&Frame::new().with(a, Series::from_vec(vec![1.0f64]))).unwrap_err();
    assert_eq!(err.code(), "write.type_mismatch", "{err}");
    assert_nothing(&mut sa);
    assert_nothing(&mut sab);
}

#[test]
fn update_channels_adds_and_removes_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let b = virtual_u32(&engine, "b");
    let c = virtual_u32(&engine, "c");
    let mut w = stream_writer(&engine, vec![a, b, c]);
    let all = |v: u32| {
        Frame::new().with(a, Series::from_vec(vec![v])).with(b, Series::from_vec(vec![v + 100])).with(c, Series::from_vec(vec![v + 200]))
    };

    let mut s = engine.open_streamer(StreamerConfig::new(vec![a])).unwrap();
    w.write(&all(1)).unwrap();
    assert_eq!(recv(&mut s), one(a, 1));

    s.update_channels(vec![b, c]).unwrap();
    assert_eq!(s.channels(), &[b, c]);
    w.write(&all(2)).unwrap();
    assert_eq!(recv(&mut s), Frame::new().with(b, Series::from_vec(vec![102u32])).with(c, Series::from_vec(vec![202u32])));

    s.update_channels(vec![c]).unwrap();
    w.write(&all(3)).unwrap();
    assert_eq!(recv(&mut s), one(c, 203));

    // Nothing demanded: nothing delivered, nothing published.
    s.update_channels(vec![]).unwrap();
    let published = engine.relay_metrics().published_frames;
    w.write(&all(4)).unwrap();
    assert_nothing(&mut s);
    assert_eq!(engine.relay_metrics().published_frames, published, "no demand, no publish");

    s.update_channels(vec![a, b, c]).unwrap();
    w.write(&all(5)).unwrap();
    assert_eq!(recv(&mut s), all(5));
    assert_nothing(&mut s);
    // Unknown keys cannot be streamed.
    assert!(engine.open_streamer(StreamerConfig::new(vec![a, 999_999])).is_err());
}

#[test]
fn closing_a_streamer_releases_its_demand() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let mut w = stream_writer(&engine, vec![a]);
    assert_eq!(engine.relay_metrics().active_streamers, 0);
    let mut s1 = engine.open_streamer(StreamerConfig::new(vec![a])).unwrap();
    let s2 = engine.open_streamer(StreamerConfig::new(vec![a])).unwrap();
    assert_eq!(engine.relay_metrics().active_streamers, 2);

    w.write(&one(a, 1)).unwrap();
    let m = engine.relay_metrics();
    assert_eq!((m.published_frames, m.delivered_frames), (1, 2));

    s1.close();
    s1.close(); // idempotent
    assert_eq!(engine.relay_metrics().active_streamers, 1);
    assert_eq!(s1.try_recv(), Err(StreamError::Closed));
    assert_eq!(s1.update_channels(vec![a]), Err(StreamError::Closed));
    drop(s2); // dropping closes too
    assert_eq!(engine.relay_metrics().active_streamers, 0);

    w.write(&one(a, 2)).unwrap();
    let m = engine.relay_metrics();
    assert_eq!((m.published_frames, m.delivered_frames), (1, 2), "no demand left: nothing published or delivered");
}

#[test]
fn engine_close_ends_streamers_after_queued_frames() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let mut w = stream_writer(&engine, vec![a]);
    let mut queued = engine.open_streamer(StreamerConfig::new(vec![a])).unwrap();
    let mut waiting = engine.open_streamer(StreamerConfig::new(vec![])).unwrap();
    waiting.update_channels(vec![a]).unwrap();
    for i in 0..3 {
        w.write(&one(a, i)).unwrap();
    }
    // Drain `waiting`, then block it in another thread: the close must wake it.
    for i in 0..3 {
        assert_eq!(recv(&mut waiting), one(a, i));
    }
    let (tx, rx) = mpsc::channel();
    let blocked = thread::spawn(move || {
        let r = waiting.recv();
        tx.send(()).unwrap();
        r
    });
    thread::sleep(Duration::from_millis(50));
    drop(w);
    engine.close().unwrap();
    rx.recv_timeout(Duration::from_secs(20)).expect("a blocked recv must be woken by engine.close()");
    assert_eq!(blocked.join().unwrap(), Err(StreamError::Closed));

    for i in 0..3 {
        assert_eq!(recv(&mut queued), one(a, i), "frames queued before the close are still delivered");
    }
    assert_eq!(queued.try_recv(), Err(StreamError::Closed));
    assert_eq!(queued.recv_timeout(Duration::from_millis(10)), Err(StreamError::Closed));
    assert_eq!(engine.open_streamer(StreamerConfig::new(vec![a])).unwrap_err().code(), "engine.closed");
}

#[test]
fn fan_out_is_zero_copy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "zc", &[DataType::F64]);
    let v = engine.create_channel(NewChannel::virtual_("zc_v", DataType::I64)).unwrap().key;
    let data = g.data[0].key;
    let mut s1 = engine.open_streamer(StreamerConfig::new(vec![g.idx(), data, v])).unwrap();
    let mut s2 = engine.open_streamer(StreamerConfig::new(vec![data, v])).unwrap();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![data, v])).unwrap();
    let n = 10_000;
    let ts = Series::timestamps(ts_range(1, n, 1));
    let d = Series::from_vec((0..n).map(|i| i as f64).collect::<Vec<_>>());
    let vs = Series::from_vec((0..n as i64).collect::<Vec<_>>());
    w.write(&Frame::new().with(g.idx(), ts.clone()).with(data, d.clone()).with(v, vs.clone())).unwrap();
    w.close().unwrap();

    let f1 = recv(&mut s1);
    let f2 = recv(&mut s2);
    for (f, keys) in [(&f1, vec![g.idx(), data, v]), (&f2, vec![data, v])] {
        assert_eq!(f.keys(), keys.as_slice());
    }
    let ptr = |f: &Frame, k: ChannelKey| f.get(k).next().unwrap().data().as_ptr();
    assert_eq!(ptr(&f1, g.idx()), ts.data().as_ptr(), "index series shared");
    for k in [data, v] {
        let want = if k == data { d.data().as_ptr() } else { vs.data().as_ptr() };
        assert_eq!(ptr(&f1, k), want, "streamer 1 got the written buffer of {k}");
        assert_eq!(ptr(&f2, k), want, "streamer 2 got the written buffer of {k}");
    }
    assert_eq!(f2.get(data).next().unwrap(), &d);
}

#[test]
fn lagging_streamer_gets_a_notice_then_the_newest_frames() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let mut w = stream_writer(&engine, vec![a]);
    let mut cfg = StreamerConfig::new(vec![a]);
    cfg.capacity = 4;
    let mut s = engine.open_streamer(cfg).unwrap();
    let before = engine.relay_metrics().dropped_frames;
    for i in 0..10 {
        w.write(&one(a, i)).unwrap();
    }
    assert_eq!(s.recv_timeout(RECV), Err(StreamError::Lagged { dropped: 6 }));
    assert_eq!(StreamError::Lagged { dropped: 6 }.code(), "stream.lagged");
    for i in 6..10 {
        assert_eq!(recv(&mut s), one(a, i), "newest frames in order");
    }
    assert_nothing(&mut s);
    assert_eq!(engine.relay_metrics().dropped_frames - before, 6);

    // It recovers: later frames flow normally, and a second lag is reported again.
    w.write(&one(a, 10)).unwrap();
    assert_eq!(recv(&mut s), one(a, 10));
    for i in 11..17 {
        w.write(&one(a, i)).unwrap();
    }
    assert_eq!(s.try_recv(), Err(StreamError::Lagged { dropped: 2 }));
    for i in 13..17 {
        assert_eq!(recv(&mut s), one(a, i));
    }
    assert_eq!(engine.relay_metrics().dropped_frames - before, 8);
    assert_eq!(engine.relay_metrics().active_streamers, 1);
}

#[test]
fn lag_policy_disconnect_closes_the_streamer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let mut w = stream_writer(&engine, vec![a]);
    let mut cfg = StreamerConfig::new(vec![a]);
    cfg.capacity = 4;
    cfg.lag_policy = LagPolicy::Disconnect;
    let mut s = engine.open_streamer(cfg).unwrap();
    let mut ok = engine.open_streamer(StreamerConfig::new(vec![a])).unwrap();
    for i in 0..10 {
        w.write(&one(a, i)).unwrap();
    }
    match s.recv_timeout(RECV) {
        Err(StreamError::Disconnected { dropped }) => assert!((5..=10).contains(&dropped), "dropped {dropped}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(s.recv_timeout(RECV), Err(StreamError::Closed));
    assert_eq!(s.try_recv(), Err(StreamError::Closed));
    let m = engine.relay_metrics();
    assert_eq!(m.disconnected_streamers, 1);
    assert_eq!(m.active_streamers, 1, "the disconnected streamer released its demand");
    // The other streamer lost nothing.
    for i in 0..10 {
        assert_eq!(recv(&mut ok), one(a, i));
    }
}

#[test]
fn a_slow_streamer_never_costs_fast_ones_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    const N: u32 = 2_000;
    let mut slow_cfg = StreamerConfig::new(vec![a]);
    slow_cfg.capacity = 8;
    let mut slow = engine.open_streamer(slow_cfg).unwrap();
    let fast: Vec<_> = (0..3)
        .map(|_| {
            let mut cfg = StreamerConfig::new(vec![a]);
            cfg.capacity = N as usize + 16;
            let mut s = engine.open_streamer(cfg).unwrap();
            thread::spawn(move || {
                let mut got = Vec::with_capacity(N as usize);
                while got.len() < N as usize {
                    got.extend(u32s(&recv(&mut s), a));
                }
                got
            })
        })
        .collect();
    let mut w = stream_writer(&engine, vec![a]);
    for i in 0..N {
        w.write(&one(a, i)).unwrap();
    }
    for f in fast {
        assert_eq!(f.join().unwrap(), (0..N).collect::<Vec<_>>(), "a fast streamer received every frame, in order");
    }
    assert_eq!(slow.try_recv(), Err(StreamError::Lagged { dropped: u64::from(N) - 8 }));
    let rest: Vec<u32> = (0..8).flat_map(|_| u32s(&recv(&mut slow), a)).collect();
    assert_eq!(rest, (N - 8..N).collect::<Vec<_>>());
    assert_eq!(engine.relay_metrics().dropped_frames, u64::from(N) - 8, "only the slow streamer dropped");
}

#[test]
fn rejected_writes_are_not_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "rej", &[DataType::U32]);
    let d = g.data[0].key;
    let cmd = virtual_u32(&engine, "rej_cmd");
    let mut s = engine.open_streamer(StreamerConfig::new(vec![g.idx(), d, cmd])).unwrap();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(100), vec![d, cmd])).unwrap();
    let frame = |ts: Vec<i64>, v: Vec<u32>| {
        let n = v.len();
        Frame::new().with(g.idx(), Series::timestamps(ts)).with(d, Series::from_vec(v)).with(cmd, Series::from_vec(vec![7u32; n]))
    };
    let good = frame(vec![100, 110, 120], vec![1, 2, 3]);
    w.write(&good).unwrap();
    assert_eq!(recv(&mut s), good);

    // Non-monotonic against the last written timestamp.
    let e = w.write(&frame(vec![120, 130], vec![4, 5])).unwrap_err();
    assert_eq!(e.code(), "write.not_monotonic", "{e}");
    // Non-monotonic inside the frame.
    let e = w.write(&frame(vec![200, 150], vec![4, 5])).unwrap_err();
    assert_eq!(e.code(), "write.not_monotonic", "{e}");
    // Before the writer's start.
    assert!(w.write(&frame(vec![50], vec![4])).is_err());
    // Length mismatch between index and data.
    assert!(w.write(&Frame::new().with(g.idx(), Series::timestamps(vec![300, 310])).with(d, Series::from_vec(vec![1u32]))).is_err());
    // Data without index.
    assert!(w.write(&Frame::new().with(d, Series::from_vec(vec![1u32]))).is_err());
    // Wrong type on the stored channel.
    assert!(w.write(&Frame::new().with(g.idx(), Series::timestamps(vec![300])).with(d, Series::from_vec(vec![1.0f64]))).is_err());
    assert_nothing(&mut s);

    let good2 = frame(vec![130], vec![4]);
    w.write(&good2).unwrap();
    assert_eq!(recv(&mut s), good2, "the next valid frame flows");
    assert_nothing(&mut s);
    w.close().unwrap();
    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()), vec![100, 110, 120, 130]);
}

#[test]
fn the_tap_happens_before_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "tap", &[DataType::F64]);
    let d = g.data[0].key;
    let mut s = engine.open_streamer(StreamerConfig::new(vec![d])).unwrap();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(1), vec![d]).auto_commit(false)).unwrap();
    let vals = Series::from_vec(vec![1.5f64, 2.5]);
    w.write(&Frame::new().with(g.idx(), Series::timestamps(vec![1, 2])).with(d, vals.clone())).unwrap();
    let f = recv(&mut s);
    assert_eq!(f.get(d).next().unwrap(), &vals);
    assert!(w.has_uncommitted());
    assert!(read_ts(&engine, TimeRange::MAX, g.idx()).is_empty(), "nothing committed yet, yet the frame was streamed");
    assert!(engine.read(TimeRange::MAX, &[d]).unwrap().concat(d).unwrap().is_none_or(|s| s.is_empty()));
    // Aborting discards it from storage; the live frame was already delivered.
    w.abort();
    assert!(read_ts(&engine, TimeRange::MAX, g.idx()).is_empty());
    assert_nothing(&mut s);
}

#[test]
fn decimation_keeps_every_nth_sample_across_frames() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let b = virtual_u32(&engine, "b");
    let mut cfg = StreamerConfig::new(vec![a, b]);
    cfg.decimate = 3;
    let mut s = engine.open_streamer(cfg).unwrap();
    let mut full = engine.open_streamer(StreamerConfig::new(vec![a, b])).unwrap();
    let mut w = stream_writer(&engine, vec![a, b]);
    // Irregular frame sizes, different per channel, so counters must carry across frames.
    let sizes_a = [1usize, 2, 5, 4, 1, 1, 7, 3, 2, 6];
    let sizes_b = [3usize, 1, 1, 8, 2, 4, 1, 1, 5, 2];
    let (mut na, mut nb) = (0u32, 0u32);
    for (&la, &lb) in sizes_a.iter().zip(&sizes_b) {
        let va: Vec<u32> = (na..na + la as u32).collect();
        let vb: Vec<u32> = (nb..nb + lb as u32).map(|x| 10_000 + x).collect();
        na += la as u32;
        nb += lb as u32;
        w.write(&Frame::new().with(a, Series::from_vec(va)).with(b, Series::from_vec(vb))).unwrap();
    }
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    for _ in 0..sizes_a.len() {
        let f = recv(&mut full);
        ga.extend(u32s(&f, a));
        gb.extend(u32s(&f, b));
    }
    assert_eq!(ga, (0..na).collect::<Vec<_>>());
    assert_eq!(gb, (0..nb).map(|x| 10_000 + x).collect::<Vec<_>>());
    let (mut da, mut db) = (Vec::new(), Vec::new());
    // Frames that decimate to nothing for both channels are still delivered (possibly
    // empty), so read until all expected samples arrived.
    let want_a: Vec<u32> = (0..na).step_by(3).collect();
    let want_b: Vec<u32> = (0..nb).step_by(3).map(|x| 10_000 + x).collect();
    while da.len() < want_a.len() || db.len() < want_b.len() {
        let f = recv(&mut s);
        da.extend(u32s(&f, a));
        db.extend(u32s(&f, b));
    }
    assert_eq!(da, want_a, "samples 0, 3, 6, ... of a");
    assert_eq!(db, want_b, "samples 0, 3, 6, ... of b");
    while let Ok(Some(f)) = s.try_recv() {
        assert!(f.iter().all(|(_, s)| s.is_empty()), "nothing more: {f:?}");
    }
}

#[test]
fn throttling_merges_frames_and_loses_no_samples() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let mut cfg = StreamerConfig::new(vec![a]);
    cfg.throttle_hz = 10.0;
    let mut s = engine.open_streamer(cfg).unwrap();
    let mut w = stream_writer(&engine, vec![a]);
    const N: u32 = 60;

    // Everything queued before reading: the first frame goes out at once, the rest are
    // merged into the next throttled delivery.
    for i in 0..N {
        w.write(&one(a, i)).unwrap();
    }
    let mut got = Vec::new();
    let mut deliveries = 0;
    while got.len() < N as usize {
        got.extend(u32s(&recv(&mut s), a));
        deliveries += 1;
    }
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "merged frames keep every sample in order");
    assert!(deliveries <= 3, "{deliveries} deliveries for {N} queued frames: frames were merged");
    assert_nothing(&mut s);

    // A writer running while the streamer reads: still every sample, fewer deliveries.
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        let mut deliveries = 0;
        while got.len() < N as usize {
            let f = recv(&mut s);
            deliveries += 1;
            got.extend(u32s(&f, a));
        }
        tx.send(()).unwrap();
        (got, deliveries, s)
    });
    for i in N..2 * N {
        w.write(&one(a, i)).unwrap();
        if i % 20 == 19 {
            thread::sleep(Duration::from_millis(30));
        }
    }
    rx.recv_timeout(Duration::from_secs(30)).expect("throttled streamer delivered every sample");
    let (got, deliveries, mut s) = reader.join().unwrap();
    assert_eq!(got, (N..2 * N).collect::<Vec<_>>(), "merged frames keep every sample in order");
    assert!(deliveries < N as usize, "{deliveries} deliveries for {N} frames: frames were merged");
    assert_nothing(&mut s);

    // A held frame is flushed on close rather than lost.
    for i in 0..3 {
        w.write(&one(a, 1_000 + i)).unwrap();
    }
    drop(w);
    engine.close().unwrap();
    let mut tail = Vec::new();
    loop {
        match s.recv_timeout(RECV) {
            Ok(Some(f)) => tail.extend(u32s(&f, a)),
            Ok(None) => panic!("timed out"),
            Err(StreamError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(tail, vec![1_000, 1_001, 1_002]);
}

#[test]
fn async_next_receives_frames_in_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    let mut s = engine.open_streamer(StreamerConfig::new(vec![a])).unwrap();
    let mut ts_cfg = StreamerConfig::new(vec![a]);
    ts_cfg.throttle_hz = 20.0;
    let mut throttled = engine.open_streamer(ts_cfg).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    const N: u32 = 200;
    let eng = engine.clone();
    let writer = thread::spawn(move || {
        let mut w = stream_writer(&eng, vec![a]);
        for i in 0..N {
            w.write(&one(a, i)).unwrap();
            if i % 50 == 0 {
                thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let (got, tgot) = rt.block_on(async move {
        let plain = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < N as usize {
                got.extend(u32s(&s.next().await.unwrap(), a));
            }
            (got, s)
        });
        let thr = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < N as usize {
                got.extend(u32s(&throttled.next().await.unwrap(), a));
            }
            got
        });
        let both = async { (plain.await.unwrap(), thr.await.unwrap()) };
        tokio::time::timeout(Duration::from_secs(30), both).await.expect("async receive finished")
    });
    writer.join().unwrap();
    let (got, mut s) = got;
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    assert_eq!(tgot, (0..N).collect::<Vec<_>>());
    // Closing the engine ends a pending `next()` with Closed.
    let eng = engine.clone();
    let r = rt.block_on(async move {
        let pending = tokio::spawn(async move { s.next().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        eng.close().unwrap();
        tokio::time::timeout(Duration::from_secs(20), pending).await.expect("next() woken by close").unwrap()
    });
    assert_eq!(r, Err(StreamError::Closed));
}

#[test]
fn a_spinning_streamer_receives_every_frame_and_still_times_out_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "a");
    // Spins longer than the gaps between frames, so most receives never park.
    let too_long = StreamerConfig { spin_us: StreamerConfig::MAX_SPIN_US + 1, ..StreamerConfig::new(vec![a]) };
    let err = engine.open_streamer(too_long).unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    let cfg = StreamerConfig { spin_us: 5_000, ..StreamerConfig::new(vec![a]) };
    let mut s = engine.open_streamer(cfg).unwrap();
    const N: u32 = 300;
    let eng = engine.clone();
    let writer = thread::spawn(move || {
        let mut w = stream_writer(&eng, vec![a]);
        for i in 0..N {
            w.write(&one(a, i)).unwrap();
            // Gaps both shorter and longer than the spin, so both paths run.
            if i % 100 == 99 {
                thread::sleep(Duration::from_millis(20));
            } else if i % 10 == 0 {
                thread::sleep(Duration::from_micros(200));
            }
        }
    });
    let mut got = Vec::new();
    while got.len() < N as usize {
        got.extend(u32s(&recv(&mut s), a));
    }
    writer.join().unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    // A timeout shorter than the spin ends the wait at the timeout, with nothing.
    let t = std::time::Instant::now();
    assert_eq!(s.recv_timeout(Duration::from_millis(2)), Ok(None));
    assert!(t.elapsed() < Duration::from_secs(1), "a 2 ms timeout took {:?}", t.elapsed());
    // Closing the engine ends a receive that is spinning (or parked after its spin).
    let eng = engine.clone();
    let closer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(2));
        eng.close().unwrap();
    });
    assert_eq!(s.recv_timeout(RECV), Err(StreamError::Closed));
    closer.join().unwrap();
}

/// A frame for more streamers than a writer feeds itself goes through the relay's
/// dispatcher. Each streamer still receives every frame in publish order, including
/// frames of small fan-outs published meanwhile (they queue behind the crowd's). A state
/// pushed by `update_channels` arrives after them, and closing the engine delivers
/// everything published before it.
#[test]
fn a_crowd_of_streamers_is_fed_by_the_dispatcher_in_publish_order() {
    const CROWD: usize = 100;
    const FRAMES: u32 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = virtual_u32(&engine, "crowd");
    let b = virtual_u32(&engine, "side");
    let cfg = |keys: Vec<ChannelKey>| StreamerConfig { capacity: 4 * FRAMES as usize, ..StreamerConfig::new(keys) };
    let mut crowd: Vec<Streamer> = (0..CROWD).map(|_| engine.open_streamer(cfg(vec![a])).unwrap()).collect();
    // Alone on `b`, also on `a`: its `b` frames are a fan-out of one, which the writer would
    // queue itself if it did not wait behind the crowd's frames still in the dispatcher.
    let mut both = engine.open_streamer(cfg(vec![a, b])).unwrap();
    let mut wa = stream_writer(&engine, vec![a]);
    let mut wb = stream_writer(&engine, vec![b]);
    for i in 0..FRAMES {
        wa.write(&one(a, i)).unwrap();
        wb.write(&one(b, i)).unwrap();
    }
    for i in 0..FRAMES {
        assert_eq!(recv(&mut both), one(a, i), "frame {i} of the crowd's channel");
        assert_eq!(recv(&mut both), one(b, i), "frame {i} of the side channel, after the crowd's");
    }
    // A state pushed by update_channels queues behind frames still in flight.
    let ctl = engine.control_channel();
    wa.write(&one(a, FRAMES)).unwrap();
    both.update_channels(vec![a, b, ctl]).unwrap();
    wa.write(&one(a, FRAMES + 1)).unwrap();
    assert_eq!(recv(&mut both), one(a, FRAMES));
    let state = recv(&mut both);
    assert_eq!(state.unique_keys(), vec![ctl], "the control state, after the frame published before the update: {state:?}");
    assert_eq!(recv(&mut both), one(a, FRAMES + 1));

    // Closing the engine right after a burst: every crowd streamer gets the whole burst, in
    // order, then Closed.
    for i in FRAMES + 2..2 * FRAMES {
        wa.write(&one(a, i)).unwrap();
    }
    drop((wa, wb));
    engine.close().unwrap();
    for (n, s) in crowd.iter_mut().enumerate() {
        let mut got = Vec::with_capacity(2 * FRAMES as usize);
        loop {
            match s.try_recv() {
                Ok(Some(f)) => got.extend(u32s(&f, a)),
                Ok(None) => panic!("streamer {n}: nothing queued and not closed after {} frames", got.len()),
                Err(StreamError::Closed) => break,
                Err(e) => panic!("streamer {n}: {e}"),
            }
        }
        assert_eq!(got, (0..2 * FRAMES).collect::<Vec<u32>>(), "streamer {n}");
    }
    let m = engine.relay_metrics();
    assert_eq!(m.dropped_frames, 0, "{m:?}");
    assert!(m.delivered_frames >= CROWD as u64 * u64::from(2 * FRAMES), "{m:?}");
}

/// A channel mirrored from another node of a cluster (its key outside this engine's block),
/// as a cluster node's catalog holds it.
fn mirrored_u32(engine: &Engine, name: &str, key: ChannelKey) -> ChannelKey {
    let mut def = (*engine.channels().get(virtual_u32(engine, &format!("{name}-template"))).unwrap()).clone();
    def.key = key;
    def.name = name.to_string();
    assert!(engine.mirror_channels(vec![def]).is_empty(), "mirror refused");
    key
}

/// A peer tap's route keeps its plan across frames and follows the subscriptions: a
/// streamer opened after the plan was built receives the next frame, a channel new to the
/// route is routed, each streamer takes only its own series of a frame of several, one
/// that closes does not disturb the others, and a channel that is not a mirror is refused
/// with nothing delivered.
#[test]
fn a_mirror_route_follows_subscriptions_and_new_channels() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (m, n) = (mirrored_u32(&engine, "m", 9 << 24 | 1), mirrored_u32(&engine, "n", 9 << 24 | 2));
    let local = virtual_u32(&engine, "local");
    let mut route = MirrorRoute::default();
    let mut of_m = engine.open_streamer(StreamerConfig::new(vec![m])).unwrap();
    engine.relay_mirrored(&one(m, 1), &mut route).unwrap();
    assert_eq!(recv(&mut of_m), one(m, 1));
    // Opened after the route's plan was built.
    let mut of_n = engine.open_streamer(StreamerConfig::new(vec![n])).unwrap();
    let mut of_both = engine.open_streamer(StreamerConfig::new(vec![m, n])).unwrap();
    engine.relay_mirrored(&one(n, 2), &mut route).unwrap(); // n is new to the route
    assert_eq!(recv(&mut of_n), one(n, 2));
    assert_eq!(recv(&mut of_both), one(n, 2));
    assert_nothing(&mut of_m);
    let pair = one(m, 3).with(n, Series::from_vec(vec![30u32]));
    engine.relay_mirrored(&pair, &mut route).unwrap();
    assert_eq!(recv(&mut of_m), one(m, 3));
    assert_eq!(recv(&mut of_n), Frame::new().with(n, Series::from_vec(vec![30u32])));
    assert_eq!(recv(&mut of_both), pair);
    // One closes; the others go on.
    drop(of_n);
    engine.relay_mirrored(&one(n, 4), &mut route).unwrap();
    assert_eq!(recv(&mut of_both), one(n, 4));
    assert_nothing(&mut of_m);
    // Live data of this engine's own channels comes only from its writers.
    let err = engine.relay_mirrored(&one(m, 5).with(local, Series::from_vec(vec![5u32])), &mut route).unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    assert_nothing(&mut of_m);
    assert_nothing(&mut of_both);
}

#[test]
fn frames_lost_upstream_of_a_mirrored_channel_reach_its_streamers_as_lag() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (m, n) = (mirrored_u32(&engine, "m", 7 << 24 | 1), mirrored_u32(&engine, "n", 7 << 24 | 2));
    let local = virtual_u32(&engine, "local");
    let mut both = engine.open_streamer(StreamerConfig::new(vec![m, n])).unwrap();
    let mut only_n = engine.open_streamer(StreamerConfig::new(vec![n])).unwrap();
    let mut of_local = engine.open_streamer(StreamerConfig::new(vec![local])).unwrap();
    let mut cfg = StreamerConfig::new(vec![m]);
    cfg.lag_policy = LagPolicy::Disconnect;
    let mut strict = engine.open_streamer(cfg).unwrap();

    let mut route = MirrorRoute::default();
    engine.relay_mirrored(&one(m, 1), &mut route).unwrap();
    let before = engine.relay_metrics().dropped_frames;
    // A peer tap carrying m and the local key (which only its writers feed) lost 5 frames.
    engine.relay_mirrored_lost(&[m, local], 5);

    // A streamer of m hears of the loss once, then frames continue.
    assert_eq!(both.recv_timeout(RECV), Err(StreamError::Lagged { dropped: 5 }));
    assert_eq!(recv(&mut both), one(m, 1));
    engine.relay_mirrored(&one(m, 2), &mut route).unwrap();
    assert_eq!(recv(&mut both), one(m, 2));
    // Streamers of other channels are not told: their data was not lost.
    assert_nothing(&mut only_n);
    assert_nothing(&mut of_local);
    // Under the disconnect policy, a loss upstream disconnects as an overflow does,
    // counting the frames it had queued.
    assert_eq!(strict.recv_timeout(RECV), Err(StreamError::Disconnected { dropped: 6 }));
    let after = engine.relay_metrics();
    assert_eq!(after.dropped_frames - before, 5 + 6);
    assert_eq!(after.disconnected_streamers, 1);

    // A loss on n reaches both of its streamers, the one of m and n once.
    engine.relay_mirrored_lost(&[n, n, m], 3);
    assert_eq!(both.try_recv(), Err(StreamError::Lagged { dropped: 3 }));
    assert_eq!(only_n.try_recv(), Err(StreamError::Lagged { dropped: 3 }));
    assert_nothing(&mut both);
    assert_nothing(&mut only_n);
}
