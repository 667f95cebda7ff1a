//! Compaction (storage/compact.rs): small records merged into large ones, compressed or
//! not; reads exact before and after, across reopen and after deletes; replaced segments
//! deleted; a reopen that finds replaced records beside their compacted record serves each
//! sample once; a format-1 directory is converted at open.

use crate::common;

use std::path::Path;

use common::{
    Group, KIND_CHUNK, all_records, assert_series_eq, create_group, drop_checkpoint, gen_series, group_frame, read_one, read_ts,
    segment_files, test_options, ts_range,
};
use telemetron::framer::WriterConfig;
use telemetron::storage::StorageOptions;
use telemetron::telem::{DataType, Series, TimeRange, TimeStamp};
use telemetron::{Engine, Options};

const T0: i64 = 1_000_000;
const TYPES: &[DataType] = &[DataType::F64, DataType::I32, DataType::U8, DataType::String, DataType::Bytes, DataType::Timestamp];

fn options(compress: bool, record_bytes: u64) -> Options {
    let mut o = test_options();
    o.storage = StorageOptions { compress, compacted_record_bytes: record_bytes, ..o.storage };
    o
}

/// Write `commits` commits of 1..=3 samples each in one writer session from `start`;
/// returns the timestamps and sample ids written.
fn small_commits(engine: &Engine, g: &Group, start: i64, commits: usize) -> (Vec<i64>, Vec<u64>) {
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(start), g.keys())).expect("open writer");
    let (mut ts, mut ids) = (Vec::new(), Vec::new());
    for i in 0..commits {
        let n = 1 + i % 3;
        let t = ts_range(start + ts.len() as i64 * 10, n, 10);
        let id: Vec<u64> = (ids.len() as u64..ids.len() as u64 + n as u64).collect();
        w.write(&group_frame(g, &t, &id)).expect("write");
        ts.extend(t);
        ids.extend(id);
    }
    w.close().expect("close");
    (ts, ids)
}

/// Every channel of `g` over `r` holds exactly the samples of `(ts, ids)` inside `r`.
#[track_caller]
fn check(engine: &Engine, g: &Group, ts: &[i64], ids: &[u64], r: TimeRange) {
    let (want_ts, want_ids): (Vec<i64>, Vec<u64>) =
        ts.iter().zip(ids).filter(|(t, _)| r.contains(TimeStamp(**t))).map(|(t, i)| (*t, *i)).unzip();
    same(&read_ts(engine, r, g.idx()), &want_ts, &format!("index over {r:?}"));
    for c in &g.data {
        assert_series_eq(&read_one(engine, r, c.key, c.data_type), &gen_series(c.data_type, &want_ids));
    }
}

/// `got == want`, reported by lengths and the first difference (not by dumping both).
#[track_caller]
fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    if got != want {
        let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{what}: {} read, {} expected; first difference at {i}: {:?} vs {:?}", got.len(), want.len(), got.get(i), want.get(i));
    }
}

#[track_caller]
fn check_ranges(engine: &Engine, g: &Group, ts: &[i64], ids: &[u64]) {
    let (a, b) = (ts[0], ts[ts.len() - 1]);
    for r in [
        TimeRange::MAX,
        TimeRange::from_nanos(a + 35, b - 1_000),
        TimeRange::from_nanos(a - 5, a + 25),
        TimeRange::from_nanos(b - 7, b + 1),
        TimeRange::from_nanos((a + b) / 2, (a + b) / 2 + 1),
    ] {
        check(engine, g, ts, ids, r);
    }
}

fn chunk_records(dir: &Path) -> usize {
    all_records(dir).iter().filter(|(_, r)| r.kind == KIND_CHUNK).count()
}

fn disk_bytes(dir: &Path) -> u64 {
    segment_files(dir).iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
}

