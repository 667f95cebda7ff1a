//! Recovery from damaged segment files (in-process: files are edited between a clean close
//! and a reopen). Committed data must read back exactly; damaged data must be an error or
//! absent, never wrong.

use crate::common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{
    Group, KIND_CHUNK, KIND_COMMIT, KIND_SEAL, Rec, assert_series_eq, create_group, gen_series, group_frame, open, parse_segment, read_one,
    read_ts, segment_files, ts_range,
};
use telemetron::framer::WriterConfig;
use telemetron::storage::StorageError;
use telemetron::telem::{DataType, TimeRange, TimeStamp};
use telemetron::{Engine, Error};

/// Committed content of a group, in commit order: (timestamps, ids) per commit.
#[derive(Debug, Clone, Default)]
struct Commits(Vec<(Vec<i64>, Vec<u64>)>);

impl Commits {
    #[track_caller]
    fn check_prefix(&self, engine: &Engine, g: &Group, n: usize) {
        let ts: Vec<i64> = self.0[..n].iter().flat_map(|(t, _)| t.clone()).collect();
        let ids: Vec<u64> = self.0[..n].iter().flat_map(|(_, i)| i.clone()).collect();
        assert_eq!(read_ts(engine, TimeRange::MAX, g.idx()), ts, "index with {n} commits");
        for c in &g.data {
            assert_series_eq(&read_one(engine, TimeRange::MAX, c.key, c.data_type), &gen_series(c.data_type, &ids));
        }
    }
}

fn close(engine: Engine) {
    engine.close().unwrap();
    drop(engine);
}

/// One writer, `sizes.len()` commits, closed cleanly; returns the commits written.
fn write_commits(engine: &Engine, g: &Group, start: i64, sizes: &[usize], id0: u64) -> Commits {
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(start), g.keys()).auto_commit(false)).unwrap();
    let mut out = Commits::default();
    let mut t0 = start;
    let mut id = id0;
    for &n in sizes {
        let ts = ts_range(t0, n, 10);
        let ids: Vec<u64> = (id..id + n as u64).collect();
        w.write(&group_frame(g, &ts, &ids)).unwrap();
        w.commit().unwrap();
        t0 = ts[n - 1] + 10;
        id += n as u64;
        out.0.push((ts, ids));
    }
    w.close().unwrap();
    out
}

fn only_segment(dir: &Path) -> (PathBuf, Vec<Rec>) {
    let files = segment_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let recs = parse_segment(&fs::read(&files[0]).unwrap());
    (files[0].clone(), recs)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn corrupt_err(r: Result<telemetron::telem::Frame, Error>) -> StorageError {
    match r {
        Err(Error::Storage(e @ StorageError::Corrupt { .. })) => e,
        Err(other) => panic!("expected a corruption error, got {other:?}"),
        Ok(f) => panic!("expected a corruption error, got {} series", f.len()),
    }
}

#[test]
fn clean_close_recovers_everything_with_nothing_to_repair() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::String]);
    let c = write_commits(&engine, &g, 0, &[10, 20, 30], 0);
    close(engine);
    let (_, recs) = only_segment(dir.path());
    assert_eq!(recs.iter().filter(|r| r.kind == KIND_COMMIT).count(), 3);
    assert_eq!(recs.last().unwrap().kind, KIND_SEAL, "a closed writer seals its segment");

    let engine = open(dir.path());
    let rep = engine.recovery_report().clone();
    assert_eq!(rep.truncated_bytes, 0);
    assert!(rep.quarantined.is_empty());
    assert_eq!(rep.segments, 1);
    assert_eq!(rep.commits, 3);
    assert_eq!(rep.chunks, 9, "3 commits x (index + 2 data channels)");
    assert_eq!(rep.orphan_chunks, 0);
    c.check_prefix(&engine, &g, 3);
}

