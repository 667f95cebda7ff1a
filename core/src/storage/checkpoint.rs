//! The index checkpoint: what recovery would learn from the segments' committed records,
//! written at a clean close and every `StorageOptions::checkpoint_interval` while the
//! engine runs, so the next open walks only what was appended since, after a crash too.
//!
//! `segments/index.ckpt` holds, for each segment, the end of its last commit or seal
//! (`committed`), and every chunk record the pointer index references below that end: its
//! segment, offset, commit seq and header; plus the next commit seq and each index
//! channel's next domain. Opening reads it (one sequential read) instead of one header per
//! record scattered over the segment files, then walks each segment from its `committed`
//! on, as recovery always does.
//!
//! It stays valid after later runs, crashes included: segments only grow past `committed`
//! (appends), lose what lies past it (truncation of uncommitted tails), lose whole pages of
//! dead records (punching: those records are dead by a tombstone or superseded by a
//! compacted record, so they are not indexed either way), or disappear (their entries are
//! skipped; the open numbers new segments above every id the checkpoint names, so a later
//! segment never takes a deleted one's entries). The payloads it covers were synced before it was written, and are verified
//! lazily on first read like every record before a seal. A damaged or foreign checkpoint is
//! ignored: the open walks everything, as without one.
//!
//! Layout (little-endian): magic `TLMCKPT\0`, version u32 = 1, 0 u32, next seq u64,
//! segments u32, then (id u64, committed u64) each; domains u32, then (index channel u32,
//! next domain u32) each; chunks u64, then (segment u64, offset u64, seq u64, encoded
//! record header 56 bytes) each; CRC-32C u32 of everything before it.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::format::{RECORD_HEADER_LEN, RecordHeader};
use super::segment::{io_err, sync_dir};
use super::{Storage, StorageError};
use crate::channel::ChannelKey;

const MAGIC: &[u8; 8] = b"TLMCKPT\0";
const VERSION: u32 = 1;
const NAME: &str = "index.ckpt";

/// A checkpoint read back.
#[derive(Debug, Default)]
pub(crate) struct Checkpoint {
    pub next_seq: u64,
    /// Segment id -> end of its committed records when the checkpoint was written.
    pub committed: HashMap<u64, u64>,
    pub next_domain: HashMap<ChannelKey, u32>,
    /// Segment id -> (offset, seq, header) of its indexed chunks, in file order.
    pub chunks: HashMap<u64, Vec<(u64, u64, RecordHeader)>>,
}

pub(crate) fn path(seg_dir: &Path) -> PathBuf {
    seg_dir.join(NAME)
}

/// Write the checkpoint of `storage` at a clean close, once the background threads are
/// stopped and every segment is synced. It takes the same path as during a run: a commit
/// that passed the engine's `closed` check just before the close, or a compaction a caller
/// started, may still move a committed end, and what the checkpoint covers must be synced.
pub(crate) fn write_at_close(storage: &Storage) -> Result<(), StorageError> {
    write_during_run(storage).map(|_| ())
}

/// Write the checkpoint of `storage` while writers, compaction and reclaim may run.
/// Returns the number of chunks it holds.
///
/// - Each segment's committed end is read first, then the segment is synced: what the
///   checkpoint covers is durable before the checkpoint is.
/// - A writer inserts a commit's chunks into the index before it moves its segment's
///   committed end, and a segment has one appender, so every chunk below an end read here
///   is in the index when it is read below; chunks committed later lie past that end and
///   are walked at the next open.
/// - No compaction batch runs meanwhile (`Storage::compact_batch` is held; a pass hands it
///   on fairly after each batch), so no reference is being swapped from a record to the
///   record that replaces it.
/// - Deletes may run: the catalog's tombstones are applied again at every open.
/// - Whatever changes later (appends, truncated tails, punched dead records, deleted
///   segments) leaves it valid, as the module docs say.
pub(crate) fn write_during_run(storage: &Storage) -> Result<usize, StorageError> {
    let _no_compaction_batch = storage.compact_batch.lock();
    let segs = storage.segments.list();
    let committed: HashMap<u64, u64> = segs.iter().map(|s| (s.id, s.committed())).collect();
    for s in &segs {
        s.sync()?;
    }
    write(storage, &committed)
}

/// The background thread (`telemetron:checkpoint`): every `period`, a checkpoint if
/// anything was committed since the last one.
pub(crate) fn spawn_checkpointer(storage: std::sync::Weak<Storage>, period: std::time::Duration) -> super::syncer::Background {
    let last_seq = std::sync::atomic::AtomicU64::new(0);
    super::syncer::spawn_loop("telemetron:checkpoint", super::syncer::Signal::default(), period, storage, move |st| {
        let seq = st.seq.load(std::sync::atomic::Ordering::Acquire);
        if seq == last_seq.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let t0 = std::time::Instant::now();
        match write_during_run(st) {
            Ok(chunks) => {
                last_seq.store(seq, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    key = "storage/recovery",
                    chunks,
                    millis = t0.elapsed().as_millis() as u64,
                    "index checkpoint written during the run"
                );
            }
            Err(e) => {
                tracing::warn!(key = "storage/recovery", error = %e, "could not write the index checkpoint; retried at the next interval")
            }
        }
    })
}

