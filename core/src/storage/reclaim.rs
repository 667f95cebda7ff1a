//! Range deletion and background space reclaim.
//!
//! A delete persists tombstones first, then drops the references in memory, so a crash
//! either keeps the data or deletes it, never half. The reclaimer then returns space:
//! - a record no reference points to any more has its payload punched out of the file
//!   (`fallocate(PUNCH_HOLE)`), once no reader holds bytes mapped from that segment;
//! - a segment with no live records, not held by a writer, is deleted (a pooled one too:
//!   compaction leaves whole segments of replaced records behind).
//!
//! Neither step takes a lock that readers or writers wait on for more than a list swap.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::index::RecordRef;
use super::reader::index_pieces;
use super::recovery::Tombstone;
use super::syncer::{Background, Signal, spawn_loop};
use super::{ChannelStore, Storage, WriteError};
type Result<T, E = crate::storage_error::StorageFailure> = std::result::Result<T, E>;
use crate::telem::TimeRange;

/// Records that lost references and may be reclaimed.
#[derive(Debug, Default)]
pub(crate) struct DeadRecords(parking_lot::Mutex<Vec<Arc<RecordRef>>>);

impl DeadRecords {
    pub(crate) fn push_all(&self, recs: impl IntoIterator<Item = Arc<RecordRef>>) {
        self.0.lock().extend(recs);
    }
}

/// Plan a deletion of `tr` from `stores`: returns tombstones (without applying them).
/// Data channels are removed before their index; an index range still used by a data
/// channel that is not being deleted is refused.
pub(crate) fn plan_delete(storage: &Storage, tr: TimeRange, stores: &[Arc<ChannelStore>], seq: u64) -> Result<Vec<Tombstone>> {
    let mut out = Vec::new();
    for s in stores {
        if s.state.lock().writers > 0 {
            return Err(WriteError::ChannelBusy { channel: s.name.clone() }.into());
        }
    }
    let mut by_index: BTreeMap<u32, Vec<Arc<ChannelStore>>> = BTreeMap::new();
    for s in stores {
        if let Some(i) = s.index {
            by_index.entry(i).or_default().push(s.clone());
        }
    }
    for (idx, members) in by_index {
        let Some(index) = storage.store(idx) else { continue };
        let pieces = index_pieces(&index, tr)?;
        let mut spans: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        for p in &pieces {
            let e = spans.entry(p.domain).or_insert((p.chunk.pos, p.chunk.end()));
            e.0 = e.0.min(p.chunk.pos);
            e.1 = e.1.max(p.chunk.end());
        }
        if members.iter().any(|m| m.key == idx) {
            let mut in_use = Vec::new();
            for dep in storage.channels.read().values().filter(|c| c.index == Some(idx) && c.key != idx) {
                if members.iter().any(|m| m.key == dep.key) {
                    continue;
                }
                let st = dep.state.lock();
                let used = spans.iter().any(|(d, (from, to))| st.chunks.domain(*d).is_some_and(|dom| !dom.pieces(*from, *to).is_empty()));
                if used {
                    in_use.push(dep.name.clone());
                }
            }
            if !in_use.is_empty() {
                return Err(WriteError::InvalidConfig {
                    reason: format!(
                        "cannot delete this range of index {:?}: data channels {in_use:?} still have samples there; delete them in the same call or first",
                        index.name
                    ),
                }
                .into());
            }
        }
        for m in &members {
            for (&domain, &(from, to)) in &spans {
                out.push(Tombstone { seq, channel: m.key, domain, from, to });
            }
        }
    }
    Ok(out)
}

/// Apply tombstones in memory; dropped records go to the reclaimer.
pub(crate) fn apply_tombstones(storage: &Storage, tombstones: &[Tombstone]) -> Result<()> {
    let mut dead = Vec::new();
    for t in tombstones {
        let Some(store) = storage.store(t.channel) else { continue };
        let mut st = store.state.lock();
        dead.extend(st.chunks.remove(t.domain, t.from, t.to, t.seq, store.data_type)?.into_iter().map(|c| c.rec));
    }
    storage.dead.push_all(dead);
    Ok(())
}

/// One reclaim pass; returns (bytes punched, segments deleted).
pub(crate) fn reclaim_once(storage: &Storage) -> (u64, usize) {
    let candidates = std::mem::take(&mut *storage.dead.0.lock());
    let mut keep = Vec::new();
    let mut punched = 0u64;
    let mut seen = std::collections::HashSet::new();
    for r in candidates {
        if !seen.insert((r.seg.id, r.offset)) {
            continue;
        }
        // Live if the index or a reader still holds it, or mapped bytes are out there.
        if Arc::strong_count(&r) > 1 || !r.seg.map_unshared() {
            keep.push(r);
            continue;
        }
        let payload = r.offset + super::format::RECORD_HEADER_LEN as u64;
        punched += r.seg.punch(payload, r.header.len);
    }
    storage.dead.push_all(keep);
    let mut deleted = 0;
    for seg in storage.segments.list() {
        // Held only by the segment table and perhaps the pool (this list holds one more):
        // no writer, no record references. `remove_if_idle` checks again under the locks.
        if seg.live_records.load(Ordering::Acquire) <= 0 && Arc::strong_count(&seg) <= 3 && seg.map_unshared() {
            let id = seg.id;
            drop(seg);
            if storage.segments.remove_if_idle(id).unwrap_or(false) {
                deleted += 1;
            }
        }
    }
    if punched > 0 || deleted > 0 {
        tracing::info!(key = "storage/reclaim", punched_bytes = punched, segments_deleted = deleted, "space reclaimed");
    }
    (punched, deleted)
}

pub(crate) fn spawn_reclaimer(storage: Weak<Storage>) -> Background {
    let period = storage.upgrade().map_or(std::time::Duration::from_secs(5), |s| s.opts.reclaim_interval);
    spawn_loop("telemetron:reclaim", Signal::default(), period, storage, |st| {
        reclaim_once(st);
    })
}
