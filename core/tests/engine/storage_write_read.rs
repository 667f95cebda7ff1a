//! Storage round trips: every data type, sub-ranges, commits, domains, alignment, time
//! ranges, reopen, iterators, large and many frames, many channels.

use crate::common;

use common::{assert_series_eq, create_group, gen_series, group_frame, open, read_one, read_ts, render, reopen, ts_range};
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::{IterSpan, IteratorConfig, WriterConfig, WriterMode};
use telemetron::telem::{Alignment, DataType, Frame, Series, TimeRange, TimeSpan, TimeStamp};
use telemetron::{Engine, Error};

/// Expected samples of `dt` for the ids whose timestamps fall in `range`.
fn expected(dt: DataType, ts: &[i64], ids: &[u64], range: TimeRange) -> Series {
    let sel: Vec<u64> = ts.iter().zip(ids).filter(|(t, _)| range.contains(TimeStamp(**t))).map(|(_, id)| *id).collect();
    gen_series(dt, &sel)
}

fn check_all(engine: &Engine, g: &common::Group, ts: &[i64], ids: &[u64], ranges: &[TimeRange]) {
    for &r in ranges {
        let idx = read_ts(engine, r, g.idx());
        let want_ts: Vec<i64> = ts.iter().copied().filter(|t| r.contains(TimeStamp(*t))).collect();
        assert_eq!(idx, want_ts, "index over {r:?}");
        for c in &g.data {
            let got = read_one(engine, r, c.key, c.data_type);
            assert_series_eq(&got, &expected(c.data_type, ts, ids, r));
        }
    }
}

#[test]
fn every_data_type_round_trips_with_sub_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "all", &DataType::ALL);
    assert_eq!(g.data.len(), 16);

    // Three commits of one writer, irregular timestamps.
    let mut ts = Vec::new();
    let mut ids = Vec::new();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(1_000), g.keys()).auto_commit(false)).unwrap();
    for (k, n) in [(0u64, 100usize), (1, 1), (2, 257)] {
        let base = ts.last().copied().unwrap_or(1_000 - 7) + 7;
        let t: Vec<i64> = (0..n as i64).map(|i| base + i * 10 + (i % 3)).collect();
        let id: Vec<u64> = (0..n as u64).map(|i| k * 1_000 + i).collect();
        w.write(&group_frame(&g, &t, &id)).unwrap();
        w.commit().unwrap();
        ts.extend(t);
        ids.extend(id);
    }
    let end = w.close().unwrap();
    assert_eq!(end, TimeStamp(*ts.last().unwrap() + 1));

    let first = ts[0];
    let last = *ts.last().unwrap();
    let ranges = [
        TimeRange::MAX,
        TimeRange::from_nanos(first, last + 1),
        TimeRange::from_nanos(first, last),         // excludes the last sample
        TimeRange::from_nanos(first + 1, last + 1), // excludes the first
        TimeRange::from_nanos(ts[50], ts[50] + 1),  // exactly one sample
        TimeRange::from_nanos(ts[50], ts[50]),      // empty
        TimeRange::from_nanos(ts[99], ts[102]),     // spans the three commits
        TimeRange::from_nanos(ts[10] + 1, ts[200] - 1),
        TimeRange::from_nanos(i64::MIN, first),    // before everything
        TimeRange::from_nanos(last + 1, i64::MAX), // after everything
    ];
    check_all(&engine, &g, &ts, &ids, &ranges);

    // Survives a clean close.
    let engine = reopen(engine);
    assert_eq!(engine.recovery_report().truncated_bytes, 0);
    assert!(engine.recovery_report().quarantined.is_empty());
    check_all(&engine, &g, &ts, &ids, &ranges);
}

