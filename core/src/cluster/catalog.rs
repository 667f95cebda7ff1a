//! The cluster-wide channel catalog: definitions and reserved names in etcd, mirrored into
//! every node's engine.
//!
//! A channel is created on its leaseholder's engine first (durable, with a key from that
//! node's block), then its name is reserved and its definition put in etcd in one
//! transaction. If another node reserved the name first, the local channels of the batch
//! are deleted again and the caller gets `channel.name_taken`, naming the other channel;
//! if etcd cannot be reached, they are deleted and the caller gets `cluster.coordination`.
//! Either way nothing half-created stays behind.
//!
//! Channels a node's engine creates by itself (self-telemetry, flow queues, the demo stand)
//! and deletes by itself are followed through the engine's change channel
//! ([`follow_engine`]) and registered or taken out the same way, at once.

use std::time::Duration;

use etcd_client::{Compare, CompareOp, EventType, TxnOp, WatchStream};

use super::{Cluster, floors, leaseholder};
use crate::channel::{Channel, ChannelChange, ChannelError, ChannelKey, Compression, IndexRef, NewChannel};
use crate::client::ChangeWatcher;
use crate::error::{Error, Result};
use crate::net::NetError;

/// Channels per etcd transaction: two operations each, under etcd's default limit of 128.
const TXN_CHANNELS: usize = 60;

fn def_key(c: &Cluster, key: ChannelKey) -> String {
    format!("{}/channels/{key:010}", c.inner.config.prefix.trim_end_matches('/'))
}

fn name_key(c: &Cluster, name: &str) -> String {
    format!("{}/names/{name}", c.inner.config.prefix.trim_end_matches('/'))
}

/// Free `name` only if channel `key` holds it (a local-only channel that lost a name clash
/// must not free the other node's reservation).
fn free_name(c: &Cluster, name: &str, key: ChannelKey) -> TxnOp {
    let mine = Compare::value(name_key(c, name), CompareOp::Equal, key.to_string());
    TxnOp::txn(etcd_client::Txn::new().when([mine]).and_then([TxnOp::delete(name_key(c, name), None)]))
}

/// What etcd holds for a channel of this node after [`Cluster::register_one`].
enum Registration {
    /// Its name and definition: put now, or already there.
    Held,
    /// Another channel holds its name.
    Taken(ChannelKey),
    /// Its name is free but its key is defined (under another name: two processes serving
    /// one node number, or a rename etcd has not seen).
    KeyDefined,
}

impl Cluster {
    /// Reserve the name and put the definition of `ch`, a channel of this node, in one
    /// transaction, unless etcd holds them already.
    async fn register_one(&self, coord: &mut super::coord::Coord, ch: &Channel) -> Result<Registration> {
        let (name, def) = (name_key(self, &ch.name), def_key(self, ch.key));
        let txn = etcd_client::Txn::new()
            .when([Compare::version(name.clone(), CompareOp::Equal, 0), Compare::version(def.clone(), CompareOp::Equal, 0)])
            .and_then([
                TxnOp::put(name.clone(), ch.key.to_string(), None),
                TxnOp::put(def, serde_json::to_vec(ch).expect("a channel serializes"), None),
            ])
            .or_else([TxnOp::get(name, None)]);
        let r = coord.client().txn(txn).await.map_err(|e| super::coord::etcd_err("registering channels", e))?;
        if r.succeeded() {
            return Ok(Registration::Held);
        }
        let holder = r.op_responses().into_iter().find_map(|op| match op {
            etcd_client::TxnOpResponse::Get(g) => g.kvs().first().and_then(|kv| kv.value_str().ok()?.parse::<ChannelKey>().ok()),
            _ => None,
        });
        Ok(match holder {
            Some(k) if k == ch.key => Registration::Held,
            Some(k) => Registration::Taken(k),
            None => Registration::KeyDefined,
        })
    }

