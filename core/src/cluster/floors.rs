//! Read-your-writes for mirrors: after a change of another node's channel or range made
//! through this node, the node reads the record back from etcd into its mirror at once. The
//! watch then still delivers the records written before it; [`Floors`] keeps those from
//! undoing the change.
//!
//! - A record read back, and each record the watch brings afterwards, sets the key's
//!   **floor**: the etcd revision of what the mirror holds. A record of that key older than
//!   the floor is ignored.
//! - A key read back as deleted gets its floor at the revision read, so an older record
//!   cannot bring it back. The watch's delete of a key ends its floor: nothing older can
//!   follow it.
//! - Only keys read back have a floor (the watch delivers every other key in order), so
//!   the memory is one entry per key changed through a node that does not store it.
//! - A read-back holds the lock from before its etcd read until its record is applied, and
//!   the watch holds it while it checks and applies each response. Every record the watch
//!   applied before a read-back is therefore no newer than it, and every one after it is
//!   checked against its floor.

use std::collections::HashMap;
use std::hash::Hash;

/// The floors of the keys of one kind of mirror (channels or ranges).
#[derive(Debug)]
pub(super) struct Floors<K> {
    at: tokio::sync::Mutex<HashMap<K, i64>>,
}

impl<K> Default for Floors<K> {
    fn default() -> Self {
        Floors { at: tokio::sync::Mutex::new(HashMap::new()) }
    }
}

/// The floors, locked: held across a read-back or across applying one watch response.
pub(super) type Held<'a, K> = tokio::sync::MutexGuard<'a, HashMap<K, i64>>;

impl<K: Hash + Eq + Copy> Floors<K> {
    pub(super) async fn lock(&self) -> Held<'_, K> {
        self.at.lock().await
    }
}

/// Whether the watch's record of `key`, written at `revision`, is at least as new as what
/// the mirror holds (and so is to be applied).
pub(super) fn admit<K: Hash + Eq + Copy>(held: &mut Held<'_, K>, key: K, revision: i64) -> bool {
    match held.get_mut(&key) {
        Some(floor) if revision < *floor => false,
        Some(floor) => {
            *floor = revision;
            true
        }
        None => true,
    }
}

/// A record of `key` at `revision`, read back from etcd: whether to apply it (it is unless
/// a newer one is already applied). The key has a floor from now on.
pub(super) fn read_back<K: Hash + Eq + Copy>(held: &mut Held<'_, K>, key: K, revision: i64) -> bool {
    let floor = held.entry(key).or_insert(revision);
    if revision < *floor {
        return false;
    }
    *floor = revision;
    true
}

/// `key` read back as gone from etcd, which was at `revision`: no older record of it is
/// applied.
pub(super) fn read_back_gone<K: Hash + Eq + Copy>(held: &mut Held<'_, K>, key: K, revision: i64) {
    let floor = held.entry(key).or_insert(revision);
    *floor = (*floor).max(revision);
}

/// The watch reported `key` deleted: nothing older can follow, so its floor ends.
pub(super) fn deleted<K: Hash + Eq + Copy>(held: &mut Held<'_, K>, key: K) {
    held.remove(&key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_older_record_never_replaces_a_read_back_one_nor_brings_back_a_deleted_key() {
        let floors: Floors<u32> = Floors::default();
        let mut held = floors.lock().await;
        // Keys never read back are applied in the watch's order.
        assert!(admit(&mut held, 7, 3) && admit(&mut held, 7, 2));
        // Read back at 5: the record of 4 still in the watch is older and ignored; 6 is not.
        assert!(read_back(&mut held, 1, 5));
        assert!(!admit(&mut held, 1, 4));
        assert!(admit(&mut held, 1, 5), "the same record, delivered by the watch too");
        assert!(admit(&mut held, 1, 6));
        assert!(!read_back(&mut held, 1, 5), "a read-back older than what the watch applied");
        // Read back as deleted at 9: records from before do not bring it back.
        read_back_gone(&mut held, 1, 9);
        assert!(!admit(&mut held, 1, 8));
        deleted(&mut held, 1);
        assert!(held.is_empty(), "the watch's delete ends the floor");
    }
}
