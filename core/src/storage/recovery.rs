//! Opening a data directory: scan segments, truncate torn tails, rebuild the pointer index.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use memmap2::Mmap;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::format::{
    HEADER_LEN, HeaderProblem, KIND_CHUNK, KIND_COMMIT, KIND_SEAL, RECORD_HEADER_LEN, RecordHeader, decode_segment_header, payload_crc,
};
use super::index::{ChunkRef, RecordRef};
use super::segment::{Segment, Segments, io_err};
use super::{ChannelStore, Storage, StorageOptions, StorageStats, syncer};
use crate::channel::{Channel, ChannelKey};
use crate::storage_error::StorageFailure as Error;
type Result<T, E = Error> = std::result::Result<T, E>;
use crate::telem::DataType;

/// A persisted range deletion: positions `[from, to)` of `domain` of `channel`, applying to
/// chunks committed before `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tombstone {
    pub seq: u64,
    pub channel: ChannelKey,
    pub domain: u32,
    pub from: u32,
    pub to: u32,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Segments opened.
    pub segments: usize,
    /// Committed chunk records indexed.
    pub chunks: usize,
    /// Commit records seen.
    pub commits: usize,
    /// Bytes cut from segment tails (torn or uncommitted writes).
    pub truncated_bytes: u64,
    /// Segments set aside because their header is damaged or foreign (renamed `*.corrupt`).
    pub quarantined: Vec<PathBuf>,
    /// Chunks of channels that no longer exist (ignored).
    pub orphan_chunks: usize,
    /// Of `chunks`, those written by compaction.
    #[serde(default)]
    pub compacted_chunks: usize,
    /// Of `chunks`, those read from the index checkpoint instead of the segment files.
    #[serde(default)]
    pub checkpoint_chunks: usize,
    /// Chunks replaced by a compacted record whose segment was not deleted yet (ignored).
    #[serde(default)]
    pub superseded_chunks: usize,
    /// How long recovery took, in microseconds.
    #[serde(default)]
    pub micros: u64,
}

struct Scan {
    /// Committed chunks with their commit seq.
    chunks: Vec<(RecordHeader, u64, u64, bool)>,
    keep_end: u64,
    /// The last record kept is a seal.
    sealed: bool,
    commits: usize,
    max_seq: u64,
}

/// Tombstones grouped by (channel, domain), so checking a record costs only its own.
type TombstoneIndex = HashMap<(ChannelKey, u32), Vec<Tombstone>>;

fn index_tombstones(tombstones: &[Tombstone]) -> TombstoneIndex {
    let mut out: TombstoneIndex = HashMap::new();
    for t in tombstones {
        out.entry((t.channel, t.domain)).or_default().push(*t);
    }
    out
}

/// True if a chunk whose payload fails its checksum is dead anyway (its channel was deleted
/// or a tombstone covers it): its bytes may have been returned to the file system.
fn is_dead(h: &RecordHeader, seq: Option<u64>, known: &dyn Fn(ChannelKey) -> bool, tombstones: &TombstoneIndex) -> bool {
    let Some(seq) = seq else { return false };
    if !known(h.channel) {
        return true;
    }
    let (d, from) = (h.alignment.domain(), h.alignment.sample());
    let to = from.saturating_add(h.samples);
    // A range may be deleted in several steps: the newer tombstones must cover the record
    // together, not necessarily one of them alone.
    let Some(list) = tombstones.get(&(h.channel, d)) else { return false };
    let mut spans: Vec<(u32, u32)> = list.iter().filter(|t| t.seq > seq).map(|t| (t.from, t.to)).collect();
    spans.sort_unstable();
    let mut covered = from;
    for (a, b) in spans {
        if a > covered {
            break;
        }
        covered = covered.max(b);
    }
    covered >= to
}

/// A record header found by the scan, with what the later passes learn about it.
struct Found {
    h: RecordHeader,
    off: u64,
    /// Seq of the first commit record after it, if any.
    next_seq: Option<u64>,
    /// Payload checksum verified.
    verified: bool,
}

