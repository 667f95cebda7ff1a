//! Cluster-wide ranges: each range is stored by one node (its **home**, the node it was
//! created through), published in etcd, and mirrored in memory by every other node.
//!
//! - etcd holds one record per range, `<prefix>/ranges/<home:03>/<uuid>`: the range and its
//!   metadata as JSON ([`MirroredRange`]). Only the home node writes its records: one writer
//!   per key, so the last record put is the range's current state and nothing needs merging.
//! - The home node's engine stays the authority. [`follow_range_change`] (called by the
//!   engine follower of `catalog.rs`) publishes each change of this node's ranges, whoever
//!   made it: a client, the demo stand, an embedded caller. What the follower misses (etcd
//!   down, the change watcher lagging) [`Cluster::publish_own_ranges`] makes up by comparing
//!   the whole list.
//! - Every other node keeps the record as a mirror ([`crate::ranger::Ranges::mirror`]), so
//!   get, search and children answer for the whole cluster with the single-node code, and a
//!   client of any node hears of every range on the change channel.
//! - A change to another node's range (labels, name, metadata, delete) made through this node
//!   is forwarded to its home ([`Cluster::set_range_labels`] and the rest), then applied to
//!   the mirror at once so the caller reads its own write.
//!
//! Publication is asynchronous: a range created through A is visible on B once A's record
//! has gone through etcd and B's watch (milliseconds on a LAN); it is durable on A before the
//! create returns.

use std::collections::BTreeMap;

use etcd_client::{EventType, TxnOp, WatchStream};
use uuid::Uuid;

use super::{Cluster, floors};
use crate::error::{Error, Result};
use crate::net::NetError;
use crate::ranger::{MirroredRange, Range, RangeChange, Ranges};

/// Records per etcd transaction (etcd's default limit is 128 operations).
const TXN_RANGES: usize = 100;

impl Cluster {
    fn ranges_prefix(&self) -> String {
        format!("{}/ranges/", self.inner.config.prefix.trim_end_matches('/'))
    }

    fn range_key(&self, home: u8, key: Uuid) -> String {
        format!("{}{home:03}/{key}", self.ranges_prefix())
    }

    /// The home node and range key of an etcd key under the ranges prefix.
    fn parse_range_key(&self, etcd_key: &str) -> Option<(u8, Uuid)> {
        let rest = etcd_key.strip_prefix(&self.ranges_prefix())?;
        let (home, key) = rest.split_once('/')?;
        Some((home.parse().ok()?, key.parse().ok()?))
    }

    /// Put the current records of this node's ranges `keys` in etcd, and take out those it no
    /// longer stores. Keys of mirrors are left alone (their home publishes them).
    async fn publish_ranges(&self, keys: &[Uuid]) -> Result<()> {
        let me = self.node();
        let ranges = self.inner.engine.ranges();
        let mut ops: Vec<TxnOp> = Vec::new();
        for &key in keys {
            if ranges.home(key).is_some() {
                continue;
            }
            ops.push(match ranges.record(me, key)? {
                Some(rec) => TxnOp::put(self.range_key(me, key), serde_json::to_vec(&rec).expect("a range serializes"), None),
                None => TxnOp::delete(self.range_key(me, key), None),
            });
        }
        let mut coord = self.inner.coord.lock().await;
        for chunk in ops.chunks(TXN_RANGES) {
            coord
                .client()
                .txn(etcd_client::Txn::new().and_then(chunk.to_vec()))
                .await
                .map_err(|e| super::coord::etcd_err("publishing ranges", e))?;
        }
        Ok(())
    }

    /// Bring etcd's records of this node's ranges in line with its engine: put what is
    /// missing or different (ranges made while the node was outside the cluster or etcd was
    /// down), take out what the engine no longer holds.
    pub(super) async fn publish_own_ranges(&self) -> Result<()> {
        let me = self.node();
        let published: BTreeMap<Uuid, MirroredRange> = {
            let mut coord = self.inner.coord.lock().await;
            let prefix = format!("{}{me:03}/", self.ranges_prefix());
            let (got, _) = coord.get_prefix(&prefix, "reading this node's ranges").await?;
            got.iter().filter_map(|kv| serde_json::from_slice::<MirroredRange>(kv.value()).ok()).map(|m| (m.range.key, m)).collect()
        };
        // One catalog read, off the async threads.
        let engine = self.inner.engine.clone();
        let own = tokio::task::spawn_blocking(move || engine.ranges().records_stored(me))
            .await
            .map_err(|e| NetError::Server { reason: format!("reading this node's ranges failed: {e}") })??;
        let stored: std::collections::HashSet<Uuid> = own.iter().map(|m| m.range.key).collect();
        let mut stale: Vec<Uuid> = own.iter().filter(|m| published.get(&m.range.key) != Some(*m)).map(|m| m.range.key).collect();
        stale.extend(published.keys().filter(|k| !stored.contains(k)));
        if stale.is_empty() { Ok(()) } else { self.publish_ranges(&stale).await }
    }

