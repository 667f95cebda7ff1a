//! Model-based property tests: random writer sessions (frame sizes, timestamp gaps, commits,
//! clean closes and drops), random range deletes and reopens, checked against an in-memory
//! model with random time-range reads.

use crate::common;

use std::collections::BTreeMap;

use common::{Group, create_group, gen_series, render};
use proptest::prelude::*;
use telemetron::Engine;
use telemetron::framer::{IterSpan, IteratorConfig, WriterConfig};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

#[derive(Debug, Clone)]
struct WriteOp {
    /// Samples in the frame.
    n: usize,
    /// Gap before the first sample (ns).
    gap: i64,
    /// Maximum extra spacing between samples (ns, >= 1).
    spread: i64,
    /// Commit after this write.
    commit: bool,
    /// Omit the data channel with this index from the frame (index-only samples for it).
    omit: Option<usize>,
}

#[derive(Debug, Clone)]
enum Op {
    /// A writer session starting `gap` after everything written so far, or (with `place`)
    /// inside a free gap before or between earlier sessions.
    Session { gap: i64, writes: Vec<WriteOp>, close: bool, place: Option<u16> },
    /// Delete `[lo, hi)` (fractions of the written span, in 1/1000) of the index and all
    /// data channels, or of one data channel only.
    Delete { lo: u16, hi: u16, data_only: Option<usize> },
    /// Close the engine and open it again.
    Reopen,
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    (1usize..120, 0i64..2_000, 1i64..50, any::<bool>(), prop::option::weighted(0.2, 0usize..4))
        .prop_map(|(n, gap, spread, commit, omit)| WriteOp { n, gap, spread, commit, omit })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0i64..10_000, prop::collection::vec(write_op(), 1..6), prop::bool::weighted(0.8), prop::option::weighted(0.3, any::<u16>()))
            .prop_map(|(gap, writes, close, place)| Op::Session { gap, writes, close, place }),
        2 => (0u16..1000, 0u16..1000, prop::option::weighted(0.4, 0usize..4))
            .prop_map(|(a, b, data_only)| Op::Delete { lo: a.min(b), hi: a.max(b).saturating_add(1), data_only }),
        1 => Just(Op::Reopen),
    ]
}

fn types() -> impl Strategy<Value = Vec<DataType>> {
    prop::collection::vec(prop::sample::select(DataType::ALL.to_vec()), 1..4)
}

/// The model: timestamp -> id per channel (index: the timestamps only).
#[derive(Debug, Default)]
struct Model {
    index: BTreeMap<i64, ()>,
    data: Vec<BTreeMap<i64, u64>>,
}

impl Model {
    fn check_range(&self, engine: &Engine, g: &Group, r: TimeRange) -> Result<(), TestCaseError> {
        let f = engine.read(r, &g.all_keys()).map_err(|e| TestCaseError::fail(format!("read {r:?}: {e}")))?;
        let want_ts: Vec<i64> = self.index.range(r.start.0..r.end.0).map(|(t, _)| *t).collect();
        let got_ts: Vec<i64> = f.concat(g.idx()).unwrap().map(|s| s.as_timestamps().unwrap().to_vec()).unwrap_or_default();
        prop_assert_eq!(got_ts, want_ts, "index over {:?}", r);
        for (i, c) in g.data.iter().enumerate() {
            let ids: Vec<u64> = self.data[i].range(r.start.0..r.end.0).map(|(_, id)| *id).collect();
            let got = f.concat(c.key).unwrap().unwrap_or_else(|| Series::empty_of(c.data_type));
            prop_assert_eq!(got.data_type(), c.data_type);
            prop_assert_eq!(render(&got), render(&gen_series(c.data_type, &ids)), "channel {} ({}) over {:?}", i, c.data_type, r);
            // Every series read lies inside the range, and the parts are in time order.
            let mut prev_end = TimeStamp::MIN;
            for s in f.get(c.key) {
                prop_assert!(s.time_range().start >= r.start && s.time_range().end <= r.end, "{:?} outside {:?}", s, r);
                prop_assert!(s.time_range().start >= prev_end, "parts out of order");
                prev_end = s.time_range().end;
            }
        }
        Ok(())
    }

    fn check(&self, engine: &Engine, g: &Group, probes: &[(u16, u16)], span: (i64, i64)) -> Result<(), TestCaseError> {
        self.check_range(engine, g, TimeRange::MAX)?;
        let (lo, hi) = span;
        let width = (hi - lo).max(1);
        for &(a, b) in probes {
            let (a, b) = (a.min(b) as i64, a.max(b) as i64);
            let r = TimeRange::from_nanos(lo - 5 + width * a / 1000, lo + width * b / 1000 + 5);
            self.check_range(engine, g, r)?;
        }
        Ok(())
    }
}

