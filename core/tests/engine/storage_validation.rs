//! Every write rejection path: the error is precise, nothing of the rejected frame is
//! stored, and the writer keeps working. Plus engine-level errors and stable error codes.

use crate::common;

use std::path::PathBuf;

use common::{Group, assert_series_eq, create_group, gen_series, group_frame, open, read_one, read_ts, reopen, ts_range};
use telemetron::channel::{ChannelError, NewChannel};
use telemetron::framer::{Writer, WriterConfig};
use telemetron::storage::{StorageError, WriteError};
use telemetron::telem::{DataType, Frame, Series, SeriesError, TimeRange, TimeStamp};
use telemetron::{Engine, Error};

fn write_err(e: Error) -> WriteError {
    match e {
        Error::Write(w) => w,
        other => panic!("expected a write error, got {other:?}"),
    }
}

/// Assert the stored content of `g` is exactly `ts`/`ids` (every channel, whole range).
#[track_caller]
fn assert_stored(engine: &Engine, g: &Group, ts: &[i64], ids: &[u64]) {
    assert_eq!(read_ts(engine, TimeRange::MAX, g.idx()), ts);
    for c in &g.data {
        assert_series_eq(&read_one(engine, TimeRange::MAX, c.key, c.data_type), &gen_series(c.data_type, ids));
    }
}

fn writer(engine: &Engine, g: &Group, start: i64) -> Writer {
    engine.open_writer(WriterConfig::new(TimeStamp(start), g.keys()).auto_commit(false)).unwrap()
}

/// A writer with one good frame buffered (ts 10, 20; ids 1, 2) and one committed (ts 1, 2).
fn primed(engine: &Engine, g: &Group) -> Writer {
    let mut w = writer(engine, g, 0);
    w.write(&group_frame(g, &[1, 2], &[100, 200])).unwrap();
    w.commit().unwrap();
    w.write(&group_frame(g, &[10, 20], &[1, 2])).unwrap();
    w
}

/// After a rejection: the writer still accepts a valid frame; the stored content is the
/// primed frames plus that one, nothing of the rejected frame.
#[track_caller]
fn finish_and_check(engine: &Engine, g: &Group, mut w: Writer) {
    w.write(&group_frame(g, &[30], &[3])).unwrap();
    assert_eq!(w.close().unwrap(), TimeStamp(31));
    assert_stored(engine, g, &[1, 2, 10, 20, 30], &[100, 200, 1, 2, 3]);
}

fn setup() -> (tempfile::TempDir, Engine, Group) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::String, DataType::U8]);
    (dir, engine, g)
}

#[test]
fn not_in_writer() {
    let (_d, engine, g) = setup();
    let other = create_group(&engine, "other", &[DataType::F64]);
    let mut w = primed(&engine, &g);
    let f = group_frame(&g, &[25], &[9]).with(other.data[0].key, gen_series(DataType::F64, &[9]));
    let e = w.write(&f).unwrap_err();
    assert_eq!(e.code(), "write.not_in_writer");
    assert_eq!(write_err(e), WriteError::NotInWriter { channel: other.data[0].key });
    // Unknown key.
    let e = write_err(w.write(&group_frame(&g, &[25], &[9]).with(4242, Series::from_vec(vec![1u8]))).unwrap_err());
    assert_eq!(e, WriteError::NotInWriter { channel: 4242 });
    finish_and_check(&engine, &g, w);
    assert_eq!(engine.read(TimeRange::MAX, &other.all_keys()).unwrap().len(), 0);
}