    /// Publish this node's ranges and mirror everyone else's: the whole list, then a watch
    /// from the revision after it.
    pub(super) async fn sync_ranges(&self) -> Result<WatchStream> {
        self.publish_own_ranges().await?;
        let mut held = self.inner.range_floors.lock().await;
        let (records, watch) = self.inner.coord.lock().await.ranges().await?;
        let me = self.node();
        let others: Vec<(MirroredRange, i64)> = records.into_iter().filter(|(m, _)| m.home != me).collect();
        let listed = others.iter().map(|(m, _)| m.range.key).collect();
        // A mirror read back since is newer than its record here: it stays as it is.
        let newer: Vec<MirroredRange> =
            others.into_iter().filter(|(m, revision)| floors::admit(&mut held, m.range.key, *revision)).map(|(m, _)| m).collect();
        // Dropping stale mirrors may delete this node's children of them: a catalog write.
        let engine = self.inner.engine.clone();
        tokio::task::spawn_blocking(move || engine.ranges().mirror_all(newer, &listed))
            .await
            .map_err(|e| NetError::Server { reason: format!("mirroring the cluster's ranges failed: {e}") })??;
        Ok(watch)
    }

    /// Drop the mirrors `keys` (deleted at their home) and this node's descendants of them.
    async fn unmirror(&self, keys: Vec<Uuid>) {
        if !keys.is_empty() {
            self.change_mirrors(move |r| r.unmirror(&keys)).await;
        }
    }

    /// Change this node's mirrors with `f`, off the async threads: dropping a mirror
    /// deletes this node's descendants of it, a catalog write. A failure is logged; the
    /// next full read of etcd makes up for it.
    async fn change_mirrors(&self, f: impl FnOnce(&Ranges) -> crate::ranger::Result<()> + Send + 'static) {
        let engine = self.inner.engine.clone();
        let why = match tokio::task::spawn_blocking(move || f(engine.ranges())).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(key = "cluster", error = %why, "could not update the mirrors of other nodes' ranges here; the next full read will");
    }

