//! Range deletes, channel deletes and space reclaim.

use crate::common;

use common::{
    Group, assert_series_eq, create_group, gen_series, group_frame, open, options_with_segment_size, read_one, read_ts, reopen,
    reopen_with, segment_files, ts_range,
};
use telemetron::framer::WriterConfig;
use telemetron::telem::{DataType, TimeRange, TimeStamp};
use telemetron::{Engine, Options};

/// In-memory model of a group's content: (timestamp, id) per channel.
#[derive(Debug, Clone, Default)]
struct Model {
    index: Vec<i64>,
    data: Vec<Vec<(i64, u64)>>,
}

impl Model {
    fn new(g: &Group) -> Model {
        Model { index: Vec::new(), data: vec![Vec::new(); g.data.len()] }
    }

    fn add(&mut self, ts: &[i64], ids: &[u64]) {
        self.index.extend_from_slice(ts);
        self.index.sort_unstable();
        for d in &mut self.data {
            d.extend(ts.iter().copied().zip(ids.iter().copied()));
            d.sort_unstable();
        }
    }

    fn delete(&mut self, r: TimeRange, index: bool, data: &[usize]) {
        if index {
            self.index.retain(|t| !r.contains(TimeStamp(*t)));
        }
        for &i in data {
            self.data[i].retain(|(t, _)| !r.contains(TimeStamp(*t)));
        }
    }

    #[track_caller]
    fn check(&self, engine: &Engine, g: &Group, r: TimeRange) {
        let want: Vec<i64> = self.index.iter().copied().filter(|t| r.contains(TimeStamp(*t))).collect();
        assert_eq!(read_ts(engine, r, g.idx()), want, "index over {r:?}");
        for (i, c) in g.data.iter().enumerate() {
            let ids: Vec<u64> = self.data[i].iter().filter(|(t, _)| r.contains(TimeStamp(*t))).map(|(_, id)| *id).collect();
            assert_series_eq(&read_one(engine, r, c.key, c.data_type), &gen_series(c.data_type, &ids));
        }
    }

    #[track_caller]
    fn check_many(&self, engine: &Engine, g: &Group) {
        let mut ranges = vec![TimeRange::MAX];
        if let (Some(&a), Some(&b)) = (self.index.first(), self.index.last()) {
            let q = (b - a) / 4;
            ranges.push(TimeRange::from_nanos(a + q, b - q));
            ranges.push(TimeRange::from_nanos(a - 1, a + q + 3));
        }
        for r in ranges {
            self.check(engine, g, r);
        }
    }
}

/// Write `n` samples starting at `start`, `step` apart, ids from `id0`, in one writer with
/// commits every `per_commit` samples.
#[allow(clippy::too_many_arguments)]
fn fill(engine: &Engine, g: &Group, m: &mut Model, start: i64, n: usize, step: i64, id0: u64, per_commit: usize) {
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(start), g.keys()).auto_commit(false)).unwrap();
    let ts = ts_range(start, n, step);
    let ids: Vec<u64> = (id0..id0 + n as u64).collect();
    for (t, i) in ts.chunks(per_commit).zip(ids.chunks(per_commit)) {
        w.write(&group_frame(g, t, i)).unwrap();
        w.commit().unwrap();
    }
    w.close().unwrap();
    m.add(&ts, &ids);
}

#[test]
fn delete_data_channels_then_index() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::String, DataType::I16]);
    let mut m = Model::new(&g);
    fill(&engine, &g, &mut m, 0, 1_000, 10, 0, 128);
    m.check_many(&engine, &g);

    // One data channel, mid-chunk boundaries.
    let r = TimeRange::from_nanos(2_005, 4_015);
    engine.delete(r, &[g.data[0].key]).unwrap();
    m.delete(r, false, &[0]);
    m.check_many(&engine, &g);

    // The index range is still used by the other data channels: refused, nothing changes.
    let e = engine.delete(r, &[g.idx()]).unwrap_err();
    assert_eq!(e.code(), "write.invalid_config", "{e}");
    let e = engine.delete(r, &[g.idx(), g.data[1].key]).unwrap_err();
    assert!(e.to_string().contains(&g.data[2].name), "the error names the channel still using the index: {e}");
    m.check_many(&engine, &g);

    // Remaining data channels, then the index.
    engine.delete(r, &[g.data[1].key, g.data[2].key]).unwrap();
    m.delete(r, false, &[1, 2]);
    m.check_many(&engine, &g);
    engine.delete(r, &[g.idx()]).unwrap();
    m.delete(r, true, &[]);
    m.check_many(&engine, &g);
    assert_eq!(engine.time_range(g.idx()).unwrap(), Some(TimeRange::from_nanos(0, 9_991)));

    let engine = reopen(engine);
    m.check_many(&engine, &g);
    m.check(&engine, &g, r);
}

