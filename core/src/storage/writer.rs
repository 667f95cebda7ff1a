//! The storage side of a writer: validation, buffering, chunk and commit records.
//!
//! A writer buffers each channel's samples since its last commit ("pending"). Large series
//! are kept as shared buffers (no copy until `write(2)` moves them into the page cache);
//! small ones are copied into a staging buffer so one-sample frames cost a `memcpy`, not an
//! allocation. A commit writes every pending chunk plus a commit record in one vectored
//! write, then publishes the chunk references to readers.

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::format::{KIND_COMMIT, RECORD_HEADER_LEN, RecordHeader, pad8, payload_crc};
use super::index::{ChunkRef, RecordRef};
use super::rules;
use super::segment::Segment;
use super::{ChannelStore, Durability, RegionDomain, RegionState, Storage, StorageError, WriteError};
use crate::channel::ChannelKey;
type Result<T, E = crate::storage_error::StorageFailure> = std::result::Result<T, E>;
use crate::telem::{Alignment, DataType, Frame, Series, TimeRange, TimeStamp};

/// Series at least this large are kept by reference instead of copied into staging.
const ZERO_COPY_MIN: usize = 4 << 10;
/// A channel's pending bytes past which they are written out before the commit.
const PENDING_FLUSH: u64 = 64 << 20;
static ZEROS: [u8; 8] = [0; 8];

/// The zero bytes that pad a payload of `len` bytes to a multiple of 8.
fn padding(len: u64) -> &'static [u8] {
    ZEROS.get(..(pad8(len) - len) as usize).expect("pad8 rounds up to the next multiple of 8, so padding is under 8 bytes")
}

type RegionGuard<'a> = parking_lot::MutexGuard<'a, RegionState>;
/// The series of one write, each with its slot.
type SlotSeries = Vec<(usize, Series)>;

/// One index channel and the data channels a writer writes with it.
#[derive(Debug, Clone)]
pub(crate) struct WriterGroupSpec {
    pub index: Arc<ChannelStore>,
    pub data: Vec<Arc<ChannelStore>>,
}

#[derive(Debug)]
struct Pending {
    store: Arc<ChannelStore>,
    dt: DataType,
    domain: u32,
    pos: u32,
    n: u32,
    parts: Vec<Bytes>,
    staging: Vec<u8>,
    offsets: Vec<u64>,
    first_ts: i64,
    last_ts: i64,
}

impl Pending {
    fn new(store: Arc<ChannelStore>) -> Pending {
        Pending {
            dt: store.data_type,
            store,
            domain: 0,
            pos: 0,
            n: 0,
            parts: Vec::new(),
            staging: Vec::new(),
            offsets: Vec::new(),
            first_ts: 0,
            last_ts: 0,
        }
    }

    fn payload_len(&self) -> u64 {
        if self.dt.is_variable() {
            8 * self.offsets.len() as u64 + self.staging.len() as u64
        } else {
            self.parts.iter().map(|p| p.len() as u64).sum::<u64>() + self.staging.len() as u64
        }
    }

    fn append(&mut self, s: &Series, domain: u32, pos: u32) {
        if self.n == 0 {
            self.domain = domain;
            self.pos = pos;
            if self.dt.is_variable() {
                self.offsets.clear();
                self.offsets.push(0);
            }
        }
        match self.dt.density() {
            Some(_) => {
                let data = s.data();
                if data.len() >= ZERO_COPY_MIN {
                    if !self.staging.is_empty() {
                        self.parts.push(Bytes::from(std::mem::take(&mut self.staging)));
                    }
                    self.parts.push(data.clone());
                } else {
                    self.staging.extend_from_slice(data);
                }
            }
            None => {
                for i in 0..s.len() {
                    self.staging.extend_from_slice(s.value_bytes(i).unwrap_or_default());
                    self.offsets.push(self.staging.len() as u64);
                }
            }
        }
        if self.dt == DataType::Timestamp {
            let ts = s.as_timestamps().unwrap_or_default();
            if let (Some(&first), Some(&last)) = (ts.first(), ts.last()) {
                if self.n == 0 {
                    self.first_ts = first;
                }
                self.last_ts = last;
            }
        }
        self.n += s.len() as u32;
    }