    /// Register channels of this node (at most [`TXN_CHANNELS`]): in one transaction if
    /// etcd holds none of their names and keys, so a node watching the catalog reports the
    /// batch as one change, as the leaseholder's engine does; else one by one (some were
    /// registered already, by the other of [`Cluster::create_channels`] and
    /// [`follow_engine`]). A registration for each, in order.
    async fn register_batch(&self, coord: &mut super::coord::Coord, chs: &[&Channel]) -> Result<Vec<Registration>> {
        // Neither the name nor the key may be in use: a key already defined would mean two
        // processes serve one node number.
        let compares: Vec<Compare> = chs
            .iter()
            .flat_map(|c| {
                [
                    Compare::version(name_key(self, &c.name), CompareOp::Equal, 0),
                    Compare::version(def_key(self, c.key), CompareOp::Equal, 0),
                ]
            })
            .collect();
        let puts: Vec<TxnOp> = chs
            .iter()
            .flat_map(|c| {
                [
                    TxnOp::put(name_key(self, &c.name), c.key.to_string(), None),
                    TxnOp::put(def_key(self, c.key), serde_json::to_vec(c).expect("a channel serializes"), None),
                ]
            })
            .collect();
        let r = coord
            .client()
            .txn(etcd_client::Txn::new().when(compares).and_then(puts))
            .await
            .map_err(|e| super::coord::etcd_err("reserving channel names", e))?;
        if r.succeeded() {
            return Ok(chs.iter().map(|_| Registration::Held).collect());
        }
        // Usually the other path registered the whole batch a moment ago: one read of the
        // names tells, and only channels whose name is still free go one by one.
        let gets: Vec<TxnOp> = chs.iter().map(|c| TxnOp::get(name_key(self, &c.name), None)).collect();
        let r = coord
            .client()
            .txn(etcd_client::Txn::new().and_then(gets))
            .await
            .map_err(|e| super::coord::etcd_err("reading channel names", e))?;
        let holders: Vec<Option<ChannelKey>> = r
            .op_responses()
            .into_iter()
            .map(|op| match op {
                etcd_client::TxnOpResponse::Get(g) => g.kvs().first().and_then(|kv| kv.value_str().ok()?.parse().ok()),
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(chs.len());
        for (c, holder) in chs.iter().zip(holders.into_iter().chain(std::iter::repeat(None))) {
            out.push(match holder {
                Some(k) if k == c.key => Registration::Held,
                Some(k) => Registration::Taken(k),
                None => self.register_one(coord, c).await?,
            });
        }
        Ok(out)
    }

    /// Log what keeps `ch` out of the cluster catalog (it stays local-only).
    fn report_unregistered(ch: &Channel, why: &Registration) {
        match why {
            Registration::Held => {}
            Registration::Taken(holder) => tracing::error!(key = "cluster", channel = ch.key, name = %ch.name, holder,
                "another node's channel has this name in the cluster; rename one of them (this one stays local-only until then)"),
            Registration::KeyDefined => tracing::error!(key = "cluster", channel = ch.key, name = %ch.name,
                "etcd defines this channel's key under another name: is another process serving this node's number? (this channel stays local-only)"),
        }
    }

    /// Register channels this node's engine created by itself (not through
    /// [`Cluster::create_channels`], which registers its own; a channel both register is
    /// simply found held). One no longer there under that name is left alone.
    async fn register_created(&self, channels: Vec<Channel>) -> Result<()> {
        let mut coord = self.inner.coord.lock().await;
        let engine = self.inner.engine.channels();
        let mine: Vec<&Channel> = channels
            .iter()
            .filter(|ch| self.is_local(ch.key) && !engine.is_mirror(ch.key) && engine.get(ch.key).is_ok_and(|c| c.name == ch.name))
            .collect();
        for chunk in mine.chunks(TXN_CHANNELS) {
            for (ch, r) in chunk.iter().zip(self.register_batch(&mut coord, chunk).await?) {
                Self::report_unregistered(ch, &r);
            }
        }
        Ok(())
    }

    /// Take out of etcd channels this node's engine deleted (a name is freed only if it
    /// still names the channel).
    async fn unregister_deleted(&self, keys: &[ChannelKey]) -> Result<()> {
        let mut coord = self.inner.coord.lock().await;
        let mut defs: Vec<Channel> = Vec::new();
        for &key in keys.iter().filter(|k| self.is_local(**k)) {
            let got = coord
                .client()
                .get(def_key(self, key), None)
                .await
                .map_err(|e| super::coord::etcd_err("reading a channel definition", e))?;
            defs.extend(got.kvs().first().and_then(|kv| serde_json::from_slice::<Channel>(kv.value()).ok()));
        }
        self.unregister(&mut coord, &defs, "deleting channel definitions").await
    }

    /// Take the definitions `defs` of this node's channels out of etcd, and their names
    /// where they still name them: a batch in one transaction (up to [`TXN_CHANNELS`]), so
    /// a node watching the catalog reports it as one change. `what` names the step in an
    /// error.
    async fn unregister(&self, coord: &mut super::coord::Coord, defs: &[Channel], what: &str) -> Result<()> {
        for chunk in defs.chunks(TXN_CHANNELS) {
            let ops: Vec<TxnOp> =
                chunk.iter().flat_map(|c| [free_name(self, &c.name, c.key), TxnOp::delete(def_key(self, c.key), None)]).collect();
            coord.client().txn(etcd_client::Txn::new().and_then(ops)).await.map_err(|e| super::coord::etcd_err(what, e))?;
        }
        Ok(())
    }

    /// Bring etcd in line with this node's engine: put the channels etcd does not list yet
    /// (those of a node joining its first cluster or whose etcd data was lost, and those
    /// the engine created while [`follow_engine`] could not register them), and take out
    /// the definitions in this node's key block that the engine no longer holds (deleted
    /// while the follower could not say so).
    pub(super) async fn register_local_channels(&self) -> Result<()> {
        let mut coord = self.inner.coord.lock().await;
        // One read of the definitions gives both the names they hold and the keys of this
        // node's block; a name reserved without its definition (a half-applied state) is
        // still caught, by the transaction of `register_one`.
        let prefix = format!("{}/channels/", self.inner.config.prefix.trim_end_matches('/'));
        let (got, _) = coord.get_prefix(&prefix, "reading channel definitions").await?;
        let defs: Vec<Channel> = got.iter().filter_map(|kv| serde_json::from_slice::<Channel>(kv.value()).ok()).collect();
        let holders: std::collections::HashMap<&str, ChannelKey> = defs.iter().map(|c| (c.name.as_str(), c.key)).collect();
        let engine = self.inner.engine.channels();
        for ch in engine.list() {
            if engine.is_mirror(ch.key) {
                continue;
            }
            let r = match holders.get(ch.name.as_str()) {
                Some(&k) if k == ch.key => continue,
                Some(&holder) => Registration::Taken(holder),
                None => self.register_one(&mut coord, &ch).await?,
            };
            Self::report_unregistered(&ch, &r);
        }
        let gone: Vec<Channel> = defs.iter().filter(|c| self.is_local(c.key) && engine.get(c.key).is_err()).cloned().collect();
        self.unregister(&mut coord, &gone, "deleting channel definitions").await
    }

    /// Mirror the definitions of other nodes' channels. With `listed` (every key of a full
    /// read of etcd), mirrors missing from it are dropped; a listed key without a definition
    /// in `defs` keeps its mirror (a newer one was read back, `floors.rs`).
    pub(super) fn apply_channels(&self, defs: Vec<Channel>, listed: Option<std::collections::HashSet<ChannelKey>>) {
        let foreign: Vec<Channel> = defs.into_iter().filter(|c| !self.is_local(c.key)).collect();
        if let Some(listed) = listed {
            let stale: Vec<ChannelKey> = self
                .inner
                .engine
                .channels()
                .list()
                .iter()
                .filter(|c| self.inner.engine.channels().is_mirror(c.key) && !listed.contains(&c.key))
                .map(|c| c.key)
                .collect();
            self.inner.engine.unmirror_channels(&stale);
        }
        for refused in self.inner.engine.mirror_channels(foreign) {
            tracing::error!(key = "cluster", channel = refused.key, name = %refused.name,
                "a local channel holds this name; the other node's channel is not visible here until one is renamed");
        }
    }

    /// Create channels for a client of this node, stored on `place` (a node name) if
    /// given, else with their index for data channels, else on this node's configured
    /// placement (`serve --place`), else here. A batch whose channels belong on another node
    /// is forwarded there whole, naming that node, so it is created where it lands (never
    /// forwarded again). A batch cannot mix indexes of several nodes.
    ///
    /// # Errors
    /// As [`crate::Engine::create_channels_with`]; `channel.name_taken` for a name another
    /// node holds; `cluster.coordination` when etcd fails (nothing is left created);
    /// `node.unavailable` when the batch belongs to a node that is down;
    /// `invalid_argument` for an unknown node name or a placement its indexes contradict.
    pub async fn create_channels(
        &self,
        batch: Vec<NewChannel>,
        retrieve_if_name_exists: bool,
        place: Option<&str>,
    ) -> Result<Vec<Channel>> {
        let mut homes: Vec<u8> = Vec::new();
        for spec in &batch {
            let index = match &spec.index {
                Some(IndexRef::Key(k)) => Some(*k),
                Some(IndexRef::Name(n)) => self.inner.engine.channels().by_name(n).ok().map(|c| c.key),
                None => None,
            };
            // An index of this node counts as a home too: a batch that mixes it with another
            // node's index is refused here, never forwarded back and forth.
            if let Some(k) = index {
                homes.push(leaseholder(k));
            }
        }
        homes.sort_unstable();
        homes.dedup();
        let asked = match place {
            Some(name) => Some(self.node_number(name).await?),
            None => None,
        };
        let target = match (homes.as_slice(), asked) {
            ([], Some(n)) => n,
            ([], None) => match self.inner.config.place.clone() {
                Some(name) => self.node_number(&name).await?,
                None => self.node(),
            },
            ([home], Some(n)) if *home != n => {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "these data channels' index is stored on {}, and a data channel is stored with its index: it cannot be placed on {}; leave out the placement or use an index on that node",
                        self.node_name(*home),
                        self.node_name(n)
                    ),
                });
            }
            ([home], _) => *home,
            (many, _) => {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "this batch binds data channels to indexes stored on {} different nodes ({}); a data channel is stored with its index, so create one batch per index's node",
                        many.len(),
                        many.iter().map(|n| self.node_name(*n)).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        };
        if target == self.node() {
            return self.create_here(batch, retrieve_if_name_exists).await;
        }
        let name = self.node_name(target);
        let r = self.ask(target, |peer| async move { peer.create_channels_on(&name, batch, retrieve_if_name_exists).await }).await?;
        self.mirror_now(&r);
        Ok(r)
    }