#[test]
fn delete_index_and_data_together_across_domains() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::U32, DataType::Json]);
    let mut m = Model::new(&g);
    for d in 0..4u64 {
        fill(&engine, &g, &mut m, d as i64 * 10_000, 300, 7, d * 1_000, 50);
    }
    // Spans the end of domain 0, all of domains 1 and 2, the start of domain 3.
    let r = TimeRange::from_nanos(1_000, 30_500);
    engine.delete(r, &g.all_keys()).unwrap();
    m.delete(r, true, &[0, 1]);
    m.check_many(&engine, &g);
    // Head and tail.
    for r in [TimeRange::from_nanos(i64::MIN, 3), TimeRange::from_nanos(32_000, i64::MAX)] {
        engine.delete(r, &g.all_keys()).unwrap();
        m.delete(r, true, &[0, 1]);
        m.check_many(&engine, &g);
    }
    assert_eq!(engine.time_range(g.data[0].key).unwrap(), Some(TimeRange::from_nanos(7, 31_996)));
    // Deleting an empty range, or a range without data, changes nothing.
    engine.delete(TimeRange::from_nanos(5_000, 5_000), &g.all_keys()).unwrap();
    engine.delete(TimeRange::from_nanos(15_000, 16_000), &g.all_keys()).unwrap();
    m.check_many(&engine, &g);
    let engine = reopen(engine);
    m.check_many(&engine, &g);
    assert_eq!(engine.time_range(g.data[0].key).unwrap(), Some(TimeRange::from_nanos(7, 31_996)));
    // Deleting everything.
    engine.delete(TimeRange::MAX, &g.all_keys()).unwrap();
    assert_eq!(engine.read(TimeRange::MAX, &g.all_keys()).unwrap().len(), 0);
    assert_eq!(engine.time_range(g.idx()).unwrap(), None);
    let engine = reopen(engine);
    assert_eq!(engine.read(TimeRange::MAX, &g.all_keys()).unwrap().len(), 0);
}

#[test]
fn deletes_of_other_groups_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let h = create_group(&engine, "h", &[DataType::F64]);
    let (mut mg, mut mh) = (Model::new(&g), Model::new(&h));
    fill(&engine, &g, &mut mg, 0, 500, 10, 0, 100);
    fill(&engine, &h, &mut mh, 0, 500, 10, 5_000, 100);
    // One call over channels of two indexes.
    let r = TimeRange::from_nanos(1_000, 2_000);
    engine.delete(r, &[g.data[0].key, h.data[0].key, h.idx()]).unwrap();
    mg.delete(r, false, &[0]);
    mh.delete(r, true, &[0]);
    mg.check_many(&engine, &g);
    mh.check_many(&engine, &h);
    let engine = reopen(engine);
    mg.check_many(&engine, &g);
    mh.check_many(&engine, &h);
}

#[test]
fn new_data_in_a_deleted_range_survives_the_old_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::I64, DataType::String]);
    let mut m = Model::new(&g);
    fill(&engine, &g, &mut m, 0, 1_000, 10, 0, 200);
    fill(&engine, &g, &mut m, 20_000, 100, 10, 50_000, 30);

    // Delete the tail of domain 0 and all of domain 1.
    let tail = TimeRange::from_nanos(5_000, 10_000);
    let whole = TimeRange::from_nanos(20_000, 21_000);
    for r in [tail, whole] {
        engine.delete(r, &g.all_keys()).unwrap();
        m.delete(r, true, &[0, 1]);
    }
    m.check_many(&engine, &g);

    // Rewrite both ranges with new values at the same timestamps.
    fill(&engine, &g, &mut m, 5_000, 500, 10, 100_000, 64);
    fill(&engine, &g, &mut m, 20_000, 100, 10, 200_000, 64);
    m.check_many(&engine, &g);
    m.check(&engine, &g, tail);
    m.check(&engine, &g, whole);

    let engine = reopen(engine);
    m.check_many(&engine, &g);
    m.check(&engine, &g, tail);
    m.check(&engine, &g, whole);
    // And once more after reclaiming the dead space.
    engine.reclaim();
    engine.reclaim();
    let engine = reopen(engine);
    m.check_many(&engine, &g);
    m.check(&engine, &g, tail);
}

fn small_segments() -> Options {
    options_with_segment_size(256 << 10)
}