#[test]
fn garbage_appended_to_the_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::I32, DataType::Bytes]);
    let c = write_commits(&engine, &g, 0, &[100, 5], 0);
    close(engine);
    let (seg, _) = only_segment(dir.path());
    let clean_len = fs::metadata(&seg).unwrap().len();
    let garbage: Vec<u8> = (0..1_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    OpenOptions::new().append(true).open(&seg).unwrap().write_all(&garbage).unwrap();

    let engine = open(dir.path());
    assert_eq!(engine.recovery_report().truncated_bytes, 1_000, "{:?}", engine.recovery_report());
    assert_eq!(fs::metadata(&seg).unwrap().len(), clean_len, "the file is cut back to its clean end");
    c.check_prefix(&engine, &g, 2);
    // Appending after recovery works and survives another reopen without repairs.
    let c2 = write_commits(&engine, &g, 10_000, &[3], 1_000);
    close(engine);
    let engine = open(dir.path());
    assert_eq!(engine.recovery_report().truncated_bytes, 0);
    let mut all = c.clone();
    all.0.extend(c2.0);
    all.check_prefix(&engine, &g, 3);
}

#[test]
fn an_uncommitted_valid_chunk_at_the_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let c = write_commits(&engine, &g, 0, &[50, 50], 0);
    close(engine);
    let (seg, recs) = only_segment(dir.path());
    // Append a copy of an intact, checksummed chunk record with no commit record after it:
    // what a crash between a chunk write and its commit leaves behind.
    let chunk = recs.iter().find(|r| r.kind == KIND_CHUNK && r.channel == g.data[0].key).unwrap();
    let bytes = fs::read(&seg).unwrap();
    let copy = bytes[chunk.offset as usize..chunk.end() as usize].to_vec();
    OpenOptions::new().append(true).open(&seg).unwrap().write_all(&copy).unwrap();

    let engine = open(dir.path());
    assert_eq!(engine.recovery_report().truncated_bytes, copy.len() as u64);
    assert_eq!(engine.recovery_report().commits, 2);
    c.check_prefix(&engine, &g, 2);
}

#[test]
fn every_cut_point_recovers_exactly_the_committed_prefix() {
    let src = tempfile::tempdir().unwrap();
    let engine = open(src.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::String]);
    let c = write_commits(&engine, &g, 1_000, &[10, 1, 600, 7], 0);
    close(engine);
    let (seg, recs) = only_segment(src.path());
    let seg_name = seg.file_name().unwrap().to_owned();
    let full_len = fs::metadata(&seg).unwrap().len();
    let commit_ends: Vec<u64> = recs.iter().filter(|r| r.kind == KIND_COMMIT).map(Rec::end).collect();
    assert_eq!(commit_ends.len(), 4);

    let mut cuts = vec![30, 64, full_len];
    for r in &recs {
        cuts.extend([r.offset, r.offset + 1, r.offset + 55, r.offset + 56, r.offset + 56 + r.len / 2, r.end() - 1]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|&c| c <= full_len);
    for cut in cuts {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let path = dir.path().join("segments").join(&seg_name);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();

        let engine = Engine::open_with(dir.path(), common::test_options()).unwrap_or_else(|e| panic!("open after cut at {cut}: {e}"));
        let visible = commit_ends.iter().filter(|&&e| e <= cut).count();
        let rep = engine.recovery_report().clone();
        assert_eq!(rep.commits, visible, "cut at {cut}: {rep:?}");
        assert!(rep.quarantined.is_empty(), "cut at {cut}: {rep:?}");
        if cut >= 64 {
            let keep = commit_ends.iter().copied().filter(|&e| e <= cut).max().unwrap_or(64);
            let keep = if cut == full_len { full_len } else { keep };
            assert_eq!(rep.truncated_bytes, cut - keep, "cut at {cut}");
        }
        c.check_prefix(&engine, &g, visible);
        // The directory keeps working after the repair.
        let more = write_commits(&engine, &g, 100_000, &[2], 9_000);
        let mut all = Commits(c.0[..visible].to_vec());
        all.0.extend(more.0);
        all.check_prefix(&engine, &g, visible + 1);
    }
}