#[test]
fn type_mismatch() {
    let (_d, engine, g) = setup();
    let mut w = primed(&engine, &g);
    // Data channel of the wrong type, with everything else valid.
    let mut f = Frame::new().with(g.idx(), Series::timestamps(vec![25]));
    f.push(g.data[0].key, Series::from_vec(vec![1.0f32]));
    f.push(g.data[1].key, gen_series(DataType::String, &[9]));
    f.push(g.data[2].key, gen_series(DataType::U8, &[9]));
    let e = w.write(&f).unwrap_err();
    assert_eq!(e.code(), "write.type_mismatch");
    assert_eq!(write_err(e), WriteError::TypeMismatch { channel: g.data[0].name.clone(), expected: DataType::F64, actual: DataType::F32 });
    // Index of the wrong type (f64 is not accepted as timestamp; i64 is).
    let e = write_err(w.write(&Frame::new().with(g.idx(), Series::from_vec(vec![25.0f64]))).unwrap_err());
    assert!(matches!(e, WriteError::TypeMismatch { expected: DataType::Timestamp, actual: DataType::F64, .. }), "{e:?}");
    // Same density but another type: i8 into a u8 channel.
    let e = write_err(w.write(&group_frame(&g, &[25], &[9]).with(g.data[2].key, Series::from_vec(vec![1i8]))).unwrap_err());
    assert!(matches!(e, WriteError::TypeMismatch { expected: DataType::U8, actual: DataType::I8, .. }), "{e:?}");
    // Bytes into a string channel.
    let e = write_err(
        w.write(&Frame::new().with(g.idx(), Series::timestamps(vec![25])).with(g.data[1].key, Series::byte_values(&[b"x"]))).unwrap_err(),
    );
    assert!(matches!(e, WriteError::TypeMismatch { expected: DataType::String, actual: DataType::Bytes, .. }), "{e:?}");
    finish_and_check(&engine, &g, w);
}

#[test]
fn length_mismatch() {
    let (_d, engine, g) = setup();
    let mut w = primed(&engine, &g);
    let mut f = group_frame(&g, &[25, 26, 27], &[7, 8, 9]);
    f.push(g.data[1].key, gen_series(DataType::String, &[10])); // string now has 4 samples
    let e = w.write(&f).unwrap_err();
    assert_eq!(e.code(), "write.length_mismatch");
    assert_eq!(
        write_err(e),
        WriteError::LengthMismatch { channel: g.data[1].name.clone(), index: g.index.name.clone(), expected: 3, actual: 4 }
    );
    // Fewer data samples than index samples.
    let f = Frame::new().with(g.idx(), Series::timestamps(vec![25, 26])).with(g.data[0].key, gen_series(DataType::F64, &[1]));
    assert!(matches!(write_err(w.write(&f).unwrap_err()), WriteError::LengthMismatch { expected: 2, actual: 1, .. }));
    finish_and_check(&engine, &g, w);
}

#[test]
fn index_missing() {
    let (_d, engine, g) = setup();
    let mut w = primed(&engine, &g);
    let f = Frame::new().with(g.data[0].key, gen_series(DataType::F64, &[5])).with(g.data[2].key, gen_series(DataType::U8, &[5]));
    let e = w.write(&f).unwrap_err();
    assert_eq!(e.code(), "write.index_missing");
    match write_err(e) {
        WriteError::IndexMissing { index, mut data } => {
            assert_eq!(index, g.index.name);
            data.sort();
            let mut want = vec![g.data[0].name.clone(), g.data[2].name.clone()];
            want.sort();
            assert_eq!(data, want);
        }
        other => panic!("{other:?}"),
    }
    // An empty index series does not count as present.
    let f = Frame::new().with(g.idx(), Series::timestamps(vec![])).with(g.data[0].key, gen_series(DataType::F64, &[5]));
    assert!(matches!(write_err(w.write(&f).unwrap_err()), WriteError::IndexMissing { .. }));
    finish_and_check(&engine, &g, w);
}

#[test]
fn not_monotonic_within_a_write() {
    let (_d, engine, g) = setup();
    let mut w = primed(&engine, &g);
    let e = w.write(&group_frame(&g, &[21, 23, 22], &[7, 8, 9])).unwrap_err();
    assert_eq!(e.code(), "write.not_monotonic");
    assert_eq!(
        write_err(e),
        WriteError::NotMonotonic { index: g.index.name.clone(), position: 2, previous: TimeStamp(23), value: TimeStamp(22) }
    );
    // Equal timestamps are not strictly increasing.
    let e = write_err(w.write(&group_frame(&g, &[24, 24], &[7, 8])).unwrap_err());
    assert!(matches!(e, WriteError::NotMonotonic { position: 1, .. }), "{e:?}");
    // Across two pieces of the index in one frame.
    let f = Frame::new().with(g.idx(), Series::timestamps(vec![25, 28])).with(g.idx(), Series::timestamps(vec![27]));
    assert!(matches!(write_err(w.write(&f).unwrap_err()), WriteError::NotMonotonic { position: 2, .. }));
    // The rejected frames did not move the writer's last timestamp: 21 is still fine.
    w.write(&group_frame(&g, &[21], &[21])).unwrap();
    w.write(&group_frame(&g, &[30], &[3])).unwrap();
    w.close().unwrap();
    assert_stored(&engine, &g, &[1, 2, 10, 20, 21, 30], &[100, 200, 1, 2, 21, 3]);
}