#[test]
fn compaction_merges_small_records_and_reads_stay_exact_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(false, 64 << 10)).unwrap();
    let g = create_group(&engine, "c", TYPES);
    let (mut ts, mut ids) = small_commits(&engine, &g, T0, 600);
    // A second session: a second domain.
    let (ts2, ids2) = small_commits(&engine, &g, ts[ts.len() - 1] + 1_000, 300);
    ts.extend(ts2);
    ids.extend(ids2);
    check_ranges(&engine, &g, &ts, &ids);
    let before_records = chunk_records(dir.path());
    let before_bytes = disk_bytes(dir.path());
    assert_eq!(before_records, 900 * (1 + TYPES.len()), "one record per channel per commit");

    let report = engine.compact().unwrap();
    assert_eq!(report.records_in as usize, before_records, "{report:?}");
    assert_eq!(report.channels, 1 + TYPES.len());
    // Two domains per channel; each fits in one record of at most 64 KiB.
    assert_eq!(report.records_out as usize, 2 * (1 + TYPES.len()), "{report:?}");
    assert_eq!(report.samples as usize, ts.len() * (1 + TYPES.len()));
    check_ranges(&engine, &g, &ts, &ids);
    // Nothing is left to merge.
    assert_eq!(engine.compact().unwrap().records_in, 0);

    // The writer's segment holds only replaced records now: reclaim deletes it.
    let (_, deleted) = engine.reclaim();
    assert!(deleted >= 1, "the replaced records' segment is deleted");
    let after_bytes = disk_bytes(dir.path());
    assert!(after_bytes * 3 < before_bytes, "{before_bytes} B before, {after_bytes} B after");
    assert_eq!(chunk_records(dir.path()), 2 * (1 + TYPES.len()));

    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open_with(dir.path(), options(false, 64 << 10)).unwrap();
    let rep = engine.recovery_report();
    assert_eq!((rep.chunks, rep.compacted_chunks, rep.superseded_chunks), (14, 14, 0), "{rep:?}");
    check_ranges(&engine, &g, &ts, &ids);
    // Writing on after compaction: new small records, merged by the next pass.
    let start = ts[ts.len() - 1] + 1_000;
    let (ts3, ids3) = small_commits(&engine, &g, start, 50);
    let r = engine.compact().unwrap();
    assert_eq!(r.records_in as usize, 50 * (1 + TYPES.len()), "{r:?}");
    check(&engine, &g, &ts3, &ids3, TimeRange::from_nanos(start, i64::MAX));
    ts.extend(ts3);
    ids.extend(ids3);
    check_ranges(&engine, &g, &ts, &ids);
}

/// Compacted records of numeric data channels are compressed (Pcodec); reads give the same
/// bits back; index channels stay raw.
#[test]
fn compaction_compresses_numeric_channels_and_reads_them_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(true, 1 << 20)).unwrap();
    let g = create_group(&engine, "z", &[DataType::F64, DataType::I64, DataType::String]);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(T0), g.keys())).unwrap();
    let n = 20_000usize;
    let ts = ts_range(T0, n, 1_000);
    // A pressure through a 16-bit ADC (a sine plus a few counts of noise, counts times a
    // constant) and a counter, 100 samples per commit.
    let sine: Vec<f64> =
        (0..n).map(|i| ((i as f64 * 0.01).sin() * 20_000.0 + 32_768.0 + ((i * 7919) % 7) as f64).round() * (100.0 / 65_535.0)).collect();
    let counter: Vec<i64> = (0..n as i64).map(|i| i * 3 + 1_000_000).collect();
    let text: Vec<String> = (0..n).map(|i| format!("state {}", i / 500)).collect();
    for k in (0..n).step_by(100) {
        let f = telemetron::telem::Frame::new()
            .with(g.idx(), Series::timestamps(ts[k..k + 100].to_vec()))
            .with(g.data[0].key, Series::from_vec(sine[k..k + 100].to_vec()))
            .with(g.data[1].key, Series::from_vec(counter[k..k + 100].to_vec()))
            .with(g.data[2].key, Series::strings(&text[k..k + 100]));
        w.write(&f).unwrap();
    }
    w.close().unwrap();
    let report = engine.compact().unwrap();
    assert_eq!(report.records_in, 4 * 200);
    let recs = all_records(dir.path());
    let compacted: Vec<_> = recs.iter().filter(|(_, r)| r.kind == KIND_CHUNK && r.flags & 1 == 1).map(|(_, r)| *r).collect();
    assert_eq!(compacted.len(), 4, "{compacted:?}");
    for r in &compacted {
        let raw = if r.channel == g.data[2].key { None } else { Some(r.samples as u64 * 8) };
        match (r.channel, raw) {
            (c, Some(raw)) if c != g.idx() => {
                assert_eq!(r.codec, 6, "numeric data channels use Pcodec");
                assert!(r.len * 2 < raw, "channel {c}: {} B compressed from {raw} B", r.len);
            }
            _ => assert_eq!(r.codec, 0, "index and string channels stay raw"),
        }
    }
    let all = TimeRange::MAX;
    assert_eq!(read_one(&engine, all, g.data[0].key, DataType::F64).as_slice::<f64>().unwrap(), &sine[..]);
    assert_eq!(read_one(&engine, all, g.data[1].key, DataType::I64).as_slice::<i64>().unwrap(), &counter[..]);
    assert_eq!(read_ts(&engine, all, g.idx()), ts);
    // A sub-range cuts inside a compressed record.
    let sub = TimeRange::from_nanos(ts[1234], ts[5678]);
    assert_eq!(read_one(&engine, sub, g.data[0].key, DataType::F64).as_slice::<f64>().unwrap(), &sine[1234..5678]);
    let s = read_one(&engine, sub, g.data[2].key, DataType::String);
    assert_eq!((0..s.len()).map(|i| s.value_str(i).unwrap().to_string()).collect::<Vec<_>>(), text[1234..5678].to_vec());
    // And after a reopen.
    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open_with(dir.path(), options(true, 1 << 20)).unwrap();
    assert_eq!(read_one(&engine, sub, g.data[1].key, DataType::I64).as_slice::<i64>().unwrap(), &counter[1234..5678]);
}

