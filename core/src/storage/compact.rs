//! Compaction: a channel's small chunk records merged into large ones, compressed if asked.
//!
//! Every commit writes one chunk record per channel, so a campaign committed ten times a
//! second leaves millions of records of a few hundred bytes: a 56-byte header each on disk,
//! a reference each in memory, a header each to walk at open. Compaction rewrites runs of
//! them into records of about [`StorageOptions::compacted_record_bytes`] and applies the
//! channel's codec there (fresh data keeps the raw fast path).
//!
//! ## Crash safety
//! A compacted record carries `FLAG_COMPACTED` and the samples of the records it replaces,
//! at the same positions. It is committed like any chunk (a COMMIT record with a fresh
//! seq) and synced before anything else changes, so:
//! - a crash before that sync completes leaves a torn or uncommitted tail, which recovery
//!   cuts: the old records serve, as before;
//! - after it, recovery finds both; a compacted record supersedes the older records of
//!   its channel and domain whose positions it covers (storage/recovery.rs), so each
//!   sample is served once.
//!
//! Replaced writer records are never punched: their segment is deleted once none of its
//! records is referenced (storage/reclaim.rs), so recovery never meets one with its payload
//! gone after the segment's last seal (where it would check, fail and cut the segment).
//! Compacted records go to segments of their own, which writers never get (not pooled, at
//! run time or after recovery), so writers' segments empty out. A compacted record that
//! is merged again is punched once unreferenced: its segment holds records that live on.
//! That is safe because every batch of a compaction segment is followed by a seal (and
//! recovery seals a compaction segment that lacks one), so recovery never checks a
//! punched payload; the record is superseded by the one that replaced it.
//!
//! ## Deletes and concurrency
//! A batch holds `commit_lock` shared from planning to swapping the references, like a
//! commit: a range delete (exclusive) happens wholly before the plan (the trimmed
//! references are not compacted) or wholly after the swap (its tombstone's seq is higher,
//! so it trims the compacted record as it would have trimmed the old ones). Only whole
//! records are merged, so a compacted record never holds deleted samples. Writers keep
//! appending meanwhile (they take the lock shared too); readers keep whatever references
//! they cloned, which stay readable until dropped. The channel mutex is held only to swap
//! references.

use std::io::IoSlice;
use std::sync::Arc;
use std::sync::Weak;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::compress::{ChannelShape, Codec};
use super::format::{FLAG_COMPACTED, KIND_COMMIT, RECORD_HEADER_LEN, RecordHeader, kept_raw_flags, pad8, payload_crc};
use super::index::{ChunkRef, RecordRef};
use super::segment::Segment;
use super::syncer::{Background, Signal, spawn_loop};
use super::{ChannelStore, Storage, StorageError};
use crate::telem::{Alignment, DataType, Series, TimeStamp};

/// A batch writes at most this many payload bytes before it syncs and swaps: it bounds
/// how long a range delete waits for a running compaction.
const BATCH_BYTES: u64 = 64 << 20;

/// What one compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionReport {
    /// Channels that had records merged.
    pub channels: usize,
    /// Records replaced.
    pub records_in: u64,
    /// Records written.
    pub records_out: u64,
    /// Bytes the replaced records take on disk (headers and padding included).
    pub bytes_in: u64,
    /// Bytes the written records take on disk.
    pub bytes_out: u64,
    /// Samples rewritten.
    pub samples: u64,
    /// How long the pass took, in microseconds.
    pub micros: u64,
    /// The longest time one batch held the commit lock shared (a range delete waits at most
    /// this long for compaction), in microseconds.
    pub longest_batch_micros: u64,
}

/// A run of whole, contiguous chunk records of one domain, merged into one record.
struct Run {
    domain: u32,
    refs: Vec<ChunkRef>,
}

/// A record's payload size uncompressed: what the merge target counts, so every channel of
/// an index is cut at the same positions whatever its codec.
fn raw_len(c: &ChunkRef, dt: DataType) -> u64 {
    let h = &c.rec.header;
    match dt.density() {
        Some(d) if h.codec != 0 => u64::from(h.samples) * d as u64,
        _ => h.len,
    }
}

impl Run {
    fn raw_bytes(&self, dt: DataType) -> u64 {
        self.refs.iter().map(|c| raw_len(c, dt)).sum()
    }
}

