//! Mirrors: the ranges other nodes of a cluster store, kept beside this node's own.

use std::collections::BTreeMap;

use redb::ReadableTable;
use uuid::Uuid;

use super::*;
use crate::catalog::{RANGE_KV, RANGES, meta_err};

/// Mirrors: the ranges other nodes of a cluster store (`cluster/ranges.rs` keeps them
/// current from etcd). Each change is reported on the change channel like a local one, so a
/// client of any node hears of every range.
impl Ranges {
    /// The range this node stores with `key` and its metadata, as a record for the other
    /// nodes; `None` if this node does not store it (a mirror, or gone).
    pub(crate) fn record(&self, home: u8, key: Uuid) -> Result<Option<MirroredRange>> {
        if self.mirrors.read().contains_key(&key) {
            return Ok(None);
        }
        let Some(range) = self.get_stored(key)? else { return Ok(None) };
        Ok(Some(MirroredRange { home, range, meta_data: self.meta_data(key)? }))
    }

    /// Every range this node stores with its metadata, as records for the other nodes
    /// (`home`: this node's number), from one catalog read.
    pub(crate) fn records_stored(&self, home: u8) -> Result<Vec<MirroredRange>> {
        let txn = self.catalog.read()?;
        let mut meta: std::collections::HashMap<u128, BTreeMap<String, String>> = std::collections::HashMap::new();
        for row in txn.open_table(RANGE_KV).map_err(meta_err)?.iter().map_err(meta_err)? {
            let (k, v) = row.map_err(meta_err)?;
            let (key, name) = k.value();
            meta.entry(key).or_default().insert(name.to_string(), v.value().to_string());
        }
        let mirrors = self.mirrors.read();
        let mut out = Vec::new();
        for row in txn.open_table(RANGES).map_err(meta_err)?.iter().map_err(meta_err)? {
            let (_, v) = row.map_err(meta_err)?;
            let range: Range = serde_json::from_slice(v.value()).map_err(meta_err)?;
            if !mirrors.contains_key(&range.key) {
                let meta_data = meta.remove(&range.key.as_u128()).unwrap_or_default();
                out.push(MirroredRange { home, range, meta_data });
            }
        }
        Ok(out)
    }

    /// Keep `m`, another node's range, as it is now. Returns false (and keeps nothing) when
    /// this node stores a range with the same key.
    pub(crate) fn mirror(&self, m: MirroredRange) -> bool {
        self.mirror_many(vec![m]).is_empty()
    }