/// Each channel's `compression` picks its codec whatever the engine's switch (`default`
/// follows the switch), the choice survives a reopen, and a choice that does not fit the
/// channel is refused at creation with nothing created.
#[test]
fn each_channel_takes_the_codec_its_definition_chose() {
    use telemetron::channel::{ChannelError, Compression, NewChannel};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(false, 1 << 20)).unwrap();
    let choices = [
        ("c_default", DataType::F64, Compression::Default),
        ("c_pcodec", DataType::F64, Compression::Pcodec),
        ("c_zstd", DataType::U8, Compression::Zstd),
        ("c_lz4", DataType::Bool, Compression::Lz4),
        ("c_off", DataType::F64, Compression::Off),
    ];
    let mut batch = vec![NewChannel::index("c_time")];
    batch.extend(choices.iter().map(|(n, dt, c)| NewChannel::data(*n, *dt, "c_time").with_compression(*c)));
    let chans = engine.create_channels(batch).unwrap();
    let keys: Vec<_> = chans.iter().map(|c| c.key).collect();
    let (idx, data) = (keys[0], &keys[1..]);
    // A 16-bit ADC pressure, valve steps and a switch: signals every codec shrinks.
    let adc = |i: usize| ((i as f64 * 0.01).sin() * 20_000.0 + 32_768.0).round() * (100.0 / 65_535.0);
    let write = |engine: &Engine, from: usize, n: usize| {
        let mut w = engine.open_writer(WriterConfig::new(TimeStamp(T0 + from as i64 * 1_000), keys.clone())).unwrap();
        for k in (from..from + n).step_by(100) {
            let f = telemetron::telem::Frame::new()
                .with(idx, Series::timestamps(ts_range(T0 + k as i64 * 1_000, 100, 1_000)))
                .with(data[0], Series::from_vec((k..k + 100).map(adc).collect::<Vec<f64>>()))
                .with(data[1], Series::from_vec((k..k + 100).map(adc).collect::<Vec<f64>>()))
                .with(data[2], Series::from_vec((k..k + 100).map(|i| (i / 250 % 4) as u8 * 60).collect::<Vec<u8>>()))
                .with(data[3], Series::bools(&(k..k + 100).map(|i| i / 300 % 2 == 0).collect::<Vec<bool>>()))
                .with(data[4], Series::from_vec((k..k + 100).map(adc).collect::<Vec<f64>>()));
            w.write(&f).unwrap();
        }
        w.close().unwrap();
    };
    // The codec of each data channel's compacted record in its newest domain (each writer
    // session below starts a domain; compaction merges within a domain).
    let codecs = || -> Vec<u8> {
        let recs = all_records(dir.path());
        data.iter()
            .map(|&c| {
                let r =
                    recs.iter().filter(|(_, r)| r.kind == KIND_CHUNK && r.flags & 1 == 1 && r.channel == c).max_by_key(|(_, r)| r.domain);
                let r = r.unwrap_or_else(|| panic!("no compacted record for channel {c}")).1;
                assert_eq!(r.samples, 10_000, "channel {c}: one record per writer session");
                r.codec
            })
            .collect()
    };
    let check_reads = |engine: &Engine, n: usize| {
        let want: Vec<f64> = (0..n).map(adc).collect();
        for &c in [data[0], data[1], data[4]].iter() {
            assert_eq!(read_one(engine, TimeRange::MAX, c, DataType::F64).as_slice::<f64>().unwrap(), &want[..], "channel {c}");
        }
        let valves: Vec<u8> = (0..n).map(|i| (i / 250 % 4) as u8 * 60).collect();
        assert_eq!(read_one(engine, TimeRange::MAX, data[2], DataType::U8).as_slice::<u8>().unwrap(), &valves[..]);
        let switch = Series::bools(&(0..n).map(|i| i / 300 % 2 == 0).collect::<Vec<bool>>());
        assert_series_eq(&read_one(engine, TimeRange::MAX, data[3], DataType::Bool), &switch);
    };
    write(&engine, 0, 10_000);
    engine.compact().unwrap();
    // Tags: 0 raw, 2 shuffle+LZ4, 4 shuffle+Zstandard, 6 Pcodec (docs/architecture.md).
    assert_eq!(codecs(), vec![0, 6, 4, 2, 0], "engine switch off: only the channels that chose a codec take one");
    check_reads(&engine, 10_000);

    // The choice is part of the definition: it survives a reopen, now with the switch on.
    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open_with(dir.path(), options(true, 1 << 20)).unwrap();
    let got: Vec<Compression> = data.iter().map(|&k| engine.channels().get(k).unwrap().compression).collect();
    assert_eq!(got, choices.iter().map(|c| c.2).collect::<Vec<_>>());
    write(&engine, 10_000, 10_000);
    engine.compact().unwrap();
    assert_eq!(codecs(), vec![6, 6, 4, 2, 0], "engine switch on: `default` follows it, `off` stays raw");
    check_reads(&engine, 20_000);

    // Choices that do not fit are refused, naming what to do, and nothing is created.
    let refused = [
        (NewChannel::data("bad_u8", DataType::U8, "c_time").with_compression(Compression::Pcodec), "\"zstd\""),
        (NewChannel::data("bad_str", DataType::String, "c_time").with_compression(Compression::Zstd), "stored raw"),
        (NewChannel::index("bad_time").with_compression(Compression::Lz4), "index channels stay raw"),
        (NewChannel::virtual_("bad_cmd", DataType::F64).with_compression(Compression::Zstd), "never stored"),
    ];
    for (spec, says) in refused {
        let name = spec.name.clone();
        let err = engine.create_channels(vec![NewChannel::index("ok_time"), spec]).unwrap_err();
        assert!(
            matches!(&err, telemetron::Error::Channel(ChannelError::InvalidDefinition { name: n, reason }) if *n == name && reason.contains(says)),
            "{name}: {err}"
        );
        assert!(engine.channels().by_name("ok_time").is_err(), "{name}: nothing of the batch is created");
    }
}