/// What compaction writes for a channel: its codec, and whether a record compressed with
/// another codec is decompressed when the codec is raw. Only a channel that chose `off`
/// decompresses: one that follows an engine started without compression keeps what is
/// already compressed (a restart must not grow the disk).
#[derive(Debug, Clone, Copy)]
struct Choice {
    codec: Codec,
    decompress: bool,
}

/// The codec compaction gives a channel.
fn choice_for(storage: &Storage, store: &ChannelStore) -> Choice {
    let compression = *store.compression.lock();
    // Creation and `set_channel_compression` refused every choice that does not fit, so an
    // error here means a catalog from elsewhere: such a channel stays raw.
    let codec = Codec::for_channel(
        compression,
        ChannelShape { data_type: store.data_type, is_index: store.is_index, is_virtual: false },
        storage.opts.compress,
    )
    .unwrap_or_else(|reason| {
        tracing::warn!(key = "storage/compact", channel = %store.name, %reason, "the channel's compression does not fit it; compacted raw");
        Codec::Raw
    });
    Choice { codec, decompress: compression == crate::channel::Compression::Off }
}

impl Choice {
    /// Whether the whole record `c` is rewritten alone, to follow the channel's choice.
    /// `small`: under half the merge target (a writer's record that large is left alone,
    /// so bulk writes keep their raw fast path).
    fn recodes(self, c: &ChunkRef, small: bool) -> bool {
        let h = &c.rec.header;
        if h.codec == self.codec.tag() {
            false
        } else if h.codec == Codec::Raw.tag() {
            // A raw record is compressed, unless compaction already found that this codec
            // does not pay on it (it would be rewritten raw again at every pass).
            self.codec != Codec::Raw && h.kept_raw_after() != Some(self.codec.tag()) && (small || h.is_compacted())
        } else {
            // Compressed by another codec: the channel's choice changed since.
            self.codec != Codec::Raw || self.decompress
        }
    }
}

/// The runs worth rewriting in `store`: consecutive whole records (not cut by a delete)
/// whose payload is under half the target, grouped up to the target size. A run needs two
/// records, or one that [`Choice::recodes`].
fn plan(store: &ChannelStore, target: u64, choice: Choice) -> Vec<Run> {
    let st = store.state.lock();
    let small = target / 2;
    let mut runs = Vec::new();
    for (&domain, d) in st.chunks.domains() {
        let mut cur: Vec<ChunkRef> = Vec::new();
        let mut bytes = 0u64;
        let flush = |cur: &mut Vec<ChunkRef>, runs: &mut Vec<Run>| {
            if cur.len() >= 2 || cur.first().is_some_and(|c| choice.recodes(c, true)) {
                runs.push(Run { domain, refs: std::mem::take(cur) });
            }
            cur.clear();
        };
        for c in &d.chunks {
            let len = raw_len(c, store.data_type);
            let whole = c.skip == 0 && c.n == c.rec.header.samples;
            let eligible = whole && len < small;
            let contiguous = cur.last().is_some_and(|p| p.end() == c.pos);
            if !eligible || !contiguous || bytes + len > target {
                flush(&mut cur, &mut runs);
                bytes = 0;
            }
            if eligible {
                bytes += len;
                cur.push(c.clone());
            } else if whole && choice.recodes(c, false) {
                runs.push(Run { domain, refs: vec![c.clone()] });
            }
        }
        flush(&mut cur, &mut runs);
    }
    runs
}

/// A record's payload in the raw layout (storage/format.rs): the samples of a fixed-size
/// series; offsets from 0 then the values of a variable-length one.
fn raw_payload(s: &Series) -> Vec<Bytes> {
    match s.data_type().density() {
        Some(_) => vec![s.data().clone()],
        None => {
            let offs = s.offsets_u64();
            let base = offs.first().copied().unwrap_or(0);
            let rebased: Vec<u8> = offs.iter().flat_map(|o| (o - base).to_le_bytes()).collect();
            let range = s.value_range();
            vec![Bytes::from(rebased), s.data().slice(range)]
        }
    }
}

/// One merged record, ready to append.
struct Merged {
    run: Run,
    header: RecordHeader,
    payload: Vec<Bytes>,
}