#[test]
fn a_flipped_byte_in_committed_data_is_reported_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::U16]);
    let first = write_commits(&engine, &g, 0, &[300], 0);
    let second = write_commits(&engine, &g, 100_000, &[40], 1_000);
    close(engine);
    let (seg, recs) = only_segment(dir.path());
    let last_seal = recs.iter().rposition(|r| r.kind == KIND_SEAL).unwrap();
    // The f64 chunk of the first commit, well before the last seal record.
    let (i, chunk) = recs.iter().enumerate().find(|(_, r)| r.kind == KIND_CHUNK && r.channel == g.data[0].key).unwrap();
    assert!(i < last_seal);
    flip_byte(&seg, chunk.payload_offset() + 8 * 17 + 3);

    let engine = open(dir.path());
    assert_eq!(engine.recovery_report().truncated_bytes, 0, "data before a seal is verified on read, not at open");
    let f64_key = g.data[0].key;
    let e = corrupt_err(engine.read(TimeRange::MAX, &[f64_key]));
    assert_eq!(Error::from(e.clone()).code(), "storage.corrupt");
    if let StorageError::Corrupt { offset, .. } = e {
        assert_eq!(offset, chunk.offset, "the error names the damaged record");
    }
    corrupt_err(engine.read(TimeRange::from_nanos(0, 50), &[f64_key]));
    // Again on a second read (verification failures are not cached as success).
    corrupt_err(engine.read(TimeRange::MAX, &[f64_key, g.data[1].key]));
    // Other channels and other ranges are unaffected.
    assert_series_eq(
        &read_one(&engine, TimeRange::MAX, g.data[1].key, DataType::U16),
        &gen_series(DataType::U16, &(0..300).chain(1_000..1_040).collect::<Vec<_>>()),
    );
    assert_series_eq(
        &read_one(&engine, TimeRange::from_nanos(100_000, i64::MAX), f64_key, DataType::F64),
        &gen_series(DataType::F64, &second.0[0].1),
    );
    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()).len(), 340);
    // The iterator reports it too.
    let mut it = engine.open_iterator(telemetron::framer::IteratorConfig::new(TimeRange::MAX, vec![f64_key])).unwrap();
    assert!(it.seek_first().unwrap());
    assert!(matches!(it.next(telemetron::framer::IterSpan::Auto), Err(Error::Storage(StorageError::Corrupt { .. }))));

    // The damaged range can be deleted; everything else is then served.
    engine.delete(TimeRange::from_nanos(0, 100_000), &g.all_keys()).unwrap();
    let mut rest = Commits::default();
    rest.0.push(second.0[0].clone());
    rest.check_prefix(&engine, &g, 1);
    close(engine);
    let engine = open(dir.path());
    rest.check_prefix(&engine, &g, 1);
    let _ = first;
}

#[test]
fn a_flipped_byte_in_an_index_chunk_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::I8]);
    let c = write_commits(&engine, &g, 0, &[100, 100], 0);
    close(engine);
    let (seg, recs) = only_segment(dir.path());
    let chunk = recs.iter().find(|r| r.kind == KIND_CHUNK && r.channel == g.idx()).unwrap();
    flip_byte(&seg, chunk.payload_offset() + 8 * 50);

    let engine = open(dir.path());
    corrupt_err(engine.read(TimeRange::MAX, &[g.idx()]));
    // A read that needs the damaged timestamps fails.
    corrupt_err(engine.read(TimeRange::from_nanos(5, 600), &[g.data[0].key]));
    // Any read of the data channel is either an error or exactly right.
    match engine.read(TimeRange::MAX, &[g.data[0].key]) {
        Ok(f) => assert_series_eq(&f.concat(g.data[0].key).unwrap().unwrap(), &gen_series(DataType::I8, &(0..200).collect::<Vec<_>>())),
        Err(e) => assert_eq!(e.code(), "storage.corrupt"),
    }
    // The second commit is intact.
    assert_eq!(read_ts(&engine, TimeRange::from_nanos(1_000, i64::MAX), g.idx()), c.0[1].0);
}