    fn clear(&mut self) {
        self.n = 0;
        self.parts.clear();
        self.staging.clear();
        self.offsets.clear();
    }
}

#[derive(Debug)]
struct Group {
    index_slot: usize,
    data_slots: Vec<usize>,
    region: Arc<RegionDomain>,
    /// Last timestamp this writer wrote in the group.
    last_ts_seen: Option<i64>,
}

/// Where a written series will sit in storage: its alignment and time range, the same a
/// read of it returns.
pub(crate) type Stamp = (Alignment, TimeRange);

/// What [`StorageWriter::write`] tells its tap.
pub(crate) enum Tap<'a> {
    /// The frame is valid and its positions are reserved; the region locks are held. One
    /// stamp per series of the frame, in order (an empty series gets the default stamp).
    Valid(&'a [Stamp]),
    /// The region locks are released.
    Released,
}

/// A group that one write touches: its index channel, sample count and region.
#[derive(Debug)]
struct WrittenGroup {
    group: usize,
    index: Arc<ChannelStore>,
    samples: u64,
    region: Arc<RegionDomain>,
}

/// The storage part of one open writer.
#[derive(Debug)]
pub(crate) struct StorageWriter {
    /// Its key in the experiment tree, `storage/writer/<id>` (the id its framer writer
    /// handed down): carried by its log events and spans.
    key: Box<str>,
    storage: Arc<Storage>,
    durability: Durability,
    start: TimeStamp,
    seg: Option<Arc<Segment>>,
    /// Segment length after our last commit record: what an abort truncates back to.
    committed_len: u64,
    groups: Vec<Group>,
    slots: Vec<Pending>,
    slot_of: HashMap<ChannelKey, usize>,
    group_of: Vec<usize>,
    uncommitted: Vec<(usize, u32, ChunkRef)>,
    released: bool,
}

impl StorageWriter {
    /// Claim the channels and allocate a domain per index group.
    pub(crate) fn open(
        id: u64,
        storage: Arc<Storage>,
        specs: Vec<WriterGroupSpec>,
        start: TimeStamp,
        end: TimeStamp,
        durability: Durability,
    ) -> Result<StorageWriter> {
        let mut w = StorageWriter {
            key: format!("storage/writer/{id}").into(),
            storage,
            durability,
            start,
            seg: None,
            committed_len: 0,
            groups: Vec::new(),
            slots: Vec::new(),
            slot_of: HashMap::new(),
            group_of: Vec::new(),
            uncommitted: Vec::new(),
            released: false,
        };
        for spec in specs {
            // On error `w` is dropped, which releases what was claimed so far.
            let gi = w.groups.len();
            let region = claim_index(&spec.index, start, end)?;
            let index_slot = w.add_slot(spec.index.clone(), gi);
            let mut data_slots = Vec::with_capacity(spec.data.len());
            for d in spec.data {
                d.state.lock().writers += 1;
                data_slots.push(w.add_slot(d, gi));
            }
            w.groups.push(Group { index_slot, data_slots, region, last_ts_seen: None });
        }
        tracing::debug!(key = &*w.key, groups = w.groups.len(), channels = w.slots.len(), start = %start, "storage writer opened");
        Ok(w)
    }

    fn add_slot(&mut self, store: Arc<ChannelStore>, group: usize) -> usize {
        let slot = self.slots.len();
        self.slot_of.insert(store.key, slot);
        self.slots.push(Pending::new(store));
        self.group_of.push(group);
        slot
    }