#[test]
fn extreme_values_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let chans = engine
        .create_channels(vec![
            NewChannel::index("t"),
            NewChannel::data("u64", DataType::U64, "t"),
            NewChannel::data("i64", DataType::I64, "t"),
            NewChannel::data("f64", DataType::F64, "t"),
            NewChannel::data("f32", DataType::F32, "t"),
            NewChannel::data("i8", DataType::I8, "t"),
            NewChannel::data("str", DataType::String, "t"),
            NewChannel::data("bytes", DataType::Bytes, "t"),
        ])
        .unwrap();
    let k: Vec<ChannelKey> = chans.iter().map(|c| c.key).collect();
    let big = "z".repeat(100_000);
    let f = Frame::new()
        .with(k[0], Series::timestamps(vec![i64::MIN, -1, 0, i64::MAX - 1]))
        .with(k[1], Series::from_vec(vec![0u64, 1, u64::MAX - 1, u64::MAX]))
        .with(k[2], Series::from_vec(vec![i64::MIN, -1, 0, i64::MAX]))
        .with(k[3], Series::from_vec(vec![f64::MIN_POSITIVE, -0.0, f64::INFINITY, f64::MAX]))
        .with(k[4], Series::from_vec(vec![f32::NEG_INFINITY, 1e-45, -0.0, f32::MAX]))
        .with(k[5], Series::from_vec(vec![i8::MIN, -1, 0, i8::MAX]))
        .with(k[6], Series::strings(&["", big.as_str(), "\u{1F680}", "a\0b"]))
        .with(k[7], Series::byte_values(&[vec![], vec![0u8; 3], vec![255u8; 1], (0..=255u8).collect()]));
    engine.write(TimeStamp::MIN, f.clone()).unwrap();
    let back = engine.read(TimeRange::MAX, &k).unwrap();
    for &key in &k {
        assert_series_eq(&back.concat(key).unwrap().unwrap(), &f.concat(key).unwrap().unwrap());
    }
    let engine = reopen(engine);
    let back = engine.read(TimeRange::MAX, &k).unwrap();
    for &key in &k {
        assert_series_eq(&back.concat(key).unwrap().unwrap(), &f.concat(key).unwrap().unwrap());
    }
    // The sample at i64::MAX - 1 is addressable with an exclusive end of i64::MAX.
    assert_eq!(read_ts(&engine, TimeRange::from_nanos(i64::MAX - 1, i64::MAX), k[0]), vec![i64::MAX - 1]);
}

#[test]
fn data_channels_resolve_time_through_their_index() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::String]);
    let ts = vec![100, 250, 251, 900, 5_000];
    let ids = vec![0, 1, 2, 3, 4];
    common::write(&engine, 0, group_frame(&g, &ts, &ids));

    let r = TimeRange::from_nanos(200, 901);
    let f = engine.read(r, &[g.data[0].key, g.data[1].key]).unwrap();
    let s = f.concat(g.data[0].key).unwrap().unwrap();
    assert_series_eq(&s, &gen_series(DataType::F64, &[1, 2, 3]));
    let s = f.concat(g.data[1].key).unwrap().unwrap();
    assert_series_eq(&s, &gen_series(DataType::String, &[1, 2, 3]));
    // Every returned series knows its time range through the index.
    for (_, s) in f.iter() {
        assert_eq!(s.time_range(), TimeRange::from_nanos(250, 901), "{s:?}");
    }
    assert_eq!(engine.time_range(g.data[0].key).unwrap(), Some(TimeRange::from_nanos(100, 5_001)));
    assert_eq!(engine.time_range(g.idx()).unwrap(), Some(TimeRange::from_nanos(100, 5_001)));
    // Output order follows the request.
    let f = engine.read(TimeRange::MAX, &[g.data[1].key, g.idx(), g.data[0].key]).unwrap();
    assert_eq!(f.unique_keys(), vec![g.data[1].key, g.idx(), g.data[0].key]);
}

