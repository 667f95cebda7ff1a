//! Live frames carry the alignment and time range their series get in storage (issue 12,
//! item 5), on both backends: a streamer opened part-way through a run is stitched onto a
//! read of the same range by alignment, with no gap and no duplicate, across frames that
//! split a channel into several series and across two writers (two domains).

use crate::backends;

use std::collections::BTreeMap;

use backends::{Backend, SECOND};
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::WriterConfig;
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

/// One sample as the stitching sees it: its alignment, and its value (as f64).
type Sample = (u64, f64);

/// Every sample of `key` in `f`: its alignment and value, with the series it came from.
fn samples(f: &Frame, key: ChannelKey) -> Vec<(Sample, Series)> {
    let mut out = Vec::new();
    for s in f.get(key) {
        for i in 0..s.len() {
            out.push(((s.alignment().0 + i as u64, s.value_f64(i).unwrap()), s.clone()));
        }
    }
    out
}

/// `n` samples at 1 µs spacing from `at`, with the index split in two series and `w` split
/// differently, so positions must advance per series within a frame.
fn frame(t: ChannelKey, v: ChannelKey, w: ChannelKey, at: i64, n: usize) -> Frame {
    let ts: Vec<i64> = (0..n as i64).map(|i| at + i * 1_000).collect();
    let half = n / 2;
    let wv: Vec<i32> = (0..n as i32).map(|i| (at / 1_000) as i32 + i).collect();
    Frame::new()
        .with(t, Series::timestamps(ts[..half].to_vec()))
        .with(v, Series::from_vec(ts.iter().map(|&x| x as f64 / 1e3).collect::<Vec<f64>>()))
        .with(w, Series::from_vec(wv[..1].to_vec()))
        .with(t, Series::timestamps(ts[half..].to_vec()))
        .with(w, Series::from_vec(wv[1..].to_vec()))
}

async fn live_series_stitch_onto_a_read(b: &Backend) {
    let c = &b.client;
    let ch = c
        .create_channels(
            vec![
                NewChannel::index("al_t"),
                NewChannel::data("al_v", DataType::F64, "al_t"),
                NewChannel::data("al_w", DataType::I32, "al_t"),
            ],
            false,
        )
        .await
        .unwrap();
    let (t, v, w) = (ch[0].key, ch[1].key, ch[2].key);
    let keys = vec![t, v, w];
    let sizes = [5usize, 3, 8, 2, 13];
    let at = std::cell::Cell::new(1_000_000i64);
    let next = |n: usize| {
        let f = frame(t, v, w, at.get(), n);
        at.set(at.get() + n as i64 * 1_000 + 7_000);
        f
    };

    // History before anyone watches.
    let mut w1 = c.open_writer(WriterConfig::new(TimeStamp(0), keys.clone())).await.unwrap();
    for &n in &sizes {
        w1.write(&next(n)).await.unwrap();
    }
    w1.commit().await.unwrap();

    // Live: the rest of the first writer, then a second writer (a new domain).
    let mut s = c.open_streamer(StreamerConfig::new(keys.clone())).await.unwrap();
    let mut live_samples = 0;
    for &n in &sizes {
        w1.write(&next(n)).await.unwrap();
        live_samples += n;
    }
    w1.close().await.unwrap();
    let mut w2 = c.open_writer(WriterConfig::new(TimeStamp(at.get()), keys.clone())).await.unwrap();
    for &n in sizes.iter().rev() {
        w2.write(&next(n)).await.unwrap();
        live_samples += n;
    }
    w2.close().await.unwrap();

    let mut live = Frame::new();
    while live.get(t).map(Series::len).sum::<usize>() < live_samples {
        let f = s.next_timeout(SECOND).await.unwrap().expect("the live frames arrive");
        live.extend(f);
    }
    let stored = c.read(TimeRange::MAX, &keys).await.unwrap();

    // The index's timestamps by alignment, from the read.
    let ts_at: BTreeMap<u64, i64> = samples(&stored, t).into_iter().map(|((a, x), _)| (a, x as i64)).collect();
    assert_eq!(ts_at.len(), 2 * sizes.iter().sum::<usize>() + sizes.iter().sum::<usize>());
    let domains: std::collections::BTreeSet<u64> = ts_at.keys().map(|a| a >> 32).collect();
    assert_eq!(domains.len(), 2, "two writers, two domains: {domains:?}");

    for key in [t, v, w] {
        let read = samples(&stored, key);
        let got = samples(&live, key);
        assert!(!got.is_empty());
        // Each live series' time range is what storage gives it: [first ts, last ts + 1).
        for s in live.get(key) {
            let first = ts_at[&s.alignment().0];
            let last = ts_at[&(s.alignment().0 + s.len() as u64 - 1)];
            assert_eq!(s.time_range(), TimeRange::new(TimeStamp(first), TimeStamp(last + 1)), "channel {key}");
        }
        // Stitch: the read's samples the stream did not deliver (by alignment), then the
        // live ones.
        let streamed: std::collections::HashSet<u64> = got.iter().map(|((a, _), _)| *a).collect();
        assert_eq!(streamed.len(), got.len(), "channel {key}: no sample streamed twice");
        let mut stitched: Vec<Sample> = read.iter().map(|(x, _)| *x).filter(|(a, _)| !streamed.contains(a)).collect();
        stitched.extend(got.iter().map(|(x, _)| *x));
        let whole: Vec<Sample> = read.iter().map(|(x, _)| *x).collect();
        assert_eq!(stitched, whole, "channel {key}: no gap, no duplicate, same values at the same alignments");
    }
    s.close().await;
}

on_both!(live_series_stitch_onto_a_read);