/// The samples of a run of a fixed-size channel, copied straight out of the segment maps
/// (one map lookup per segment, not a `Bytes` per record); compressed records decompress.
/// Every record's checksum is verified first: compaction must not give damaged bytes a new,
/// valid checksum.
fn fixed_samples(run: &Run, dt: DataType, density: usize) -> Result<Vec<u8>, StorageError> {
    let total: usize = run.refs.iter().map(|c| c.n as usize * density).sum();
    let mut buf = Vec::with_capacity(total);
    let mut map: Option<(u64, Arc<memmap2::Mmap>)> = None;
    for c in &run.refs {
        c.rec.verify()?;
        if c.rec.header.codec != 0 {
            buf.extend_from_slice(c.series(dt)?.data());
            continue;
        }
        let start = c.rec.payload_off() + u64::from(c.skip) * density as u64;
        let end = start + u64::from(c.n) * density as u64;
        let seg = &c.rec.seg;
        let m = match &map {
            Some((id, m)) if *id == seg.id && m.len() as u64 >= end => m.clone(),
            _ => {
                let m = seg.map_to(end)?;
                map = Some((seg.id, m.clone()));
                m
            }
        };
        let bytes = m.get(start as usize..end as usize).ok_or_else(|| StorageError::Corrupt {
            segment: seg.id,
            offset: c.rec.offset,
            reason: "a record lies outside its segment's map".into(),
        })?;
        buf.extend_from_slice(bytes);
    }
    Ok(buf)
}

fn merge(store: &ChannelStore, run: Run, codec: Codec) -> Result<Merged, StorageError> {
    let dt = store.data_type;
    let corrupt = |e: String| StorageError::Corrupt {
        segment: run.refs.first().map_or(0, |c| c.rec.seg.id),
        offset: run.refs.first().map_or(0, |c| c.rec.offset),
        reason: format!("records of channel {} do not merge: {e}", store.name),
    };
    let merged = match dt.density() {
        Some(d) => Series::from_bytes(dt, Bytes::from(fixed_samples(&run, dt, d)?)).map_err(|e| corrupt(e.to_string()))?,
        None => {
            let parts = run.refs.iter().map(|c| c.series(dt)).collect::<Result<Vec<_>, _>>()?;
            Series::concat(&parts).map_err(|e| corrupt(e.to_string()))?
        }
    };
    let n = u32::try_from(merged.len()).unwrap_or(u32::MAX);
    let (first, last) = (run.refs.first(), run.refs.last());
    let pos = first.map_or(0, |c| c.pos);
    let ts = if store.is_index { (first.map_or(0, |c| c.first_ts), last.map_or(0, |c| c.last_ts)) } else { (0, 0) };
    let raw = raw_payload(&merged);
    let raw_len: u64 = raw.iter().map(|b| b.len() as u64).sum();
    // Compressed only where it pays; a codec failure keeps the samples raw.
    let compressed = if codec == Codec::Raw || !codec.applies_to(dt) {
        None
    } else {
        match codec.compress(&merged) {
            Ok(c) if (c.len() as u64) < raw_len => Some(c),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(key = "storage/compact", channel = %store.name, error = %e, "compression failed; the record stays raw");
                None
            }
        }
    };
    let tried = codec != Codec::Raw && codec.applies_to(dt);
    let (payload, tag, flags) = match compressed {
        Some(c) => (vec![Bytes::from(c)], codec.tag(), FLAG_COMPACTED),
        None if tried => (raw, 0, kept_raw_flags(codec.tag())),
        None => (raw, 0, FLAG_COMPACTED),
    };
    let len = payload.iter().map(|b| b.len() as u64).sum();
    let mut header = RecordHeader::chunk(dt, store.key, n, Alignment::new(run.domain, pos), len, ts);
    header.flags = flags;
    header.codec = tag;
    header.crc = payload_crc(payload.iter().map(|b| b.as_ref()));
    Ok(Merged { run, header, payload })
}

/// The compactor's output segment. Compacted records live in segments of their own,
/// never handed to writers: a segment that mixed them with small records would stay
/// alive, and hold its replaced records' space, for as long as its compacted ones do.
struct Output<'a> {
    storage: &'a Storage,
    seg: Option<Arc<Segment>>,
}