#[test]
fn alignment_and_time_range_of_returned_series() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::I32, DataType::Bytes]);

    // Writer 1: two commits (domain A); writer 2: one commit (domain B).
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).auto_commit(false)).unwrap();
    w.write(&group_frame(&g, &ts_range(0, 10, 10), &(0..10).collect::<Vec<_>>())).unwrap();
    w.commit().unwrap();
    w.write(&group_frame(&g, &ts_range(100, 5, 10), &(10..15).collect::<Vec<_>>())).unwrap();
    w.close().unwrap();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(1_000), g.keys()).auto_commit(false)).unwrap();
    w.write(&group_frame(&g, &ts_range(1_000, 4, 10), &(15..19).collect::<Vec<_>>())).unwrap();
    w.close().unwrap();

    let keys = g.all_keys();
    let f = engine.read(TimeRange::MAX, &keys).unwrap();
    let all_ts: Vec<i64> = ts_range(0, 10, 10).into_iter().chain(ts_range(100, 5, 10)).chain(ts_range(1_000, 4, 10)).collect();
    for &k in &keys {
        let parts: Vec<&Series> = f.get(k).collect();
        assert!(!parts.is_empty());
        assert_eq!(parts.iter().map(|s| s.len()).sum::<usize>(), 19);
        let mut seen = 0usize;
        let mut domains = Vec::new();
        for s in &parts {
            // The time range is [first timestamp, last timestamp + 1) of the samples held.
            let first = all_ts[seen];
            let last = all_ts[seen + s.len() - 1];
            assert_eq!(s.time_range(), TimeRange::from_nanos(first, last + 1), "key {k} part at {seen}");
            domains.push(s.alignment().domain());
            seen += s.len();
        }
        // Within a domain the alignment is contiguous; samples of writer 1 start at 0.
        assert_eq!(parts[0].alignment().sample(), 0);
        let mut next: Option<Alignment> = None;
        for s in &parts {
            if let Some(n) = next {
                if n.domain() == s.alignment().domain() {
                    assert_eq!(s.alignment(), n, "contiguous alignment");
                } else {
                    assert_eq!(s.alignment().sample(), 0, "a new domain starts at 0");
                }
            }
            next = Some(s.alignment().add_samples(s.len() as u32));
        }
        domains.dedup();
        assert_eq!(domains.len(), 2, "two writer sessions are two domains: {domains:?}");
    }
    // Data series line up with index series: same alignments, same time ranges.
    let idx_parts: Vec<(Alignment, TimeRange)> = f.get(g.idx()).map(|s| (s.alignment(), s.time_range())).collect();
    for c in &g.data {
        let parts: Vec<(Alignment, TimeRange)> = f.get(c.key).map(|s| (s.alignment(), s.time_range())).collect();
        assert_eq!(parts, idx_parts);
    }

    // A sub-range read starts mid-chunk: alignment advances with it.
    let f = engine.read(TimeRange::from_nanos(30, 121), &keys).unwrap();
    for &k in &keys {
        let parts: Vec<&Series> = f.get(k).collect();
        assert_eq!(parts[0].alignment().sample(), 3, "key {k}");
        assert_eq!(parts[0].time_range().start, TimeStamp(30));
        assert_eq!(parts.last().unwrap().time_range().end, TimeStamp(121));
        assert_eq!(parts.iter().map(|s| s.len()).sum::<usize>(), 7 + 3);
    }
}

#[test]
fn read_spans_many_domains_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::U16]);
    // Writers in reverse time order: each writes before the previous one's data.
    let mut all: Vec<(i64, u64)> = Vec::new();
    for k in (0..6i64).rev() {
        let ts = ts_range(k * 1_000, 20, 7);
        let ids: Vec<u64> = (0..20).map(|i| (k * 100 + i) as u64).collect();
        let end = common::write(&engine, k * 1_000, group_frame(&g, &ts, &ids));
        assert_eq!(end, TimeStamp(ts[19] + 1));
        all.extend(ts.into_iter().zip(ids));
    }
    all.sort();
    let (ts, ids): (Vec<i64>, Vec<u64>) = all.into_iter().unzip();
    check_all(&engine, &g, &ts, &ids, &[TimeRange::MAX, TimeRange::from_nanos(1_100, 4_050), TimeRange::from_nanos(999, 1_001)]);
    let engine = reopen(engine);
    check_all(&engine, &g, &ts, &ids, &[TimeRange::MAX, TimeRange::from_nanos(1_100, 4_050)]);
    // A new writer after reopen goes to a new domain and reads back in order too.
    common::write(&engine, 10_000, group_frame(&g, &[10_000], &[777]));
    let got = read_one(&engine, TimeRange::from_nanos(5_000, i64::MAX), g.data[0].key, DataType::U16);
    assert_series_eq(&got, &gen_series(DataType::U16, &ids[100..].iter().copied().chain([777]).collect::<Vec<_>>()));
}

