//! The pointer index: per channel, per domain, the chunks that hold its samples.
//!
//! A chunk reference points into a record of a segment. References are sorted by position
//! and never overlap; a reference may cover part of a record (after a range delete).
//! Index-channel references also carry their first and last timestamp, so a time lookup is
//! a binary search in memory followed by at most one binary search inside a chunk.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::StorageError;
use super::compress::Codec;
use super::format::{RECORD_HEADER_LEN, RecordHeader, payload_crc};
use super::segment::Segment;
use crate::telem::{DataType, Series, TimeRange};

/// One chunk record in a segment.
#[derive(Debug)]
pub(crate) struct RecordRef {
    pub seg: Arc<Segment>,
    /// Offset of the record header.
    pub offset: u64,
    pub header: RecordHeader,
    pub verified: AtomicBool,
}

impl Drop for RecordRef {
    fn drop(&mut self) {
        self.seg.live_records.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RecordRef {
    /// A reference to the record at `offset`; counts as a live record of the segment.
    pub(crate) fn new(seg: Arc<Segment>, offset: u64, header: RecordHeader, verified: bool) -> RecordRef {
        seg.live_records.fetch_add(1, Ordering::AcqRel);
        RecordRef { seg, offset, header, verified: AtomicBool::new(verified) }
    }

    pub(crate) fn payload_off(&self) -> u64 {
        self.offset + RECORD_HEADER_LEN as u64
    }

    /// The samples of a compressed record, all of them, checksum verified.
    pub(crate) fn decompress(&self, dt: DataType) -> Result<Series, StorageError> {
        self.verify()?;
        let h = &self.header;
        let corrupt = |reason: String| StorageError::Corrupt { segment: self.seg.id, offset: self.offset, reason };
        let codec =
            Codec::from_tag(h.codec).ok_or_else(|| corrupt(format!("unknown codec tag {} (written by a newer build?)", h.codec)))?;
        let payload = self.seg.bytes(self.payload_off(), h.len)?;
        codec.decompress(dt, h.samples as usize, &payload).map_err(|e| corrupt(e.to_string()))
    }

    /// Verify the record checksum once; later calls are free.
    pub(crate) fn verify(&self) -> Result<(), StorageError> {
        if self.verified.load(Ordering::Acquire) {
            return Ok(());
        }
        let payload = self.seg.bytes(self.payload_off(), self.header.len)?;
        let crc = payload_crc([payload.as_ref()]);
        if crc != self.header.crc {
            return Err(StorageError::Corrupt {
                segment: self.seg.id,
                offset: self.offset,
                reason: format!(
                    "checksum mismatch in a chunk of channel {} (stored {:08x}, computed {crc:08x})",
                    self.header.channel, self.header.crc
                ),
            });
        }
        self.verified.store(true, Ordering::Release);
        Ok(())
    }
}

/// A run of samples `[pos, pos + n)` of one domain, stored in `rec` from sample `skip` on.
#[derive(Debug, Clone)]
pub(crate) struct ChunkRef {
    pub pos: u32,
    pub n: u32,
    pub skip: u32,
    /// First and last timestamp (index channels only).
    pub first_ts: i64,
    pub last_ts: i64,
    /// Commit sequence number of the commit that made it visible.
    pub seq: u64,
    pub rec: Arc<RecordRef>,
}

impl ChunkRef {
    pub(crate) fn end(&self) -> u32 {
        self.pos + self.n
    }

    /// The samples of this reference as a series, checksum verified: zero-copy for a raw
    /// record, decompressed (the whole record, then cut) for a compressed one.
    pub(crate) fn series(&self, dt: DataType) -> Result<Series, StorageError> {
        self.rec.verify()?;
        let base = self.rec.payload_off();
        let seg = &self.rec.seg;
        let corrupt = |reason: String| StorageError::Corrupt { segment: seg.id, offset: self.rec.offset, reason };
        if self.rec.header.codec != 0 {
            return self.cut(&self.rec.decompress(dt)?);
        }
        let s = match dt.density() {
            Some(d) => {
                let bytes = seg.bytes(base + u64::from(self.skip) * d as u64, u64::from(self.n) * d as u64)?;
                Series::from_bytes(dt, bytes).map_err(|e| corrupt(e.to_string()))?
            }
            None => {
                let total = u64::from(self.rec.header.samples);
                let offsets = seg.bytes(base + u64::from(self.skip) * 8, (u64::from(self.n) + 1) * 8)?;
                let data_off = base + (total + 1) * 8;
                let data: Bytes = seg.bytes(data_off, self.rec.header.len - (total + 1) * 8)?;
                Series::from_variable(dt, data, offsets).map_err(|e| corrupt(e.to_string()))?
            }
        };
        Ok(s)
    }

    /// This reference's samples out of its whole record's, `whole` (from
    /// [`RecordRef::decompress`]).
    pub(crate) fn cut(&self, whole: &Series) -> Result<Series, StorageError> {
        if self.skip == 0 && self.n as usize == whole.len() {
            return Ok(whole.clone());
        }
        let (from, to) = (self.skip as usize, self.skip as usize + self.n as usize);
        whole.slice(from..to).map_err(|e| StorageError::Corrupt {
            segment: self.rec.seg.id,
            offset: self.rec.offset,
            reason: e.to_string(),
        })
    }

    /// The sub-reference covering positions `[from, to)` (which must lie inside this one).
    pub(crate) fn sub(&self, from: u32, to: u32) -> ChunkRef {
        debug_assert!(from >= self.pos && to <= self.end() && from <= to);
        ChunkRef { pos: from, n: to - from, skip: self.skip + (from - self.pos), ..self.clone() }
    }
}

/// A timestamp series' value at sample `i`.
pub(crate) fn ts_at(s: &Series, i: usize) -> i64 {
    s.as_timestamps().ok().and_then(|t| t.get(i).copied()).unwrap_or(i64::MIN)
}

/// The chunks of one domain, sorted by position.
#[derive(Debug, Default, Clone)]
pub(crate) struct Domain {
    pub chunks: Vec<ChunkRef>,
}

impl Domain {
    pub(crate) fn time_range(&self) -> Option<TimeRange> {
        Some(TimeRange::from_nanos(self.chunks.first()?.first_ts, self.chunks.last()?.last_ts.saturating_add(1)))
    }

    /// Insert keeping position order. Returns false if it overlaps an existing chunk.
    pub(crate) fn insert(&mut self, c: ChunkRef) -> bool {
        // A writer's next chunk follows the last one: no search (it would miss the cache
        // at every step of a long domain).
        if self.chunks.last().is_none_or(|last| last.end() <= c.pos) {
            self.chunks.push(c);
            return true;
        }
        let i = self.chunks.partition_point(|x| x.pos < c.pos);
        if i.checked_sub(1).and_then(|p| self.chunks.get(p)).is_some_and(|prev| prev.end() > c.pos) {
            return false;
        }
        if self.chunks.get(i).is_some_and(|next| next.pos < c.end()) {
            return false;
        }
        self.chunks.insert(i, c);
        true
    }

    /// Replace the run of chunks `old` (consecutive here, compared by record and extent)
    /// with `new`, which covers exactly their positions. False, and nothing changes, if the
    /// run is no longer there as it was.
    pub(crate) fn replace(&mut self, old: &[ChunkRef], new: ChunkRef) -> bool {
        let Some(first) = old.first() else { return false };
        let i = self.chunks.partition_point(|x| x.pos < first.pos);
        let same = |a: &ChunkRef, b: &ChunkRef| Arc::ptr_eq(&a.rec, &b.rec) && a.pos == b.pos && a.n == b.n && a.skip == b.skip;
        let Some(here) = self.chunks.get(i..i + old.len()) else { return false };
        if !here.iter().zip(old).all(|(a, b)| same(a, b)) {
            return false;
        }
        if old.iter().map(|c| u64::from(c.n)).sum::<u64>() != u64::from(new.n) || new.pos != first.pos {
            return false;
        }
        self.chunks.splice(i..i + old.len(), std::iter::once(new));
        true
    }

    /// The chunk pieces covering positions `[from, to)`.
    pub(crate) fn pieces(&self, from: u32, to: u32) -> Vec<ChunkRef> {
        let i = self.chunks.partition_point(|c| c.end() <= from);
        self.chunks.iter().skip(i).take_while(|c| c.pos < to).map(|c| c.sub(c.pos.max(from), c.end().min(to))).filter(|c| c.n > 0).collect()
    }

    /// Remove positions `[from, to)` for chunks committed before `seq`.
    /// Returns the references that lost samples (before trimming) for space reclaim.
    pub(crate) fn remove(&mut self, from: u32, to: u32, seq: u64, dt: DataType) -> Result<Vec<ChunkRef>, StorageError> {
        // Built aside and swapped in at the end: if a trimmed piece cannot be read (its
        // timestamps refreshed), the domain is left as it was, not emptied.
        let mut kept = Vec::with_capacity(self.chunks.len());
        let mut removed = Vec::new();
        for c in &self.chunks {
            if c.end() <= from || c.pos >= to || c.seq >= seq {
                kept.push(c.clone());
                continue;
            }
            removed.push(c.clone());
            if c.pos < from {
                kept.push(with_ts(c.sub(c.pos, from), dt)?);
            }
            if c.end() > to {
                kept.push(with_ts(c.sub(to, c.end()), dt)?);
            }
        }
        self.chunks = kept;
        Ok(removed)
    }
}

/// Refresh first/last timestamps of an index-chunk piece.
fn with_ts(mut c: ChunkRef, dt: DataType) -> Result<ChunkRef, StorageError> {
    if dt == DataType::Timestamp {
        let s = c.series(dt)?;
        c.first_ts = ts_at(&s, 0);
        c.last_ts = ts_at(&s, c.n as usize - 1);
    }
    Ok(c)
}

/// The stored samples of one channel.
#[derive(Debug, Default)]
pub(crate) struct ChannelIndex {
    /// Domains by number. Changed only through the methods below, which keep `by_start`.
    domains: BTreeMap<u32, Domain>,
    /// Each non-empty domain as `(first timestamp, number)`. The domains of one index
    /// never overlap in time, so those overlapping a time range are found by one ordered
    /// walk instead of a scan of every domain (one per writer session).
    by_start: BTreeSet<(i64, u32)>,
}

/// A piece of an index channel that falls in a time range. Its timestamps are loaded only
/// when needed: a data-channel read over whole chunks uses just `first_ts`/`last_ts`.
#[derive(Debug, Clone)]
pub(crate) struct IndexPiece {
    pub domain: u32,
    pub chunk: ChunkRef,
    pub ts: Option<Series>,
}

impl IndexPiece {
    /// The timestamps of this piece.
    pub(crate) fn timestamps(&mut self) -> Result<Series, StorageError> {
        if let Some(s) = &self.ts {
            return Ok(s.clone());
        }
        let s = self.chunk.series(DataType::Timestamp)?;
        self.ts = Some(s.clone());
        Ok(s)
    }

    /// Timestamp of position `pos` (inside the piece).
    pub(crate) fn ts_at_pos(&mut self, pos: u32) -> Result<i64, StorageError> {
        if pos == self.chunk.pos {
            return Ok(self.chunk.first_ts);
        }
        if pos + 1 == self.chunk.end() {
            return Ok(self.chunk.last_ts);
        }
        Ok(ts_at(&self.timestamps()?, (pos - self.chunk.pos) as usize))
    }
}

impl ChannelIndex {
    /// Every domain, by number.
    pub(crate) fn domains(&self) -> &BTreeMap<u32, Domain> {
        &self.domains
    }

    /// One domain.
    pub(crate) fn domain(&self, domain: u32) -> Option<&Domain> {
        self.domains.get(&domain)
    }

    /// Insert a chunk into a domain; false if it overlaps a chunk there (nothing changes).
    pub(crate) fn insert(&mut self, domain: u32, c: ChunkRef) -> bool {
        self.change(domain, |d| d.insert(c)).unwrap_or(false)
    }

    /// Replace a run of chunks of a domain with one covering the same positions (see
    /// [`Domain::replace`]).
    pub(crate) fn replace(&mut self, domain: u32, old: &[ChunkRef], new: ChunkRef) -> bool {
        if !self.domains.contains_key(&domain) {
            return false;
        }
        self.change(domain, |d| d.replace(old, new)).unwrap_or(false)
    }

    /// Remove positions `[from, to)` of a domain for chunks committed before `seq` (see
    /// [`Domain::remove`]); a domain left empty is dropped.
    pub(crate) fn remove(&mut self, domain: u32, from: u32, to: u32, seq: u64, dt: DataType) -> Result<Vec<ChunkRef>, StorageError> {
        if !self.domains.contains_key(&domain) {
            return Ok(Vec::new());
        }
        self.change(domain, |d| d.remove(from, to, seq, dt)).unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Run `f` on a domain (created empty if absent), keeping `by_start` in step and
    /// dropping the domain if it is left empty.
    fn change<R>(&mut self, domain: u32, f: impl FnOnce(&mut Domain) -> R) -> Option<R> {
        let d = self.domains.entry(domain).or_default();
        let before = d.time_range().map(|r| r.start.0);
        let r = f(d);
        let after = d.time_range().map(|r| r.start.0);
        if after.is_none() {
            self.domains.remove(&domain);
        }
        if before != after {
            if let Some(b) = before {
                self.by_start.remove(&(b, domain));
            }
            if let Some(a) = after {
                self.by_start.insert((a, domain));
            }
        }
        Some(r)
    }

    /// The time range of the domain holding time `t`, if one does.
    pub(crate) fn containing(&self, t: i64) -> Option<TimeRange> {
        let &(_, k) = self.by_start.range(..=(t, u32::MAX)).next_back()?;
        self.domains.get(&k)?.time_range().filter(|r| r.contains(crate::telem::TimeStamp(t)))
    }

    /// The first timestamp of the earliest domain starting after `t`.
    pub(crate) fn next_start_after(&self, t: i64) -> Option<i64> {
        self.by_start.range((t.saturating_add(1), 0)..).next().map(|&(start, _)| start)
    }

    /// The domains overlapping `tr`, in time order: a walk back from the last domain that
    /// starts before `tr.end`, stopping at the first that ends at or before `tr.start`
    /// (domains never overlap in time, so every earlier one ends earlier still). O(log n +
    /// the domains returned).
    pub(crate) fn overlapping(&self, tr: TimeRange) -> Vec<(u32, &Domain)> {
        let mut out = Vec::new();
        for &(_, k) in self.by_start.range(..(tr.end.0, 0)).rev() {
            let Some(d) = self.domains.get(&k) else { continue };
            let Some(r) = d.time_range() else { continue };
            if r.end.0 <= tr.start.0 {
                break;
            }
            if r.overlaps(&tr) {
                out.push((k, d));
            }
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::storage::format::RecordHeader;
    use crate::telem::Alignment;

    fn chunk(seg: &Arc<Segment>, pos: u32, n: u32, seq: u64) -> ChunkRef {
        let h = RecordHeader::chunk(DataType::U8, 1, n, Alignment::new(0, pos), u64::from(n), (0, 0));
        ChunkRef { pos, n, skip: 0, first_ts: 0, last_ts: 0, seq, rec: Arc::new(RecordRef::new(seg.clone(), 64, h, true)) }
    }

    fn covered(d: &Domain) -> BTreeSet<u32> {
        d.chunks.iter().flat_map(|c| c.pos..c.end()).collect()
    }

    proptest! {
        /// `ChannelIndex::overlapping` finds exactly the domains a scan of every domain finds,
        /// in time order, while domains are numbered out of time order, grow, lose their
        /// first chunk or disappear.
        #[test]
        fn overlapping_domains_match_a_scan(
            spans in proptest::collection::vec((1i64..50, 1i64..50, 1u32..4), 1..30),
            order in any::<u64>(),
            drops in proptest::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..8),
            queries in proptest::collection::vec((0i64..3_000, 0i64..300), 1..20),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let seg = Segment::create(dir.path(), 1, 1 << 20, Default::default()).unwrap();
            let mut idx = ChannelIndex::default();
            // Domains in time order, each after a gap, numbered in a scrambled order.
            let mut t = 0i64;
            let mut numbers: Vec<u32> = (0..spans.len() as u32).collect();
            numbers.sort_by_key(|&k| (u64::from(k) ^ order).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for (&(gap, len, chunks), &k) in spans.iter().zip(&numbers) {
                t += gap;
                for c in 0..chunks {
                    let mut ch = chunk(&seg, c * 10, 10, 1);
                    ch.first_ts = t + i64::from(c) * len;
                    ch.last_ts = ch.first_ts + len - 1;
                    prop_assert!(idx.insert(k, ch));
                }
                t += i64::from(chunks) * len;
            }
            for (which, whole) in drops {
                let k = *which.get(&numbers);
                // The first chunk only (the domain's start moves) or the whole domain.
                idx.remove(k, 0, if whole { u32::MAX } else { 10 }, u64::MAX, DataType::U8).unwrap();
            }
            let starts: BTreeSet<(i64, u32)> = idx.domains().iter().filter_map(|(k, d)| Some((d.time_range()?.start.0, *k))).collect();
            prop_assert_eq!(&idx.by_start, &starts, "by_start follows every change");
            for (start, len) in queries {
                let tr = TimeRange::from_nanos(start, start + len);
                let ranges: Vec<TimeRange> = idx.domains().values().filter_map(Domain::time_range).collect();
                prop_assert_eq!(idx.containing(start), ranges.iter().copied().find(|r| r.contains(tr.start)));
                prop_assert_eq!(idx.next_start_after(start), ranges.iter().map(|r| r.start.0).filter(|&s| s > start).min());
                let got: Vec<u32> = idx.overlapping(tr).into_iter().map(|(k, _)| k).collect();
                let mut want: Vec<(i64, u32)> = idx
                    .domains()
                    .iter()
                    .filter_map(|(k, d)| d.time_range().filter(|r| r.overlaps(&tr)).map(|r| (r.start.0, *k)))
                    .collect();
                want.sort_unstable();
                prop_assert_eq!(got, want.into_iter().map(|(_, k)| k).collect::<Vec<_>>(), "query {:?}", tr);
            }
        }

        /// Inserting random chunks keeps the index sorted and non-overlapping (overlaps are
        /// refused), `pieces` returns exactly the covered positions of a window, and
        /// `remove` deletes exactly the older chunks' positions in its window.
        #[test]
        fn domain_matches_a_position_set_model(
            inserts in proptest::collection::vec((0u32..500, 1u32..40, 0u64..10), 1..60),
            window in (0u32..560, 0u32..560),
            del in (0u32..560, 0u32..560, 0u64..12),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let seg = Segment::create(dir.path(), 1, 1 << 20, Default::default()).unwrap();
            let mut d = Domain::default();
            let mut model: Vec<(u32, u32, u64)> = Vec::new();
            for (pos, n, seq) in inserts {
                let overlaps = model.iter().any(|&(p, m, _)| pos < p + m && p < pos + n);
                prop_assert_eq!(d.insert(chunk(&seg, pos, n, seq)), !overlaps);
                if !overlaps {
                    model.push((pos, n, seq));
                }
                prop_assert!(d.chunks.windows(2).all(|w| w[0].end() <= w[1].pos), "sorted and disjoint");
            }
            let (a, b) = (window.0.min(window.1), window.0.max(window.1));
            let got: Vec<u32> = d.pieces(a, b).iter().flat_map(|c| c.pos..c.end()).collect();
            let want: Vec<u32> = covered(&d).into_iter().filter(|p| *p >= a && *p < b).collect();
            prop_assert_eq!(got, want);
            let (from, to, seq) = (del.0.min(del.1), del.0.max(del.1), del.2);
            let before = covered(&d);
            d.remove(from, to, seq, DataType::U8).unwrap();
            let after = covered(&d);
            for p in before {
                let old = model.iter().any(|&(q, m, s)| p >= q && p < q + m && s < seq);
                let should_remain = !(p >= from && p < to && old);
                prop_assert_eq!(after.contains(&p), should_remain, "position {}", p);
            }
            prop_assert!(d.chunks.windows(2).all(|w| w[0].end() <= w[1].pos));
            for c in &d.chunks {
                prop_assert_eq!(c.skip, c.pos - model.iter().find(|&&(q, m, _)| c.pos >= q && c.pos < q + m).map_or(0, |&(q, _, _)| q));
            }
        }
    }
}