/// The codec and flags of each of `channel`'s chunk records that serve, by position.
/// Replaced records may still be on disk beside the record that replaced them: a record
/// written later (segment files in id order, records in file order) supersedes those of
/// its domain that start within its positions.
fn serving(dir: &Path, channel: u32) -> Vec<(u8, u8)> {
    let mut by_pos = std::collections::BTreeMap::new();
    for (_, r) in all_records(dir) {
        if r.kind == KIND_CHUNK && r.channel == channel {
            by_pos.retain(|&(d, pos), _| d != r.domain || pos < r.pos || pos >= r.pos + r.samples);
            by_pos.insert((r.domain, r.pos), (r.codec, r.flags));
        }
    }
    by_pos.into_values().collect()
}

/// A channel's compression changes after creation (`Engine::set_channel_compression`), and
/// the next compaction pass recodes what compaction had written: raw to Pcodec, Pcodec to
/// Zstandard, back to raw only for `off` (a channel that follows an engine without
/// compression keeps what is compressed). Each change recodes once; reads stay exact, the
/// choice survives a reopen, a writer's large record stays raw, and choices that do not fit
/// are refused with nothing changed.
#[test]
fn a_channels_compression_changes_after_creation_and_compaction_recodes_what_is_stored() {
    use telemetron::channel::{ChannelError, Compression};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(false, 64 << 10)).unwrap();
    let g = create_group(&engine, "q", &[DataType::F64, DataType::String]);
    let (p, text) = (g.data[0].key, g.data[1].key);
    // A 16-bit ADC pressure, 100 samples per commit: 20,000 samples (160 KB) compact into
    // three records of at most 64 KiB.
    let adc = |i: usize| ((i as f64 * 0.01).sin() * 20_000.0 + 32_768.0).round() * (100.0 / 65_535.0);
    let n = 20_000usize;
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(T0), g.keys())).unwrap();
    for k in (0..n).step_by(100) {
        let f = telemetron::telem::Frame::new()
            .with(g.idx(), Series::timestamps(ts_range(T0 + k as i64 * 1_000, 100, 1_000)))
            .with(p, Series::from_vec((k..k + 100).map(adc).collect::<Vec<f64>>()))
            .with(text, Series::strings(&(k..k + 100).map(|i| format!("s{}", i / 1000)).collect::<Vec<_>>()));
        w.write(&f).unwrap();
    }
    w.close().unwrap();
    let want: Vec<f64> = (0..n).map(adc).collect();
    let reads_exact = |engine: &Engine, n: usize| {
        let got = read_one(engine, TimeRange::MAX, p, DataType::F64);
        assert_eq!(got.as_slice::<f64>().unwrap(), &want[..n]);
    };
    let codecs = |ch: u32| serving(dir.path(), ch).into_iter().map(|(codec, _)| codec).collect::<Vec<_>>();
    let r = engine.compact().unwrap();
    assert_eq!(r.records_in, 3 * 200, "{r:?}");
    assert_eq!(codecs(p), vec![0, 0, 0], "`default` with the engine's switch off: raw");

    // Tags: 0 raw, 4 shuffle+Zstandard, 6 Pcodec (docs/architecture.md §9).
    let steps: [(Compression, u64, u8); 5] = [
        (Compression::Pcodec, 3, 6),
        (Compression::Pcodec, 0, 6), // the same choice again changes nothing
        (Compression::Zstd, 3, 4),
        (Compression::Default, 0, 4), // follows the switch (off), keeps what is compressed
        (Compression::Off, 3, 0),
    ];
    for (choice, recoded, codec) in steps {
        let def = engine.set_channel_compression(p, choice).unwrap();
        assert_eq!(def.compression, choice);
        assert_eq!(engine.channels().get(p).unwrap().compression, choice);
        let r = engine.compact().unwrap();
        assert_eq!((r.records_in, r.records_out), (recoded, recoded), "{choice}: {r:?}");
        if choice == Compression::Pcodec && recoded > 0 {
            assert!(r.bytes_out * 2 < r.bytes_in, "Pcodec shrinks the pressure: {r:?}");
        }
        assert_eq!(codecs(p), vec![codec; 3], "after {choice}");
        assert_eq!(engine.compact().unwrap().records_in, 0, "{choice}: recoded once");
        reads_exact(&engine, n);
    }
    assert!(codecs(text).iter().all(|&c| c == 0), "the other channels are not touched");

    // Refused, naming what to do, and nothing changed.
    let refused: [(u32, Compression, &str); 2] =
        [(g.idx(), Compression::Zstd, "index channels stay raw"), (text, Compression::Lz4, "stored raw")];
    for (key, choice, says) in refused {
        let err = engine.set_channel_compression(key, choice).unwrap_err();
        assert!(
            matches!(&err, telemetron::Error::Channel(ChannelError::InvalidDefinition { reason, .. }) if reason.contains(says)),
            "{err}"
        );
        assert_eq!(engine.channels().get(key).unwrap().compression, Compression::Default);
    }
    let err = engine.set_channel_compression(999_999, Compression::Zstd).unwrap_err();
    assert!(matches!(err, telemetron::Error::Channel(ChannelError::KeyNotFound { key: 999_999 })), "{err}");
    let control = engine.channels().by_name(telemetron::control::CONTROL_CHANNEL).unwrap().key;
    let err = engine.set_channel_compression(control, Compression::Zstd).unwrap_err();
    assert!(matches!(err, telemetron::Error::InvalidArgument { .. }), "{err}");

    // The choice survives a reopen (now with the engine's switch on: `off` stays raw).
    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open_with(dir.path(), options(true, 64 << 10)).unwrap();
    assert_eq!(engine.channels().get(p).unwrap().compression, Compression::Off);
    assert_eq!(engine.compact().unwrap().records_in, 0);
    // A writer's record of at least half the target (here 8,000 samples, 64,000 B) keeps
    // the raw fast path; what compaction wrote follows the new choice.
    engine.set_channel_compression(p, Compression::Pcodec).unwrap();
    let f = telemetron::telem::Frame::new()
        .with(g.idx(), Series::timestamps(ts_range(T0 + n as i64 * 1_000, 8_000, 1_000)))
        .with(p, Series::from_vec((n..n + 8_000).map(adc).collect::<Vec<f64>>()))
        .with(text, Series::strings(&vec!["bulk".to_string(); 8_000]));
    engine.write(TimeStamp(T0 + n as i64 * 1_000), f).unwrap();
    let r = engine.compact().unwrap();
    assert_eq!(r.records_in, 3, "{r:?}");
    assert_eq!(serving(dir.path(), p), vec![(6, 1), (6, 1), (6, 1), (0, 0)], "(codec, flags) by position");
    let want: Vec<f64> = (0..n + 8_000).map(adc).collect();
    assert_eq!(read_one(&engine, TimeRange::MAX, p, DataType::F64).as_slice::<f64>().unwrap(), &want[..]);
}