fn run(types: Vec<DataType>, ops: Vec<Op>, probes: Vec<(u16, u16)>, base: i64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = common::open(dir.path());
    let g = create_group(&engine, "p", &types);
    let mut model = Model { index: BTreeMap::new(), data: vec![BTreeMap::new(); g.data.len()] };
    let mut next_id = 0u64;
    let mut last = base; // everything written (kept or not) lies before `last`
    let mut first_ts = base; // ... and at or after `first_ts`
    // Extents [first, last] of every session so far: sessions placed in gaps avoid them.
    let mut occupied: Vec<(i64, i64)> = Vec::new();
    for op in ops {
        match op {
            Op::Session { gap, writes, close, place } => {
                // Timestamps relative to the session's first sample.
                let mut rel: Vec<Vec<i64>> = Vec::new();
                let mut t = 0i64;
                for (wi, wop) in writes.iter().enumerate() {
                    if wi > 0 {
                        t += 1 + wop.gap;
                    }
                    let mut ts = Vec::with_capacity(wop.n);
                    for k in 0..wop.n {
                        if k > 0 {
                            t += 1 + (k as i64 * 7919) % wop.spread;
                        }
                        ts.push(t);
                    }
                    rel.push(ts);
                }
                let span = t + 1;
                let mut start = last + gap;
                if let Some(p) = place {
                    occupied.sort_unstable();
                    let mut gaps = vec![(base - 1_000_000, occupied.first().map_or(last, |o| o.0))];
                    gaps.extend(occupied.windows(2).map(|w| (w[0].1, w[1].0)));
                    gaps.retain(|(lo, hi)| hi - lo - 1 > span);
                    if !gaps.is_empty() {
                        let (lo, hi) = gaps[p as usize % gaps.len()];
                        start = lo + 1 + i64::from(p) % (hi - lo - 1 - span);
                    }
                }
                occupied.push((start, start + span - 1));
                first_ts = first_ts.min(start);
                let mut w = engine.open_writer(WriterConfig::new(TimeStamp(start), g.keys()).auto_commit(false)).unwrap();
                // Written since the last commit: (ts, id, omitted data channel).
                let mut pending: Vec<(Vec<i64>, Vec<u64>, Option<usize>)> = Vec::new();
                for (wop, rel_ts) in writes.into_iter().zip(rel) {
                    let ts: Vec<i64> = rel_ts.iter().map(|r| start + r).collect();
                    let ids: Vec<u64> = (next_id..next_id + wop.n as u64).collect();
                    next_id += wop.n as u64;
                    let omit = wop.omit.filter(|&o| o < g.data.len());
                    let mut f = Frame::new().with(g.idx(), Series::timestamps(ts.clone()));
                    for (i, c) in g.data.iter().enumerate() {
                        if Some(i) != omit {
                            f.push(c.key, gen_series(c.data_type, &ids));
                        }
                    }
                    w.write(&f).unwrap();
                    pending.push((ts, ids, omit));
                    if wop.commit {
                        w.commit().unwrap();
                        apply(&mut model, pending.drain(..));
                    }
                }
                last = last.max(start + span);
                if close {
                    let end = w.close().unwrap();
                    prop_assert_eq!(end, TimeStamp(start + span));
                    apply(&mut model, pending.drain(..));
                } else {
                    drop(w);
                }
            }
            Op::Delete { lo, hi, data_only } => {
                let width = (last - first_ts).max(1);
                let r = TimeRange::from_nanos(first_ts + width * i64::from(lo) / 1000, first_ts + width * i64::from(hi) / 1000);
                match data_only.filter(|&d| d < g.data.len()) {
                    Some(d) => {
                        engine.delete(r, &[g.data[d].key]).unwrap();
                        model.data[d].retain(|t, _| !r.contains(TimeStamp(*t)));
                    }
                    None => {
                        engine.delete(r, &g.all_keys()).unwrap();
                        model.index.retain(|t, _| !r.contains(TimeStamp(*t)));
                        for d in &mut model.data {
                            d.retain(|t, _| !r.contains(TimeStamp(*t)));
                        }
                    }
                }
            }
            Op::Reopen => {
                engine.reclaim();
                engine = common::reopen(engine);
                prop_assert!(engine.recovery_report().quarantined.is_empty());
            }
        }
        model.check(&engine, &g, &probes[..probes.len().min(2)], (first_ts, last))?;
    }
    model.check(&engine, &g, &probes, (first_ts, last))?;
    engine.reclaim();
    engine.reclaim();
    let engine = common::reopen(engine);
    prop_assert_eq!(engine.recovery_report().truncated_bytes, 0, "a clean close leaves nothing to repair");
    model.check(&engine, &g, &probes, (first_ts, last))?;

    // The iterator walks exactly the stored index samples, forwards and backwards.
    let want: Vec<i64> = model.index.keys().copied().collect();
    let mut it = engine.open_iterator(IteratorConfig { chunk_size: 37, ..IteratorConfig::new(TimeRange::MAX, g.all_keys()) }).unwrap();
    let mut got = Vec::new();
    if it.seek_first().unwrap() {
        while it.next(IterSpan::Auto).unwrap() {
            got.extend_from_slice(it.value().concat(g.idx()).unwrap().unwrap().as_timestamps().unwrap());
        }
    }
    prop_assert_eq!(&got, &want);
    let mut back: Vec<Vec<i64>> = Vec::new();
    if it.seek_last().unwrap() {
        while it.prev(IterSpan::Samples(23)).unwrap() {
            back.push(it.value().concat(g.idx()).unwrap().unwrap().as_timestamps().unwrap().to_vec());
        }
    }
    prop_assert_eq!(back.into_iter().rev().flatten().collect::<Vec<_>>(), want);
    Ok(())
}

fn apply(model: &mut Model, committed: impl Iterator<Item = (Vec<i64>, Vec<u64>, Option<usize>)>) {
    for (ts, ids, omit) in committed {
        for (&t, &id) in ts.iter().zip(&ids) {
            model.index.insert(t, ());
            for (i, d) in model.data.iter_mut().enumerate() {
                if Some(i) != omit {
                    d.insert(t, id);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn reads_match_the_model(
        types in types(),
        ops in prop::collection::vec(op(), 1..10),
        probes in prop::collection::vec((0u16..1000, 0u16..1000), 1..6),
        base in -1_000_000_000i64..1_000_000_000,
    ) {
        run(types, ops, probes, base)?;
    }
}
