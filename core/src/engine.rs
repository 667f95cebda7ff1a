//! The embedded engine: one data directory, its catalog, storage and (later) relay.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::ReadableTable;

use crate::catalog::{Catalog, TOMBSTONES, meta_err};
use crate::channel::{Channel, ChannelChange, ChannelError, ChannelKey, Channels, NewChannel};
use crate::control::ControlMetricsSnapshot;
use crate::control::{CONTROL_CHANNEL, State, Transfer};
use crate::error::{Error, Result};
use crate::framer::{Hub, IteratorConfig, RangeIterator, Writer, WriterConfig, read_view};
use crate::ranger::{RangeChange, Ranges};
use crate::relay::{Relay, RelayMetricsSnapshot, SnapshotHook, Streamer, StreamerConfig, StreamerMetrics};
use crate::storage::{
    DirLock, ReadPlan, RecoveryReport, Storage, StorageMetricsSnapshot, StorageOptions, SyncObserver, Tombstone, apply_tombstones, extent,
    open_storage, plan_delete, read_channels,
};
use crate::telem::{Frame, Reduction, TimeRange, TimeStamp, reducible};
use crate::users::Users;

/// The name of the virtual channel on which the engine publishes changes to channels and
/// ranges (see [`Change`]).
pub const CHANGES_CHANNEL: &str = "telemetron_changes";

/// A change to channels or ranges: one JSON sample on the change channel
/// ([`Engine::changes_channel`]), published after the change is durable and in the order
/// changes were committed. `op` names it: `channel.create`, `channel.rename`,
/// `channel.delete`, `range.create`, `range.update`, `range.delete`, `range.meta`.
///
/// Changes are live only (the channel is virtual): a watcher sees those made after it
/// subscribed. To keep a list current, subscribe first, then list, then apply changes.
///
/// # Examples
///
/// ```
/// let c: telemetron::Change = serde_json::from_str(r#"{"op": "channel.delete", "keys": [7]}"#).unwrap();
/// assert_eq!(c, telemetron::Change::Channel(telemetron::channel::ChannelChange::Deleted { keys: vec![7] }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Change {
    /// Channels created, renamed or deleted.
    Channel(ChannelChange),
    /// Ranges created, updated or deleted, or their metadata changed.
    Range(RangeChange),
}

/// Options for [`Engine::open_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Storage tuning, including the default durability.
    pub storage: StorageOptions,
    /// The channel keys this engine hands out (default `1..=u32::MAX`). A cluster node
    /// gets its own block, `node << 24 | 1 ..= node << 24 | 0xFF_FFFF`, so a key names the
    /// node that stores it (docs/cluster.md). Keys already in the catalog are kept.
    pub channel_keys: Option<std::ops::RangeInclusive<ChannelKey>>,
    /// A frame for at most this many streamers is queued to them on the writer's thread;
    /// a frame for more is handed to the relay's dispatcher thread (docs/architecture.md
    /// §13). `None`: 32. `Some(0)`: every frame goes through the dispatcher;
    /// `Some(usize::MAX)`: writers always deliver their own frames.
    pub relay_inline_targets: Option<usize>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    lock: parking_lot::Mutex<Option<DirLock>>,
    catalog: Arc<Catalog>,
    channels: Channels,
    ranges: Ranges,
    users: Users,
    storage: Arc<Storage>,
    hub: Arc<Hub>,
    report: RecoveryReport,
    closed: AtomicBool,
}