#[test]
fn not_monotonic_across_writes() {
    let (_d, engine, g) = setup();
    let mut w = primed(&engine, &g);
    // Buffered last timestamp is 20.
    let e = write_err(w.write(&group_frame(&g, &[20, 25], &[7, 8])).unwrap_err());
    assert_eq!(e, WriteError::NotMonotonic { index: g.index.name.clone(), position: 0, previous: TimeStamp(20), value: TimeStamp(20) });
    // Committed last timestamp also counts.
    w.commit().unwrap();
    let e = write_err(w.write(&group_frame(&g, &[15], &[7])).unwrap_err());
    assert!(matches!(e, WriteError::NotMonotonic { previous: TimeStamp(20), value: TimeStamp(15), .. }), "{e:?}");
    finish_and_check(&engine, &g, w);
}

#[test]
fn before_start() {
    let (_d, engine, g) = setup();
    let mut w = writer(&engine, &g, 100);
    let e = w.write(&group_frame(&g, &[99, 150], &[1, 2])).unwrap_err();
    assert_eq!(e.code(), "write.before_start");
    assert_eq!(write_err(e), WriteError::BeforeStart { index: g.index.name.clone(), start: TimeStamp(100), value: TimeStamp(99) });
    assert!(!w.has_uncommitted());
    // Exactly the start is fine.
    w.write(&group_frame(&g, &[100, 150], &[1, 2])).unwrap();
    w.close().unwrap();
    assert_stored(&engine, &g, &[100, 150], &[1, 2]);
}

#[test]
fn overlap_with_the_next_stored_domain() {
    let (_d, engine, g) = setup();
    common::write(&engine, 1_000, group_frame(&g, &ts_range(1_000, 10, 10), &(0..10).collect::<Vec<_>>()));
    let mut w = writer(&engine, &g, 0);
    w.write(&group_frame(&g, &[10], &[50])).unwrap();
    w.commit().unwrap();
    let e = w.write(&group_frame(&g, &[500, 999, 1_000], &[51, 52, 53])).unwrap_err();
    assert_eq!(e.code(), "write.overlap");
    assert_eq!(write_err(e), WriteError::Overlap { index: g.index.name.clone(), value: TimeStamp(1_000), next_start: TimeStamp(1_000) });
    // Way past the stored data is also refused: the writer is confined before it.
    assert!(matches!(write_err(w.write(&group_frame(&g, &[5_000], &[54])).unwrap_err()), WriteError::Overlap { .. }));
    // Just before it is fine.
    w.write(&group_frame(&g, &[500, 999], &[51, 52])).unwrap();
    w.close().unwrap();
    let mut ts = vec![10, 500, 999];
    ts.extend(ts_range(1_000, 10, 10));
    let mut ids = vec![50, 51, 52];
    ids.extend(0..10);
    assert_stored(&engine, &g, &ts, &ids);
}

#[test]
fn writer_opened_inside_stored_data_overlaps_committed() {
    let (_d, engine, g) = setup();
    common::write(&engine, 1_000, group_frame(&g, &[1_000, 1_500, 1_990], &[1, 2, 3]));
    for start in [1_000, 1_001, 1_500, 1_990] {
        let e = engine.open_writer(WriterConfig::new(TimeStamp(start), g.keys())).unwrap_err();
        assert_eq!(e.code(), "write.overlaps_committed");
        assert_eq!(
            write_err(e),
            WriteError::OverlapsCommitted {
                channel: g.index.name.clone(),
                start: TimeStamp(start),
                existing: TimeRange::from_nanos(1_000, 1_991)
            }
        );
    }
    // Opening on the index alone is refused the same way.
    assert!(matches!(
        write_err(engine.open_writer(WriterConfig::new(TimeStamp(1_200), vec![g.idx()])).unwrap_err()),
        WriteError::OverlapsCommitted { .. }
    ));
    // A failed open leaves no claim behind: just after the data works.
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(1_991), g.keys())).unwrap();
    w.write(&group_frame(&g, &[1_991], &[4])).unwrap();
    w.close().unwrap();
    assert_stored(&engine, &g, &[1_000, 1_500, 1_990, 1_991], &[1, 2, 3, 4]);
}

