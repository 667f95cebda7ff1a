//! The storage engine: durable, append-only channel storage.
//!
//! ## Layout
//! Samples are appended to **segment files**: logs of checksummed chunk records followed by
//! commit records. Each open writer appends to one segment of its own, so all channels of
//! a writer (10 or 10,000) share one file and one `fdatasync`. A channel's samples form
//! **domains** (contiguous, non-overlapping time ranges, one per writer session); each
//! domain is a sorted list of chunk references, the in-memory **pointer index**. Index
//! channels hold timestamps; a data channel's chunk at alignment `(domain, pos)` lines up
//! with its index channel's samples at the same alignment, so data channels resolve time
//! through their index. See `docs/architecture.md` for the byte layout.
//!
//! ## Commits
//! A write is buffered in the writer. A commit appends the buffered chunks and a commit
//! record in one `write(2)`, then makes them visible to readers. A commit is atomic across
//! the writer's channels: after a crash, a commit is either wholly readable or wholly absent.
//!
//! ## Durability
//! [`Durability`] states what survives a crash:
//! - `Commit`: `commit()` returns after `fdatasync`; every acknowledged commit survives a
//!   process or machine crash.
//! - `Interval` (default): a background thread syncs dirty segments every `interval`
//!   (default 1 s) or as soon as `bytes` are unsynced. Commits older than that window
//!   survive a machine crash; all commits survive a process crash (they are in the page
//!   cache when `commit()` returns).
//! - `None`: never fsyncs. Commits survive a process crash; a machine crash may lose any.
//!
//! ## Recovery
//! Opening a directory scans each segment: record headers are checksummed; after the last
//! clean close (seal record), payload checksums are verified too. Everything after the last
//! intact commit record is a torn or uncommitted tail and is truncated. Payload checksums
//! elsewhere are verified on first read: a corrupt chunk is an error, never served.
//!
//! ## Compaction
//! A background pass merges each channel's small records into large ones, compressed if
//! asked, crash-safe at every step (see `compact`). Opening then walks fewer headers and
//! the index holds fewer references.
//!
//! ## Deletion and space
//! Deleting a time range records a tombstone in the catalog and drops the references at
//! once; a background thread returns dead bytes to the file system (hole punching) and
//! deletes segments with no live data, without blocking readers or writers.

// A storage engine must not panic on bad bytes or bad input: no `unwrap`, no unchecked
// indexing. Tests may (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod checkpoint;
mod compact;
pub mod compress;
mod format;
mod index;
mod lock;
mod reader;
mod reclaim;
mod recovery;
pub(crate) mod rules;
mod segment;
mod stats;
mod syncer;
mod writer;

pub use crate::storage_error::{StorageError, WriteError};
pub use compact::CompactionReport;
pub(crate) use index::ChannelIndex;
pub(crate) use lock::DirLock;
pub(crate) use reader::{ReadPlan, read_channels};
pub(crate) use stats::StorageStats;
pub use stats::{StorageMetricsSnapshot, SyncObserver};
pub(crate) use writer::{StorageWriter, Tap, WriterGroupSpec};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::channel::{Channel, ChannelKey};
use crate::telem::DataType;
use segment::Segments;

/// What survives a crash. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Durability {
    /// Never fsync.
    None,
    /// Group commit: sync every `interval` or after `bytes` unsynced bytes. The interval
    /// is the engine's (from [`StorageOptions::durability`]); `bytes` applies per writer.
    Interval {
        /// Maximum time between syncs (engine-wide).
        interval: Duration,
        /// Sync early once this many bytes are unsynced in a segment.
        bytes: u64,
    },
    /// `fdatasync` before every commit returns.
    Commit,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::Interval { interval: Duration::from_secs(1), bytes: 256 << 20 }
    }
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Durability::None),
            "interval" => Ok(Durability::default()),
            "commit" => Ok(Durability::Commit),
            other => Err(format!("unknown durability {other:?}; use none, interval or commit")),
        }
    }
}

/// Storage tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// Default durability for writers that don't choose their own.
    pub durability: Durability,
    /// Segment size at which a writer moves to a new segment file.
    pub segment_size: u64,
    /// How often the background reclaimer looks for dead space.
    pub reclaim_interval: Duration,
    /// How often the background compactor merges small records (`None`: only when
    /// `Engine::compact` is called).
    pub compaction_interval: Option<Duration>,
    /// Payload size (before compression) compaction aims for. Records of at least half of
    /// it are left as they are, so each sample is rewritten a bounded number of times.
    pub compacted_record_bytes: u64,
    /// Compress what compaction writes: Pcodec for numeric data channels (chosen by
    /// `telemetron bench codecs`), raw for index channels and other types. Reads of
    /// compressed records decompress them instead of mapping them.
    pub compress: bool,
    /// How often the index checkpoint is written while the engine runs, if anything was
    /// committed since the last one (`None`: only at a clean close). After a crash, the
    /// open walks only what was committed since the last checkpoint. Each one syncs every
    /// segment first (docs/architecture.md §7).
    pub checkpoint_interval: Option<Duration>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            durability: Durability::default(),
            segment_size: 256 << 20,
            reclaim_interval: Duration::from_secs(5),
            compaction_interval: Some(Duration::from_secs(30)),
            compacted_record_bytes: 4 << 20,
            compress: false,
            checkpoint_interval: Some(Duration::from_secs(300)),
        }
    }
}

