//! The channel registry: definitions in the catalog, cached in memory for the hot path.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use redb::{ReadableTable, ReadableTableMetadata};

use super::{Channel, ChannelChange, ChannelError, ChannelKey, ChannelKind, Compression, IndexRef, NewChannel};
use crate::catalog::{CHANNEL_NAMES, CHANNELS, Catalog, META, NEXT_CHANNEL_KEY, meta_err};
use crate::storage_error::StorageError;
use crate::telem::DataType;

/// Result of channel operations.
pub type Result<T, E = ChannelError> = std::result::Result<T, E>;

const MAX_NAME_LEN: usize = 255;

#[derive(Debug, Default)]
struct Cache {
    by_key: HashMap<ChannelKey, Arc<Channel>>,
    by_name: HashMap<String, ChannelKey>,
    /// Keys of channels stored on another node of a cluster ([`Channels::mirror`]): in
    /// `by_key` and `by_name` like any other, never in the catalog.
    mirrors: std::collections::HashSet<ChannelKey>,
}

impl Cache {
    /// The definition of `key` for a change made here.
    ///
    /// # Errors
    /// [`ChannelError::KeyNotFound`]; [`ChannelError::Elsewhere`] for a channel another
    /// cluster node stores.
    fn owned(&self, key: ChannelKey) -> Result<Arc<Channel>> {
        let ch = self.by_key.get(&key).cloned().ok_or(ChannelError::KeyNotFound { key })?;
        if self.mirrors.contains(&key) {
            return Err(ChannelError::Elsewhere { name: ch.name.clone(), key });
        }
        Ok(ch)
    }
}

/// Write the catalog record of `ch` (its key to its definition).
fn put_definition(table: &mut redb::Table<'_, ChannelKey, &[u8]>, ch: &Channel) -> Result<()> {
    let bytes = serde_json::to_vec(ch).map_err(meta_err)?;
    table.insert(ch.key, bytes.as_slice()).map_err(meta_err)?;
    Ok(())
}

/// Create, retrieve, rename and delete channels.
///
/// Obtained from [`Engine::channels`](crate::Engine::channels). Lookups are served from an
/// in-memory cache; changes are durable catalog transactions.
pub struct Channels {
    catalog: Arc<Catalog>,
    /// The keys this registry hands out (all of `1..` alone; a cluster node's own block).
    keys: std::ops::RangeInclusive<ChannelKey>,
    cache: RwLock<Cache>,
    /// Told of every change to user channels after it is durable, while the cache lock is
    /// still held, so changes are reported in the order they happened.
    on_change: std::sync::OnceLock<ChangeHook>,
}

/// What [`Channels`] calls with each change (the engine publishes it, see
/// [`ChannelChange`]).
pub(crate) type ChangeHook = Box<dyn Fn(&ChannelChange) + Send + Sync>;

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").field("channels", &self.cache.read().by_key.len()).finish()
    }
}