/// Samples that do not compress (random bits) stay raw, and a record compaction wrote raw
/// is not rewritten at every pass: the pass ends, the next finds nothing to do.
#[test]
fn incompressible_samples_stay_raw_and_are_compacted_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(true, 1 << 20)).unwrap();
    let g = create_group(&engine, "r", &[DataType::U64]);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(T0), g.keys())).unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut all = Vec::new();
    for k in 0..50i64 {
        let v: Vec<u64> = (0..100)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect();
        all.extend_from_slice(&v);
        let f = telemetron::telem::Frame::new()
            .with(g.idx(), Series::timestamps(ts_range(T0 + k * 1_000, 100, 10)))
            .with(g.data[0].key, Series::from_vec(v));
        w.write(&f).unwrap();
    }
    w.close().unwrap();
    let r = engine.compact().unwrap();
    assert_eq!((r.records_in, r.records_out), (100, 2), "{r:?}");
    let data = all_records(dir.path()).into_iter().find(|(_, r)| r.flags & 1 == 1 && r.channel == g.data[0].key).unwrap().1;
    // Flags: COMPACTED (1), KEPT_RAW (2), and the codec tried in the high bits (6, Pcodec).
    assert_eq!((data.codec, data.flags), (0, 1 | 2 | 6 << 4), "random bits do not compress: kept raw after Pcodec");
    assert_eq!(engine.compact().unwrap().records_in, 0, "nothing left to do");
    assert_eq!(read_one(&engine, TimeRange::MAX, g.data[0].key, DataType::U64).as_slice::<u64>().unwrap(), &all[..]);
    // Another codec is tried once (Zstandard does not pay either), then left alone.
    engine.set_channel_compression(g.data[0].key, telemetron::channel::Compression::Zstd).unwrap();
    assert_eq!(engine.compact().unwrap().records_in, 1);
    assert_eq!(serving(dir.path(), g.data[0].key), vec![(0, 1 | 2 | 4 << 4)], "kept raw after Zstandard");
    assert_eq!(engine.compact().unwrap().records_in, 0, "nothing left to do");
    assert_eq!(read_one(&engine, TimeRange::MAX, g.data[0].key, DataType::U64).as_slice::<u64>().unwrap(), &all[..]);
}

