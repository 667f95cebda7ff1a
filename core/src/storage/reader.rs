//! Reads: time range → frame, and the time navigation used by iterators.
//!
//! References are cloned under the channel lock (cheap `Arc` clones); bytes are produced
//! and verified outside it, so readers never hold up writers.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::index::{ChunkRef, IndexPiece, RecordRef};
use super::{ChannelStore, Storage, StorageError};
use crate::channel::ChannelKey;
use crate::telem::{Alignment, DataType, Frame, Series, TimeRange, TimeStamp};

/// Reads fail only with storage errors.
type Result<T> = std::result::Result<T, StorageError>;

/// Channels to read, grouped by index.
#[derive(Debug, Clone)]
pub(crate) struct ReadPlan {
    /// (index store, channels to output in that group: stores, in request order)
    pub groups: Vec<(Arc<ChannelStore>, Vec<Arc<ChannelStore>>)>,
    /// Output order of keys.
    pub order: Vec<ChannelKey>,
}

impl ReadPlan {
    pub(crate) fn new(storage: &Storage, stores: &[Arc<ChannelStore>]) -> Option<ReadPlan> {
        let mut groups: Vec<(Arc<ChannelStore>, Vec<Arc<ChannelStore>>)> = Vec::new();
        for s in stores {
            let idx = s.index?;
            match groups.iter_mut().find(|(i, _)| i.key == idx) {
                Some((_, members)) => members.push(s.clone()),
                None => groups.push((storage.store(idx)?, vec![s.clone()])),
            }
        }
        Some(ReadPlan { groups, order: stores.iter().map(|s| s.key).collect() })
    }

    /// The first group's index (used for sample-count navigation).
    pub(crate) fn lead_index(&self) -> Option<&Arc<ChannelStore>> {
        self.groups.first().map(|(i, _)| i)
    }
}

/// Candidate index chunks overlapping `tr`, cloned under the lock.
fn index_candidates(index: &ChannelStore, tr: TimeRange) -> Vec<(u32, ChunkRef)> {
    let st = index.state.lock();
    let mut out = Vec::new();
    for (k, d) in st.chunks.overlapping(tr) {
        let start = d.chunks.partition_point(|c| c.last_ts < tr.start.0);
        for c in d.chunks.iter().skip(start).take_while(|c| c.first_ts < tr.end.0) {
            out.push((k, c.clone()));
        }
    }
    out
}

fn corrupt(c: &ChunkRef, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt { segment: c.rec.seg.id, offset: c.rec.offset, reason: e.to_string() }
}

/// Index pieces (with their timestamps) that fall in `tr`.
pub(crate) fn index_pieces(index: &ChannelStore, tr: TimeRange) -> Result<Vec<IndexPiece>> {
    let mut out = Vec::new();
    if tr.is_empty() {
        return Ok(out);
    }
    for (domain, c) in index_candidates(index, tr) {
        if c.first_ts >= tr.start.0 && c.last_ts < tr.end.0 {
            out.push(IndexPiece { domain, chunk: c, ts: None });
            continue;
        }
        let ts = c.series(DataType::Timestamp)?;
        let t = ts.as_timestamps().map_err(|e| corrupt(&c, e))?;
        let lo = t.partition_point(|&x| x < tr.start.0);
        let hi = t.partition_point(|&x| x < tr.end.0);
        if lo >= hi {
            continue;
        }
        // lo < hi <= t.len(): both exist.
        let (Some(&first_ts), Some(&last_ts)) = (t.get(lo), t.get(hi - 1)) else { continue };
        let piece = c.sub(c.pos + lo as u32, c.pos + hi as u32);
        let ts = ts.slice(lo..hi).map_err(|e| corrupt(&c, e))?;
        out.push(IndexPiece { domain, chunk: ChunkRef { first_ts, last_ts, ..piece }, ts: Some(ts) });
    }
    Ok(out)
}

fn stamp(s: Series, domain: u32, pos: u32, first: i64, last: i64) -> Series {
    s.with_alignment(Alignment::new(domain, pos)).with_time_range(TimeRange::from_nanos(first, last.saturating_add(1)))
}

/// Read `tr` of the channels in `plan`.
/// The series of `refs`, in order. Raw records are mapped (no work). Each compressed record
/// is decompressed once, however many references cut it (its channel's records need not
/// end where its index's do), on up to four threads when there are several.
fn series_of(refs: &[(usize, ChunkRef)], dt: DataType) -> Result<Vec<Series>> {
    let mut records: Vec<&Arc<RecordRef>> = Vec::new();
    let mut slot: Vec<Option<usize>> = Vec::with_capacity(refs.len());
    for (_, c) in refs {
        if c.rec.header.codec == 0 {
            slot.push(None);
            continue;
        }
        // A record's references are adjacent: compare with the last one only.
        if !records.last().is_some_and(|r| Arc::ptr_eq(r, &c.rec)) {
            records.push(&c.rec);
        }
        slot.push(Some(records.len() - 1));
    }
    let wholes = decompress_all(&records, dt)?;
    refs.iter()
        .zip(slot)
        .map(|((_, c), i)| match i.and_then(|i| wholes.get(i)) {
            Some(whole) => c.cut(whole),
            None => c.series(dt),
        })
        .collect()
}