impl Output<'_> {
    fn segment(&mut self) -> Result<Arc<Segment>, StorageError> {
        if let Some(s) = &self.seg {
            return Ok(s.clone());
        }
        let s = match self.storage.compact_out.lock().take() {
            Some(s) => s,
            None => self.storage.segments.create()?,
        };
        self.seg = Some(s.clone());
        Ok(s)
    }

    /// After a synced batch: a seal record, synced, so recovery trusts what precedes it
    /// without re-reading it; a full segment is left for good.
    ///
    /// The seal is synced at once (one more `fdatasync` per batch of up to 64 MiB): a
    /// compacted record may later be replaced in turn (merged again, or recoded after its
    /// channel's compression changed) and its payload punched. Were the seal after it not
    /// durable, a power cut would make recovery re-check that batch, find the punched
    /// payload and cut the segment there, losing the live records after it.
    fn sealed(&mut self, seg: &Segment) {
        if let Err(e) = seg.append_seal().and_then(|()| seg.sync()) {
            tracing::warn!(key = "storage/compact", segment = seg.id, error = %e, "could not write and sync the seal record");
        }
        if seg.len() >= self.storage.segments.cap() || seg.is_poisoned() {
            self.seg = None;
        }
    }

    /// Keep the segment for the next pass.
    fn finish(&mut self) {
        if let Some(seg) = self.seg.take() {
            *self.storage.compact_out.lock() = Some(seg);
        }
    }
}

/// Append `batch` and a commit record in one write, sync, then swap the references.
/// Called with `commit_lock` held shared.
fn write_batch(
    storage: &Storage,
    out: &mut Output<'_>,
    store: &ChannelStore,
    batch: Vec<Merged>,
    report: &mut CompactionReport,
) -> Result<(), StorageError> {
    if batch.is_empty() {
        return Ok(());
    }
    if storage.closed.load(std::sync::atomic::Ordering::Acquire) {
        return Err(StorageError::Closed { what: "the engine".into() });
    }
    let seg = out.segment()?;
    let seq = storage.next_seq();
    let headers: Vec<[u8; RECORD_HEADER_LEN]> = batch.iter().map(|m| m.header.encode()).collect();
    let commit = RecordHeader::marker(KIND_COMMIT, batch.len() as u32, seq as i64, TimeStamp::now().0).encode();
    static ZEROS: [u8; 8] = [0; 8];
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(batch.len() * 4 + 1);
    let mut total = 0u64;
    for (m, h) in batch.iter().zip(&headers) {
        iov.push(IoSlice::new(h));
        for p in &m.payload {
            iov.push(IoSlice::new(p));
        }
        iov.push(IoSlice::new(ZEROS.get(..(pad8(m.header.len) - m.header.len) as usize).unwrap_or_default()));
        total += m.header.footprint();
    }
    iov.push(IoSlice::new(&commit));
    total += RECORD_HEADER_LEN as u64;
    iov.retain(|s| !s.is_empty());
    let base = seg.append(&mut iov, total)?;
    drop(iov);
    // Durable before the old records may go: whatever the engine's durability, a replaced
    // record's segment can be deleted once the swap is done.
    seg.sync()?;
    let mut off = base;
    let mut replaced_compacted = Vec::new();
    let mut st = store.state.lock();
    for m in batch {
        let rec = Arc::new(RecordRef::new(seg.clone(), off, m.header, true));
        off += m.header.footprint();
        let first = m.run.refs.first().map_or((0, 0), |c| (c.first_ts, c.last_ts));
        let last_ts = m.run.refs.last().map_or(0, |c| c.last_ts);
        let new = ChunkRef { pos: m.header.alignment.sample(), n: m.header.samples, skip: 0, first_ts: first.0, last_ts, seq, rec };
        if st.chunks.replace(m.run.domain, &m.run.refs, new) {
            report.records_in += m.run.refs.len() as u64;
            report.bytes_in += m.run.refs.iter().map(|c| c.rec.header.footprint()).sum::<u64>();
            report.records_out += 1;
            report.bytes_out += m.header.footprint();
            report.samples += u64::from(m.header.samples);
            // A compacted record merged again sits in a compaction segment beside records
            // that live on: punch it out once unreferenced. Writers' records are not
            // punched; their segments are deleted whole (see the module docs).
            replaced_compacted.extend(m.run.refs.iter().filter(|c| c.rec.header.is_compacted()).map(|c| c.rec.clone()));
        } else {
            // Only a deleted channel changes references under the commit lock; its new
            // record is an orphan, skipped at the next open.
            tracing::debug!(key = "storage/compact", channel = %store.name, "references changed meanwhile; compacted record unused");
        }
    }
    drop(st);
    out.sealed(&seg);
    storage.dead.push_all(replaced_compacted);
    Ok(())
}

/// How far a pass takes one channel: the batches its first plan needed, so records a
/// writer commits during the pass wait for the next one (re-planning would chase an active
/// writer's tail forever while the other channels wait).
struct Turns {
    left: Option<u64>,
}