#[test]
fn second_writer_on_a_channel_is_arbitrated_by_control() {
    let (_d, engine, g) = setup();
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys())).unwrap();
    // A second writer on the same channels joins the region; equal authority: the first
    // keeps control, so the second's writes are dropped and reported, never stored.
    let mut second = engine.open_writer(WriterConfig::new(TimeStamp(10_000), g.keys())).unwrap();
    let report = second.write(&group_frame(&g, &[10_000], &[9])).unwrap();
    assert_eq!(report.unauthorized.len(), g.keys().len() + 1, "every channel (data and index) is reported");
    // With err_on_unauthorized, opening fails with a control error.
    let e = engine.open_writer(WriterConfig::new(TimeStamp(10_000), g.keys()).err_on_unauthorized(true)).unwrap_err();
    assert_eq!(e.code(), "control.unauthorized");
    // One-shot writes ask to fail instead of dropping: refused, and store nothing.
    assert_eq!(engine.write(TimeStamp(50_000), group_frame(&g, &[50_000], &[1])).unwrap_err().code(), "control.unauthorized");
    // Range deletes of channels held by writers are refused.
    assert_eq!(engine.delete(TimeRange::MAX, &[g.data[0].key]).unwrap_err().code(), "write.channel_busy");
    // The holder writes; after it closes, control passes to the second writer.
    assert!(w.write(&group_frame(&g, &[20_000], &[1])).unwrap().all_written());
    w.close().unwrap();
    assert!(second.write(&group_frame(&g, &[30_000], &[2])).unwrap().all_written());
    second.close().unwrap();
    assert_stored(&engine, &g, &[20_000, 30_000], &[1, 2]);
}

#[test]
fn invalid_writer_configs() {
    let (_d, engine, g) = setup();
    let e = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![])).unwrap_err();
    assert_eq!(e.code(), "write.invalid_config");
    let e = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![g.data[0].key, g.data[0].key])).unwrap_err();
    assert_eq!(e.code(), "write.invalid_config");
    let e = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![g.data[0].key, 9_999])).unwrap_err();
    assert_eq!(e.code(), "channel.not_found");
    // None of the failed opens holds a channel.
    let w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys())).unwrap();
    w.close().unwrap();
}

#[test]
fn rejected_frame_spanning_two_index_groups_stores_nothing() {
    let (_d, engine, g) = setup();
    let h = create_group(&engine, "h", &[DataType::I64]);
    let mut keys = g.keys();
    keys.extend(h.keys());
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), keys).auto_commit(false)).unwrap();
    // Group g valid, group h not monotonic: nothing of either is stored.
    let mut f = group_frame(&g, &[1, 2], &[1, 2]);
    f.extend(group_frame(&h, &[5, 4], &[1, 2]));
    assert!(matches!(write_err(w.write(&f).unwrap_err()), WriteError::NotMonotonic { .. }));
    // And the other way round: g has a type error.
    let mut f = group_frame(&h, &[4, 5], &[1, 2]);
    f.extend(Frame::new().with(g.idx(), Series::timestamps(vec![1])).with(g.data[0].key, Series::from_vec(vec![1i64])));
    assert!(matches!(write_err(w.write(&f).unwrap_err()), WriteError::TypeMismatch { .. }));
    w.commit().unwrap();
    assert!(!w.has_uncommitted());
    assert_eq!(engine.read(TimeRange::MAX, &g.all_keys()).unwrap().len(), 0);
    assert_eq!(engine.read(TimeRange::MAX, &h.all_keys()).unwrap().len(), 0);
    // Valid frame for both groups afterwards.
    let mut f = group_frame(&g, &[1, 2], &[1, 2]);
    f.extend(group_frame(&h, &[4, 5], &[3, 4]));
    w.write(&f).unwrap();
    w.close().unwrap();
    let engine = reopen(engine);
    assert_stored(&engine, &g, &[1, 2], &[1, 2]);
    assert_stored(&engine, &h, &[4, 5], &[3, 4]);
}

#[test]
fn rejected_one_shot_write_stores_nothing_and_releases_channels() {
    let (_d, engine, g) = setup();
    let e = engine.write(TimeStamp(0), group_frame(&g, &[3, 2], &[1, 2])).unwrap_err();
    assert_eq!(e.code(), "write.not_monotonic");
    assert_eq!(engine.read(TimeRange::MAX, &g.all_keys()).unwrap().len(), 0);
    engine.write(TimeStamp(0), group_frame(&g, &[2, 3], &[1, 2])).unwrap();
    let engine = reopen(engine);
    assert_stored(&engine, &g, &[2, 3], &[1, 2]);
}