/// Pass 1 of a scan: walk valid headers from `start` up to the first torn or foreign one.
fn walk_headers(map: &[u8], start: u64) -> Vec<Found> {
    let mut recs: Vec<Found> = Vec::new();
    let mut off = start;
    let len = map.len() as u64;
    while off + RECORD_HEADER_LEN as u64 <= len {
        let Some(h) = map.get(off as usize..).and_then(RecordHeader::decode) else { break };
        if !matches!(h.kind, KIND_CHUNK | KIND_COMMIT | KIND_SEAL) {
            break;
        }
        let end = off.saturating_add(h.footprint());
        if off + RECORD_HEADER_LEN as u64 + h.len > len {
            break;
        }
        recs.push(Found { h, off, next_seq: None, verified: false });
        off = end;
    }
    let mut seq = None;
    for r in recs.iter_mut().rev() {
        if r.h.kind == KIND_COMMIT {
            seq = Some(r.h.a as u64);
        }
        r.next_seq = seq;
    }
    recs
}

/// Pass 2 of a scan: verify payloads after the last clean close. Returns how many records
/// are valid: all of them, or those before the first bad payload that is not dead anyway.
fn verify_payloads(map: &[u8], recs: &mut [Found], known: &dyn Fn(ChannelKey) -> bool, tombstones: &TombstoneIndex) -> usize {
    let last_seal = recs.iter().rposition(|r| r.h.kind == KIND_SEAL).map_or(0, |i| i + 1);
    for (i, r) in recs.iter_mut().enumerate().skip(last_seal) {
        if r.h.kind != KIND_CHUNK {
            continue;
        }
        let p = (r.off as usize) + RECORD_HEADER_LEN;
        // walk_headers checked that the payload lies within the map.
        let payload = map.get(p..p + r.h.len as usize).unwrap_or_default();
        if payload_crc([payload]) != r.h.crc {
            if is_dead(&r.h, r.next_seq, known, tombstones) {
                continue;
            }
            return i;
        }
        r.verified = true;
    }
    recs.len()
}

/// Scan a segment from `start`: `HEADER_LEN`, or the committed end an index checkpoint
/// covers (everything before it is known committed and synced, its chunks come from the
/// checkpoint, and it ends with a commit or a seal).
fn scan(map: &[u8], start: u64, known: &dyn Fn(ChannelKey) -> bool, tombstones: &TombstoneIndex) -> Scan {
    let mut recs = walk_headers(map, start);
    let valid = verify_payloads(map, &mut recs, known, tombstones);
    // Pass 3: keep chunks that a commit record covers.
    let mut out = Scan { chunks: Vec::new(), keep_end: start, sealed: start > HEADER_LEN, commits: 0, max_seq: 0 };
    let mut pending: Vec<(RecordHeader, u64, bool)> = Vec::new();
    for r in recs.iter().take(valid) {
        match r.h.kind {
            KIND_CHUNK => pending.push((r.h, r.off, r.verified)),
            KIND_COMMIT => {
                let seq = r.h.a as u64;
                out.max_seq = out.max_seq.max(seq);
                out.commits += 1;
                out.chunks.extend(pending.drain(..).map(|(h, o, v)| (h, o, seq, v)));
                out.keep_end = r.off + r.h.footprint();
                out.sealed = false;
            }
            _ => {
                if pending.is_empty() {
                    out.keep_end = r.off + r.h.footprint();
                    out.sealed = true;
                }
            }
        }
    }
    out
}

fn quarantine(path: &Path, report: &mut RecoveryReport, why: &str) -> Result<()> {
    let to = path.with_extension("seg.corrupt");
    fs::rename(path, &to).map_err(|e| io_err(path, e))?;
    tracing::error!(key = "storage/recovery", path = %path.display(), moved_to = %to.display(), reason = why, "segment set aside; its data is not served");
    report.quarantined.push(to);
    Ok(())
}