    /// The slot `slot`. Slots are only added (in `open`), and every slot index kept in
    /// `slot_of`, `groups`, `group_of` or `uncommitted` was returned by `add_slot`.
    fn pending(&self, slot: usize) -> &Pending {
        self.slots.get(slot).expect("slot indices are handed out by add_slot and slots never shrink")
    }

    fn pending_mut(&mut self, slot: usize) -> &mut Pending {
        self.slots.get_mut(slot).expect("slot indices are handed out by add_slot and slots never shrink")
    }

    /// Validate `frame` completely, reserve its positions, call `tap` with [`Tap::Valid`]
    /// (the relay queues it for streamers; with `stamped`, each series' storage alignment
    /// and time range, else no stamps), release the region locks and call `tap` with
    /// [`Tap::Released`] (the relay wakes the streamers), then buffer it. On error nothing
    /// is buffered or published. Regions are locked from validation to reservation, so
    /// writers sharing a region interleave whole frames, in storage and on the relay alike.
    pub(crate) fn write(&mut self, frame: &Frame, stamped: bool, tap: &mut dyn FnMut(Tap)) -> Result<()> {
        let (items, totals) = self.typed_series(frame)?;
        let mut active = self.written_groups(&totals)?;
        // Lock the regions in a global order (index key) so writers never deadlock.
        active.sort_by_key(|w| w.index.key);
        let regions: Vec<Arc<RegionDomain>> = active.iter().map(|w| w.region.clone()).collect();
        let mut guards: Vec<RegionGuard<'_>> = regions.iter().map(|r| r.state.lock()).collect();
        let new_last = self.check_timestamps(&active, &guards, &items)?;
        // Valid: reserve, tap it off to the relay stamped with its storage positions, then
        // buffer. Nothing below rejects the frame.
        let cursor = self.reserve(&active, &new_last, &mut guards);
        let stamps = if stamped { self.stamps(&items, &cursor) } else { Vec::new() };
        tap(Tap::Valid(&stamps));
        drop(guards);
        tap(Tap::Released);
        for (w, last) in active.iter().zip(new_last) {
            if let Some(g) = self.groups.get_mut(w.group) {
                g.last_ts_seen = Some(last);
            }
        }
        self.buffer(&items, cursor)
    }

    /// Phase 1: every series belongs to the writer and has its channel's type (an `i64`
    /// series for a timestamp channel is cast). Returns the series by slot and the sample
    /// count per slot.
    fn typed_series(&self, frame: &Frame) -> Result<(SlotSeries, Vec<u64>)> {
        let mut items: SlotSeries = Vec::with_capacity(frame.len());
        let mut totals = vec![0u64; self.slots.len()];
        for (key, s) in frame.iter() {
            let Some(&slot) = self.slot_of.get(&key) else {
                return Err(WriteError::NotInWriter { channel: key }.into());
            };
            let p = self.pending(slot);
            rules::check_type(&p.store.name, p.dt, s.data_type())?;
            let s = if s.data_type() == p.dt { s.clone() } else { s.clone().cast(p.dt)? };
            if let Some(t) = totals.get_mut(slot) {
                *t += s.len() as u64;
            }
            items.push((slot, s));
        }
        Ok((items, totals))
    }

    /// Phase 2, per index group and without locks: index presence, lengths and the size
    /// cap. Returns the groups this write touches.
    fn written_groups(&self, totals: &[u64]) -> Result<Vec<WrittenGroup>> {
        let count = |slot: usize| totals.get(slot).copied().unwrap_or(0);
        let mut active = Vec::new();
        for (gi, g) in self.groups.iter().enumerate() {
            let index = &self.pending(g.index_slot).store;
            let samples = count(g.index_slot);
            let data = g.data_slots.iter().map(|&d| (self.pending(d).store.name.as_str(), count(d)));
            if rules::check_group(&index.name, samples, data)? {
                active.push(WrittenGroup { group: gi, index: index.clone(), samples, region: g.region.clone() });
            }
        }
        Ok(active)
    }