#[test]
fn frames_may_split_a_channel_into_pieces_and_omit_data_channels() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F32, DataType::Json]);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.all_keys()).auto_commit(false)).unwrap();
    // The index in two pieces, data channels in different splits.
    let f = Frame::new()
        .with(g.idx(), Series::timestamps(vec![1, 2]))
        .with(g.data[0].key, gen_series(DataType::F32, &[1]))
        .with(g.idx(), Series::timestamps(vec![3]))
        .with(g.data[0].key, gen_series(DataType::F32, &[2, 3]))
        .with(g.data[1].key, gen_series(DataType::Json, &[1, 2, 3]));
    w.write(&f).unwrap();
    // Index-only frame: the data channels have no samples at those timestamps.
    w.write(&Frame::new().with(g.idx(), Series::timestamps(vec![4, 5]))).unwrap();
    w.write(&group_frame(&g, &[6], &[6])).unwrap();
    // i64 is accepted for the timestamp index.
    w.write(
        &Frame::new()
            .with(g.idx(), Series::from_vec(vec![7i64]))
            .with(g.data[0].key, gen_series(DataType::F32, &[7]))
            .with(g.data[1].key, gen_series(DataType::Json, &[7])),
    )
    .unwrap();
    w.close().unwrap();

    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_series_eq(&read_one(&engine, TimeRange::MAX, g.data[0].key, DataType::F32), &gen_series(DataType::F32, &[1, 2, 3, 6, 7]));
    assert_series_eq(&read_one(&engine, TimeRange::MAX, g.data[1].key, DataType::Json), &gen_series(DataType::Json, &[1, 2, 3, 6, 7]));
    // The data parts carry the timestamps of their own samples.
    let f = engine.read(TimeRange::MAX, &[g.data[0].key]).unwrap();
    let trs: Vec<TimeRange> = f.get(g.data[0].key).map(Series::time_range).collect();
    assert_eq!(trs.first().unwrap().start, TimeStamp(1));
    assert_eq!(trs.last().unwrap().end, TimeStamp(8));
    assert!(trs.iter().all(|r| !r.overlaps(&TimeRange::from_nanos(4, 6))), "no data series claims the index-only timestamps: {trs:?}");
    assert_series_eq(&read_one(&engine, TimeRange::from_nanos(4, 6), g.data[0].key, DataType::F32), &Series::empty_of(DataType::F32));
}

#[test]
fn stream_mode_and_virtual_channels_store_nothing_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let v = engine.create_channel(NewChannel::virtual_("v", DataType::F64)).unwrap();

    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).mode(WriterMode::Stream)).unwrap();
    w.write(&group_frame(&g, &[1, 2], &[1, 2])).unwrap();
    w.close().unwrap();
    assert_eq!(engine.read(TimeRange::MAX, &g.all_keys()).unwrap().len(), 0, "stream-only writers store nothing");

    // A persisting writer with a virtual channel stores the stored channels only.
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![g.data[0].key, v.key])).unwrap();
    w.write(&group_frame(&g, &[1, 2], &[1, 2]).with(v.key, Series::from_vec(vec![9.0f64, 9.5]))).unwrap();
    w.close().unwrap();
    assert_series_eq(&read_one(&engine, TimeRange::MAX, g.data[0].key, DataType::F64), &gen_series(DataType::F64, &[1, 2]));
    assert!(matches!(engine.read(TimeRange::MAX, &[v.key]), Err(Error::InvalidArgument { .. })));
}