/// The segment files of `seg_dir`, sorted by id. Files named like no segment are set aside.
fn list_segments(seg_dir: &Path, report: &mut RecoveryReport) -> Result<Vec<(u64, PathBuf)>> {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(seg_dir).map_err(|e| io_err(seg_dir, e))? {
        let path = entry.map_err(|e| io_err(seg_dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("seg") {
            continue;
        }
        let id = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok());
        match id {
            Some(id) => files.push((id, path)),
            None => quarantine(&path, report, "file name is not a segment id")?,
        }
    }
    files.sort();
    Ok(files)
}

/// What to do with a segment given its header.
enum HeaderVerdict {
    /// Ours and intact: scan it.
    Intact,
    /// Its creation was interrupted before the header was complete: remove it.
    Interrupted,
    /// Damaged or foreign: set it aside, for this reason.
    Quarantine(&'static str),
}

fn header_verdict(id: u64, path: &Path, bytes: &[u8], flen: u64) -> Result<HeaderVerdict> {
    match decode_segment_header(bytes) {
        Ok(hid) if hid == id => Ok(HeaderVerdict::Intact),
        Ok(_) => Ok(HeaderVerdict::Quarantine("header names another segment id")),
        Err(HeaderProblem::Version(v)) => Err(super::StorageError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: u64::from(v),
            supported: u64::from(super::format::FORMAT_VERSION),
        }
        .into()),
        Err(HeaderProblem::Torn) if flen <= HEADER_LEN => Ok(HeaderVerdict::Interrupted),
        Err(p) => {
            Ok(HeaderVerdict::Quarantine(if p == HeaderProblem::ForeignMagic { "not a Telemetron segment" } else { "damaged header" }))
        }
    }
}

/// Recovery in progress: what the segments scanned so far have shown.
struct Recovery<'a> {
    stores: &'a HashMap<ChannelKey, Arc<ChannelStore>>,
    tombstones: TombstoneIndex,
    report: RecoveryReport,
    max_seq: u64,
    /// Next free domain per index channel.
    domains: HashMap<ChannelKey, u32>,
    stats: Arc<StorageStats>,
    /// The index checkpoint read at open (empty without one).
    ckpt: super::checkpoint::Checkpoint,
    /// Committed chunks of the segments scanned so far, indexed once all are scanned.
    found: Vec<(Arc<Segment>, RecordHeader, u64, u64, bool)>,
}

