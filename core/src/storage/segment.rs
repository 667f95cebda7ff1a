//! Segment files: append-only logs of chunk and commit records, one writer at a time.
//!
//! Appends go through `write(2)` at the end of the file; reads go through a shared
//! read-only memory map, so a read hands out [`Bytes`] over the page cache without copying.
//! A failed append is rolled back with `ftruncate` so a torn record never sits in front of
//! later ones.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};
use parking_lot::Mutex;

use super::format::{HEADER_LEN, KIND_SEAL, RECORD_HEADER_LEN, RecordHeader, encode_segment_header};
use super::{StorageError, StorageStats};
use crate::telem::TimeStamp;

/// Read-only view of part of a mapped segment, usable as a [`Bytes`] owner.
struct MapSlice {
    map: Arc<Mmap>,
    off: usize,
    len: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        // `Segment::bytes` builds a MapSlice only from a map that `map_covering` made at
        // least `off + len` long.
        self.map.get(self.off..self.off + self.len).expect("a MapSlice lies within its map (see Segment::bytes)")
    }
}

/// One segment file.
pub(crate) struct Segment {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    file: File,
    /// End of the last complete record.
    len: AtomicU64,
    /// Bytes known to be on stable storage.
    synced: AtomicU64,
    /// Truncations so far. A sync raises `synced` only if no truncation happened since it
    /// read the length it synced (checked and raised under this lock, which a truncation
    /// takes to lower `synced`), so a cut tail re-appended later is never taken as synced.
    cuts: Mutex<u64>,
    /// End of the last commit or seal record: everything before it is committed (what an
    /// index checkpoint may cover, storage/checkpoint.rs).
    committed: AtomicU64,
    /// Set when an append failed and could not be rolled back: no more appends.
    poisoned: AtomicBool,
    /// Set by interval-durability commits; the syncer only syncs segments that want it.
    pub(crate) wants_sync: AtomicBool,
    /// Chunk records of this segment still referenced (by the index or by readers).
    pub(crate) live_records: AtomicI64,
    map: Mutex<Option<Arc<Mmap>>>,
    /// Earlier, smaller mappings that readers may still hold bytes from.
    old_maps: Mutex<Vec<Arc<Mmap>>>,
    map_hint: u64,
    stats: Arc<StorageStats>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("id", &self.id).field("len", &self.len()).finish()
    }
}

pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}.seg"))
}

pub(crate) fn io_err(path: &Path, e: io::Error) -> StorageError {
    StorageError::Io { path: path.to_path_buf(), kind: e.kind(), reason: e.to_string() }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err(dir, e))
}

impl Segment {
    /// Create a new segment with its header, durable (file and directory entry).
    pub(crate) fn create(dir: &Path, id: u64, map_hint: u64, stats: Arc<StorageStats>) -> Result<Arc<Segment>, StorageError> {
        let path = segment_path(dir, id);
        let mut file = OpenOptions::new().read(true).append(true).create_new(true).open(&path).map_err(|e| io_err(&path, e))?;
        file.write_all(&encode_segment_header(id, TimeStamp::now().0)).map_err(|e| io_err(&path, e))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        sync_dir(dir)?;
        tracing::debug!(key = format!("storage/segment/{id}").as_str(), "segment created");
        stats.segment_created();
        Ok(Arc::new(Segment::from_file(id, path, file, HEADER_LEN, map_hint, stats)))
    }

    /// Wrap an existing, recovered segment whose valid content ends at `len`.
    pub(crate) fn open_existing(id: u64, path: PathBuf, file: File, len: u64, map_hint: u64, stats: Arc<StorageStats>) -> Arc<Segment> {
        let seg = Segment::from_file(id, path, file, len, map_hint, stats);
        seg.synced.store(len, Ordering::Release);
        seg.committed.store(len, Ordering::Release);
        Arc::new(seg)
    }