/// Deletes before compaction (cut records are left alone) and after it (the compacted
/// record is trimmed), across reopen.
#[test]
fn deletes_before_and_after_compaction_hold() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(true, 64 << 10)).unwrap();
    let g = create_group(&engine, "d", &[DataType::F64, DataType::String]);
    let (ts, ids) = small_commits(&engine, &g, T0, 400);
    let mut model: Vec<(i64, u64)> = ts.iter().copied().zip(ids.iter().copied()).collect();
    let delete = |engine: &Engine, r: TimeRange, model: &mut Vec<(i64, u64)>| {
        engine.delete(r, &g.all_keys()).unwrap();
        model.retain(|(t, _)| !r.contains(TimeStamp(*t)));
    };
    // Cuts a record in two (ts[100] and ts[101] share a commit of 3 samples? either way the
    // range starts mid-record for some channel).
    delete(&engine, TimeRange::from_nanos(ts[100] + 5, ts[250] + 5), &mut model);
    let verify = |engine: &Engine, model: &[(i64, u64)]| {
        let (t, i): (Vec<i64>, Vec<u64>) = model.iter().copied().unzip();
        check(engine, &g, &t, &i, TimeRange::MAX);
        check(engine, &g, &t, &i, TimeRange::from_nanos(ts[50], ts[300]));
    };
    verify(&engine, &model);
    let r = engine.compact().unwrap();
    assert!(r.records_out >= 2 * 3, "both sides of the deleted range are merged: {r:?}");
    verify(&engine, &model);
    delete(&engine, TimeRange::from_nanos(ts[20], ts[30]), &mut model);
    verify(&engine, &model);
    engine.reclaim();
    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open_with(dir.path(), options(true, 64 << 10)).unwrap();
    verify(&engine, &model);
    // Compacting again after the delete merges what is left around the new gap.
    engine.compact().unwrap();
    verify(&engine, &model);
}