#[test]
fn a_flipped_byte_after_the_last_seal_cuts_the_tail_there() {
    // A writer that is dropped leaves no seal: its records are verified at open and the
    // first damaged one ends the valid log (a torn write). Earlier commits survive.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F32]);
    let c = write_commits(&engine, &g, 0, &[20], 0);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(10_000), g.keys()).auto_commit(false)).unwrap();
    for k in 0..3u64 {
        w.write(&group_frame(&g, &ts_range(10_000 + k as i64 * 1_000, 10, 10), &(100 + k * 10..110 + k * 10).collect::<Vec<_>>())).unwrap();
        w.commit().unwrap();
    }
    drop(w);
    close(engine);
    // As after a crash: no index checkpoint covers these commits (a clean close writes one,
    // and an open trusts what it covers, synced before it was written).
    common::drop_checkpoint(dir.path());
    let (seg, recs) = only_segment(dir.path());
    let last_seal = recs.iter().rposition(|r| r.kind == KIND_SEAL).unwrap();
    // Damage the data chunk of the second commit after the seal.
    let chunk = recs[last_seal..].iter().filter(|r| r.kind == KIND_CHUNK && r.channel == g.data[0].key).nth(1).unwrap();
    flip_byte(&seg, chunk.payload_offset() + 4);

    let engine = open(dir.path());
    assert!(engine.recovery_report().truncated_bytes > 0);
    let mut want = c.clone();
    want.0.push((ts_range(10_000, 10, 10), (100..110).collect()));
    want.check_prefix(&engine, &g, 2);
}

#[test]
fn a_damaged_segment_header_quarantines_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let a = create_group(&engine, "a", &[DataType::F64]);
    let b = create_group(&engine, "b", &[DataType::F64]);
    // Two writers open at once use two segments.
    let mut wa = engine.open_writer(WriterConfig::new(TimeStamp(0), a.keys())).unwrap();
    let mut wb = engine.open_writer(WriterConfig::new(TimeStamp(0), b.keys())).unwrap();
    wa.write(&group_frame(&a, &[1, 2, 3], &[1, 2, 3])).unwrap();
    wb.write(&group_frame(&b, &[1, 2, 3], &[4, 5, 6])).unwrap();
    wa.close().unwrap();
    wb.close().unwrap();
    close(engine);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    let seg_a = files
        .iter()
        .find(|p| parse_segment(&fs::read(p).unwrap()).iter().any(|r| r.kind == KIND_CHUNK && r.channel == a.idx()))
        .unwrap()
        .clone();
    flip_byte(&seg_a, 20); // inside the segment id, covered by the header checksum

    let engine = open(dir.path());
    let quarantined = engine.recovery_report().quarantined.clone();
    let mut want = seg_a.clone().into_os_string();
    want.push(".corrupt");
    assert_eq!(quarantined, vec![PathBuf::from(want.clone())]);
    assert!(!seg_a.exists());
    assert!(Path::new(&want).exists(), "the damaged file is kept for inspection");
    assert_eq!(engine.recovery_report().segments, 1);
    // Its data is not served (not an error, just absent); the other segment is intact.
    assert_eq!(engine.read(TimeRange::MAX, &a.all_keys()).unwrap().len(), 0);
    assert_series_eq(&read_one(&engine, TimeRange::MAX, b.data[0].key, DataType::F64), &gen_series(DataType::F64, &[4, 5, 6]));
    // New writes work, and the next open has nothing to repair.
    common::write(&engine, 0, group_frame(&a, &[7], &[7]));
    close(engine);
    let engine = open(dir.path());
    assert!(engine.recovery_report().quarantined.is_empty());
    assert_eq!(read_ts(&engine, TimeRange::MAX, a.idx()), vec![7]);
}

#[test]
fn foreign_and_misnamed_segment_files_are_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::U8]);
    let c = write_commits(&engine, &g, 0, &[5], 0);
    close(engine);
    let segs = dir.path().join("segments");
    // Not a Telemetron segment (foreign magic), a name that is not an id, and an empty file
    // from an interrupted segment creation.
    fs::write(segs.join("0000000000000050.seg"), vec![b'X'; 200]).unwrap();
    fs::write(segs.join("notes.seg"), b"hello").unwrap();
    fs::write(segs.join("0000000000000060.seg"), b"").unwrap();
    fs::write(segs.join("README.txt"), b"ignored").unwrap();

    let engine = open(dir.path());
    let mut q = engine.recovery_report().quarantined.clone();
    q.sort();
    assert_eq!(q, vec![segs.join("0000000000000050.seg.corrupt"), segs.join("notes.seg.corrupt")]);
    assert!(!segs.join("0000000000000060.seg").exists(), "an empty segment is removed");
    assert!(segs.join("README.txt").exists());
    c.check_prefix(&engine, &g, 1);
}