/// Compact one batch of `store`'s oldest runs (up to [`BATCH_BYTES`]). Returns whether it
/// has more for this pass. The batch holds `Storage::compact_batch` (taken before the
/// commit lock, as a checkpoint takes it alone) and hands it on fairly when done, so a
/// run-time checkpoint waits for one batch, not for a whole pass that a fast writer keeps
/// long.
fn compact_batch(
    storage: &Storage,
    out: &mut Output<'_>,
    store: &ChannelStore,
    turns: &mut Turns,
    report: &mut CompactionReport,
) -> Result<bool, StorageError> {
    if turns.left == Some(0) {
        return Ok(false);
    }
    let target = storage.opts.compacted_record_bytes.max(4096);
    let choice = choice_for(storage, store);
    let batch_lock = storage.compact_batch.lock();
    let guard = storage.commit_lock.read();
    let held = Instant::now();
    let mut runs = plan(store, target, choice);
    if runs.is_empty() {
        return Ok(false);
    }
    let total: u64 = runs.iter().map(|r| r.raw_bytes(store.data_type)).sum();
    let left = turns.left.get_or_insert(total.div_ceil(BATCH_BYTES).max(1));
    *left -= 1;
    // One batch: runs up to BATCH_BYTES; the rest waits for this channel's next turn.
    let mut bytes = 0u64;
    let keep = runs.iter().take_while(|r| {
        let b = r.raw_bytes(store.data_type);
        bytes += b;
        bytes <= BATCH_BYTES || bytes == b
    });
    let count = keep.count().max(1);
    let more = runs.len() > count && *left > 0;
    runs.truncate(count);
    let batch = runs.into_iter().map(|r| merge(store, r, choice.codec)).collect::<Result<Vec<_>, _>>()?;
    write_batch(storage, out, store, batch, report)?;
    drop(guard);
    // Written, synced and swapped in: a checkpoint waiting for it runs now.
    parking_lot::MutexGuard::unlock_fair(batch_lock);
    report.longest_batch_micros = report.longest_batch_micros.max(u64::try_from(held.elapsed().as_micros()).unwrap_or(u64::MAX));
    Ok(more)
}

/// One compaction pass over every stored channel.
pub(crate) fn compact_once(storage: &Storage) -> Result<CompactionReport, StorageError> {
    let _one = storage.compacting.lock();
    let started = Instant::now();
    let mut report = CompactionReport::default();
    let mut stores: Vec<Arc<ChannelStore>> = storage.channels.read().values().cloned().collect();
    stores.sort_by_key(|s| s.key);
    let mut out = Output { storage, seg: None };
    let mut result = Ok(());
    // Round by round, one batch of each channel's oldest runs per round. A stand's writer
    // segments hold every channel's records of the same moments, so a segment empties only
    // once every channel has compacted past it: taking each channel whole, a pass that is
    // behind freed nothing until its last channel, and the disk held the backlog and its
    // compacted copy at once. Round by round, the oldest segments empty after every round
    // and reclaim deletes them while the pass goes on.
    let mut turns: Vec<(&Arc<ChannelStore>, Turns, bool)> = stores.iter().map(|s| (s, Turns { left: None }, false)).collect();
    while !turns.is_empty() {
        let mut failed = None;
        turns.retain_mut(|(store, t, did)| {
            if failed.is_some() {
                return true;
            }
            let before = report.records_in;
            match compact_batch(storage, &mut out, store, t, &mut report) {
                Ok(more) => {
                    *did |= report.records_in > before;
                    if !more {
                        report.channels += usize::from(*did);
                    }
                    more
                }
                Err(e) => {
                    failed = Some(e);
                    true
                }
            }
        });
        if let Some(e) = failed {
            result = Err(e);
            break;
        }
    }
    out.finish();
    report.micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if report.records_in > 0 {
        tracing::info!(
            key = "storage/compact",
            channels = report.channels,
            records_in = report.records_in,
            records_out = report.records_out,
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            micros = report.micros,
            "compacted"
        );
    }
    result.map(|()| report)
}

pub(crate) fn spawn_compactor(storage: Weak<Storage>, period: Duration) -> Background {
    spawn_loop("telemetron:compact", Signal::default(), period, storage, |st| {
        if let Err(e) = compact_once(st) {
            tracing::warn!(key = "storage/compact", error = %e, "compaction pass failed; it is retried on the next pass");
        }
    })
}