/// An embedded Telemetron engine over one data directory.
///
/// Cheap to clone (shared). Open one engine per directory: a second open, from this or
/// another process, fails with [`StorageError::AlreadyOpen`](crate::storage::StorageError::AlreadyOpen).
///
/// # Examples
///
/// ```
/// use telemetron::{Engine, channel::NewChannel, telem::*};
///
/// let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::open(dir.path()).unwrap();
/// let chans = engine
///     .create_channels(vec![NewChannel::index("time"), NewChannel::data("pressure", DataType::F64, "time")])
///     .unwrap();
/// let (time, pressure) = (chans[0].key, chans[1].key);
/// let frame = Frame::new()
///     .with(time, Series::timestamps(vec![1_000, 2_000, 3_000]))
///     .with(pressure, Series::from_vec(vec![10.0f64, 10.5, 11.0]));
/// engine.write(TimeStamp(1_000), frame).unwrap();
/// let back = engine.read(TimeRange::from_nanos(1_500, 3_001), &[pressure]).unwrap();
/// assert_eq!(back.concat(pressure).unwrap().unwrap().as_slice::<f64>().unwrap(), &[10.5, 11.0]);
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A handle to an [`Engine`] that does not keep it alive: for observers that outlive the
/// engine or are reachable from it (a metrics callback held by the engine's own sync
/// observer would otherwise keep the engine, and its mapped segments, alive forever).
#[derive(Debug, Clone)]
pub struct WeakEngine(std::sync::Weak<Inner>);

impl WeakEngine {
    /// The engine, while anything else still holds it.
    pub fn upgrade(&self) -> Option<Engine> {
        self.0.upgrade().map(|inner| Engine { inner })
    }
}

impl Engine {
    /// Open (or create) the data directory `path` with default options.
    ///
    /// # Errors
    /// [`StorageError::AlreadyOpen`](crate::storage::StorageError::AlreadyOpen), [`NotADataDirectory`](crate::storage::StorageError::NotADataDirectory), [`UnsupportedFormat`](crate::storage::StorageError::UnsupportedFormat),
    /// or an I/O error.
    pub fn open(path: impl AsRef<Path>) -> Result<Engine> {
        Engine::open_with(path, Options::default())
    }