    /// Phase 3, under the region locks: index timestamps strictly increasing within the
    /// frame and after the region's last, not before this writer's start, below the
    /// region's limit. Returns the new last timestamp per written group.
    fn check_timestamps(&self, active: &[WrittenGroup], guards: &[RegionGuard<'_>], items: &[(usize, Series)]) -> Result<Vec<i64>> {
        let mut new_last: Vec<i64> = Vec::with_capacity(active.len());
        for (w, rs) in active.iter().zip(guards) {
            let index_slot = self.group(w.group).index_slot;
            let mut rule = rules::IndexTimestamps::new(&w.index.name, self.start, rs.last_ts, Some(rs.limit));
            for (_, s) in items.iter().filter(|(slot, _)| *slot == index_slot) {
                rule.check(s.as_timestamps()?)?;
            }
            new_last.push(rule.last().unwrap_or(i64::MIN));
        }
        Ok(new_last)
    }

    /// Phase 4, still under the region locks: reserve each written group's positions in its
    /// region's domain (rolling to a new domain when it is full). Returns where each slot's
    /// series of this frame go.
    fn reserve(&self, active: &[WrittenGroup], new_last: &[i64], guards: &mut [RegionGuard<'_>]) -> Vec<Option<(u32, u32)>> {
        let mut cursor: Vec<Option<(u32, u32)>> = vec![None; self.slots.len()];
        for ((w, rs), &last) in active.iter().zip(guards.iter_mut()).zip(new_last) {
            if u64::from(rs.next_pos) + w.samples > rules::DOMAIN_CAPACITY {
                let mut st = w.index.state.lock();
                rs.domain = st.next_domain;
                st.next_domain += 1;
                rs.next_pos = 0;
                tracing::debug!(key = &*self.key, index = %w.index.name, domain = rs.domain, "domain full; rolled to a new domain");
            }
            let g = self.group(w.group);
            for slot in std::iter::once(g.index_slot).chain(g.data_slots.iter().copied()) {
                if let Some(c) = cursor.get_mut(slot) {
                    *c = Some((rs.domain, rs.next_pos));
                }
            }
            // At most DOMAIN_CAPACITY (checked by rules::check_group), so it fits a u32.
            rs.next_pos += w.samples as u32;
            rs.last_ts = Some(last);
        }
        cursor
    }

    /// Each series' alignment (from its slot's reserved position, advancing over the
    /// slot's earlier series in the frame) and time range (the group's index timestamps at
    /// those positions), in frame order.
    fn stamps(&self, items: &[(usize, Series)], cursor: &[Option<(u32, u32)>]) -> Vec<Stamp> {
        let mut at: Vec<u32> = vec![0; self.slots.len()];
        // Each index slot's timestamp series in frame order, gathered once.
        let mut index: HashMap<usize, Vec<&[i64]>> = HashMap::new();
        for (slot, s) in items {
            if let Ok(ts) = s.as_timestamps() {
                index.entry(*slot).or_default().push(ts);
            }
        }
        items
            .iter()
            .map(|(slot, s)| {
                let (Some(Some((domain, start))), Some(offset), false) = (cursor.get(*slot), at.get_mut(*slot), s.is_empty()) else {
                    return Stamp::default();
                };
                let o = *offset;
                *offset += s.len() as u32;
                let index_slot = self.group(self.group_of.get(*slot).copied().unwrap_or_default()).index_slot;
                let ts = |i: u32| index.get(&index_slot).and_then(|parts| ts_at(parts, i));
                let tr = match (ts(o), ts(o + s.len() as u32 - 1)) {
                    (Some(first), Some(last)) => TimeRange::new(TimeStamp(first), TimeStamp(last.saturating_add(1))),
                    _ => TimeRange::default(),
                };
                (Alignment::new(*domain, start + o), tr)
            })
            .collect()
    }

    /// Phase 5: buffer the series at their reserved positions, writing out a slot's pending
    /// chunk first if the new series does not continue it, and any slot grown too large.
    fn buffer(&mut self, items: &[(usize, Series)], mut cursor: Vec<Option<(u32, u32)>>) -> Result<()> {
        for (slot, s) in items {
            let Some(Some((domain, pos))) = cursor.get(*slot).copied() else { continue };
            let p = self.pending(*slot);
            if p.n > 0 && (p.domain != domain || p.pos + p.n != pos) {
                self.write_records(&[*slot], false)?;
            }
            self.pending_mut(*slot).append(s, domain, pos);
            if let Some(c) = cursor.get_mut(*slot) {
                *c = Some((domain, pos + s.len() as u32));
            }
        }
        let big: Vec<usize> = self.slots.iter().enumerate().filter(|(_, p)| p.payload_len() > PENDING_FLUSH).map(|(s, _)| s).collect();
        if !big.is_empty() {
            self.write_records(&big, false)?;
        }
        Ok(())
    }

    fn group(&self, gi: usize) -> &Group {
        self.groups.get(gi).expect("group indices come from enumerating groups, which only grow in open")
    }

    /// The end of what this writer has written so far (last timestamp + 1), or its start.
    pub(crate) fn end(&self) -> TimeStamp {
        self.groups.iter().filter_map(|g| g.last_ts_seen).max().map_or(self.start, |t| TimeStamp(t.saturating_add(1)))
    }

    /// True if samples are buffered or written but not committed.
    pub(crate) fn has_uncommitted(&self) -> bool {
        !self.uncommitted.is_empty() || self.slots.iter().any(|p| p.n > 0)
    }

    fn segment(&mut self) -> Result<Arc<Segment>> {
        if let Some(s) = &self.seg {
            return Ok(s.clone());
        }
        let s = self.storage.segments.acquire()?;
        self.committed_len = s.len();
        self.seg = Some(s.clone());
        Ok(s)
    }

    /// Write the pending chunks of `slots` (and a commit record if `commit`) in one write.
    fn write_records(&mut self, slots: &[usize], commit: bool) -> Result<Option<u64>> {
        let seg = self.segment()?;
        // Per chunk record: its slot, header, encoded header and offsets table.
        let mut chunks: Vec<(usize, RecordHeader, [u8; RECORD_HEADER_LEN], Vec<u8>)> = Vec::with_capacity(slots.len());
        for &slot in slots {
            let p = self.pending(slot);
            if p.n == 0 {
                continue;
            }
            let len = p.payload_len();
            let mut h = RecordHeader::chunk(p.dt, p.store.key, p.n, Alignment::new(p.domain, p.pos), len, (p.first_ts, p.last_ts));
            let offs: Vec<u8> = if p.dt.is_variable() { p.offsets.iter().flat_map(|o| o.to_le_bytes()).collect() } else { Vec::new() };
            h.crc = payload_crc(
                std::iter::once(offs.as_slice()).chain(p.parts.iter().map(|b| b.as_ref())).chain(std::iter::once(p.staging.as_slice())),
            );
            chunks.push((slot, h, h.encode(), offs));
        }
        let chunk_count = self.uncommitted.len() + chunks.len();
        let seq = if commit { Some(self.storage.next_seq()) } else { None };
        let commit_header = seq.map(|seq| RecordHeader::marker(KIND_COMMIT, chunk_count as u32, seq as i64, TimeStamp::now().0).encode());
        if chunks.is_empty() && commit_header.is_none() {
            return Ok(None);
        }
        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(chunks.len() * 4 + 1);
        let mut total = 0u64;
        for (slot, h, header, offs) in &chunks {
            let p = self.pending(*slot);
            iov.push(IoSlice::new(header));
            iov.push(IoSlice::new(offs));
            for part in &p.parts {
                iov.push(IoSlice::new(part));
            }
            iov.push(IoSlice::new(&p.staging));
            iov.push(IoSlice::new(padding(h.len)));
            total += h.footprint();
        }
        if let Some(header) = &commit_header {
            iov.push(IoSlice::new(header));
            total += RECORD_HEADER_LEN as u64;
        }
        iov.retain(|s| !s.is_empty());
        let records = chunks.len() + usize::from(commit_header.is_some());
        let _span = tracing::trace_span!("storage.append", key = &*self.key, segment = seg.id, bytes = total, records).entered();
        let base = seg.append(&mut iov, total)?;
        drop(iov);
        let samples = chunks.iter().map(|(slot, ..)| u64::from(self.pending(*slot).n)).sum();
        self.storage.segments.stats.appended(samples, total, commit_header.is_some());
        let mut off = base;
        for (slot, h, _, _) in chunks {
            let rec = Arc::new(RecordRef::new(seg.clone(), off, h, true));
            off += h.footprint();
            let p = self.pending_mut(slot);
            let (first_ts, last_ts) = if p.dt == DataType::Timestamp { (p.first_ts, p.last_ts) } else { (0, 0) };
            let c = ChunkRef { pos: p.pos, n: p.n, skip: 0, first_ts, last_ts, seq: 0, rec };
            let domain = p.domain;
            p.clear();
            self.uncommitted.push((slot, domain, c));
        }
        Ok(seq)
    }

    /// Commit everything written so far; returns the committed end (last timestamp + 1).
    pub(crate) fn commit(&mut self) -> Result<TimeStamp> {
        if self.storage.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed { what: "the engine".into() }.into());
        }
        if !self.has_uncommitted() {
            return Ok(self.end());
        }
        let storage = self.storage.clone();
        let _guard = storage.commit_lock.read();
        let dirty: Vec<usize> = self.slots.iter().enumerate().filter(|(_, p)| p.n > 0).map(|(s, _)| s).collect();
        let span = tracing::info_span!("storage.commit", key = &*self.key, chunks = dirty.len() + self.uncommitted.len());
        let _e = span.enter();
        let seq = self.write_records(&dirty, true)?.unwrap_or(0);
        let seg = self.seg.clone().ok_or(StorageError::SegmentFailed { segment: 0 })?;
        match self.durability {
            Durability::Commit => seg.sync()?,
            Durability::Interval { bytes, .. } => {
                seg.wants_sync.store(true, Ordering::Release);
                if seg.unsynced() >= bytes {
                    self.storage.sync_signal.notify();
                }
            }
            Durability::None => {}
        }
        for (slot, domain, mut c) in std::mem::take(&mut self.uncommitted) {
            c.seq = seq;
            let store = &self.pending(slot).store;
            if !store.state.lock().chunks.insert(domain, c) {
                tracing::error!(key = &*self.key, channel = %store.name, domain, "overlapping chunk on commit; skipped");
            }
        }
        self.committed_len = seg.len();
        seg.mark_committed();
        if seg.len() >= self.storage.segments.cap() {
            // Full and fully committed: seal it so recovery trusts it without re-reading.
            if let Some(old) = self.seg.take() {
                self.seal(&old);
                self.storage.segments.release(old);
            }
        }
        let end = self.end();
        tracing::trace!(key = &*self.key, seq, end = %end, "committed");
        Ok(end)
    }