impl Recovery<'_> {
    /// Check, scan and truncate one segment file, and collect its committed chunks. Returns
    /// the segment and whether it holds compacted records (such a segment is not pooled for
    /// writers); `None` if the file was removed or set aside.
    fn segment(&mut self, id: u64, path: PathBuf, segment_size: u64) -> Result<Option<(Arc<Segment>, bool)>> {
        let file = OpenOptions::new().read(true).append(true).open(&path).map_err(|e| io_err(&path, e))?;
        let flen = file.metadata().map_err(|e| io_err(&path, e))?.len();
        // SAFETY: nothing else writes this directory (we hold its lock); the map is dropped
        // before the file is truncated.
        let map = if flen == 0 { None } else { Some(unsafe { Mmap::map(&file) }.map_err(|e| io_err(&path, e))?) };
        let bytes: &[u8] = map.as_deref().unwrap_or(&[]);
        match header_verdict(id, &path, bytes, flen)? {
            HeaderVerdict::Intact => {}
            HeaderVerdict::Interrupted => {
                drop(map);
                fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                tracing::info!(key = "storage/recovery", segment = id, "removed a segment whose creation was interrupted");
                return Ok(None);
            }
            HeaderVerdict::Quarantine(why) => {
                drop(map);
                quarantine(&path, &mut self.report, why)?;
                return Ok(None);
            }
        }
        let stores = self.stores;
        // From the checkpoint up to the committed end it recorded, if the file still holds
        // that much; the rest is walked.
        let from_ckpt = self.ckpt.committed.get(&id).copied().filter(|&end| end > HEADER_LEN && end <= flen);
        let sc = scan(bytes, from_ckpt.unwrap_or(HEADER_LEN), &|k| stores.contains_key(&k), &self.tombstones);
        let ckpt_chunks = match from_ckpt {
            Some(_) => self.ckpt.chunks.remove(&id).unwrap_or_default(),
            None => Vec::new(),
        };
        self.report.checkpoint_chunks += ckpt_chunks.len();
        // The commits the checkpoint covers: one seq per commit that wrote chunks.
        self.report.commits += ckpt_chunks.iter().map(|(_, seq, _)| *seq).collect::<std::collections::HashSet<_>>().len();
        drop(map);
        if sc.keep_end < flen {
            file.set_len(sc.keep_end).map_err(|e| io_err(&path, e))?;
            file.sync_all().map_err(|e| io_err(&path, e))?;
            self.report.truncated_bytes += flen - sc.keep_end;
            tracing::warn!(key = "storage/recovery", segment = id, cut = flen - sc.keep_end, "truncated a torn or uncommitted tail");
        }
        self.max_seq = self.max_seq.max(sc.max_seq);
        self.report.commits += sc.commits;
        let compaction = sc.chunks.iter().any(|(h, ..)| h.is_compacted()) || ckpt_chunks.iter().any(|(_, _, h)| h.is_compacted());
        let seal = compaction && !sc.sealed && sc.keep_end > HEADER_LEN;
        if seal {
            // Everything kept was verified just now: make it durable and seal it, so that a
            // record punched out later (merged again, storage/compact.rs) is never checked
            // at a later open.
            file.sync_data().map_err(|e| io_err(&path, e))?;
        }
        let seg = Segment::open_existing(id, path, file, sc.keep_end, segment_size, self.stats.clone());
        if seal {
            seg.append_seal()?;
            seg.sync()?;
        }
        // Checkpointed payloads were synced before the checkpoint was written; like every
        // record before a seal they are verified on first read.
        self.found.extend(ckpt_chunks.into_iter().map(|(off, seq, h)| (seg.clone(), h, off, seq, false)));
        self.found.extend(sc.chunks.into_iter().map(|(h, off, seq, verified)| (seg.clone(), h, off, seq, verified)));
        Ok(Some((seg, compaction)))
    }

    /// Put the committed chunks of every segment into their channels' pointer indexes.
    /// Compacted records go first, newest first, so each supersedes the older records of
    /// the positions it covers (storage/compact.rs); those are then refused as overlaps.
    fn index_chunks(&mut self) {
        // Only the compacted records are sorted (newest first); the plain ones, usually
        // nearly all, keep segment and file order without being moved twice.
        let (mut compacted, plain): (Vec<_>, Vec<_>) = std::mem::take(&mut self.found).into_iter().partition(|(_, h, ..)| h.is_compacted());
        compacted.sort_by_key(|(_, _, _, seq, _)| std::cmp::Reverse(*seq));
        let stores = self.stores;
        let known = |k: ChannelKey| stores.contains_key(&k);
        for (seg, h, off, seq, verified) in compacted.into_iter().chain(plain) {
            let Some(store) = stores.get(&h.channel) else {
                self.report.orphan_chunks += 1;
                continue;
            };
            if DataType::from_tag(h.data_type) != Some(store.data_type) {
                tracing::warn!(key = "storage/recovery", channel = store.key, "chunk data type does not match the channel; ignored");
                self.report.orphan_chunks += 1;
                continue;
            }
            let domain = h.alignment.domain();
            let idx = store.index.unwrap_or(store.key);
            let e = self.domains.entry(idx).or_insert(0);
            *e = (*e).max(domain + 1);
            if is_dead(&h, Some(seq), &known, &self.tombstones) {
                // Deleted entirely: its payload may have been punched out, so never index it
                // (trimming an index chunk piece by piece would read its timestamps).
                continue;
            }
            let rec = Arc::new(RecordRef::new(seg, off, h, verified));
            let (first_ts, last_ts) = if store.is_index { (h.a, h.b) } else { (0, 0) };
            let (pos, end) = (h.alignment.sample(), h.alignment.sample().saturating_add(h.samples));
            let c = ChunkRef { pos, n: h.samples, skip: 0, first_ts, last_ts, seq, rec };
            let mut st = store.state.lock();
            if st.chunks.insert(domain, c) {
                self.report.chunks += 1;
                self.report.compacted_chunks += usize::from(h.is_compacted());
            } else if st.chunks.domain(domain).is_some_and(|d| {
                let over = d.pieces(pos, end);
                !over.is_empty() && over.iter().all(|o| o.rec.header.is_compacted() && o.seq > seq)
            }) {
                self.report.superseded_chunks += 1;
            } else {
                tracing::warn!(
                    key = "storage/recovery",
                    channel = store.key,
                    domain,
                    "overlapping chunk found during recovery; the earlier one is kept"
                );
            }
        }
    }

    /// Apply the persisted range deletions, oldest first, and set each index's next domain.
    fn finish(&mut self, tombstones: &[Tombstone]) -> Result<()> {
        let mut sorted = tombstones.to_vec();
        sorted.sort_by_key(|t| t.seq);
        for t in &sorted {
            self.max_seq = self.max_seq.max(t.seq);
            if let Some(store) = self.stores.get(&t.channel) {
                let mut st = store.state.lock();
                st.chunks.remove(t.domain, t.from, t.to, t.seq, store.data_type).map_err(Error::from)?;
            }
        }
        for (k, next) in &self.domains {
            if let Some(s) = self.stores.get(k) {
                s.state.lock().next_domain = *next;
            }
        }
        Ok(())
    }
}