#[test]
fn large_frames_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::U8, DataType::String]);
    const N: usize = 100_000;
    let ts = ts_range(1_000_000, N, 1_000);
    let ids: Vec<u64> = (0..N as u64).collect();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys())).unwrap();
    w.write(&group_frame(&g, &ts, &ids)).unwrap();
    let ts2 = ts_range(ts[N - 1] + 1_000, N, 1_000);
    let ids2: Vec<u64> = (N as u64..2 * N as u64).collect();
    w.write(&group_frame(&g, &ts2, &ids2)).unwrap();
    w.close().unwrap();
    let all_ts: Vec<i64> = ts.iter().chain(&ts2).copied().collect();
    let all_ids: Vec<u64> = ids.iter().chain(&ids2).copied().collect();
    let ranges =
        [TimeRange::MAX, TimeRange::from_nanos(all_ts[77_777], all_ts[123_456]), TimeRange::from_nanos(all_ts[N - 1], all_ts[N] + 1)];
    check_all(&engine, &g, &all_ts, &all_ids, &ranges);
    let engine = reopen(engine);
    check_all(&engine, &g, &all_ts, &all_ids, &ranges);
}

#[test]
fn many_small_frames_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::I64, DataType::Bool, DataType::Bytes]);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).auto_commit(false)).unwrap();
    let mut ts = Vec::new();
    let mut ids = Vec::new();
    for i in 0..3_000u64 {
        let t = (i * 3 + i % 2) as i64;
        w.write(&group_frame(&g, &[t], &[i])).unwrap();
        ts.push(t);
        ids.push(i);
        if i % 100 == 99 {
            w.commit().unwrap();
        }
    }
    w.close().unwrap();
    // Plus auto-committed one-sample frames.
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(100_000), g.keys())).unwrap();
    for i in 0..300u64 {
        let t = 100_000 + i as i64;
        w.write(&group_frame(&g, &[t], &[10_000 + i])).unwrap();
        ts.push(t);
        ids.push(10_000 + i);
    }
    assert!(!w.has_uncommitted(), "auto-commit commits every write");
    w.close().unwrap();
    let ranges = [TimeRange::MAX, TimeRange::from_nanos(1_500, 7_000), TimeRange::from_nanos(8_990, 100_150)];
    check_all(&engine, &g, &ts, &ids, &ranges);
    let engine = reopen(engine);
    check_all(&engine, &g, &ts, &ids, &ranges);
}

#[test]
fn two_hundred_channels_share_one_index() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let types: Vec<DataType> = (0..210).map(|i| DataType::ALL[i % DataType::ALL.len()]).collect();
    let g = create_group(&engine, "wide", &types);
    assert_eq!(g.data.len(), 210);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).auto_commit(false)).unwrap();
    let mut ts = Vec::new();
    let mut ids = Vec::new();
    for k in 0..5u64 {
        let t = ts_range(k as i64 * 1_000, 50, 20);
        let id: Vec<u64> = (0..50).map(|i| k * 50 + i).collect();
        w.write(&group_frame(&g, &t, &id)).unwrap();
        w.commit().unwrap();
        ts.extend(t);
        ids.extend(id);
    }
    w.close().unwrap();
    let r = TimeRange::from_nanos(500, 3_500);
    let f = engine.read(r, &g.all_keys()).unwrap();
    for c in &g.data {
        assert_series_eq(&f.concat(c.key).unwrap().unwrap(), &expected(c.data_type, &ts, &ids, r));
    }
    let engine = reopen(engine);
    let f = engine.read(TimeRange::MAX, &g.all_keys()).unwrap();
    for c in &g.data {
        assert_series_eq(&f.concat(c.key).unwrap().unwrap(), &gen_series(c.data_type, &ids));
    }
}