    fn from_file(id: u64, path: PathBuf, file: File, len: u64, map_hint: u64, stats: Arc<StorageStats>) -> Segment {
        Segment {
            id,
            path,
            file,
            len: AtomicU64::new(len),
            synced: AtomicU64::new(0),
            cuts: Mutex::new(0),
            committed: AtomicU64::new(len),
            poisoned: AtomicBool::new(false),
            wants_sync: AtomicBool::new(false),
            live_records: AtomicI64::new(0),
            map: Mutex::new(None),
            old_maps: Mutex::new(Vec::new()),
            map_hint,
            stats,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Append a SEAL record: everything before it is committed and (unless the writer's
    /// durability is `None`) synced, so recovery trusts it without re-reading it. The caller
    /// is the segment's only appender and has just committed, synced or cut what was not.
    pub(crate) fn append_seal(&self) -> Result<(), StorageError> {
        let enc = RecordHeader::marker(KIND_SEAL, 0, 0, TimeStamp::now().0).encode();
        self.append(&mut [IoSlice::new(&enc)], RECORD_HEADER_LEN as u64)?;
        self.mark_committed();
        Ok(())
    }

    /// Everything appended so far is committed (called by the segment's only appender right
    /// after a commit or seal record).
    pub(crate) fn mark_committed(&self) {
        self.committed.store(self.len(), Ordering::Release);
    }

    /// End of the last commit or seal record.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    pub(crate) fn unsynced(&self) -> u64 {
        self.len().saturating_sub(self.synced.load(Ordering::Acquire))
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Append `parts` (whose lengths add up to `total`) at the end; returns the offset of the
    /// first byte. The caller must be the segment's only appender.
    pub(crate) fn append(&self, parts: &mut [IoSlice<'_>], total: u64) -> Result<u64, StorageError> {
        if self.is_poisoned() {
            return Err(StorageError::SegmentFailed { segment: self.id });
        }
        let start = self.len();
        let mut file = &self.file;
        let mut slices = parts;
        let mut written = 0u64;
        while written < total {
            match file.write_vectored(slices) {
                Ok(0) => {
                    return Err(self.rollback(start, io::Error::new(io::ErrorKind::WriteZero, "write returned 0")));
                }
                Ok(n) => {
                    written += n as u64;
                    IoSlice::advance_slices(&mut slices, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.rollback(start, e)),
            }
        }
        self.len.store(start + total, Ordering::Release);
        Ok(start)
    }

    fn rollback(&self, start: u64, cause: io::Error) -> StorageError {
        if let Err(e) = self.file.set_len(start) {
            tracing::error!(key = format!("storage/segment/{}", self.id).as_str(), error = %e, "could not roll back a failed append; segment retired");
            self.poisoned.store(true, Ordering::Release);
        }
        io_err(&self.path, cause)
    }

    /// Cut the file back to `len` (dropping uncommitted records of an aborted writer).
    pub(crate) fn truncate_to(&self, len: u64) -> Result<(), StorageError> {
        if len >= self.len() {
            return Ok(());
        }
        match self.file.set_len(len) {
            Ok(()) => {
                self.len.store(len, Ordering::Release);
                let mut cuts = self.cuts.lock();
                *cuts += 1;
                self.synced.fetch_min(len, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                self.poisoned.store(true, Ordering::Release);
                Err(io_err(&self.path, e))
            }
        }
    }

    /// Make every byte appended so far durable.
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        let cuts = *self.cuts.lock();
        let target = self.len();
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        self.file.sync_data().map_err(|e| io_err(&self.path, e))?;
        self.stats.synced(t0.elapsed());
        // Another thread (the syncer, a checkpoint) may have cut the file meanwhile: then
        // `target` may lie past bytes appended after the cut and not synced here.
        let now = self.cuts.lock();
        if *now == cuts {
            self.synced.fetch_max(target, Ordering::AcqRel);
        }
        drop(now);
        Ok(())
    }

    /// Zero-copy bytes `[off, off + len)`; they must lie within appended records.
    pub(crate) fn bytes(&self, off: u64, len: u64) -> Result<Bytes, StorageError> {
        let end = off + len;
        if end > self.len() {
            return Err(StorageError::Corrupt {
                segment: self.id,
                offset: off,
                reason: format!("chunk ends at {end}, past the end of the segment ({})", self.len()),
            });
        }
        if len == 0 {
            return Ok(Bytes::new());
        }
        let map = self.map_covering(end)?;
        Ok(Bytes::from_owner(MapSlice { map, off: off as usize, len: len as usize }))
    }

    /// The shared map, covering at least `[0, end)` of appended records: for copying many
    /// records out without a `Bytes` each (compaction).
    pub(crate) fn map_to(&self, end: u64) -> Result<Arc<Mmap>, StorageError> {
        if end > self.len() {
            return Err(StorageError::Corrupt {
                segment: self.id,
                offset: end,
                reason: format!("a record ends at {end}, past the end of the segment ({})", self.len()),
            });
        }
        self.map_covering(end)
    }

    fn map_covering(&self, end: u64) -> Result<Arc<Mmap>, StorageError> {
        let mut guard = self.map.lock();
        if let Some(m) = guard.as_ref()
            && m.len() as u64 >= end
        {
            return Ok(m.clone());
        }
        // Map ahead of the written length so appends rarely force a remap. Pages past the end
        // of the file are never touched: reads stay within appended records.
        let want = end.max(self.map_hint).max(self.len()).next_multiple_of(1 << 20);
        // SAFETY: bytes of committed records are never modified while mapped: appends go past
        // them, runtime truncation (abort, failed append) only removes uncommitted records no
        // reader was given, and hole punching waits until no mapped bytes are held.
        let m = unsafe { MmapOptions::new().len(want as usize).map(&self.file) }.map_err(|e| io_err(&self.path, e))?;
        let m = Arc::new(m);
        if let Some(old) = guard.replace(m.clone()) {
            let mut olds = self.old_maps.lock();
            olds.retain(|o| Arc::strong_count(o) > 1);
            olds.push(old);
        }
        Ok(m)
    }

    /// True if no bytes handed out from any mapping of this segment are still alive.
    pub(crate) fn map_unshared(&self) -> bool {
        self.map.lock().as_ref().is_none_or(|m| Arc::strong_count(m) == 1) && self.old_maps.lock().iter().all(|m| Arc::strong_count(m) == 1)
    }

    /// Give the disk blocks of `[off, off + len)` back to the file system (the range must be
    /// dead: never read again). Partial pages at the ends are kept.
    pub(crate) fn punch(&self, off: u64, len: u64) -> u64 {
        const PAGE: u64 = 4096;
        let start = off.next_multiple_of(PAGE);
        let end = (off + len) / PAGE * PAGE;
        if end <= start {
            return 0;
        }
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                start as libc::off_t,
                (end - start) as libc::off_t,
            )
        };
        if rc == 0 { end - start } else { 0 }
    }
}

/// All segments of a database plus the pool of partly filled ones ready for a new writer.
#[derive(Debug)]
pub(crate) struct Segments {
    dir: PathBuf,
    cap: u64,
    next_id: AtomicU64,
    all: Mutex<HashMap<u64, Arc<Segment>>>,
    pool: Mutex<Vec<Arc<Segment>>>,
    pub(crate) stats: Arc<StorageStats>,
}

impl Segments {
    pub(crate) fn new(dir: PathBuf, cap: u64, next_id: u64, stats: Arc<StorageStats>) -> Segments {
        Segments { dir, cap, next_id: AtomicU64::new(next_id), all: Mutex::new(HashMap::new()), pool: Mutex::new(Vec::new()), stats }
    }

    /// The directory of the segment files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Segment files open now.
    pub(crate) fn count(&self) -> usize {
        self.all.lock().len()
    }

    pub(crate) fn cap(&self) -> u64 {
        self.cap
    }

    /// Add a segment found at open; a `poolable` one with room is offered to writers.
    pub(crate) fn insert_recovered(&self, seg: Arc<Segment>, poolable: bool) {
        if poolable && seg.len() < self.cap / 10 * 9 {
            self.pool.lock().push(seg.clone());
        }
        self.all.lock().insert(seg.id, seg);
    }

    /// A segment for a new writer: a pooled one with room, or a new file.
    pub(crate) fn acquire(&self) -> Result<Arc<Segment>, StorageError> {
        if let Some(seg) = self.pool.lock().pop() {
            return Ok(seg);
        }
        self.create()
    }

    pub(crate) fn create(&self) -> Result<Arc<Segment>, StorageError> {
        let id = self.next_id.fetch_add(1, Ordering::AcqRel);
        let seg = Segment::create(&self.dir, id, self.cap, self.stats.clone())?;
        self.all.lock().insert(id, seg.clone());
        Ok(seg)
    }

    /// Return a writer's segment; it is reused while it has room.
    pub(crate) fn release(&self, seg: Arc<Segment>) {
        if !seg.is_poisoned() && seg.len() < self.cap / 10 * 9 {
            self.pool.lock().push(seg);
        }
    }

    pub(crate) fn list(&self) -> Vec<Arc<Segment>> {
        self.all.lock().values().cloned().collect()
    }

    /// Delete segment `id` if nothing uses it: no live records, no writer, no reader.
    /// Returns whether it was deleted.
    pub(crate) fn remove_if_idle(&self, id: u64) -> Result<bool, StorageError> {
        let mut pool = self.pool.lock();
        let mut all = self.all.lock();
        let Some(seg) = all.get(&id) else { return Ok(false) };
        let in_pool = usize::from(pool.iter().any(|s| s.id == id));
        if seg.live_records.load(Ordering::Acquire) > 0 || Arc::strong_count(seg) > 1 + in_pool || !seg.map_unshared() {
            return Ok(false);
        }
        let seg = all.remove(&id).expect("present");
        pool.retain(|s| s.id != id);
        drop((pool, all));
        fs::remove_file(&seg.path).map_err(|e| io_err(&seg.path, e))?;
        self.stats.segment_deleted(seg.len());
        tracing::info!(key = format!("storage/segment/{id}").as_str(), "segment deleted: no live data");
        Ok(true)
    }

    /// Sync segments with unsynced bytes (only those that asked for it unless `all`);
    /// returns how many were synced.
    pub(crate) fn sync_dirty(&self, all: bool) -> Result<usize, StorageError> {
        let mut n = 0;
        for seg in self.list() {
            let wanted = seg.wants_sync.swap(false, Ordering::AcqRel);
            if seg.unsynced() > 0 && (all || wanted) {
                if let Err(e) = seg.sync() {
                    // Ask again on the next tick.
                    seg.wants_sync.store(wanted, Ordering::Release);
                    return Err(e);
                }
                n += 1;
            }
        }
        Ok(n)
    }
}