    /// Open (or create) the data directory `path`, recovering from any crash.
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let dir = path.as_ref().to_path_buf();
        let lock = DirLock::acquire(&dir)?;
        tracing::debug!(key = "engine", lock = %lock.path().display(), "data directory locked");
        let catalog = Arc::new(Catalog::open(&dir.join("catalog.redb"))?);
        let channels = Channels::open(catalog.clone(), options.channel_keys.clone().unwrap_or(1..=ChannelKey::MAX))?;
        let tombstones = load_tombstones(&catalog)?;
        let (storage, report) = open_storage(&dir, options.storage, &channels.list_all(), &tombstones)?;
        storage.start_background();
        let ranges = Ranges::new(catalog.clone());
        let users = Users::open(catalog.clone())?;
        let system = |name: &str| NewChannel {
            internal: true,
            ..NewChannel::virtual_(name, crate::telem::DataType::Json).with_concurrency(crate::channel::Concurrency::Shared)
        };
        // Virtual: nothing to store.
        let system = channels.create_many(vec![system(CONTROL_CHANNEL), system(CHANGES_CHANNEL)], true, &|_| {})?;
        let hub = Arc::new(Hub {
            storage: storage.clone(),
            relay: Arc::new(Relay::new(options.relay_inline_targets)),
            arbiter: Default::default(),
            control_key: system[0].key,
            changes_key: system[1].key,
            closed: AtomicBool::new(false),
            writers: Default::default(),
        });
        let weak = Arc::downgrade(&hub);
        channels.on_change(Box::new(move |c: &ChannelChange| {
            if let Some(h) = weak.upgrade() {
                h.publish_change(c);
            }
        }));
        let weak = Arc::downgrade(&hub);
        ranges.on_change(Box::new(move |c: &RangeChange| {
            if let Some(h) = weak.upgrade() {
                h.publish_change(c);
            }
        }));
        Ok(Engine {
            inner: Arc::new(Inner {
                dir,
                lock: parking_lot::Mutex::new(Some(lock)),
                catalog,
                channels,
                ranges,
                users,
                storage,
                hub,
                report,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// True after [`Engine::close`].
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) { Err(Error::Closed { what: "the engine".into() }) } else { Ok(()) }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What recovery did when the directory was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// Channel lookups (`get`, `by_name`, `list`, `search`). Create, rename and delete
    /// channels through the engine ([`Engine::create_channels`], ...), which registers them
    /// with storage and the relay as well; the registry alone cannot.
    pub fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    /// Ranges and their metadata.
    pub fn ranges(&self) -> &Ranges {
        &self.inner.ranges
    }

    /// The node's users and their roles (enforced by the server, see [`crate::users`]).
    pub fn users(&self) -> &Users {
        &self.inner.users
    }

    /// Create one channel.
    ///
    /// # Errors
    /// See [`Channels::create_many`].
    pub fn create_channel(&self, ch: NewChannel) -> Result<Channel> {
        Ok(self.create_channels(vec![ch])?.remove(0))
    }

    /// Create channels in one transaction.
    ///
    /// # Errors
    /// See [`Channels::create_many`].
    pub fn create_channels(&self, batch: Vec<NewChannel>) -> Result<Vec<Channel>> {
        self.create_channels_with(batch, false)
    }

    /// Create channels, returning existing ones whose name is taken instead of failing.
    ///
    /// # Errors
    /// See [`Channels::create_many`].
    pub fn create_channels_with(&self, batch: Vec<NewChannel>, retrieve_if_name_exists: bool) -> Result<Vec<Channel>> {
        self.check_open()?;
        let storage = &self.inner.storage;
        for spec in &batch {
            self.check_compression(&spec.name, spec.compression, spec.into())?;
        }
        Ok(self.inner.channels.create_many(batch, retrieve_if_name_exists, &|ch| storage.add_channel(ch))?)
    }

    /// Refuse a compression choice that does not fit the channel `name` of this shape: the
    /// rule compaction follows ([`Codec::for_channel`](crate::storage::compress::Codec)).
    fn check_compression(
        &self,
        name: &str,
        choice: crate::channel::Compression,
        shape: crate::storage::compress::ChannelShape,
    ) -> Result<()> {
        crate::storage::compress::Codec::for_channel(choice, shape, self.inner.storage.opts.compress)
            .map(drop)
            .map_err(|reason| crate::channel::ChannelError::InvalidDefinition { name: name.to_string(), reason }.into())
    }

    /// Rename a channel.
    ///
    /// # Errors
    /// See [`Channels::rename`].
    pub fn rename_channel(&self, key: ChannelKey, name: &str) -> Result<Channel> {
        self.check_open()?;
        let ch = self.inner.channels.get(key)?;
        if ch.internal {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{:?} is one of the engine's system channels; clients find it by that name, so it cannot be renamed",
                    ch.name
                ),
            });
        }
        Ok(self.inner.channels.rename(key, name)?)
    }

    /// Change how compaction stores a channel's samples (`Channel::compression`). The
    /// samples already stored follow at the next compaction pass: what compaction wrote is
    /// recoded to the new choice (decompressed only for `off`), small records are merged
    /// into it; large records a writer wrote stay raw (docs/architecture.md §9).
    ///
    /// # Errors
    /// [`crate::channel::ChannelError::InvalidDefinition`] when the choice does not fit the
    /// channel (an index or virtual channel, a type the codec does not encode), saying what
    /// to choose; unknown channels; system channels; [`Error::Closed`].
    pub fn set_channel_compression(&self, key: ChannelKey, compression: crate::channel::Compression) -> Result<Channel> {
        self.check_open()?;
        let ch = self.inner.channels.get(key)?;
        if ch.internal {
            return Err(Error::InvalidArgument {
                reason: format!("{:?} is one of the engine's system channels; its storage is the engine's to choose", ch.name),
            });
        }
        self.check_compression(&ch.name, compression, (&*ch).into())?;
        let storage = &self.inner.storage;
        Ok(self.inner.channels.set_compression(key, compression, &|ch| {
            if let Some(store) = storage.store(ch.key) {
                *store.compression.lock() = ch.compression;
            }
        })?)
    }