/// A crash after compaction but before the replaced records' segment is deleted: the
/// reopen finds both, serves the compacted record and counts the others as superseded.
#[test]
fn a_reopen_before_reclaim_serves_each_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(false, 64 << 10)).unwrap();
    let g = create_group(&engine, "s", &[DataType::F64, DataType::String]);
    let (ts, ids) = small_commits(&engine, &g, T0, 300);
    let r = engine.compact().unwrap();
    assert_eq!(r.records_in, 900);
    // No reclaim: the writer's segment, with the replaced records, is still on disk. And no
    // index checkpoint, as after a crash: the open walks every record.
    engine.close().unwrap();
    drop(engine);
    for _ in 0..2 {
        drop_checkpoint(dir.path());
        let engine = Engine::open_with(dir.path(), options(false, 64 << 10)).unwrap();
        let rep = engine.recovery_report().clone();
        check_ranges(&engine, &g, &ts, &ids);
        if rep.superseded_chunks == 0 {
            // The second reopen: the first one's reclaim deleted the replaced segment.
            assert_eq!((rep.chunks, rep.compacted_chunks), (3, 3), "{rep:?}");
            break;
        }
        assert_eq!((rep.chunks, rep.compacted_chunks, rep.superseded_chunks), (3, 3, 900), "{rep:?}");
        let (_, deleted) = engine.reclaim();
        assert_eq!(deleted, 1, "nothing references the replaced records' segment");
        engine.close().unwrap();
    }
}

/// A compacted record that a later pass merges again is punched out of its compaction
/// segment once unreferenced; the next open finds it (before a seal, so unchecked),
/// supersedes it, and serves every sample once.
#[test]
fn a_compacted_record_merged_again_is_punched_and_the_reopen_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let o = || options(false, 256 << 10);
    let engine = Engine::open_with(dir.path(), o()).unwrap();
    let g = create_group(&engine, "p", &[DataType::F64, DataType::String]);
    let (mut ts, mut ids) = small_commits(&engine, &g, T0, 2_000);
    assert_eq!(engine.compact().unwrap().records_out, 3);
    let (ts2, ids2) = small_commits(&engine, &g, T0 + 1_000_000, 2_000);
    ts.extend(ts2);
    ids.extend(ids2);
    // One more session, compacted half way: the next pass merges that half's compacted
    // records with the second half's small ones.
    let start = T0 + 2_000_000;
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(start), g.keys())).unwrap();
    for k in 0..4_000u64 {
        let t = [start + k as i64 * 10];
        w.write(&group_frame(&g, &t, &[k])).unwrap();
        ts.push(t[0]);
        ids.push(k);
        if k == 1_999 {
            engine.compact().unwrap();
        }
    }
    w.close().unwrap();
    let r = engine.compact().unwrap();
    assert!(r.records_in > 0, "{r:?}");
    let (punched, _) = engine.reclaim();
    assert!(punched > 0, "the re-merged compacted records were punched");
    check_ranges(&engine, &g, &ts, &ids);
    engine.close().unwrap();
    drop(engine);
    // The clean close wrote an index checkpoint: the open reads the index from it.
    let engine = Engine::open_with(dir.path(), o()).unwrap();
    let rep = engine.recovery_report().clone();
    assert!(rep.checkpoint_chunks > 0 && rep.superseded_chunks == 0, "{rep:?}");
    check_ranges(&engine, &g, &ts, &ids);
    engine.close().unwrap();
    drop(engine);
    // Without it (as after a crash) the open walks the punched records too.
    drop_checkpoint(dir.path());
    let engine = Engine::open_with(dir.path(), o()).unwrap();
    let rep = engine.recovery_report().clone();
    assert!(rep.checkpoint_chunks == 0 && rep.superseded_chunks >= 3, "{rep:?}");
    check_ranges(&engine, &g, &ts, &ids);
}