    /// Keep each of `ms`, other nodes' ranges, as they are now: one catalog read for all,
    /// and the new ones reported as one `Created` change. Returns the keys refused because
    /// this node stores a range with the same key.
    fn mirror_many(&self, ms: Vec<MirroredRange>) -> Vec<Uuid> {
        let _order = self.order.lock();
        let stored: std::collections::HashSet<Uuid> = match self.stored_among(ms.iter().map(|m| m.range.key)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(key = "ranges", error = %e, "could not check the catalog for ranges with the keys of other nodes' ones; mirroring them");
                std::collections::HashSet::new()
            }
        };
        let (mut refused, mut created, mut changes) = (Vec::new(), Vec::new(), Vec::new());
        {
            let mut mirrors = self.mirrors.write();
            for m in ms {
                if stored.contains(&m.range.key) {
                    refused.push(m.range.key);
                    continue;
                }
                match mirrors.insert(m.range.key, m.clone()) {
                    None => created.push(m.range),
                    Some(old) => {
                        if old.range != m.range {
                            changes.push(RangeChange::Updated { ranges: vec![m.range.clone()] });
                        }
                        let set: BTreeMap<String, String> = m
                            .meta_data
                            .iter()
                            .filter(|(k, v)| old.meta_data.get(*k) != Some(*v))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        let deleted: Vec<String> = old.meta_data.keys().filter(|k| !m.meta_data.contains_key(*k)).cloned().collect();
                        if !set.is_empty() || !deleted.is_empty() {
                            changes.push(RangeChange::Meta { key: m.range.key, set, deleted });
                        }
                    }
                }
            }
        }
        if !created.is_empty() {
            self.report(&RangeChange::Created { ranges: created });
        }
        for c in &changes {
            self.report(c);
        }
        refused
    }

    /// Which of `keys` this node stores, in one read transaction.
    fn stored_among(&self, keys: impl Iterator<Item = Uuid>) -> Result<std::collections::HashSet<Uuid>> {
        let txn = self.catalog.read()?;
        let t = txn.open_table(RANGES).map_err(meta_err)?;
        let mut out = std::collections::HashSet::new();
        for k in keys {
            if t.get(k.as_u128()).map_err(meta_err)?.is_some() {
                out.insert(k);
            }
        }
        Ok(out)
    }

    /// Drop the mirrors `keys` (their node deleted them) with every descendant, including
    /// those this node stores: a child outliving its run would point nowhere, and this
    /// node's follower takes its own ones out of the cluster in turn.
    pub(crate) fn unmirror(&self, keys: &[Uuid]) -> Result<()> {
        let known: Vec<Uuid> = {
            let mirrors = self.mirrors.read();
            keys.iter().copied().filter(|k| mirrors.contains_key(k)).collect()
        };
        if known.is_empty() { Ok(()) } else { self.delete_with_descendants(&known) }
    }

    /// Replace the mirrors by what etcd holds: `listed` is every key of its whole list,
    /// `all` the records to mirror (a listed key without one keeps its mirror as it is);
    /// mirrors not listed are dropped as by [`Ranges::unmirror`].
    pub(crate) fn mirror_all(&self, all: Vec<MirroredRange>, listed: &std::collections::HashSet<Uuid>) -> Result<()> {
        let stale: Vec<Uuid> = self.mirrors.read().keys().filter(|k| !listed.contains(k)).copied().collect();
        self.unmirror(&stale)?;
        for key in self.mirror_many(all) {
            tracing::error!(key = "ranges", range = %key,
                "this node stores a range with the same key as another node's; the other one is not visible here");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirrored(home: u8, name: &str) -> MirroredRange {
        MirroredRange {
            home,
            range: Range {
                key: Uuid::new_v4(),
                name: name.into(),
                time_range: TimeRange::from_nanos(0, 10),
                labels: Vec::new(),
                color: None,
                parent: None,
            },
            meta_data: BTreeMap::from([("stand".to_string(), "A".to_string())]),
        }
    }

    #[test]
    fn a_node_joining_mirrors_every_range_in_one_change_and_refuses_its_own_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ranges = Ranges::new(Arc::new(Catalog::open(&dir.path().join("catalog.redb")).expect("catalog")));
        let seen: Arc<parking_lot::Mutex<Vec<RangeChange>>> = Arc::default();
        let s = seen.clone();
        ranges.on_change(Box::new(move |c| s.lock().push(c.clone())));
        let own =
            ranges.create(NewRange { name: "own".into(), time_range: TimeRange::from_nanos(0, 5), ..NewRange::default() }).expect("create");
        seen.lock().clear();

        let mut clash = mirrored(2, "clash");
        clash.range.key = own.key;
        let (a, b) = (mirrored(2, "a"), mirrored(3, "b"));
        let all = vec![a.clone(), clash, b.clone()];
        let listed = all.iter().map(|m| m.range.key).collect();
        ranges.mirror_all(all, &listed).expect("mirror_all");

        let changes = std::mem::take(&mut *seen.lock());
        assert_eq!(changes.len(), 1, "one change for the whole list: {changes:?}");
        match &changes[0] {
            RangeChange::Created { ranges: created } => {
                assert_eq!(created.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
            }
            other => panic!("expected one Created change, got {other:?}"),
        }
        assert_eq!(ranges.home(a.range.key), Some(2));
        assert_eq!(ranges.home(b.range.key), Some(3));
        assert_eq!(ranges.home(own.key), None, "the node's own range stays its own");
        assert_eq!(ranges.get(own.key).expect("own").name, "own");

        // The same list again changes nothing; a renamed one is one Updated change; one
        // listed without its record (a newer one was read back) keeps its mirror.
        let mut renamed = a.clone();
        renamed.range.name = "a2".into();
        let listed = [a.range.key, b.range.key].into_iter().collect();
        ranges.mirror_all(vec![renamed], &listed).expect("mirror_all again");
        let changes = std::mem::take(&mut *seen.lock());
        assert!(matches!(&changes[..], [RangeChange::Updated { ranges }] if ranges[0].name == "a2"), "{changes:?}");
        assert_eq!(ranges.home(b.range.key), Some(3), "listed, so kept");
        // One no longer listed is dropped.
        ranges.mirror_all(Vec::new(), &[a.range.key].into_iter().collect()).expect("mirror_all without b");
        assert_eq!(ranges.home(b.range.key), None);
    }
}