    /// Apply a change of ranges this node stores and publish them before answering, or
    /// forward the change to their home (the node that stores `keys[0]`) and then read them
    /// back from etcd (`remirror`): the caller reads its own change at once on either node.
    async fn on_home<T: Send + 'static, F>(
        &self,
        keys: &[Uuid],
        here: impl FnOnce(&Ranges) -> crate::ranger::Result<T> + Send + 'static,
        there: impl FnOnce(crate::Client) -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let Some(&first) = keys.first() else {
            return Err(Error::InvalidArgument { reason: "no range given".into() });
        };
        let Some(home) = self.inner.engine.ranges().home(first) else {
            let engine = self.inner.engine.clone();
            let out = tokio::task::spawn_blocking(move || here(engine.ranges()).map_err(Error::from))
                .await
                .map_err(|e| NetError::Server { reason: format!("the range change failed: {e}") })??;
            // The change is made and durable here; the follower publishes it again (and
            // retries) if this fails, so it is not reported as a failure of the change.
            if let Err(e) = self.publish_ranges(keys).await {
                tracing::warn!(key = "cluster", error = %e, "a range change is made but not yet in etcd; it is published when etcd answers");
            }
            return Ok(out);
        };
        let out = self.ask(home, there).await?;
        self.remirror(home, keys).await;
        Ok(out)
    }

    /// Make this node's mirrors of `keys` (stored by `home`) what etcd holds now: their
    /// home has just changed them and published the change before it answered. A record
    /// older than the one read here, still on its way through the watch, is then ignored
    /// (`floors.rs`); one etcd no longer holds is dropped with its descendants here. If
    /// etcd cannot be read, the watch brings the change later.
    async fn remirror(&self, home: u8, keys: &[Uuid]) {
        let mut held = self.inner.range_floors.lock().await;
        let (mut newer, mut gone) = (Vec::new(), Vec::new());
        {
            let mut coord = self.inner.coord.lock().await;
            for &key in keys {
                match coord.read_back::<MirroredRange>(&self.range_key(home, key), "reading back a range").await {
                    Ok(Ok((m, revision))) => {
                        if m.home == home && m.range.key == key && floors::read_back(&mut held, key, revision) {
                            newer.push(m);
                        }
                    }
                    Ok(Err(now)) => {
                        floors::read_back_gone(&mut held, key, now);
                        gone.push(key);
                    }
                    Err(e) => {
                        tracing::warn!(key = "cluster", error = %e, range = %key, "could not read back a range changed on its home; the watch will bring it");
                    }
                }
            }
        }
        self.change_mirrors(move |ranges| {
            for m in newer {
                ranges.mirror(m);
            }
            ranges.unmirror(&gone)
        })
        .await;
    }

    /// Replace a range's labels, on its home node.
    ///
    /// # Errors
    /// As [`Ranges::set_labels`]; `node.unavailable` when its home is down.
    pub async fn set_range_labels(&self, key: Uuid, labels: Vec<String>) -> Result<Range> {
        let l = labels.clone();
        self.on_home(&[key], move |r| r.set_labels(key, l), |peer| async move { peer.set_range_labels(key, labels).await }).await
    }

    /// Rename a range, on its home node.
    ///
    /// # Errors
    /// As [`Ranges::rename`]; `node.unavailable` when its home is down.
    pub async fn rename_range(&self, key: Uuid, name: &str) -> Result<Range> {
        let n = name.to_string();
        self.on_home(&[key], move |r| r.rename(key, &n), |peer| async move { peer.rename_range(key, name).await }).await
    }

    /// Set metadata entries of a range, on its home node.
    ///
    /// # Errors
    /// As [`Ranges::set_meta_data`]; `node.unavailable` when its home is down.
    pub async fn set_range_meta(&self, key: Uuid, entries: BTreeMap<String, String>) -> Result<()> {
        let e = entries.clone();
        self.on_home(&[key], move |r| r.set_meta_data(key, &e), |peer| async move { peer.set_range_meta(key, entries).await }).await
    }

    /// Remove metadata entries of a range, on its home node.
    ///
    /// # Errors
    /// As [`Ranges::delete_meta_data`]; `node.unavailable` when its home is down.
    pub async fn delete_range_meta(&self, key: Uuid, names: Vec<String>) -> Result<()> {
        let n = names.clone();
        self.on_home(
            &[key],
            move |r| r.delete_meta_data(key, &n.iter().map(String::as_str).collect::<Vec<_>>()),
            |peer| async move { peer.delete_range_meta(key, &names).await },
        )
        .await
    }

    /// Delete ranges with their descendants, each on its home node.
    ///
    /// # Errors
    /// As [`Ranges::delete`]; `node.unavailable` when a home is down (the ranges of the
    /// nodes asked before it are deleted).
    pub async fn delete_ranges(&self, keys: &[Uuid]) -> Result<()> {
        let mut by_home: BTreeMap<Option<u8>, Vec<Uuid>> = BTreeMap::new();
        for &k in keys {
            by_home.entry(self.inner.engine.ranges().home(k)).or_default().push(k);
        }
        for group in by_home.into_values() {
            let (g, asked) = (group.clone(), group.clone());
            self.on_home(&group, move |r| r.delete(&g), |peer| async move { peer.delete_ranges(&asked).await }).await?;
        }
        Ok(())
    }
}

/// What the engine follower does with a change of the ranges: publish this node's ranges it
/// names (a mirror's change is its home's to publish).
pub(super) async fn follow_range_change(cluster: &Cluster, change: &RangeChange) -> Result<()> {
    let keys: Vec<Uuid> = match change {
        RangeChange::Created { ranges } | RangeChange::Updated { ranges } => ranges.iter().map(|r| r.key).collect(),
        RangeChange::Deleted { keys } => keys.clone(),
        RangeChange::Meta { key, .. } => vec![*key],
    };
    cluster.publish_ranges(&keys).await
}

/// Keep the mirrors of other nodes' ranges current. A broken watch (etcd restarted) is
/// replaced by a full read and a fresh watch.
pub(super) async fn watch_ranges(cluster: Cluster, mut watch: WatchStream) {
    let me = cluster.node();
    let ranges = cluster.inner.engine.ranges();
    loop {
        while let Ok(Some(r)) = watch.message().await {
            let mut held = cluster.inner.range_floors.lock().await;
            for ev in r.events() {
                let Some(kv) = ev.kv() else { continue };
                let Some((home, key)) = kv.key_str().ok().and_then(|k| cluster.parse_range_key(k)) else { continue };
                if home == me {
                    continue;
                }
                match ev.event_type() {
                    EventType::Put => match super::coord::record::<MirroredRange>(kv) {
                        Some((_, revision)) if !floors::admit(&mut held, key, revision) => {}
                        Some((m, _)) if m.home == home && m.range.key == key => {
                            if !ranges.mirror(m) {
                                tracing::error!(key = "cluster", range = %key, home,
                                    "this node stores a range with the same key as another node's; the other one is not visible here");
                            }
                        }
                        _ => tracing::warn!(
                            key = "cluster",
                            etcd_key = kv.key_str().unwrap_or(""),
                            "unreadable range record in etcd; ignored"
                        ),
                    },
                    EventType::Delete => {
                        floors::deleted(&mut held, key);
                        cluster.unmirror(vec![key]).await;
                    }
                }
            }
        }
        watch = super::coord::resync(|| cluster.sync_ranges()).await;
    }
}