    /// Open a streamer on `config.channels` (stored or virtual). A streamer of the
    /// control-state channel first receives the current state.
    ///
    /// # Errors
    /// Unknown channels; [`Error::InvalidArgument`] for a `spin_us` over
    /// [`StreamerConfig::MAX_SPIN_US`]; [`Error::Closed`] after [`Engine::close`].
    pub fn open_streamer(&self, config: StreamerConfig) -> Result<Streamer> {
        self.check_open()?;
        if config.spin_us > StreamerConfig::MAX_SPIN_US {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "spin_us {} is over the {} us limit; a receiver waiting that long should park (spin_us 0)",
                    config.spin_us,
                    StreamerConfig::MAX_SPIN_US
                ),
            });
        }
        for &k in &config.channels {
            self.inner.channels.get(k)?;
        }
        let hub = Arc::downgrade(&self.inner.hub);
        let control_key = self.inner.hub.control_key;
        let hook: SnapshotHook = Arc::new(move |keys: &[ChannelKey], apply: &mut dyn FnMut(Option<Frame>)| match hub.upgrade() {
            Some(h) if keys.contains(&control_key) => h.with_control_snapshot(|f| apply(Some(f))),
            _ => apply(None),
        });
        // Subscribe with the control state queued first, while no transfer can be published:
        // the streamer then receives exactly the transfers after that state.
        let relay = &self.inner.hub.relay;
        let mut sub = None;
        hook(&config.channels, &mut |state| {
            sub = Some(relay.subscribe(&config.channels, config.capacity, config.lag_policy, state.into_iter().collect()));
        });
        let sub = sub.expect("the snapshot hook calls apply once");
        Ok(Streamer::new(relay.clone(), sub, &config, Some(hook)))
    }

    /// The virtual channel on which control transfers are published.
    pub fn control_channel(&self) -> ChannelKey {
        self.inner.hub.control_key
    }

    /// The virtual channel on which changes to channels and ranges are published, one
    /// JSON [`Change`] per sample ([`CHANGES_CHANNEL`]).
    pub fn changes_channel(&self) -> ChannelKey {
        self.inner.hub.changes_key
    }

    /// Current control holders of `keys` (all controlled channels if empty).
    pub fn control_states(&self, keys: &[ChannelKey]) -> Vec<State> {
        self.inner.hub.arbiter.states(keys)
    }

    /// Fence control of the channels `scope` covers (virtual channels, which carry
    /// commands; or all): every writer loses control of them (the releases are published
    /// on the control-state channel), and no writer gains any until
    /// [`Engine::lift_control_fence`]. Writes to them are dropped and reported for lack of
    /// control, so nothing is commanded while the fence stands. A cluster node does this
    /// when its lease may have expired while it was cut off from etcd (docs/cluster.md §6).
    pub fn fence_control(&self, scope: crate::control::FenceScope) {
        let weak = self.downgrade();
        let covers: crate::control::Fenced = Arc::new(move |k| match scope {
            crate::control::FenceScope::All => true,
            // A channel this engine no longer knows is covered: fail safe.
            crate::control::FenceScope::Commands => weak.upgrade().is_none_or(|e| e.channels().get(k).map_or(true, |c| c.is_virtual())),
        });
        let hub = &self.inner.hub;
        hub.arbiter.fence(covers, &|t| hub.publish_transfers(t));
    }

    /// Lift the fence: writers opened from now on are arbitrated as usual. A writer that was
    /// open during the fence stays without control until it sets its authority again, so a
    /// writer from before the fence never commands again without asking.
    pub fn lift_control_fence(&self) {
        self.inner.hub.arbiter.lift_fence();
    }

    /// Cluster mode: show another node's control state on this engine's control channel.
    /// `block` is that node's key block; `snapshot` and `transfers` are a message of its
    /// control channel (a snapshot names every holder it has, and what changed since the
    /// last one is published here as transfers). Holders outside `block` are ignored.
    /// New streamers of the control channel get these holders in their snapshot too;
    /// [`Engine::control_states`] stays this engine's own.
    pub fn relay_peer_control(&self, block: &std::ops::RangeInclusive<ChannelKey>, snapshot: bool, transfers: Vec<Transfer>) {
        let hub = &self.inner.hub;
        hub.arbiter.peer_transfers(block, snapshot, transfers, &|t| hub.publish_peer_transfers(t));
    }

    /// True while control is fenced.
    pub fn control_fenced(&self) -> bool {
        self.inner.hub.arbiter.is_fenced()
    }

    /// A handle that does not keep the engine alive.
    pub fn downgrade(&self) -> WeakEngine {
        WeakEngine(Arc::downgrade(&self.inner))
    }

    /// The channels that streamers of this engine want, in key order, and a generation that
    /// moves whenever a streamer opens, closes or changes its channels (a cluster node's
    /// peer taps follow it to stream channels stored on other nodes).
    pub fn demand(&self) -> (u64, Vec<ChannelKey>) {
        self.inner.hub.relay.demand()
    }

    /// Add or replace definitions of channels stored on other nodes of a cluster (their
    /// keys are outside this engine's block): listed, retrieved and streamed like local
    /// channels, reported on the change channel, never stored in this catalog; reads,
    /// writes, renames and deletes of them are refused with `channel.elsewhere`. Returns
    /// the definitions refused because a local channel holds the name or key.
    pub fn mirror_channels(&self, channels: Vec<Channel>) -> Vec<Channel> {
        self.inner.channels.mirror(channels)
    }

    /// Drop mirrored definitions (their channels were deleted on their node).
    pub fn unmirror_channels(&self, keys: &[ChannelKey]) {
        self.inner.channels.unmirror(keys);
    }

    /// Deliver a frame of mirrored channels, received from the node that stores them, to
    /// this engine's streamers (a cluster node's peer taps). Nothing is stored. `route` is
    /// the stream's routing, kept across its frames (one per peer tap), so that matching
    /// streamers to channels happens when subscriptions change, not per frame.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a channel of the frame is not a mirror (live data of
    /// this engine's own channels comes only from its writers).
    pub fn relay_mirrored(&self, frame: &Frame, route: &mut crate::relay::MirrorRoute) -> Result<()> {
        self.check_open()?;
        if let Some((k, _)) = frame.iter().find(|&(k, _)| !self.inner.channels.is_mirror(k)) {
            return Err(Error::InvalidArgument {
                reason: format!("channel {k} is not stored on another node; only its writers deliver its live data"),
            });
        }
        self.inner.hub.relay.publish_routed(frame, route);
        Ok(())
    }

    /// Tell this engine's streamers of the mirrored channels `keys` that `lost` frames of
    /// them were lost on the way from their node (a peer tap fell behind): each streamer's
    /// next receive reports the lag (`stream.lagged`), or disconnects it under
    /// [`crate::relay::LagPolicy::Disconnect`], as when its own queue overflows. Channels not mirrored
    /// here are ignored: only their writers feed their streamers.
    pub fn relay_mirrored_lost(&self, keys: &[ChannelKey], lost: u64) {
        let mirrored: Vec<ChannelKey> = keys.iter().copied().filter(|&k| self.inner.channels.is_mirror(k)).collect();
        self.inner.hub.relay.report_lost(&mirrored, lost);
    }

    /// Relay counters: frames published, delivered, dropped for lag, streamers disconnected.
    pub fn relay_metrics(&self) -> RelayMetricsSnapshot {
        self.inner.hub.relay.snapshot()
    }

    /// Each open streamer's counters (queued, delivered and dropped frames).
    pub fn streamer_metrics(&self) -> Vec<StreamerMetrics> {
        self.inner.hub.relay.streamers()
    }

    /// Storage counters: samples and bytes written, commits, syncs, segments, reclaimed space.
    pub fn storage_metrics(&self) -> StorageMetricsSnapshot {
        self.inner.storage.segments.stats.snapshot(self.inner.storage.segments.count())
    }

    /// Control counters: transfers, series refused for lack of control, channels controlled.
    pub fn control_metrics(&self) -> ControlMetricsSnapshot {
        self.inner.hub.arbiter.metrics()
    }

    /// Call `observer` with the duration of every `fdatasync` of a segment file (`None`
    /// removes it). `telemetron::observe` installs one that feeds a histogram.
    pub fn set_sync_observer(&self, observer: Option<SyncObserver>) {
        self.inner.storage.segments.stats.set_sync_observer(observer);
    }

    /// Delete channels and their data (space is reclaimed in the background). An index
    /// still used by data channels that are not deleted in the same call is refused.
    ///
    /// # Errors
    /// [`ChannelError::KeyNotFound`], [`ChannelError::IndexInUse`],
    /// [`ChannelError::Busy`] if an open writer holds a channel.
    pub fn delete_channels(&self, keys: &[ChannelKey]) -> Result<()> {
        self.check_open()?;
        for &k in keys {
            let ch = self.inner.channels.get(k)?;
            if ch.internal {
                return Err(Error::InvalidArgument {
                    reason: format!("{:?} is one of the engine's system channels and cannot be deleted", ch.name),
                });
            }
            if let Some(store) = self.inner.storage.store(k)
                && store.state.lock().writers > 0
            {
                return Err(ChannelError::Busy { name: ch.name.clone() }.into());
            }
        }
        for ch in self.inner.channels.remove(keys)? {
            self.inner.storage.remove_channel(ch.key);
        }
        Ok(())
    }

    /// Open a writer.
    ///
    /// # Errors
    /// Unknown channels; [`crate::storage::WriteError::ChannelBusy`] if another writer
    /// holds one of the channels; [`crate::storage::WriteError::OverlapsCommitted`] if the
    /// start falls inside stored data.
    pub fn open_writer(&self, config: WriterConfig) -> Result<Writer> {
        self.check_open()?;
        self.inner.channels.refuse_mirrors(&config.channels)?;
        let mut chans: Vec<Arc<Channel>> = Vec::new();
        for &k in &config.channels {
            let ch = self.inner.channels.get(k)?;
            if ch.internal {
                return Err(crate::storage::WriteError::InvalidConfig {
                    reason: format!("{:?} is one of the engine's system channels; only the engine writes it", ch.name),
                }
                .into());
            }
            if chans.iter().any(|c| c.key == k) {
                return Err(crate::storage::WriteError::InvalidConfig { reason: format!("channel {:?} is listed twice", ch.name) }.into());
            }
            chans.push(ch);
        }
        let extra: Vec<ChannelKey> = chans.iter().filter_map(|c| c.index_key()).filter(|i| !chans.iter().any(|c| c.key == *i)).collect();
        for k in extra {
            if !chans.iter().any(|c| c.key == k) {
                chans.push(self.inner.channels.get(k)?);
            }
        }
        Writer::open(&self.inner.hub, chans, config, self.inner.storage.opts.durability)
    }

    /// Write one frame starting at `start` and commit it (opens and closes a writer).
    ///
    /// # Errors
    /// As [`Engine::open_writer`] and [`Writer::write`].
    pub fn write(&self, start: TimeStamp, frame: Frame) -> Result<TimeStamp> {
        self.write_at(start, frame, u8::MAX)
    }

    /// [`Engine::write`] at `authority` instead of the highest (a node writes an
    /// operator's one-shot writes at their maximum authority).
    ///
    /// # Errors
    /// As [`Engine::write`].
    pub fn write_at(&self, start: TimeStamp, frame: Frame, authority: u8) -> Result<TimeStamp> {
        let keys = frame.unique_keys();
        let _span = tracing::info_span!("engine.write", key = "engine", channels = keys.len()).entered();
        let config = WriterConfig { authorities: vec![authority], ..WriterConfig::new(start, keys) };
        let mut w = self.open_writer(config.auto_commit(false).err_on_unauthorized(true).name("one-shot write"))?;
        w.write(&frame)?;
        w.close()
    }

    fn plan(&self, keys: &[ChannelKey]) -> Result<ReadPlan> {
        self.inner.channels.refuse_mirrors(keys)?;
        let mut stores = Vec::with_capacity(keys.len());
        for &k in keys {
            let ch = self.inner.channels.get(k)?;
            if ch.is_virtual() {
                return Err(Error::InvalidArgument {
                    reason: format!("channel {:?} is virtual: it is streamed, never stored, so it cannot be read", ch.name),
                });
            }
            stores.push(self.inner.storage.store(k).ok_or(ChannelError::KeyNotFound { key: k })?);
        }
        ReadPlan::new(&self.inner.storage, &stores)
            .ok_or_else(|| Error::from(crate::storage::StorageError::Metadata { reason: "index channel missing from storage".into() }))
    }

    /// Read `range` of `keys`. Each channel gets one series per stored run (zero-copy views
    /// of the stored bytes); use [`Frame::concat`] for one array per channel.
    ///
    /// # Errors
    /// Unknown or virtual channels; [`crate::storage::StorageError::Corrupt`] if stored
    /// bytes fail their checksum.
    pub fn read(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<Frame> {
        self.check_open()?;
        if !range.is_valid() {
            return Err(Error::InvalidArgument { reason: format!("time range {range} ends before it starts") });
        }
        Ok(read_channels(&self.plan(keys)?, range)?)
    }

    /// Read `range` of `keys` reduced to at most `reduction.points` points per channel,
    /// next to the data (see [`crate::telem::Reduction`]): one series per channel, the
    /// samples visited once in place and never copied. Channels sharing an index are
    /// reduced over the same buckets, so a reduced index still serves its data channels.
    ///
    /// # Errors
    /// As [`Engine::read`]; `invalid_argument` for a bad reduction or a channel that holds
    /// no numbers (strings, JSON, bytes, UUIDs).
    pub fn read_reduced(&self, range: TimeRange, keys: &[ChannelKey], reduction: &Reduction) -> Result<Frame> {
        self.check_open()?;
        if !range.is_valid() {
            return Err(Error::InvalidArgument { reason: format!("time range {range} ends before it starts") });
        }
        let plan = self.reduce_plan(keys, reduction)?;
        read_view(&plan, range, Some((reduction, keys)))
    }

    /// The read plan of a reduction: `keys` and their indexes (the buckets are cut on the
    /// index even when it is not requested), after checking that every channel reduces.
    fn reduce_plan(&self, keys: &[ChannelKey], reduction: &Reduction) -> Result<ReadPlan> {
        reduction.validate().map_err(|reason| Error::InvalidArgument { reason })?;
        let mut all = keys.to_vec();
        for &k in keys {
            let ch = self.inner.channels.get(k)?;
            if !reducible(ch.data_type) {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "channel {:?} holds {} samples: reductions apply to numbers, booleans and timestamps; read it without a reduction",
                        ch.name, ch.data_type
                    ),
                });
            }
            if let Some(i) = ch.index_key().filter(|i| !all.contains(i)) {
                all.push(i);
            }
        }
        self.plan(&all)
    }

    /// Open an iterator.
    ///
    /// # Errors
    /// Unknown or virtual channels; with a reduction, as [`Engine::read_reduced`].
    pub fn open_iterator(&self, config: IteratorConfig) -> Result<RangeIterator> {
        self.check_open()?;
        let plan = match &config.reduce {
            Some(r) => self.reduce_plan(&config.channels, r)?,
            None => self.plan(&config.channels)?,
        };
        Ok(RangeIterator::new(plan, &config))
    }

    /// The time range covered by stored samples of a channel (through its index).
    ///
    /// # Errors
    /// Unknown or virtual channels.
    pub fn time_range(&self, key: ChannelKey) -> Result<Option<TimeRange>> {
        let plan = self.plan(&[key])?;
        match plan.lead_index() {
            Some(i) => Ok(extent(i, TimeRange::MAX)?),
            None => Ok(None),
        }
    }

    /// Delete `range` of `keys`. Data channels go before their index: deleting an index
    /// range still used by another data channel is refused. Durable before it returns.
    ///
    /// # Errors
    /// Unknown or virtual channels, channels held by an open writer, an index range in use.
    pub fn delete(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<()> {
        self.check_open()?;
        let plan = self.plan(keys)?;
        let storage = &self.inner.storage;
        let stores: Vec<_> = plan.groups.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
        let _guard = storage.commit_lock.write();
        let seq = storage.next_seq();
        let tombstones = plan_delete(storage, range, &stores, seq)?;
        if tombstones.is_empty() {
            return Ok(());
        }
        let txn = self.inner.catalog.write()?;
        {
            let mut t = txn.open_table(TOMBSTONES).map_err(meta_err)?;
            for (i, ts) in tombstones.iter().enumerate() {
                t.insert((seq, i as u64), serde_json::to_vec(ts).map_err(meta_err)?.as_slice()).map_err(meta_err)?;
            }
        }
        txn.commit().map_err(meta_err)?;
        apply_tombstones(storage, &tombstones)?;
        tracing::info!(key = "engine", channels = keys.len(), range = %range, "range deleted");
        Ok(())
    }

    /// Run a compaction pass now instead of waiting for the background thread: every
    /// channel's runs of small records are merged into records of about
    /// `StorageOptions::compacted_record_bytes`, compressed if `StorageOptions::compress`.
    /// The replaced records' space comes back when [`Engine::reclaim`] (or the background
    /// reclaimer) deletes the segments nothing references any more.
    ///
    /// # Errors
    /// [`StorageError`](crate::storage::StorageError) for an I/O failure (what was merged
    /// before it stays merged; nothing is lost) or a closed engine.
    pub fn compact(&self) -> Result<crate::storage::CompactionReport> {
        Ok(crate::storage::compact_once(&self.inner.storage)?)
    }

    /// Reclaim space now instead of waiting for the background thread; returns
    /// (bytes returned to the file system, segments deleted).
    pub fn reclaim(&self) -> (u64, usize) {
        crate::storage::reclaim_once(&self.inner.storage)
    }

    /// Sync all data to stable storage now.
    ///
    /// # Errors
    /// An I/O error.
    pub fn sync(&self) -> Result<()> {
        self.inner.storage.segments.sync_dirty(true)?;
        Ok(())
    }

    /// Stop background work, sync, and release the data directory (it can be opened again
    /// at once). Open writers should be closed first: their uncommitted samples are lost and
    /// they refuse further writes. Other clones of this engine become unusable; streamers
    /// receive [`crate::relay::StreamError::Closed`].
    ///
    /// # Errors
    /// An I/O error while syncing.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.hub.closed.store(true, Ordering::Release);
        self.inner.hub.relay.close();
        let r = self.inner.storage.shutdown();
        // Release the directory so it can be opened again, even while clones of this
        // engine (or writers and readers it handed out) are still alive.
        self.inner.catalog.close();
        self.inner.lock.lock().take();
        r?;
        tracing::info!(key = "engine", dir = %self.inner.dir.display(), "engine closed");
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.storage.shutdown();
        }
    }
}

fn load_tombstones(catalog: &Catalog) -> Result<Vec<Tombstone>> {
    let txn = catalog.read()?;
    let t = txn.open_table(TOMBSTONES).map_err(meta_err)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(meta_err)? {
        let (_, v) = row.map_err(meta_err)?;
        out.push(serde_json::from_slice(v.value()).map_err(meta_err)?);
    }
    Ok(out)
}