    /// Mark a clean end of this writer's records in `seg`: synced first (unless durability
    /// is `None`), so everything before a seal is known complete.
    fn seal(&self, seg: &Segment) {
        if self.durability != Durability::None
            && let Err(e) = seg.sync()
        {
            tracing::error!(key = &*self.key, segment = seg.id, error = %e, "sync before seal failed; segment left unsealed");
            return;
        }
        // Sealed after a commit or after cutting what was not committed.
        if let Err(e) = seg.append_seal() {
            tracing::warn!(key = &*self.key, segment = seg.id, error = %e, "could not write seal record");
        }
    }

    /// Drop uncommitted samples and give the channels back. Idempotent.
    pub(crate) fn release(&mut self, seal: bool) {
        if self.released {
            return;
        }
        self.released = true;
        if self.storage.closed.load(Ordering::Acquire) {
            // The engine is closed (and the directory may be reopened): leave files alone;
            // recovery handles whatever this writer left uncommitted.
            self.seg = None;
        }
        if let Some(seg) = self.seg.take() {
            let mut ok = true;
            if !self.uncommitted.is_empty() {
                // Records with no commit record after them would be committed by the next
                // writer's commit: cut them off.
                tracing::warn!(key = &*self.key, records = self.uncommitted.len(), "discarding uncommitted samples of a closed writer");
                ok = seg.truncate_to(self.committed_len).is_ok();
            }
            if ok && seal {
                self.seal(&seg);
            }
            if ok {
                self.storage.segments.release(seg);
            }
        }
        if self.slots.iter().any(|p| p.n > 0) {
            tracing::warn!(key = &*self.key, "discarding buffered samples of a writer closed without commit");
        }
        self.uncommitted.clear();
        for p in &mut self.slots {
            p.clear();
            let mut st = p.store.state.lock();
            st.writers = st.writers.saturating_sub(1);
        }
        for g in &self.groups {
            let store = &self.pending(g.index_slot).store;
            let mut st = store.state.lock();
            if g.region.writers.fetch_sub(1, Ordering::AcqRel) == 1 {
                st.regions.retain(|r| !Arc::ptr_eq(r, &g.region));
            }
        }
    }
}