fn validate_name(name: &str) -> Result<(), ChannelError> {
    let bad = |reason: &str| Err(ChannelError::InvalidName { name: name.to_string(), reason: reason.to_string() });
    if name.is_empty() {
        return bad("names cannot be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("names are at most 255 bytes");
    }
    if name.trim() != name {
        return bad("names cannot start or end with white space");
    }
    if name.chars().any(char::is_control) {
        return bad("names cannot contain control characters");
    }
    Ok(())
}

impl Channels {
    /// Install the change hook (once; later calls are ignored).
    pub(crate) fn on_change(&self, hook: ChangeHook) {
        let _ = self.on_change.set(hook);
    }

    /// Report `change` unless it only concerns engine-internal channels.
    fn report(&self, change: ChannelChange) {
        if let Some(hook) = self.on_change.get()
            && !change.is_empty()
        {
            hook(&change);
        }
    }

    pub(crate) fn open(catalog: Arc<Catalog>, keys: std::ops::RangeInclusive<ChannelKey>) -> Result<Channels> {
        let mut cache = Cache::default();
        let txn = catalog.read()?;
        let table = txn.open_table(CHANNELS).map_err(meta_err)?;
        for row in table.iter().map_err(meta_err)? {
            let (_, v) = row.map_err(meta_err)?;
            let ch: Channel = serde_json::from_slice(v.value()).map_err(meta_err)?;
            cache.by_name.insert(ch.name.clone(), ch.key);
            cache.by_key.insert(ch.key, Arc::new(ch));
        }
        tracing::debug!(key = "channels", channels = table.len().unwrap_or(0), "channel registry loaded");
        Ok(Channels { catalog, keys, cache: RwLock::new(cache), on_change: std::sync::OnceLock::new() })
    }

    /// Create several channels in one transaction: all are created or none.
    ///
    /// A data channel may name an index created earlier in the same batch. With
    /// `retrieve_if_name_exists`, a channel whose name exists is returned as it is instead
    /// of failing (its definition is not compared).
    ///
    /// # Errors
    /// [`ChannelError::InvalidName`], [`ChannelError::NameTaken`],
    /// [`ChannelError::IndexNotTimestamp`], [`ChannelError::NotAnIndex`],
    /// [`ChannelError::InvalidDefinition`], or a catalog failure.
    ///
    /// `before_visible` runs for each new channel once the catalog has it and before any
    /// lookup can find it (the engine gives it its storage there, so a reader that finds
    /// the channel can read it).
    pub(crate) fn create_many(
        &self,
        batch: Vec<NewChannel>,
        retrieve_if_name_exists: bool,
        before_visible: &dyn Fn(&Channel),
    ) -> Result<Vec<Channel>> {
        let mut cache = self.cache.write();
        let txn = self.catalog.write()?;
        let mut out = Vec::with_capacity(batch.len());
        let mut created: Vec<Channel> = Vec::new();
        {
            let mut meta = txn.open_table(META).map_err(meta_err)?;
            let stored = meta.get(NEXT_CHANNEL_KEY).map_err(meta_err)?.map_or(1, |v| v.value());
            let mut next = stored.max(u64::from(*self.keys.start()));
            let mut table = txn.open_table(CHANNELS).map_err(meta_err)?;
            let mut names = txn.open_table(CHANNEL_NAMES).map_err(meta_err)?;
            for spec in batch {
                validate_name(&spec.name)?;
                let in_batch = created.iter().find(|c| c.name == spec.name);
                if let Some(&existing) = cache.by_name.get(&spec.name) {
                    if retrieve_if_name_exists {
                        out.push((*cache.by_key[&existing]).clone());
                        continue;
                    }
                    return Err(ChannelError::NameTaken { name: spec.name, existing });
                }
                if let Some(c) = in_batch {
                    if retrieve_if_name_exists {
                        out.push(c.clone());
                        continue;
                    }
                    return Err(ChannelError::NameTaken { name: spec.name, existing: c.key });
                }
                let kind = self.resolve_kind(&spec, &cache, &created)?;
                let key = u32::try_from(next).ok().filter(|k| self.keys.contains(k)).ok_or_else(|| StorageError::Metadata {
                    reason: format!("channel keys exhausted (this registry hands out {:?})", self.keys),
                })?;
                next += 1;
                let ch = Channel {
                    key,
                    name: spec.name.clone(),
                    data_type: spec.data_type,
                    kind,
                    concurrency: spec.concurrency,
                    internal: spec.internal,
                    compression: spec.compression,
                };
                put_definition(&mut table, &ch)?;
                names.insert(ch.name.as_str(), key).map_err(meta_err)?;
                created.push(ch.clone());
                out.push(ch);
            }
            meta.insert(NEXT_CHANNEL_KEY, next).map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)?;
        let user: Vec<Channel> = created.iter().filter(|c| !c.internal).cloned().collect();
        for ch in created {
            before_visible(&ch);
            tracing::info!(key = "channels", channel = ch.key, name = %ch.name, data_type = %ch.data_type, "channel created");
            cache.by_name.insert(ch.name.clone(), ch.key);
            cache.by_key.insert(ch.key, Arc::new(ch));
        }
        self.report(ChannelChange::Created { channels: user });
        Ok(out)
    }

    fn resolve_kind(&self, spec: &NewChannel, cache: &Cache, created: &[Channel]) -> Result<ChannelKind> {
        let invalid = |reason: &str| ChannelError::InvalidDefinition { name: spec.name.clone(), reason: reason.to_string() };
        if spec.is_index {
            if spec.is_virtual {
                return Err(invalid("a channel cannot be both an index and virtual"));
            }
            if spec.index.is_some() {
                return Err(invalid("an index channel cannot have an index of its own"));
            }
            if spec.data_type != DataType::Timestamp {
                return Err(ChannelError::IndexNotTimestamp { name: spec.name.clone(), data_type: spec.data_type });
            }
            return Ok(ChannelKind::Index);
        }
        if spec.is_virtual {
            if spec.index.is_some() {
                return Err(invalid("virtual channels are not stored and take no index; drop the index or make the channel non-virtual"));
            }
            return Ok(ChannelKind::Virtual);
        }
        let Some(index) = &spec.index else {
            return Err(invalid("a stored data channel needs an index channel; pass `index`, or create it as virtual"));
        };
        let target: Option<Channel> = match index {
            IndexRef::Key(k) => cache.by_key.get(k).map(|c| (**c).clone()).or_else(|| created.iter().find(|c| c.key == *k).cloned()),
            IndexRef::Name(n) => cache
                .by_name
                .get(n)
                .and_then(|k| cache.by_key.get(k))
                .map(|c| (**c).clone())
                .or_else(|| created.iter().find(|c| &c.name == n).cloned()),
        };
        let Some(target) = target else {
            return Err(match index {
                IndexRef::Key(key) => ChannelError::KeyNotFound { key: *key },
                IndexRef::Name(name) => ChannelError::NameNotFound { name: name.clone() },
            });
        };
        if !target.is_index() {
            return Err(ChannelError::NotAnIndex { name: spec.name.clone(), index: target.name });
        }
        Ok(ChannelKind::Data { index: target.key })
    }

    /// The channel with `key`.
    ///
    /// # Errors
    /// [`ChannelError::KeyNotFound`].
    pub fn get(&self, key: ChannelKey) -> Result<Arc<Channel>> {
        self.cache.read().by_key.get(&key).cloned().ok_or(ChannelError::KeyNotFound { key })
    }

    /// The channel named `name`.
    ///
    /// # Errors
    /// [`ChannelError::NameNotFound`].
    pub fn by_name(&self, name: &str) -> Result<Arc<Channel>> {
        let cache = self.cache.read();
        cache
            .by_name
            .get(name)
            .and_then(|k| cache.by_key.get(k))
            .cloned()
            .ok_or_else(|| ChannelError::NameNotFound { name: name.to_string() })
    }

    /// Channels for several keys, in order.
    ///
    /// # Errors
    /// [`ChannelError::KeyNotFound`] for the first unknown key.
    pub fn get_many(&self, keys: &[ChannelKey]) -> Result<Vec<Arc<Channel>>> {
        keys.iter().map(|&k| self.get(k)).collect()
    }

    /// Resolve names to keys, in order.
    ///
    /// # Errors
    /// [`ChannelError::NameNotFound`] for the first unknown name.
    pub fn keys_of<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<ChannelKey>> {
        names.iter().map(|n| self.by_name(n.as_ref()).map(|c| c.key)).collect()
    }

    /// Every user channel, ordered by key (engine-internal channels are left out).
    pub fn list(&self) -> Vec<Arc<Channel>> {
        let mut v: Vec<_> = self.cache.read().by_key.values().filter(|c| !c.internal).cloned().collect();
        v.sort_by_key(|c| c.key);
        v
    }

    /// Every channel including engine-internal ones, ordered by key.
    pub fn list_all(&self) -> Vec<Arc<Channel>> {
        let mut v: Vec<_> = self.cache.read().by_key.values().cloned().collect();
        v.sort_by_key(|c| c.key);
        v
    }

    /// Channels whose name contains `term` (case-insensitive), ordered by key.
    pub fn search(&self, term: &str) -> Vec<Arc<Channel>> {
        let t = term.to_lowercase();
        self.list().into_iter().filter(|c| c.name.to_lowercase().contains(&t)).collect()
    }

    /// The data channels bound to index `index`.
    pub fn dependents(&self, index: ChannelKey) -> Vec<Arc<Channel>> {
        self.list().into_iter().filter(|c| c.kind == ChannelKind::Data { index }).collect()
    }

    /// Rename a channel.
    ///
    /// # Errors
    /// [`ChannelError::KeyNotFound`], [`ChannelError::InvalidName`],
    /// [`ChannelError::NameTaken`].
    pub(crate) fn rename(&self, key: ChannelKey, new_name: &str) -> Result<Channel> {
        validate_name(new_name)?;
        let mut cache = self.cache.write();
        let old = cache.owned(key)?;
        if old.name == new_name {
            return Ok((*old).clone());
        }
        if let Some(&existing) = cache.by_name.get(new_name) {
            return Err(ChannelError::NameTaken { name: new_name.to_string(), existing });
        }
        let mut ch = (*old).clone();
        ch.name = new_name.to_string();
        let txn = self.catalog.write()?;
        {
            let mut table = txn.open_table(CHANNELS).map_err(meta_err)?;
            let mut names = txn.open_table(CHANNEL_NAMES).map_err(meta_err)?;
            put_definition(&mut table, &ch)?;
            names.remove(old.name.as_str()).map_err(meta_err)?;
            names.insert(new_name, key).map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)?;
        tracing::info!(key = "channels", channel = key, from = %old.name, to = %new_name, "channel renamed");
        cache.by_name.remove(&old.name);
        cache.by_name.insert(ch.name.clone(), key);
        cache.by_key.insert(key, Arc::new(ch.clone()));
        if !ch.internal {
            self.report(ChannelChange::Renamed { channels: vec![ch.clone()] });
        }
        Ok(ch)
    }

    /// Change how compaction stores a channel's samples. The engine checks that the choice
    /// fits the channel first; `apply` gives the new definition to storage while the
    /// catalog is still locked, so concurrent changes reach both in the same order.
    ///
    /// # Errors
    /// [`ChannelError::KeyNotFound`]; [`ChannelError::Elsewhere`] for a channel another
    /// cluster node stores.
    pub(crate) fn set_compression(&self, key: ChannelKey, compression: Compression, apply: &dyn Fn(&Channel)) -> Result<Channel> {
        let mut cache = self.cache.write();
        let old = cache.owned(key)?;
        if old.compression == compression {
            return Ok((*old).clone());
        }
        let mut ch = (*old).clone();
        ch.compression = compression;
        let txn = self.catalog.write()?;
        put_definition(&mut txn.open_table(CHANNELS).map_err(meta_err)?, &ch)?;
        txn.commit().map_err(meta_err)?;
        tracing::info!(key = "channels", channel = key, from = %old.compression, to = %compression, "channel compression changed");
        cache.by_key.insert(key, Arc::new(ch.clone()));
        apply(&ch);
        if !ch.internal {
            self.report(ChannelChange::Updated { channels: vec![ch.clone()] });
        }
        Ok(ch)
    }

    /// Remove definitions from the catalog. The engine checks writers and stored data first.
    pub(crate) fn remove(&self, keys: &[ChannelKey]) -> Result<Vec<Arc<Channel>>> {
        let mut cache = self.cache.write();
        let mut removed = Vec::new();
        for &key in keys {
            let ch = cache.owned(key)?;
            if ch.is_index() {
                let dependents: Vec<String> = cache
                    .by_key
                    .values()
                    .filter(|c| c.kind == ChannelKind::Data { index: key } && !keys.contains(&c.key))
                    .map(|c| c.name.clone())
                    .collect();
                if !dependents.is_empty() {
                    return Err(ChannelError::IndexInUse { name: ch.name.clone(), dependents });
                }
            }
            removed.push(ch);
        }
        let txn = self.catalog.write()?;
        {
            let mut table = txn.open_table(CHANNELS).map_err(meta_err)?;
            let mut names = txn.open_table(CHANNEL_NAMES).map_err(meta_err)?;
            for ch in &removed {
                table.remove(ch.key).map_err(meta_err)?;
                names.remove(ch.name.as_str()).map_err(meta_err)?;
            }
        }
        txn.commit().map_err(meta_err)?;
        for ch in &removed {
            tracing::info!(key = "channels", channel = ch.key, name = %ch.name, "channel deleted");
            cache.by_key.remove(&ch.key);
            cache.by_name.remove(&ch.name);
        }
        self.report(ChannelChange::Deleted { keys: removed.iter().filter(|c| !c.internal).map(|c| c.key).collect() });
        Ok(removed)
    }

    /// True when `key` is a channel stored on another node of the cluster (a mirror).
    pub fn is_mirror(&self, key: ChannelKey) -> bool {
        self.cache.read().mirrors.contains(&key)
    }

    /// The first of `keys` that is a mirror, as the error to return for a local operation
    /// on it (reads, writes and deletes of data go to the channel's node).
    pub(crate) fn refuse_mirrors(&self, keys: &[ChannelKey]) -> Result<()> {
        let cache = self.cache.read();
        if cache.mirrors.is_empty() {
            return Ok(());
        }
        match keys.iter().find(|k| cache.mirrors.contains(k)) {
            Some(&key) => Err(ChannelError::Elsewhere { name: cache.by_key.get(&key).map(|c| c.name.clone()).unwrap_or_default(), key }),
            None => Ok(()),
        }
    }

    /// Add or replace definitions of channels stored on other nodes (cluster mode): they are
    /// listed, searched and retrieved like local ones and reported on the change channel,
    /// but never written to the catalog, and reads, writes and deletes of their data are
    /// refused here ([`ChannelError::Elsewhere`]). A mirror whose name a local channel holds
    /// is not added and is returned (the cluster's name registry makes that a race that
    /// one side has lost).
    pub(crate) fn mirror(&self, channels: Vec<Channel>) -> Vec<Channel> {
        let mut cache = self.cache.write();
        let (mut created, mut renamed, mut updated, mut refused) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ch in channels {
            let holder = cache.by_name.get(&ch.name).copied();
            if holder.is_some_and(|k| k != ch.key) {
                refused.push(ch);
                continue;
            }
            if cache.by_key.contains_key(&ch.key) && !cache.mirrors.contains(&ch.key) {
                refused.push(ch);
                continue;
            }
            match cache.by_key.get(&ch.key).cloned() {
                Some(old) if *old == ch => continue,
                Some(old) if old.name == ch.name => updated.push(ch.clone()),
                Some(old) => {
                    cache.by_name.remove(&old.name);
                    renamed.push(ch.clone());
                }
                None => created.push(ch.clone()),
            }
            cache.mirrors.insert(ch.key);
            cache.by_name.insert(ch.name.clone(), ch.key);
            cache.by_key.insert(ch.key, Arc::new(ch));
        }
        self.report(ChannelChange::Created { channels: created });
        self.report(ChannelChange::Renamed { channels: renamed });
        self.report(ChannelChange::Updated { channels: updated });
        refused
    }

    /// Drop mirrored definitions (their channels were deleted on their node). Keys that are
    /// not mirrors are ignored.
    pub(crate) fn unmirror(&self, keys: &[ChannelKey]) {
        let mut cache = self.cache.write();
        let mut gone = Vec::new();
        for key in keys {
            if cache.mirrors.remove(key)
                && let Some(ch) = cache.by_key.remove(key)
            {
                cache.by_name.remove(&ch.name);
                gone.push(*key);
            }
        }
        self.report(ChannelChange::Deleted { keys: gone });
    }
}