/// Mutable state of one stored channel.
#[derive(Debug, Default)]
pub(crate) struct ChannelState {
    pub chunks: ChannelIndex,
    /// Next domain key (index channels).
    pub next_domain: u32,
    /// Open writers holding the channel.
    pub writers: u32,
    /// Regions being written (index channels): writers whose time ranges overlap share one.
    pub regions: Vec<Arc<RegionDomain>>,
}

/// The domain shared by all writers of one index channel over one time region. Control
/// decides which of them may write at any moment; they all append to this one domain, so
/// handing control back and forth never creates overlapping domains.
#[derive(Debug)]
pub(crate) struct RegionDomain {
    pub start: i64,
    pub end: i64,
    pub writers: std::sync::atomic::AtomicU32,
    pub state: Mutex<RegionState>,
}

/// Write position of a region.
#[derive(Debug)]
pub(crate) struct RegionState {
    pub domain: u32,
    pub next_pos: u32,
    pub last_ts: Option<i64>,
    /// Writes must stay below this (next stored domain, next region, or the writers' end).
    pub limit: i64,
}

/// A stored channel: its definition plus its index.
#[derive(Debug)]
pub(crate) struct ChannelStore {
    pub key: ChannelKey,
    pub name: String,
    pub data_type: DataType,
    pub index: Option<ChannelKey>,
    pub is_index: bool,
    /// What the definition chose (mapped to a codec by `compress::Codec::for_channel`);
    /// the one field that changes after creation (`Engine::set_channel_compression`).
    pub compression: Mutex<crate::channel::Compression>,
    pub state: Mutex<ChannelState>,
}

impl ChannelStore {
    pub(crate) fn new(ch: &Channel) -> ChannelStore {
        ChannelStore {
            key: ch.key,
            name: ch.name.clone(),
            data_type: ch.data_type,
            index: ch.index_key(),
            is_index: ch.is_index(),
            compression: Mutex::new(ch.compression),
            state: Mutex::new(ChannelState::default()),
        }
    }
}

/// The storage engine of one data directory.
#[derive(Debug)]
pub(crate) struct Storage {
    pub opts: StorageOptions,
    pub segments: Segments,
    pub channels: RwLock<HashMap<ChannelKey, Arc<ChannelStore>>>,
    /// Next commit sequence number.
    pub seq: AtomicU64,
    /// Commits hold it shared; deletes exclusive (so tombstones order after commits).
    pub commit_lock: RwLock<()>,
    pub background: Mutex<Vec<syncer::Background>>,
    pub sync_signal: syncer::Signal,
    pub dead: reclaim::DeadRecords,
    /// Held by a compaction pass: one at a time.
    pub compacting: Mutex<()>,
    /// Held by each compaction batch (plan, write, sync, swap) and by a run-time checkpoint,
    /// which so runs between two batches, never inside one. Taken before `commit_lock`.
    pub compact_batch: Mutex<()>,
    /// The segment compaction appends to between passes (never pooled for writers).
    pub compact_out: Mutex<Option<Arc<segment::Segment>>>,
    /// Set by `shutdown`: writers left open must not touch segment files any more (the
    /// directory may be reopened by another engine).
    pub closed: std::sync::atomic::AtomicBool,
}

impl Storage {
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::AcqRel)
    }

    pub(crate) fn store(&self, key: ChannelKey) -> Option<Arc<ChannelStore>> {
        self.channels.read().get(&key).cloned()
    }

    pub(crate) fn add_channel(&self, ch: &Channel) {
        if !ch.is_virtual() {
            self.channels.write().entry(ch.key).or_insert_with(|| Arc::new(ChannelStore::new(ch)));
        }
    }

    /// Forget a deleted channel; its records go to the reclaimer.
    pub(crate) fn remove_channel(&self, key: ChannelKey) {
        if let Some(store) = self.channels.write().remove(&key) {
            let st = store.state.lock();
            let recs = st.chunks.domains().values().flat_map(|d| d.chunks.iter().map(|c| c.rec.clone())).collect::<Vec<_>>();
            self.dead.push_all(recs);
        }
    }

    /// Start the background sync and reclaim threads.
    pub(crate) fn start_background(self: &Arc<Self>) {
        let mut bg = self.background.lock();
        bg.push(syncer::spawn_syncer(Arc::downgrade(self)));
        bg.push(reclaim::spawn_reclaimer(Arc::downgrade(self)));
        if let Some(period) = self.opts.compaction_interval {
            bg.push(compact::spawn_compactor(Arc::downgrade(self), period));
        }
        if let Some(period) = self.opts.checkpoint_interval {
            bg.push(checkpoint::spawn_checkpointer(Arc::downgrade(self), period));
        }
    }

    /// Stop background threads and sync everything (clean shutdown).
    pub(crate) fn shutdown(&self) -> Result<(), StorageError> {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        for b in self.background.lock().drain(..) {
            b.stop();
        }
        self.segments.sync_dirty(true)?;
        // Everything is synced: the next open reads the index from the checkpoint and walks
        // only what is appended after it. Without one it walks everything, so a failure
        // here costs time at the next open, never data.
        if let Err(e) = checkpoint::write_at_close(self) {
            tracing::warn!(key = "storage/recovery", error = %e, "could not write the index checkpoint; the next open reads every record header");
        }
        Ok(())
    }
}

pub(crate) use compact::compact_once;
pub(crate) use reader::{extent, nth_after, nth_before};
pub(crate) use reclaim::{apply_tombstones, plan_delete, reclaim_once};
pub use recovery::RecoveryReport;
pub(crate) use recovery::{Tombstone, open_storage};