#[test]
fn rewritten_range_survives_when_the_deleted_domain_number_is_reused() {
    // With small segments, the segment holding a deleted domain is removed by the reclaimer.
    // After a reopen nothing remembers that domain number, so a new writer may get it again;
    // the old tombstone must not remove the new samples.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), small_segments()).unwrap();
    let g = create_group(&engine, "g", &[DataType::F64]);
    let mut m = Model::new(&g);
    fill(&engine, &g, &mut m, 0, 40_000, 10, 0, 40_000);
    engine.delete(TimeRange::MAX, &g.all_keys()).unwrap();
    m.delete(TimeRange::MAX, true, &[0]);
    let mut deleted = 0;
    for _ in 0..3 {
        deleted += engine.reclaim().1;
    }
    assert!(deleted >= 1, "the segment of the deleted domain is removed");
    assert!(segment_files(dir.path()).is_empty(), "{:?}", segment_files(dir.path()));
    let engine = reopen_with(engine, small_segments());
    assert_eq!(engine.read(TimeRange::MAX, &g.all_keys()).unwrap().len(), 0);
    fill(&engine, &g, &mut m, 0, 1_000, 10, 7_000_000, 100);
    m.check_many(&engine, &g);
    let engine = reopen_with(engine, small_segments());
    m.check_many(&engine, &g);
    let engine = reopen_with(engine, small_segments());
    m.check_many(&engine, &g);
}

#[test]
fn reclaim_punches_deleted_ranges_and_remaining_data_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::Bytes]);
    let mut m = Model::new(&g);
    // Large chunks so whole pages can be punched.
    fill(&engine, &g, &mut m, 0, 200_000, 10, 0, 50_000);
    m.check_many(&engine, &g);
    assert_eq!(engine.reclaim().0, 0, "nothing is dead yet");

    // Delete whole chunks (positions 50k..150k are two committed chunks).
    let r = TimeRange::from_nanos(500_000, 1_500_000);
    engine.delete(r, &g.all_keys()).unwrap();
    m.delete(r, true, &[0, 1]);
    let mut punched = 0;
    for _ in 0..3 {
        punched += engine.reclaim().0;
    }
    assert!(punched >= 2 * 50_000 * 8, "punched {punched} bytes");
    m.check_many(&engine, &g);

    // A partial delete: the dead records are still referenced by the remaining pieces and
    // are not punched; the remaining samples verify.
    let r = TimeRange::from_nanos(1_600_000, 1_700_000);
    engine.delete(r, &g.all_keys()).unwrap();
    m.delete(r, true, &[0, 1]);
    for _ in 0..3 {
        engine.reclaim();
    }
    m.check_many(&engine, &g);

    // Reopen (recovery reads past punched holes) and read again.
    let engine = reopen(engine);
    m.check_many(&engine, &g);
    m.check(&engine, &g, TimeRange::from_nanos(1_400_000, 1_800_000));
}

#[test]
fn a_chunk_deleted_in_two_steps_and_reclaimed_survives_reopen() {
    // One committed chunk of 20k samples is deleted by two range deletes that together cover
    // it; the reclaimer then punches its payload. Recovery must not read the punched bytes.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let mut m = Model::new(&g);
    fill(&engine, &g, &mut m, 0, 20_000, 10, 0, 20_000);
    fill(&engine, &g, &mut m, 1_000_000, 100, 10, 90_000, 100);
    for r in [TimeRange::from_nanos(0, 100_000), TimeRange::from_nanos(100_000, 200_000)] {
        engine.delete(r, &g.all_keys()).unwrap();
        m.delete(r, true, &[0]);
    }
    let mut punched = 0;
    for _ in 0..3 {
        punched += engine.reclaim().0;
    }
    assert!(punched > 0);
    m.check_many(&engine, &g);
    let engine = reopen(engine);
    m.check_many(&engine, &g);
}

#[test]
fn committed_data_after_a_punched_chunk_survives_reopen_without_a_clean_writer_close() {
    // The writer is dropped (no seal record), so recovery verifies every payload of the
    // segment. A chunk deleted by two range deletes and punched is dead, not torn: the
    // commits after it must survive.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let mut m = Model::new(&g);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).auto_commit(false)).unwrap();
    let ts = ts_range(0, 20_000, 10);
    let ids: Vec<u64> = (0..20_000).collect();
    w.write(&group_frame(&g, &ts, &ids)).unwrap();
    w.commit().unwrap();
    m.add(&ts, &ids);
    let ts = ts_range(500_000, 100, 10);
    let ids: Vec<u64> = (50_000..50_100).collect();
    w.write(&group_frame(&g, &ts, &ids)).unwrap();
    w.commit().unwrap();
    m.add(&ts, &ids);
    drop(w);
    for r in [TimeRange::from_nanos(0, 100_000), TimeRange::from_nanos(100_000, 200_000)] {
        engine.delete(r, &[g.data[0].key]).unwrap();
        m.delete(r, false, &[0]);
    }
    let mut punched = 0;
    for _ in 0..3 {
        punched += engine.reclaim().0;
    }
    assert!(punched > 0);
    m.check_many(&engine, &g);
    let engine = reopen(engine);
    assert_eq!(engine.recovery_report().truncated_bytes, 0, "{:?}", engine.recovery_report());
    m.check_many(&engine, &g);
}