impl Drop for StorageWriter {
    fn drop(&mut self) {
        self.release(false);
    }
}

/// The `i`-th timestamp across `parts` (an index slot's series of one frame, in order).
fn ts_at(parts: &[&[i64]], mut i: u32) -> Option<i64> {
    for ts in parts {
        match ts.get(i as usize) {
            Some(&t) => return Some(t),
            None => i -= ts.len() as u32,
        }
    }
    None
}

/// Claim an index channel for a writer over `[start, end)`: join the region of writers
/// whose ranges overlap, or start a new one. Refused if the start falls inside stored data.
fn claim_index(store: &Arc<ChannelStore>, start: TimeStamp, end: TimeStamp) -> Result<Arc<RegionDomain>> {
    let mut st = store.state.lock();
    let range = TimeRange::new(start, end.max(TimeStamp(start.0.saturating_add(1))));
    let overlapping: Vec<&Arc<RegionDomain>> =
        st.regions.iter().filter(|r| TimeRange::from_nanos(r.start, r.end).overlaps(&range)).collect();
    if overlapping.len() > 1 {
        let spans: Vec<String> = overlapping.iter().map(|r| TimeRange::from_nanos(r.start, r.end).to_string()).collect();
        return Err(WriteError::InvalidConfig {
            reason: format!(
                "the writer's range {range} on {:?} overlaps several open writer regions ({}); choose a start and `end` inside one of them",
                store.name,
                spans.join(", ")
            ),
        }
        .into());
    }
    if let Some(r) = overlapping.first().map(|r| Arc::clone(r)) {
        r.writers.fetch_add(1, Ordering::AcqRel);
        st.writers += 1;
        return Ok(r);
    }
    if let Some(existing) = st.chunks.containing(start.0) {
        return Err(WriteError::OverlapsCommitted { channel: store.name.clone(), start, existing }.into());
    }
    let mut limit = range.end.0;
    if let Some(next) = st.chunks.next_start_after(start.0) {
        limit = limit.min(next);
    }
    for r in &st.regions {
        if r.start > start.0 {
            limit = limit.min(r.start);
        }
    }
    let domain = st.next_domain;
    st.next_domain += 1;
    st.writers += 1;
    let region = Arc::new(RegionDomain {
        start: start.0,
        end: range.end.0,
        writers: std::sync::atomic::AtomicU32::new(1),
        state: parking_lot::Mutex::new(RegionState { domain, next_pos: 0, last_ts: None, limit }),
    });
    st.regions.push(region.clone());
    Ok(region)
}