fn decompress_all(records: &[&Arc<RecordRef>], dt: DataType) -> Result<Vec<Series>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(4).min(records.len());
    if threads < 2 {
        return records.iter().map(|r| r.decompress(dt)).collect();
    }
    let per = records.len().div_ceil(threads);
    let parts: Vec<Result<Vec<Series>>> = std::thread::scope(|s| {
        let handles: Vec<_> = records.chunks(per).map(|part| s.spawn(move || part.iter().map(|r| r.decompress(dt)).collect())).collect();
        // A panic there is a bug: pass it on as it is.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let mut out = Vec::with_capacity(records.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

pub(crate) fn read_channels(plan: &ReadPlan, tr: TimeRange) -> Result<Frame> {
    let span = tracing::info_span!("storage.read", key = "storage/reader", channels = plan.order.len(), start = tr.start.0, end = tr.end.0);
    let _e = span.enter();
    let mut per_key: BTreeMap<ChannelKey, Vec<Series>> = BTreeMap::new();
    for (index, members) in &plan.groups {
        let mut pieces = index_pieces(index, tr)?;
        for m in members {
            let out = per_key.entry(m.key).or_default();
            if m.key == index.key {
                for p in &mut pieces {
                    let ts = p.timestamps()?;
                    out.push(stamp(ts, p.domain, p.chunk.pos, p.chunk.first_ts, p.chunk.last_ts));
                }
                continue;
            }
            // Clone the data references for every index piece under one lock.
            let refs: Vec<Vec<ChunkRef>> = {
                let st = m.state.lock();
                pieces
                    .iter()
                    .map(|p| st.chunks.domain(p.domain).map(|d| d.pieces(p.chunk.pos, p.chunk.end())).unwrap_or_default())
                    .collect()
            };
            let flat: Vec<(usize, ChunkRef)> = refs.into_iter().enumerate().flat_map(|(i, v)| v.into_iter().map(move |c| (i, c))).collect();
            let series = series_of(&flat, m.data_type)?;
            for ((i, c), s) in flat.into_iter().zip(series) {
                let Some(p) = pieces.get_mut(i) else { continue };
                let (first, last) = (p.ts_at_pos(c.pos)?, p.ts_at_pos(c.end() - 1)?);
                out.push(stamp(s, p.domain, c.pos, first, last));
            }
        }
    }
    let mut frame = Frame::with_capacity(per_key.values().map(Vec::len).sum());
    for k in &plan.order {
        if let Some(v) = per_key.remove(k) {
            for s in v {
                frame.push(*k, s);
            }
        }
    }
    tracing::trace!(key = "storage/reader", series = frame.len(), bytes = frame.byte_size(), "read done");
    Ok(frame)
}

/// Timestamps of the index in time order starting at `from` (inclusive), walking chunk by
/// chunk; returns the timestamp of the `n`-th sample at or after `from` (0-based), i.e. the
/// exclusive end of a view holding `n` samples, or `None` if fewer than `n + 1` remain
/// before `limit`.
pub(crate) fn nth_after(index: &ChannelStore, from: TimeStamp, limit: TimeStamp, n: u64) -> Result<Option<TimeStamp>> {
    let mut remaining = n;
    for (_, c) in index_candidates(index, TimeRange::new(from, limit)) {
        let ts = c.series(DataType::Timestamp)?;
        let t = ts.as_timestamps().map_err(|e| corrupt(&c, e))?;
        let lo = t.partition_point(|&x| x < from.0);
        let hi = t.partition_point(|&x| x < limit.0);
        let avail = (hi - lo) as u64;
        if remaining < avail {
            // lo + remaining < hi <= t.len()
            return Ok(t.get(lo + remaining as usize).map(|&x| TimeStamp(x)));
        }
        remaining -= avail;
    }
    Ok(None)
}

/// The start of a view ending at `to` (exclusive) that holds `n` samples, not before
/// `limit`; `None` if fewer than `n` samples lie in `[limit, to)`.
pub(crate) fn nth_before(index: &ChannelStore, to: TimeStamp, limit: TimeStamp, n: u64) -> Result<Option<TimeStamp>> {
    if n == 0 {
        return Ok(Some(to));
    }
    let mut remaining = n;
    let cands = index_candidates(index, TimeRange::new(limit, to));
    for (_, c) in cands.iter().rev() {
        let ts = c.series(DataType::Timestamp)?;
        let t = ts.as_timestamps().map_err(|e| corrupt(c, e))?;
        let lo = t.partition_point(|&x| x < limit.0);
        let hi = t.partition_point(|&x| x < to.0);
        let avail = (hi - lo) as u64;
        if remaining <= avail {
            // lo <= hi - remaining < hi <= t.len()
            return Ok(t.get(hi - remaining as usize).map(|&x| TimeStamp(x)));
        }
        remaining -= avail;
    }
    Ok(None)
}

/// First and last stored timestamps of an index within `bounds`.
pub(crate) fn extent(index: &ChannelStore, bounds: TimeRange) -> Result<Option<TimeRange>> {
    let first = nth_after(index, bounds.start, bounds.end, 0)?;
    let Some(first) = first else { return Ok(None) };
    let last_start = nth_before(index, bounds.end, bounds.start, 1)?;
    Ok(last_start.map(|l| TimeRange::new(first, TimeStamp(l.0.saturating_add(1)))))
}