#[test]
fn deleting_channels_reclaims_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), small_segments()).unwrap();
    let g = create_group(&engine, "g", &[DataType::F64, DataType::U64]);
    let keep = create_group(&engine, "keep", &[DataType::I32]);
    let mut m = Model::new(&g);
    // Each writer fills more than a segment per commit, so no segment stays in the pool.
    for k in 0..4 {
        fill(&engine, &g, &mut m, k * 1_000_000, 20_000, 10, k as u64 * 100_000, 20_000);
    }
    let mut mk = Model::new(&keep);
    fill(&engine, &keep, &mut mk, 0, 100, 10, 0, 100);
    let before = segment_files(dir.path()).len();
    assert!(before >= 4, "{before} segments");
    m.check_many(&engine, &g);

    engine.delete_channels(&[g.idx(), g.data[0].key, g.data[1].key]).unwrap();
    let mut punched = 0;
    let mut deleted = 0;
    for _ in 0..3 {
        let (p, d) = engine.reclaim();
        punched += p;
        deleted += d;
    }
    assert!(punched > 0, "punched {punched}");
    assert!(deleted >= 4, "deleted {deleted} segments");
    let after = segment_files(dir.path()).len();
    assert_eq!(after, before - deleted, "deleted segment files are gone from disk");
    // The other group is intact.
    mk.check_many(&engine, &keep);
    let engine = reopen_with(engine, small_segments());
    mk.check_many(&engine, &keep);
    assert!(engine.channels().get(g.idx()).is_err());
    assert_eq!(engine.recovery_report().orphan_chunks, 0, "no chunk of the deleted channels is left: {:?}", engine.recovery_report());
}

#[test]
fn deleted_channels_leave_orphans_that_are_ignored_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let h = create_group(&engine, "h", &[DataType::F64]);
    let (mut mg, mut mh) = (Model::new(&g), Model::new(&h));
    fill(&engine, &g, &mut mg, 0, 100, 10, 0, 50);
    fill(&engine, &h, &mut mh, 0, 100, 10, 500, 50);
    engine.delete_channels(&g.all_keys()).unwrap();
    // The index checkpoint of a clean close leaves the deleted channels' records out; the
    // open of a directory without one (after a crash) meets them and ignores them.
    let dir_path = engine.dir().to_path_buf();
    engine.close().unwrap();
    drop(engine);
    common::drop_checkpoint(&dir_path);
    let engine = open(&dir_path);
    assert!(engine.recovery_report().orphan_chunks > 0, "{:?}", engine.recovery_report());
    mh.check_many(&engine, &h);
    // New channels never see the old data.
    let g2 = create_group(&engine, "g", &[DataType::F64]);
    assert_eq!(engine.read(TimeRange::MAX, &g2.all_keys()).unwrap().len(), 0);
}

#[test]
fn a_delete_with_more_than_65536_tombstones_survives_the_next_delete_and_a_reopen() {
    // One tombstone per (channel, domain): 256 channels x 257 writer sessions = 65,792
    // tombstones in one delete. Neither that delete nor the next one may overwrite any of
    // them, or deleted samples come back after a reopen.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let wide = create_group(&engine, "wide", &[DataType::U8; 255]);
    let other = create_group(&engine, "other", &[DataType::U8]);
    for s in 0..257i64 {
        common::write(&engine, s * 10, group_frame(&wide, &[s * 10], &[s as u64]));
    }
    common::write(&engine, 0, group_frame(&other, &[5], &[1]));
    // The index last, so its tombstones are the last ones of the batch.
    let mut keys = wide.keys();
    keys.push(wide.idx());
    engine.delete(TimeRange::MAX, &keys).unwrap();
    engine.delete(TimeRange::MAX, &other.all_keys()).unwrap();
    assert!(read_ts(&engine, TimeRange::MAX, wide.idx()).is_empty());
    let engine = reopen(engine);
    // Every chunk is covered by a tombstone: recovery indexes none of them.
    assert_eq!(engine.recovery_report().chunks, 0, "{:?}", engine.recovery_report());
    assert_eq!(read_ts(&engine, TimeRange::MAX, wide.idx()), Vec::<i64>::new(), "deleted samples reappeared");
    assert!(read_ts(&engine, TimeRange::MAX, other.idx()).is_empty());
}
