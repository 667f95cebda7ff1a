//! The storage layer's counters: plain atomics bumped where the work happens (per append,
//! per sync, per deleted segment, never per sample), read by `observe` into OpenTelemetry
//! instruments (docs/observability.md). The layer itself knows nothing of OpenTelemetry;
//! the one timing it reports, each `fdatasync`, goes to an observer `observe` installs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

/// Called with the duration of every `fdatasync` of a segment (a histogram, in `observe`).
pub type SyncObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Counters of one engine's storage. See [`StorageMetricsSnapshot`] for their meaning.
#[derive(Default)]
pub(crate) struct StorageStats {
    samples: AtomicU64,
    bytes: AtomicU64,
    commits: AtomicU64,
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
    segments_created: AtomicU64,
    segments_deleted: AtomicU64,
    reclaimed_bytes: AtomicU64,
    observer: RwLock<Option<SyncObserver>>,
}

impl std::fmt::Debug for StorageStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageStats").field("commits", &self.commits.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl StorageStats {
    pub(crate) fn appended(&self, samples: u64, bytes: u64, commit: bool) {
        self.samples.fetch_add(samples, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if commit {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn synced(&self, took: Duration) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.sync_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if let Some(obs) = self.observer.read().as_ref() {
            obs(took);
        }
    }

    pub(crate) fn segment_created(&self) {
        self.segments_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn segment_deleted(&self, bytes: u64) {
        self.segments_deleted.fetch_add(1, Ordering::Relaxed);
        self.reclaimed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn set_sync_observer(&self, obs: Option<SyncObserver>) {
        *self.observer.write() = obs;
    }

    pub(crate) fn snapshot(&self, live_segments: usize) -> StorageMetricsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StorageMetricsSnapshot {
            samples_written: l(&self.samples),
            bytes_written: l(&self.bytes),
            commits: l(&self.commits),
            syncs: l(&self.syncs),
            sync_seconds: l(&self.sync_nanos) as f64 / 1e9,
            segments: live_segments as u64,
            segments_created: l(&self.segments_created),
            segments_deleted: l(&self.segments_deleted),
            reclaimed_bytes: l(&self.reclaimed_bytes),
        }
    }
}

/// What one engine's storage has done since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StorageMetricsSnapshot {
    /// Samples appended to segment files (index and data channels alike).
    pub samples_written: u64,
    /// Bytes appended to segment files: record headers, payloads, padding, commit records.
    pub bytes_written: u64,
    /// Commit records written.
    pub commits: u64,
    /// `fdatasync` calls on segment files (commit durability, the interval syncer, seals).
    pub syncs: u64,
    /// Time spent in those calls, in seconds.
    pub sync_seconds: f64,
    /// Segment files open now.
    pub segments: u64,
    /// Segment files created since the engine opened.
    pub segments_created: u64,
    /// Segment files deleted because nothing in them was live any more.
    pub segments_deleted: u64,
    /// Bytes those deleted files held.
    pub reclaimed_bytes: u64,
}