/// Write the checkpoint: `committed` holds each segment's committed end, durable already.
fn write(storage: &Storage, committed: &HashMap<u64, u64>) -> Result<usize, StorageError> {
    let seg_dir = storage.segments.dir();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&storage.seq.load(std::sync::atomic::Ordering::Acquire).to_le_bytes());
    out.extend_from_slice(&(committed.len() as u32).to_le_bytes());
    for (id, end) in committed {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    }
    let stores: Vec<_> = storage.channels.read().values().cloned().collect();
    let mut domains = Vec::new();
    let mut chunks = Vec::new();
    let mut seen = HashSet::new();
    for store in &stores {
        let st = store.state.lock();
        if store.is_index {
            domains.push((store.key, st.next_domain));
        }
        for d in st.chunks.domains().values() {
            for c in &d.chunks {
                let (id, off) = (c.rec.seg.id, c.rec.offset);
                // Only what the segment's committed end covers (and once per record).
                if committed.get(&id).is_some_and(|&end| off < end) && seen.insert((id, off)) {
                    chunks.push((id, off, c.seq, c.rec.header.encode()));
                }
            }
        }
    }
    chunks.sort_unstable_by_key(|c| (c.0, c.1));
    out.extend_from_slice(&(domains.len() as u32).to_le_bytes());
    for (k, next) in domains {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&next.to_le_bytes());
    }
    out.extend_from_slice(&(chunks.len() as u64).to_le_bytes());
    for (id, off, seq, h) in &chunks {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(h);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let target = path(seg_dir);
    let tmp = seg_dir.join(format!("{NAME}.tmp"));
    let io = |e| io_err(&tmp, e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&out).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))?;
    sync_dir(seg_dir)?;
    tracing::debug!(key = "storage/recovery", chunks = chunks.len(), bytes = out.len(), "index checkpoint written");
    Ok(chunks.len())
}

/// A little-endian reader over the checkpoint bytes; `None` past the end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
}

/// Read the checkpoint of `seg_dir`; `None` if there is none, or it is damaged, foreign or
/// of another version (the open then walks every segment).
pub(crate) fn read(seg_dir: &Path) -> Option<Checkpoint> {
    let p = path(seg_dir);
    let bytes = fs::read(&p).ok()?;
    let parsed = parse(&bytes);
    if parsed.is_none() {
        tracing::warn!(key = "storage/recovery", path = %p.display(), "index checkpoint damaged or foreign; ignored (the open reads every record header)");
    }
    parsed
}

fn parse(bytes: &[u8]) -> Option<Checkpoint> {
    let (body, crc) = bytes.split_last_chunk::<4>()?;
    if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let mut c = Cursor(body);
    if &c.take::<8>()? != MAGIC || c.u32()? != VERSION {
        return None;
    }
    c.u32()?;
    let mut ck = Checkpoint { next_seq: c.u64()?, ..Checkpoint::default() };
    for _ in 0..c.u32()? {
        let (id, end) = (c.u64()?, c.u64()?);
        ck.committed.insert(id, end);
    }
    for _ in 0..c.u32()? {
        let (k, next) = (c.u32()?, c.u32()?);
        ck.next_domain.insert(k, next);
    }
    for _ in 0..c.u64()? {
        let (id, off, seq) = (c.u64()?, c.u64()?, c.u64()?);
        let h = RecordHeader::decode(&c.take::<RECORD_HEADER_LEN>()?)?;
        // Only chunks a committed end covers, as written.
        if ck.committed.get(&id).is_none_or(|&end| off >= end) {
            return None;
        }
        ck.chunks.entry(id).or_default().push((off, seq, h));
    }
    c.0.is_empty().then_some(ck)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telem::{Alignment, DataType};

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&42u64.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&7u64.to_le_bytes());
        out.extend_from_slice(&4096u64.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&5u32.to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes());
        out.extend_from_slice(&7u64.to_le_bytes());
        out.extend_from_slice(&64u64.to_le_bytes());
        out.extend_from_slice(&9u64.to_le_bytes());
        out.extend_from_slice(&RecordHeader::chunk(DataType::F64, 4, 2, Alignment::new(0, 0), 16, (0, 0)).encode());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn a_checkpoint_parses_and_any_damage_is_refused() {
        let good = sample();
        let ck = parse(&good).unwrap();
        assert_eq!((ck.next_seq, ck.committed[&7], ck.next_domain[&3]), (42, 4096, 5));
        assert_eq!(ck.chunks[&7][0].0, 64);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(parse(&bad).is_none(), "a flip at byte {i} is caught");
        }
        assert!(parse(&good[..good.len() - 1]).is_none());
        assert!(parse(&[]).is_none());
    }
}