#[test]
fn concurrent_writers_on_disjoint_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let groups: Vec<common::Group> = (0..4).map(|i| create_group(&engine, &format!("g{i}"), &[DataType::F64, DataType::String])).collect();
    std::thread::scope(|s| {
        for g in &groups {
            let engine = engine.clone();
            s.spawn(move || {
                let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).auto_commit(false)).unwrap();
                for k in 0..50u64 {
                    let ts = ts_range(k as i64 * 100, 10, 10);
                    w.write(&group_frame(g, &ts, &(k * 10..k * 10 + 10).collect::<Vec<_>>())).unwrap();
                    if k % 7 == 0 {
                        w.commit().unwrap();
                    }
                }
                w.close().unwrap();
            });
        }
    });
    let engine = reopen(engine);
    let ids: Vec<u64> = (0..500).collect();
    for g in &groups {
        for c in &g.data {
            assert_series_eq(&read_one(&engine, TimeRange::MAX, c.key, c.data_type), &gen_series(c.data_type, &ids));
        }
    }
}

// ---------------------------------------------------------------- iterators

/// 3 domains of 400 samples, 10 ns apart, small gaps between domains.
fn iter_fixture(engine: &Engine) -> (common::Group, Vec<i64>, Vec<u64>) {
    let g = create_group(engine, "it", &[DataType::F64, DataType::String]);
    let mut ts = Vec::new();
    let mut ids = Vec::new();
    for d in 0..3i64 {
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(d * 4_010), g.keys()).auto_commit(false)).unwrap();
        for c in 0..4i64 {
            let t = ts_range(d * 4_010 + c * 1_000, 100, 10);
            let id: Vec<u64> = (0..100).map(|i| (d * 400 + c * 100 + i) as u64).collect();
            w.write(&group_frame(&g, &t, &id)).unwrap();
            w.commit().unwrap();
            ts.extend(t);
            ids.extend(id);
        }
        w.close().unwrap();
    }
    assert!(ts.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= 20));
    (g, ts, ids)
}

/// Walk forwards (or backwards) with `span`, returning the index timestamps per step and the
/// data ids read (in the walk order).
fn walk(engine: &Engine, g: &common::Group, bounds: TimeRange, chunk: u64, span: IterSpan, forward: bool) -> (Vec<Vec<i64>>, Vec<String>) {
    let cfg = IteratorConfig { chunk_size: chunk, ..IteratorConfig::new(bounds, g.all_keys()) };
    let mut it = engine.open_iterator(cfg).unwrap();
    let found = if forward { it.seek_first().unwrap() } else { it.seek_last().unwrap() };
    let mut steps = Vec::new();
    let mut data = Vec::new();
    if !found {
        return (steps, data);
    }
    loop {
        let more = if forward { it.next(span).unwrap() } else { it.prev(span).unwrap() };
        if !more {
            assert!(it.value().is_empty());
            break;
        }
        let v = it.value();
        let ts: Vec<i64> = v.concat(g.idx()).unwrap().map(|s| s.as_timestamps().unwrap().to_vec()).unwrap_or_default();
        assert!(ts.iter().all(|t| it.view().contains(TimeStamp(*t))), "samples lie in the view");
        let strings = v.concat(g.data[1].key).unwrap().map(|s| render(&s)).unwrap_or_default();
        assert_eq!(strings.len(), ts.len(), "data channels line up with the index");
        steps.push(ts);
        data.extend(strings);
        assert!(steps.len() < 10_000, "iterator does not terminate");
    }
    (steps, data)
}