#[test]
fn invalid_series_values_are_refused_at_construction() {
    assert!(matches!(Series::json(&["{\"ok\":1}", "nope"]), Err(SeriesError::InvalidValue { index: 1, .. })));
    assert!(Series::from_bytes(DataType::Bool, bytes::Bytes::from_static(&[0, 1, 2])).is_err());
    assert!(Series::from_bytes(DataType::F64, bytes::Bytes::from_static(&[0; 7])).is_err());
    assert!(
        Series::from_variable(DataType::String, bytes::Bytes::from_static(&[0xff]), Series::from_vec(vec![0u64, 1]).data().clone())
            .is_err()
    );
}

#[test]
fn reading_virtual_or_unknown_channels_is_an_error() {
    let (_d, engine, g) = setup();
    let v = engine.create_channel(NewChannel::virtual_("v", DataType::F64)).unwrap();
    let e = engine.read(TimeRange::MAX, &[v.key]).unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(matches!(e, Error::InvalidArgument { .. }));
    // Mixed with stored channels it is still an error.
    assert!(matches!(engine.read(TimeRange::MAX, &[g.data[0].key, v.key]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(engine.time_range(v.key), Err(Error::InvalidArgument { .. })));
    assert!(matches!(engine.delete(TimeRange::MAX, &[v.key]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(engine.read(TimeRange::MAX, &[777]), Err(Error::Channel(ChannelError::KeyNotFound { key: 777 }))));
}

#[test]
fn opening_a_directory_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    match Engine::open(dir.path()).unwrap_err() {
        e @ Error::Storage(StorageError::AlreadyOpen { .. }) => {
            assert_eq!(e.code(), "engine.already_open");
            if let Error::Storage(StorageError::AlreadyOpen { path, holder }) = e {
                assert_eq!(path, dir.path());
                assert_eq!(holder, Some(std::process::id()));
            }
        }
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    // The first engine is unaffected.
    let g = create_group(&engine, "g", &[DataType::F64]);
    common::write(&engine, 0, group_frame(&g, &[1], &[1]));
    drop(engine);
    // Once dropped, the directory opens again.
    let engine = open(dir.path());
    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()), vec![1]);
}

#[test]
fn foreign_and_incompatible_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), "not telemetry").unwrap();
    let e = Engine::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "engine.not_a_data_directory");
    match e {
        Error::Storage(StorageError::NotADataDirectory { path, found }) => {
            assert_eq!(path, dir.path());
            assert_eq!(found, vec!["thesis.tex".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.path().join("TELEMETRON").exists(), "a refused directory is not modified");
    assert!(!dir.path().join("catalog.redb").exists());

    // A marker from a future format version.
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    std::fs::write(dir.path().join("TELEMETRON"), "telemetron data directory\nformat 3\n").unwrap();
    let e = Engine::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "engine.unsupported_format");
    assert!(matches!(e, Error::Storage(StorageError::UnsupportedFormat { found: 3, supported: 2, .. })));

    // A marker that is not ours.
    std::fs::write(dir.path().join("TELEMETRON"), "hello").unwrap();
    assert_eq!(Engine::open(dir.path()).unwrap_err().code(), "engine.not_a_data_directory");

    // A new, nested directory is created.
    let dir = tempfile::tempdir().unwrap();
    let nested: PathBuf = dir.path().join("a/b/c");
    drop(open(&nested));
    assert!(nested.join("TELEMETRON").exists());
}

#[test]
fn closed_engine_refuses_work() {
    let (_d, engine, g) = setup();
    let clone = engine.clone();
    engine.close().unwrap();
    engine.close().unwrap(); // idempotent
    let e = clone.read(TimeRange::MAX, &[g.idx()]).unwrap_err();
    assert_eq!(e.code(), "engine.closed");
    assert!(matches!(e, Error::Closed { .. }));
    assert_eq!(clone.open_writer(WriterConfig::new(TimeStamp(0), g.keys())).unwrap_err().code(), "engine.closed");
    assert_eq!(clone.create_channel(NewChannel::index("x")).unwrap_err().code(), "engine.closed");
    assert_eq!(clone.delete(TimeRange::MAX, &[g.idx()]).unwrap_err().code(), "engine.closed");
}