#[test]
fn a_segment_from_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::U8]);
    write_commits(&engine, &g, 0, &[5], 0);
    close(engine);
    let (seg, _) = only_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    let e = Engine::open_with(dir.path(), common::test_options()).unwrap_err();
    assert_eq!(e.code(), "engine.unsupported_format");
    assert!(matches!(e, Error::Storage(StorageError::UnsupportedFormat { found: 3, supported: 2, .. })), "{e:?}");
    assert!(seg.exists(), "a newer segment is not touched");
}

#[test]
fn uncommitted_writes_are_never_visible() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::String]);
    let committed = write_commits(&engine, &g, 0, &[10], 0);

    // Buffered only, then dropped.
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(1_000), g.keys()).auto_commit(false)).unwrap();
    w.write(&group_frame(&g, &[1_000, 1_001], &[500, 501])).unwrap();
    assert!(w.has_uncommitted());
    committed.check_prefix(&engine, &g, 1);
    drop(w);
    committed.check_prefix(&engine, &g, 1);

    // Records written to the segment but not committed (a data channel skipping frames
    // forces its buffered chunk out early), then aborted.
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(2_000), g.keys()).auto_commit(false)).unwrap();
    w.write(&group_frame(&g, &[2_000, 2_001, 2_002], &[600, 601, 602])).unwrap();
    w.write(&telemetron::telem::Frame::new().with(g.idx(), telemetron::telem::Series::timestamps(vec![2_003]))).unwrap();
    w.write(&group_frame(&g, &[2_004], &[604])).unwrap();
    committed.check_prefix(&engine, &g, 1);
    w.abort();
    committed.check_prefix(&engine, &g, 1);

    // Committed, then more written and dropped: only the commit is visible.
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(3_000), g.keys()).auto_commit(false)).unwrap();
    w.write(&group_frame(&g, &[3_000], &[700])).unwrap();
    w.commit().unwrap();
    w.write(&group_frame(&g, &[3_001, 3_002], &[701, 702])).unwrap();
    drop(w);
    let mut want = committed.clone();
    want.0.push((vec![3_000], vec![700]));
    want.check_prefix(&engine, &g, 2);

    close(engine);
    let engine = open(dir.path());
    want.check_prefix(&engine, &g, 2);
    // The ranges of discarded writes are free for new writers.
    let more = write_commits(&engine, &g, 1_000, &[3], 800);
    let mut all: Vec<(i64, u64)> = want.0.iter().chain(&more.0).flat_map(|(t, i)| t.iter().copied().zip(i.iter().copied())).collect();
    all.sort_unstable();
    let (ts, ids): (Vec<i64>, Vec<u64>) = all.into_iter().unzip();
    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()), ts);
    assert_series_eq(&read_one(&engine, TimeRange::MAX, g.data[1].key, DataType::String), &gen_series(DataType::String, &ids));
}

#[test]
fn uncommitted_records_left_by_a_vanished_writer_are_truncated_on_open() {
    // A writer that never releases its segment (as in a crash) leaves uncommitted chunk
    // records at the end of it; recovery cuts them off.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64]);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), g.keys()).auto_commit(false)).unwrap();
    w.write(&group_frame(&g, &[1, 2], &[1, 2])).unwrap();
    w.commit().unwrap();
    w.write(&group_frame(&g, &[3, 4, 5], &[3, 4, 5])).unwrap();
    w.write(&telemetron::telem::Frame::new().with(g.idx(), telemetron::telem::Series::timestamps(vec![6]))).unwrap();
    w.write(&group_frame(&g, &[7], &[7])).unwrap(); // forces the f64 chunk [3, 4, 5] out
    std::mem::forget(w);
    close(engine);
    let (_, recs) = only_segment(dir.path());
    let last_commit = recs.iter().rposition(|r| r.kind == KIND_COMMIT).unwrap();
    assert!(recs[last_commit + 1..].iter().any(|r| r.kind == KIND_CHUNK), "an uncommitted record is on disk: {recs:?}");

    let engine = open(dir.path());
    assert!(engine.recovery_report().truncated_bytes > 0);
    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()), vec![1, 2]);
    assert_series_eq(&read_one(&engine, TimeRange::MAX, g.data[0].key, DataType::F64), &gen_series(DataType::F64, &[1, 2]));
    // The channels are free again after the reopen.
    common::write(&engine, 100, group_frame(&g, &[100], &[100]));
    assert_eq!(read_ts(&engine, TimeRange::MAX, g.idx()), vec![1, 2, 100]);
}