#[test]
fn iterator_covers_every_sample_once_by_samples() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (g, ts, ids) = iter_fixture(&engine);
    let want_strings = render(&gen_series(DataType::String, &ids));
    for (span, chunk) in [
        (IterSpan::Auto, 64u64),
        (IterSpan::Auto, 100_000),
        (IterSpan::Samples(1), 5),
        (IterSpan::Samples(137), 5),
        (IterSpan::Samples(400), 5),
    ] {
        let per = match span {
            IterSpan::Samples(n) => n,
            _ => chunk,
        } as usize;
        let (steps, data) = walk(&engine, &g, TimeRange::MAX, chunk, span, true);
        let flat: Vec<i64> = steps.iter().flatten().copied().collect();
        assert_eq!(flat, ts, "forward {span:?} chunk {chunk}");
        assert_eq!(data, want_strings);
        for (i, s) in steps.iter().enumerate() {
            if i + 1 < steps.len() {
                assert_eq!(s.len(), per, "forward {span:?} step {i}");
            } else {
                assert!(!s.is_empty() && s.len() <= per);
            }
        }
        let (steps, data) = walk(&engine, &g, TimeRange::MAX, chunk, span, false);
        let flat: Vec<i64> = steps.iter().rev().flatten().copied().collect();
        assert_eq!(flat, ts, "backward {span:?} chunk {chunk}");
        let mut rev_want: Vec<Vec<String>> = Vec::new();
        let mut at = 0;
        for s in steps.iter() {
            rev_want.push(data[at..at + s.len()].to_vec());
            at += s.len();
        }
        assert_eq!(rev_want.into_iter().rev().flatten().collect::<Vec<_>>(), want_strings);
        for (i, s) in steps.iter().enumerate() {
            if i + 1 < steps.len() {
                assert_eq!(s.len(), per, "backward {span:?} step {i}");
            }
        }
    }
}

#[test]
fn iterator_covers_every_sample_once_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (g, ts, _) = iter_fixture(&engine);
    for span in [TimeSpan(25), TimeSpan(999), TimeSpan(4_000), TimeSpan::SECOND] {
        let (steps, _) = walk(&engine, &g, TimeRange::MAX, 10, IterSpan::Time(span), true);
        assert_eq!(steps.iter().flatten().copied().collect::<Vec<_>>(), ts, "forward {span:?}");
        let (steps, _) = walk(&engine, &g, TimeRange::MAX, 10, IterSpan::Time(span), false);
        assert_eq!(steps.iter().rev().flatten().copied().collect::<Vec<_>>(), ts, "backward {span:?}");
    }
}

#[test]
fn iterator_respects_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (g, ts, _) = iter_fixture(&engine);
    let bounds = TimeRange::from_nanos(ts[150] + 1, ts[1_000]);
    let want: Vec<i64> = ts.iter().copied().filter(|t| bounds.contains(TimeStamp(*t))).collect();
    for span in [IterSpan::Samples(33), IterSpan::Time(TimeSpan(170)), IterSpan::Auto] {
        let (steps, _) = walk(&engine, &g, bounds, 50, span, true);
        assert_eq!(steps.iter().flatten().copied().collect::<Vec<_>>(), want, "forward {span:?}");
        let (steps, _) = walk(&engine, &g, bounds, 50, span, false);
        assert_eq!(steps.iter().rev().flatten().copied().collect::<Vec<_>>(), want, "backward {span:?}");
    }
    // Bounds with no data.
    let empty = TimeRange::from_nanos(ts[399] + 1, ts[400]);
    let mut it = engine.open_iterator(IteratorConfig::new(empty, g.all_keys())).unwrap();
    assert!(!it.seek_first().unwrap());
    assert!(!it.next(IterSpan::Auto).unwrap());
    assert!(!it.seek_last().unwrap());
    assert!(!it.prev(IterSpan::Auto).unwrap());
}