/// Open the storage of `dir`, recovering from any crash.
pub(crate) fn open_storage(
    dir: &Path,
    opts: StorageOptions,
    channels: &[Arc<Channel>],
    tombstones: &[Tombstone],
) -> Result<(Arc<Storage>, RecoveryReport)> {
    let span = tracing::info_span!("storage.recover", key = "storage/recovery", dir = %dir.display());
    let _e = span.enter();
    let seg_dir = dir.join("segments");
    fs::create_dir_all(&seg_dir).map_err(|e| io_err(&seg_dir, e))?;
    let stores: HashMap<ChannelKey, Arc<ChannelStore>> =
        channels.iter().filter(|c| !c.is_virtual()).map(|c| (c.key, Arc::new(ChannelStore::new(c)))).collect();
    let mut rec = Recovery {
        stores: &stores,
        tombstones: index_tombstones(tombstones),
        report: RecoveryReport::default(),
        max_seq: 0,
        domains: HashMap::new(),
        stats: Arc::new(StorageStats::default()),
        found: Vec::new(),
        ckpt: super::checkpoint::read(&seg_dir).unwrap_or_default(),
    };
    rec.max_seq = rec.ckpt.next_seq.saturating_sub(1);
    for (&k, &next) in &rec.ckpt.next_domain {
        rec.domains.insert(k, next);
    }
    let started = std::time::Instant::now();
    let files = list_segments(&seg_dir, &mut rec.report)?;
    // Above every id the checkpoint names too: a segment it names may have been deleted
    // since (reclaim) and the engine crashed before the next checkpoint. A new segment
    // under that id would make the stale entry name it, and the next open would start its
    // walk at the old segment's committed end, in the middle of the new one's records.
    let max_id = files.last().map_or(0, |(id, _)| *id).max(rec.ckpt.committed.keys().copied().max().unwrap_or(0));
    let segments = Segments::new(seg_dir.clone(), opts.segment_size, max_id + 1, rec.stats.clone());
    for (id, path) in files {
        if let Some((seg, compaction)) = rec.segment(id, path, opts.segment_size)? {
            rec.report.segments += 1;
            segments.insert_recovered(seg, !compaction);
        }
    }
    rec.index_chunks();
    rec.finish(tombstones)?;
    let Recovery { mut report, max_seq, .. } = rec;
    report.micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(
        key = "storage/recovery",
        segments = report.segments,
        chunks = report.chunks,
        truncated = report.truncated_bytes,
        "storage recovered"
    );
    let storage = Arc::new(Storage {
        opts,
        segments,
        channels: RwLock::new(stores),
        seq: AtomicU64::new(max_seq + 1),
        commit_lock: RwLock::new(()),
        background: Mutex::new(Vec::new()),
        sync_signal: syncer::Signal::default(),
        dead: super::reclaim::DeadRecords::default(),
        compacting: Mutex::new(()),
        compact_batch: Mutex::new(()),
        compact_out: Mutex::new(None),
        closed: std::sync::atomic::AtomicBool::new(false),
    });
    Ok((storage, report))
}