    /// The number of node `name` (this one, a member, or any node that ever joined).
    ///
    /// # Errors
    /// `invalid_argument` for a name that never joined this cluster; `cluster.coordination`.
    async fn node_number(&self, name: &str) -> Result<u8> {
        if name == self.name() {
            return Ok(self.node());
        }
        if let Some(n) = self.inner.names.lock().iter().find(|(_, v)| v.as_str() == name).map(|(n, _)| *n) {
            return Ok(n);
        }
        let known = self.inner.coord.lock().await.node_numbers().await?;
        known.get(name).copied().ok_or_else(|| Error::InvalidArgument {
            reason: format!(
                "no node named {name:?} ever joined this cluster (known: {}); `telemetron cluster status` lists the nodes",
                known.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Mirror definitions just created on a peer, so the caller can use them at once
    /// (the watch brings the same definitions a moment later; a new key has no older one).
    fn mirror_now(&self, channels: &[Channel]) {
        let foreign: Vec<Channel> = channels.iter().filter(|c| !self.is_local(c.key)).cloned().collect();
        self.inner.engine.mirror_channels(foreign);
    }

    /// After their leaseholder deleted channels `keys` (and took them out of etcd) for a
    /// client of this node: drop their mirrors, and keep definitions of them still in the
    /// watch from bringing them back (`floors.rs`).
    async fn read_back_deleted(&self, keys: &[ChannelKey]) {
        let mut held = self.inner.channel_floors.lock().await;
        if let Some(&first) = keys.first() {
            // Any read tells the revision etcd is at, which is past the delete.
            match self.inner.coord.lock().await.read_back::<Channel>(&def_key(self, first), "reading back a deleted channel").await {
                Ok(Err(now)) | Ok(Ok((_, now))) => keys.iter().for_each(|&k| floors::read_back_gone(&mut held, k, now)),
                Err(e) => {
                    tracing::warn!(key = "cluster", error = %e, "could not read etcd after a delete; a definition still in the watch may show the channels again for a moment")
                }
            }
        }
        self.inner.engine.unmirror_channels(keys);
    }

    /// After its leaseholder changed channel `key` (and put it in etcd) for a client of
    /// this node: read its definition back from etcd into the mirror, so the caller reads
    /// its own change and no older definition still in the watch undoes it (`floors.rs`).
    /// `confirmed` is what the leaseholder answered, mirrored if etcd cannot be read (the
    /// watch corrects it).
    async fn read_back_channel(&self, confirmed: &Channel) {
        let key = confirmed.key;
        let mut held = self.inner.channel_floors.lock().await;
        let got = self.inner.coord.lock().await.read_back::<Channel>(&def_key(self, key), "reading back a channel definition").await;
        match got {
            Ok(Ok((def, revision))) => {
                if floors::read_back(&mut held, key, revision) {
                    self.mirror_now(std::slice::from_ref(&def));
                }
            }
            Ok(Err(now)) => {
                floors::read_back_gone(&mut held, key, now);
                self.inner.engine.unmirror_channels(&[key]);
            }
            Err(e) => {
                tracing::warn!(key = "cluster", error = %e, channel = key, "could not read back a channel changed on its node; the watch will bring it");
                self.mirror_now(std::slice::from_ref(confirmed));
            }
        }
    }

    async fn create_here(&self, batch: Vec<NewChannel>, retrieve_if_name_exists: bool) -> Result<Vec<Channel>> {
        let engine = self.inner.engine.clone();
        let before: std::collections::HashSet<ChannelKey> = engine.channels().list_all().iter().map(|c| c.key).collect();
        let created = tokio::task::spawn_blocking(move || engine.create_channels_with(batch, retrieve_if_name_exists))
            .await
            .map_err(|e| NetError::Server { reason: format!("create failed: {e}") })??;
        let new: Vec<&Channel> = created.iter().filter(|c| !before.contains(&c.key)).collect();
        if new.is_empty() {
            return Ok(created);
        }
        let outcome = async {
            let mut coord = self.inner.coord.lock().await;
            // etcd allows 128 operations per transaction (--max-txn-ops): a channel takes two,
            // so a large batch goes in several, and the ones already applied are taken back
            // if a later one fails.
            let mut done: Vec<&Channel> = Vec::new();
            let mut failed: Option<Result<ChannelError>> = None;
            for chunk in new.chunks(TXN_CHANNELS) {
                match self.register_batch(&mut coord, chunk).await {
                    Ok(regs) => {
                        for (c, r) in chunk.iter().zip(regs) {
                            match r {
                                Registration::Held => done.push(c),
                                Registration::Taken(holder) => {
                                    failed.get_or_insert(Ok(ChannelError::NameTaken { name: c.name.clone(), existing: holder }));
                                }
                                Registration::KeyDefined => {
                                    failed.get_or_insert(Ok(ChannelError::InvalidDefinition {
                                        name: c.name.clone(),
                                        reason: "etcd already defines this channel's key: is another process serving this node's number?"
                                            .into(),
                                    }));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        // An error may still mean etcd applied it: take back what it may hold
                        // (only entries that still name these keys).
                        for c in chunk {
                            let mine = Compare::value(name_key(self, &c.name), CompareOp::Equal, c.key.to_string());
                            let undo = [TxnOp::delete(name_key(self, &c.name), None), TxnOp::delete(def_key(self, c.key), None)];
                            let _ = coord.client().txn(etcd_client::Txn::new().when([mine]).and_then(undo)).await;
                        }
                        failed = Some(Err(e));
                    }
                }
                if failed.is_some() {
                    break;
                }
            }
            let Some(failed) = failed else { return Ok(None) };
            for chunk in done.chunks(TXN_CHANNELS) {
                let ops: Vec<TxnOp> = chunk
                    .iter()
                    .flat_map(|c| [TxnOp::delete(name_key(self, &c.name), None), TxnOp::delete(def_key(self, c.key), None)])
                    .collect();
                if let Err(e) = coord.client().txn(etcd_client::Txn::new().and_then(ops)).await {
                    tracing::error!(key = "cluster", error = %e, "could not take back the names of a failed create; they stay reserved");
                }
            }
            failed.map(Some)
        };
        // No timeout around this: every etcd request has its own (5 s), and the roll-back
        // must run to its end once it has begun.
        let outcome: Result<Option<ChannelError>> = outcome.await;
        let failure: Error = match outcome {
            Ok(None) => return Ok(created),
            Ok(Some(taken)) => taken.into(),
            Err(e) => e,
        };
        let keys: Vec<ChannelKey> = new.iter().map(|c| c.key).collect();
        let engine = self.inner.engine.clone();
        let undo = tokio::task::spawn_blocking(move || engine.delete_channels(&keys)).await;
        if !matches!(undo, Ok(Ok(()))) {
            tracing::error!(key = "cluster", error = ?undo, "could not delete channels whose cluster registration failed");
        }
        Err(failure)
    }

    /// Rename a channel: on its leaseholder, then in etcd (the new name reserved, the old
    /// one freed). A name another node holds is refused and the local rename undone.
    ///
    /// # Errors
    /// As [`crate::Engine::rename_channel`]; `node.unavailable`; `cluster.coordination`.
    pub async fn rename_channel(&self, key: ChannelKey, name: &str) -> Result<Channel> {
        if !self.is_local(key) {
            let node = leaseholder(key);
            let r = self.ask(node, |peer| async move { peer.rename_channel(key, name).await }).await?;
            self.read_back_channel(&r).await;
            return Ok(r);
        }
        let old = self.inner.engine.channels().get(key)?;
        let engine = self.inner.engine.clone();
        let new_name = name.to_string();
        let renamed = tokio::task::spawn_blocking(move || engine.rename_channel(key, &new_name))
            .await
            .map_err(|e| NetError::Server { reason: format!("rename failed: {e}") })??;
        if renamed.name == old.name {
            return Ok(renamed);
        }
        let txn = etcd_client::Txn::new().when([Compare::version(name_key(self, name), CompareOp::Equal, 0)]).and_then([
            TxnOp::put(name_key(self, name), key.to_string(), None),
            free_name(self, &old.name, key),
            TxnOp::put(def_key(self, key), serde_json::to_vec(&renamed).expect("a channel serializes"), None),
        ]);
        let r = self.inner.coord.lock().await.client().txn(txn).await;
        let failure: Error = match r {
            Ok(r) if r.succeeded() => return Ok(renamed),
            Ok(_) => {
                let holder = self.inner.coord.lock().await.client().get(name_key(self, name), None).await.ok();
                let existing = holder.and_then(|g| g.kvs().first().and_then(|kv| kv.value_str().ok()?.parse().ok())).unwrap_or(0);
                ChannelError::NameTaken { name: name.to_string(), existing }.into()
            }
            Err(e) => super::coord::etcd_err("renaming a channel", e),
        };
        let engine = self.inner.engine.clone();
        let back = old.name.clone();
        let _ = tokio::task::spawn_blocking(move || engine.rename_channel(key, &back)).await;
        Err(failure)
    }

    /// Change a channel's compression: on its leaseholder, then its definition in etcd, so
    /// every node's mirror follows. The definition put is the one the leaseholder has when
    /// the coordination lock is held (a rename meanwhile is kept), and only while etcd has
    /// the channel (a delete meanwhile is not undone). If etcd cannot be written, the
    /// change stays made on the leaseholder and the error says to call again, which
    /// publishes it.
    ///
    /// # Errors
    /// As [`crate::Engine::set_channel_compression`]; `node.unavailable`;
    /// `cluster.coordination`.
    pub async fn set_channel_compression(&self, key: ChannelKey, compression: Compression) -> Result<Channel> {
        // Every node mirrors every definition: an unknown key is not found here, not
        // forwarded to a node that may not exist.
        self.inner.engine.channels().get(key)?;
        if !self.is_local(key) {
            let node = leaseholder(key);
            let r = self.ask(node, |peer| async move { peer.set_channel_compression(key, compression).await }).await?;
            self.read_back_channel(&r).await;
            return Ok(r);
        }
        let engine = self.inner.engine.clone();
        let changed = tokio::task::spawn_blocking(move || engine.set_channel_compression(key, compression))
            .await
            .map_err(|e| NetError::Server { reason: format!("changing the compression failed: {e}") })??;
        let mut coord = self.inner.coord.lock().await;
        let Ok(now) = self.inner.engine.channels().get(key) else { return Ok(changed) };
        let def = def_key(self, key);
        let txn = etcd_client::Txn::new().when([Compare::version(def.clone(), CompareOp::Greater, 0)]).and_then([TxnOp::put(
            def,
            serde_json::to_vec(&*now).expect("a channel serializes"),
            None,
        )]);
        match coord.client().txn(txn).await {
            Ok(_) => Ok(changed),
            Err(e) => Err(super::coord::etcd_err(
                "publishing a channel's new compression (it is changed on the node that stores it; call again to publish it)",
                e,
            )),
        }
    }

    /// Delete channels: each on its leaseholder, then from etcd.
    ///
    /// # Errors
    /// As [`crate::Engine::delete_channels`]; `node.unavailable`; `cluster.coordination`.
    pub async fn delete_channels(&self, keys: &[ChannelKey]) -> Result<()> {
        for (node, group) in self.by_node(keys)? {
            if node == self.node() {
                let defs: Vec<Channel> =
                    group.iter().filter_map(|k| self.inner.engine.channels().get(*k).ok()).map(|c| (*c).clone()).collect();
                let engine = self.inner.engine.clone();
                let ks = group.clone();
                tokio::task::spawn_blocking(move || engine.delete_channels(&ks))
                    .await
                    .map_err(|e| NetError::Server { reason: format!("delete failed: {e}") })??;
                let mut coord = self.inner.coord.lock().await;
                let what =
                    "deleting channel definitions (the channels are deleted on their node; their names stay reserved until this succeeds)";
                self.unregister(&mut coord, &defs, what).await?;
            } else {
                let keys = group.clone();
                self.ask(node, |peer| async move { peer.delete_channels(&keys).await }).await?;
                self.read_back_deleted(&group).await;
            }
        }
        Ok(())
    }
}

/// Keep the mirrors current. A broken watch (etcd restarted) is replaced by a full read
/// (which drops mirrors deleted meanwhile) and a fresh watch.
pub(super) async fn watch_channels(cluster: Cluster, mut watch: WatchStream) {
    loop {
        while let Ok(Some(r)) = watch.message().await {
            // One etcd transaction (a create or delete of a batch) is one response: apply its
            // runs of puts and of deletes together, so this node's change channel reports the
            // batch as one change, as the leaseholder's does.
            let mut puts: Vec<Channel> = Vec::new();
            let mut deletes: Vec<ChannelKey> = Vec::new();
            let mut held = cluster.inner.channel_floors.lock().await;
            for ev in r.events() {
                let Some(kv) = ev.kv() else { continue };
                match ev.event_type() {
                    EventType::Put => {
                        if let Some((c, revision)) = super::coord::record::<Channel>(kv)
                            && floors::admit(&mut held, c.key, revision)
                        {
                            if !deletes.is_empty() {
                                cluster.inner.engine.unmirror_channels(&std::mem::take(&mut deletes));
                            }
                            puts.push(c);
                        }
                    }
                    EventType::Delete => {
                        let key: Option<ChannelKey> = kv.key_str().ok().and_then(|k| k.rsplit('/').next()?.parse().ok());
                        if let Some(k) = key.filter(|k| !cluster.is_local(*k)) {
                            floors::deleted(&mut held, k);
                            if !puts.is_empty() {
                                cluster.apply_channels(std::mem::take(&mut puts), None);
                            }
                            deletes.push(k);
                        }
                    }
                }
            }
            if !puts.is_empty() {
                cluster.apply_channels(puts, None);
            }
            if !deletes.is_empty() {
                cluster.inner.engine.unmirror_channels(&deletes);
            }
        }
        watch = super::coord::resync(|| async {
            let mut held = cluster.inner.channel_floors.lock().await;
            let (defs, w) = cluster.inner.coord.lock().await.channels().await?;
            let listed = defs.iter().map(|(c, _)| c.key).collect();
            let newer = defs.into_iter().filter(|(c, revision)| floors::admit(&mut held, c.key, *revision)).map(|(c, _)| c).collect();
            cluster.apply_channels(newer, Some(listed));
            Ok(w)
        })
        .await;
    }
}

/// Register in etcd the channels this node's engine creates by itself, and take out those
/// it deletes, as its change channel reports them (and publish its ranges' changes,
/// `ranges.rs`): self-telemetry, flow queues and the demo
/// stand create channels on the engine, not through [`Cluster::create_channels`]. Missed
/// changes (the watcher lagged) and etcd failures are made up by
/// [`Cluster::register_local_channels`], retried every second until it succeeds. Ends when
/// the engine closes.
pub(super) async fn follow_engine(cluster: Cluster, mut changes: ChangeWatcher) {
    loop {
        let done = match changes.next().await {
            Ok(crate::Change::Channel(ChannelChange::Created { channels })) => cluster.register_created(channels).await,
            Ok(crate::Change::Channel(ChannelChange::Deleted { keys })) => cluster.unregister_deleted(&keys).await,
            Ok(crate::Change::Range(c)) => super::ranges::follow_range_change(&cluster, &c).await,
            Ok(_) => Ok(()),
            Err(e) if e.code() == "stream.lagged" => Err(e),
            Err(_) => return,
        };
        if let Err(e) = done {
            tracing::warn!(key = "cluster", error = %e, "channels or ranges changed on this node may be missing from the cluster catalog; publishing them again");
            while let Err(e) = async {
                cluster.register_local_channels().await?;
                cluster.publish_own_ranges().await
            }
            .await
            {
                tracing::warn!(key = "cluster", error = %e, "publishing this node's channels and ranges failed; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