/// Writers and readers go on while compaction runs in the background; every commit is
/// read back exactly, and the background passes did merge.
#[test]
fn background_compaction_runs_beside_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(true, 32 << 10);
    o.storage.compaction_interval = Some(std::time::Duration::from_millis(2));
    let engine = Engine::open_with(dir.path(), o).unwrap();
    let g = create_group(&engine, "b", &[DataType::F64, DataType::I32, DataType::String]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ts, ids) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                // Whatever is committed so far reads as an exact prefix: no sample lost,
                // none served twice, however the references were swapped meanwhile.
                let t = read_ts(&engine, TimeRange::MAX, g.idx());
                same(&t, &ts_range(T0, t.len(), 10), "index read during compaction");
                let f = read_one(&engine, TimeRange::MAX, g.data[0].key, DataType::F64);
                let want: Vec<u64> = (0..f.len() as u64).collect();
                assert_series_eq(&f, &gen_series(DataType::F64, &want));
                reads += 1;
            }
            reads
        });
        let out = small_commits(&engine, &g, T0, 3_000);
        stop.store(true, std::sync::atomic::Ordering::Release);
        assert!(reader.join().unwrap() > 0);
        out
    });
    check_ranges(&engine, &g, &ts, &ids);
    // The background passes merged most of the 12,000 records already.
    let left = engine.compact().unwrap();
    assert!(left.records_in < 3_000 * 4 / 2, "{left:?}");
    check_ranges(&engine, &g, &ts, &ids);
}

/// A directory written by format 1 (`tests/fixtures/format1`, made by the release before
/// format 2) opens, is converted (its marker now says format 2), serves its data, and
/// takes writes and compaction. A directory of a newer format is refused, saying so.
#[test]
fn a_format_1_directory_is_converted_at_open_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1");
    std::fs::create_dir_all(dir.path().join("segments")).unwrap();
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap();
        std::fs::copy(&entry, dir.path().join(rel)).unwrap();
    }
    let marker = |d: &Path| std::fs::read_to_string(d.join("TELEMETRON")).unwrap();
    assert!(marker(dir.path()).contains("format 1"));
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    assert!(marker(dir.path()).contains("format 2"), "converted: {}", marker(dir.path()));
    let p = engine.channels().by_name("pressure").unwrap();
    let s = read_one(&engine, TimeRange::MAX, p.key, DataType::F64);
    // Ten commits of two samples (minus the two deleted) and fifty more.
    let mut want: Vec<f64> = (0..10).filter(|i| *i != 2).flat_map(|i| [f64::from(i), f64::from(i) + 0.5]).collect();
    want.extend((0..50).map(f64::from));
    assert_eq!(s.as_slice::<f64>().unwrap(), &want[..]);
    let r = engine.compact().unwrap();
    assert!(r.records_in > 0, "{r:?}");
    assert_eq!(read_one(&engine, TimeRange::MAX, p.key, DataType::F64).as_slice::<f64>().unwrap(), &want[..]);
    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    assert_eq!(read_one(&engine, TimeRange::MAX, p.key, DataType::F64).as_slice::<f64>().unwrap(), &want[..]);
    engine.close().unwrap();
    drop(engine);

    std::fs::write(dir.path().join("TELEMETRON"), "telemetron data directory\nformat 3\n").unwrap();
    let e = Engine::open_with(dir.path(), test_options()).unwrap_err();
    assert_eq!(e.code(), "engine.unsupported_format");
    let msg = e.to_string();
    assert!(msg.contains("format version 3") && msg.contains("newer"), "{msg}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