#[test]
fn iterator_seeks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (g, ts, _) = iter_fixture(&engine);
    let mut it = engine.open_iterator(IteratorConfig::new(TimeRange::MAX, g.all_keys())).unwrap();

    let first_ge = |t: i64| ts.iter().copied().find(|&x| x >= t);
    let last_le = |t: i64| ts.iter().rev().copied().find(|&x| x <= t);
    let probes =
        [ts[0] - 5, ts[0], ts[0] + 1, ts[399], ts[399] + 1, ts[400] - 1, ts[777], ts[1_199], ts[1_199] + 1, i64::MIN, i64::MAX - 1];
    for &p in &probes {
        let found = it.seek_ge(TimeStamp(p)).unwrap();
        assert_eq!(found, first_ge(p).is_some(), "seek_ge({p})");
        assert!(it.view().is_empty(), "a seek leaves an empty view");
        assert!(it.value().is_empty());
        if let Some(want) = first_ge(p) {
            assert_eq!(it.view().start, TimeStamp(want));
            assert!(it.next(IterSpan::Samples(1)).unwrap());
            assert_eq!(it.value().concat(g.idx()).unwrap().unwrap().as_timestamps().unwrap(), &[want], "next after seek_ge({p})");
        } else {
            assert!(!it.next(IterSpan::Samples(1)).unwrap());
        }

        let found = it.seek_le(TimeStamp(p)).unwrap();
        assert_eq!(found, last_le(p).is_some(), "seek_le({p})");
        if let Some(want) = last_le(p) {
            assert_eq!(it.view().end, TimeStamp(want + 1));
            assert!(it.prev(IterSpan::Samples(1)).unwrap());
            assert_eq!(it.value().concat(g.idx()).unwrap().unwrap().as_timestamps().unwrap(), &[want], "prev after seek_le({p})");
        } else {
            assert!(!it.prev(IterSpan::Samples(1)).unwrap());
        }
    }

    assert!(it.seek_first().unwrap());
    assert_eq!(it.view(), TimeRange::new(TimeStamp(ts[0]), TimeStamp(ts[0])));
    assert!(!it.prev(IterSpan::Auto).unwrap(), "nothing before the first sample");
    assert!(it.seek_last().unwrap());
    assert_eq!(it.view().start, TimeStamp(ts[1_199] + 1));
    assert!(!it.next(IterSpan::Auto).unwrap(), "nothing after the last sample");

    // Forward then backward from the middle.
    assert!(it.seek_ge(TimeStamp(ts[500])).unwrap());
    assert!(it.next(IterSpan::Samples(10)).unwrap());
    assert_eq!(it.value().concat(g.idx()).unwrap().unwrap().as_timestamps().unwrap(), &ts[500..510]);
    assert!(it.seek_le(TimeStamp(ts[499])).unwrap());
    assert!(it.prev(IterSpan::Samples(10)).unwrap());
    assert_eq!(it.value().concat(g.idx()).unwrap().unwrap().as_timestamps().unwrap(), &ts[490..500]);
    let v = it.take_value();
    assert_eq!(v.samples(g.data[0].key), 10);
    assert!(it.value().is_empty());
}

#[test]
fn iterator_on_virtual_or_unknown_channel_fails() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = engine.create_channel(NewChannel::virtual_("v", DataType::F64)).unwrap();
    assert!(matches!(engine.open_iterator(IteratorConfig::new(TimeRange::MAX, vec![v.key])), Err(Error::InvalidArgument { .. })));
    assert_eq!(engine.open_iterator(IteratorConfig::new(TimeRange::MAX, vec![999])).unwrap_err().code(), "channel.not_found");
}

#[test]
fn empty_series_views_are_empty_slices() {
    // Regression: `Series::empty_of` holds `Bytes::new()`, whose dangling pointer is not
    // aligned for wider types; viewing it must not build a misaligned slice (UB).
    for dt in [DataType::F64, DataType::I64, DataType::Timestamp, DataType::U32, DataType::I16] {
        let s = Series::empty_of(dt);
        assert_eq!(s.len(), 0);
        match dt {
            DataType::F64 => assert!(s.as_slice::<f64>().unwrap().is_empty()),
            DataType::I64 | DataType::Timestamp => assert!(s.as_timestamps().unwrap().is_empty()),
            DataType::U32 => assert!(s.as_slice::<u32>().unwrap().is_empty()),
            _ => assert!(s.as_slice::<i16>().unwrap().is_empty()),
        }
    }
    assert!(Series::concat(&[]).unwrap().as_slice::<f64>().unwrap().is_empty());
    // An empty read through the engine.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    common::write(&engine, 0, group_frame(&g, &[10], &[1]));
    assert!(read_ts(&engine, TimeRange::from_nanos(11, 20), g.idx()).is_empty());
    assert_eq!(engine.read(TimeRange::from_nanos(11, 20), &g.all_keys()).unwrap().len(), 0);
    assert!(engine.read(TimeRange::from_nanos(20, 11), &g.all_keys()).is_err(), "a backwards range is invalid");
}