/// A clean close writes an index checkpoint; the next open reads every chunk from it and
/// walks only what was appended since. A damaged checkpoint is ignored (the open walks
/// everything) and data reads the same either way.
#[test]
fn an_index_checkpoint_replaces_the_walk_and_a_damaged_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let g = create_group(&engine, "g", &[DataType::F64, DataType::String]);
    let mut c = write_commits(&engine, &g, 0, &[10, 20, 30], 0);
    close(engine);
    let ckpt = dir.path().join("segments/index.ckpt");
    assert!(ckpt.exists(), "a clean close writes the checkpoint");

    let engine = open(dir.path());
    let rep = engine.recovery_report().clone();
    assert_eq!((rep.chunks, rep.checkpoint_chunks, rep.commits), (9, 9, 3), "{rep:?}");
    c.check_prefix(&engine, &g, 3);
    // More commits after the checkpoint, then the process "dies": no new checkpoint, the
    // old one covers the first three commits and the open walks the rest.
    let c2 = write_commits(&engine, &g, 100_000, &[5, 5], 100);
    let saved = fs::read(&ckpt).unwrap();
    close(engine);
    fs::write(&ckpt, &saved).unwrap();
    let engine = open(dir.path());
    let rep = engine.recovery_report().clone();
    assert_eq!((rep.chunks, rep.checkpoint_chunks, rep.commits), (15, 9, 5), "{rep:?}");
    c.0.extend(c2.0);
    c.check_prefix(&engine, &g, 5);
    close(engine);

    // One flipped byte: the checkpoint is ignored, everything is walked, nothing changes.
    let mut bad = fs::read(&ckpt).unwrap();
    bad[20] ^= 1;
    fs::write(&ckpt, &bad).unwrap();
    let engine = open(dir.path());
    let rep = engine.recovery_report().clone();
    assert_eq!((rep.chunks, rep.checkpoint_chunks, rep.commits), (15, 0, 5), "{rep:?}");
    c.check_prefix(&engine, &g, 5);
}

/// A checkpoint names a segment that reclaim deleted later, and the engine died before the
/// next checkpoint: the next open must not hand that id to a new segment. (If it did, the
/// stale entry would name the new file, and the open after that would start its walk at the
/// old segment's committed end, in the middle of the new segment's records, and cut them.)
#[test]
fn a_stale_checkpoint_never_names_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("segments/index.ckpt");
    let engine = open(dir.path());
    let old = create_group(&engine, "old", &[DataType::F64]);
    write_commits(&engine, &old, 0, &[200, 200], 0);
    close(engine);
    let stale = fs::read(&ckpt).unwrap();
    let named: Vec<PathBuf> = segment_files(dir.path());
    assert!(!named.is_empty());

    // Delete everything those segments hold, then their files, as reclaim does once
    // nothing references them.
    let engine = open(dir.path());
    engine.delete_channels(&old.keys()).unwrap();
    close(engine);
    for p in &named {
        fs::remove_file(p).unwrap();
    }
    // The process "died" before a checkpoint after the reclaim.
    fs::write(&ckpt, &stale).unwrap();

    // New data, more of it than the deleted segments held; then "dies" again.
    let engine = open(dir.path());
    let new = create_group(&engine, "new", &[DataType::F64]);
    let c = write_commits(&engine, &new, 0, &[500, 500, 500], 1_000);
    let reused: Vec<PathBuf> = segment_files(dir.path()).into_iter().filter(|p| named.contains(p)).collect();
    assert!(reused.is_empty(), "new segments take ids the stale checkpoint names: {reused:?}");
    close(engine);
    fs::write(&ckpt, &stale).unwrap();

    let engine = open(dir.path());
    let rep = engine.recovery_report().clone();
    assert_eq!(rep.truncated_bytes, 0, "{rep:?}");
    c.check_prefix(&engine, &new, 3);
    close(engine);
}
