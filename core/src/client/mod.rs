//! The client: one API over an embedded engine or a remote node.
//!
//! [`open`] gives a client over an engine in this process (nothing to start: notebooks,
//! test sequences); `connect` (feature `remote`) gives the same client type over a network connection to a
//! `telemetron serve` node. Every method behaves the same on both backends, including its
//! errors (the core's integration suite runs against both). The Python and Node SDKs wrap
//! this type once and get both backends.
//!
//! All methods are `async`. On the embedded backend they complete without waiting on I/O
//! other than the storage engine's own, so bindings may drive them with a simple
//! `block_on`. The remote backend needs a tokio runtime (it spawns a keep-alive task per
//! stream); drive it from a multi-thread runtime.
//!
//! ## Remote errors
//! Errors from the node are rebuilt as the same [`crate::Error`] variants (same codes,
//! same fields, same messages). Network problems are [`crate::protocol::NetError`]s:
//! `net.connect`, `net.connection_lost`, `net.keepalive_timeout`, `auth.*`,
//! `protocol.*`, `server.shutdown`.
//!
//! ## Remote writers
//! A remote `write()` does not wait for the node: it checks the frame locally (the same
//! frame-local rules, in the same order, as the embedded writer), computes the
//! [`crate::framer::WriteReport`] from the control authority the node pushes to it, and
//! sends. What only the node can check (data stored by other writers, storage failures)
//! is returned by the *next* call on that writer, which then does not do its own work.
//! Channels the node dropped from a write because control moved while it was in flight
//! are named in [`crate::framer::WriteReport::dropped`] of the next report;
//! [`ClientWriter::confirm`] waits for them, and [`ClientWriter::write_confirmed`] makes a
//! write whose report is final (what control sequences use for commands).
//! `commit()` is a round trip and returns the end. Authority changes caused by another
//! client are pushed before that client's call returns, so `has_control` and reports are
//! exact on loopback. Dropping a remote writer, or losing its connection for longer than
//! the node's control timeout, aborts it and passes control on. Details:
//! `docs/protocol.md`, section 6.
//!
//! ## Remote streamers
//! Frames, lag notices ([`crate::relay::StreamError::Lagged`]) and closes arrive as on the
//! embedded backend; `update_channels` returns once the node applied the change.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use telemetron::channel::NewChannel;
//! use telemetron::telem::*;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let client = telemetron::open(dir.path()).unwrap();
//! let ch = client.create_channels(vec![NewChannel::index("t"), NewChannel::data("p", DataType::F64, "t")], false).await.unwrap();
//! let f = Frame::new().with(ch[0].key, Series::timestamps(vec![1, 2])).with(ch[1].key, Series::from_vec(vec![0.5f64, 0.7]));
//! client.write(TimeStamp(1), f).await.unwrap();
//! let back = client.read(TimeRange::MAX, &[ch[1].key]).await.unwrap();
//! assert_eq!(back.samples(ch[1].key), 2);
//! # });
//! ```

mod embedded;
#[cfg(feature = "export")]
pub mod export;
mod iterator;
mod options;
#[cfg(feature = "remote")]
mod remote;
/// The kind of a stream [`Client::relay_stream`] opens (the protocol's, re-exported for
/// the layers above the client).
#[cfg(feature = "remote")]
pub use crate::protocol::StreamKind;
/// Where a node (or any HTTP service) is and how to reach it: TCP, then TLS for `https`
/// (`ConnectOptions::ca_cert` or the web's roots). The OTLP exporter dials with it too.
#[cfg(feature = "remote")]
pub(crate) use remote::Endpoint;
#[cfg(feature = "remote")]
pub use remote::{RelayedMessage, RelayedStream};
mod changes;
mod sequence;
mod streamer;
mod writer;

use std::collections::BTreeMap;
use std::path::Path;

use uuid::Uuid;

use crate::channel::{Channel, ChannelKey, NewChannel};
use crate::control::State;
use crate::error::Result;
use crate::framer::{IterSpan, IteratorConfig, WriterConfig};
use crate::ranger::{NewRange, Range, RangeQuery};
use crate::relay::StreamerConfig;
use crate::telem::{Frame, Reduction, TimeRange, TimeStamp};
use crate::{Engine, Options};

pub use crate::channel::ChannelRef;
pub use changes::{ChangeWatcher, decode_changes};
pub use iterator::ClientIterator;
pub use options::{ConnectOptions, Credentials};
pub use sequence::{
    DEFAULT_AUTHORITY, DEFAULT_SPIN, LoopStats, LostHook, Sequence, SequenceConfig, Tick, Ticker, Until, Wait, sleep_until,
};
pub use streamer::ClientStreamer;
pub use writer::ClientWriter;

tokio::task_local! {
    static TRACEPARENT: std::sync::Arc<str>;
}

/// Run `f` with a caller's W3C trace context: every HTTP request a remote client sends
/// while `f` runs carries `traceparent`, so the node's spans for it join the caller's trace
/// (`docs/observability.md` §4; the SDKs set it from the caller's OpenTelemetry context).
/// `None` runs `f` as it is. Streams opened meanwhile do not carry it yet.
pub async fn with_traceparent<F: std::future::Future>(traceparent: Option<String>, f: F) -> F::Output {
    match traceparent.filter(|t| !t.is_empty()) {
        Some(t) => TRACEPARENT.scope(std::sync::Arc::from(t), f).await,
        None => f.await,
    }
}

/// The trace context set by [`with_traceparent`] for the current task.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) fn current_traceparent() -> Option<std::sync::Arc<str>> {
    TRACEPARENT.try_with(|t| t.clone()).ok()
}

use iterator::IteratorInner;
use streamer::StreamerInner;
use writer::WriterInner;

/// Open an embedded engine on `path` and return a client over it.
///
/// # Errors
/// As [`Engine::open`].
pub fn open(path: impl AsRef<Path>) -> Result<Client> {
    Ok(Client::embedded(Engine::open(path)?))
}

/// Open an embedded engine with options.
///
/// # Errors
/// As [`Engine::open_with`].
pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Client> {
    Ok(Client::embedded(Engine::open_with(path, options)?))
}

/// Connect to a remote node (`telemetron serve`) at `url` (`http://host:port`, or
/// `https://` for TLS) and return a client over it: the same type as [`open`] returns,
/// with the same methods and the same errors.
///
/// The node's protocol version is checked first (an incompatible node is refused with
/// [`crate::protocol::NetError::VersionMismatch`]), then the credentials.
///
/// # Errors
/// [`crate::protocol::NetError`]: unreachable node, TLS failure, version mismatch,
/// missing or refused credentials.
#[cfg(feature = "remote")]
pub async fn connect(url: &str, opts: ConnectOptions) -> Result<Client> {
    let r = remote::Remote::connect(url, &opts).await?;
    Ok(Client { backend: std::sync::Arc::new(Backend::Remote(Box::new(r))) })
}

pub(crate) enum Backend {
    Embedded(Engine),
    #[cfg(feature = "remote")]
    Remote(Box<remote::Remote>),
}

/// A Telemetron client (embedded or remote). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    backend: std::sync::Arc<Backend>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("remote", &self.is_remote()).finish()
    }
}

impl Client {
    /// A client over an engine already open in this process.
    pub fn embedded(engine: Engine) -> Client {
        Client { backend: std::sync::Arc::new(Backend::Embedded(engine)) }
    }

    /// True for a client connected to a remote node.
    pub fn is_remote(&self) -> bool {
        !matches!(*self.backend, Backend::Embedded(_))
    }

    /// The backend, failing with `engine.closed` once an embedded client is closed (a
    /// remote client fails the same way from its connection), so calls after `close`
    /// behave alike on both backends.
    fn backend(&self) -> Result<&Backend> {
        match &*self.backend {
            Backend::Embedded(e) if e.is_closed() => Err(crate::Error::Closed { what: "the engine".into() }),
            b => Ok(b),
        }
    }

    /// A unary JSON call to the node, for the layers above the client whose calls it does
    /// not define itself (`flows/*`, `observe/*`). An embedded client has no node to call:
    /// `invalid_argument`.
    #[cfg(feature = "remote")]
    pub(crate) async fn call_remote<Q: serde::Serialize, R: serde::de::DeserializeOwned>(&self, path: &str, req: &Q) -> Result<R> {
        match &*self.backend {
            Backend::Remote(r) => r.http.call(path, req).await,
            Backend::Embedded(_) => {
                Err(crate::Error::InvalidArgument { reason: format!("`{path}` is a call to a node; this client is embedded") })
            }
        }
    }

    /// The embedded engine, if this client is embedded.
    pub fn engine(&self) -> Option<&Engine> {
        match &*self.backend {
            Backend::Embedded(e) => Some(e),
            #[cfg(feature = "remote")]
            Backend::Remote(_) => None,
        }
    }

    /// Create channels (all or none). With `retrieve_if_name_exists`, existing channels
    /// with the same names are returned instead of failing.
    ///
    /// # Errors
    /// See [`crate::channel::Channels::create_many`].
    pub async fn create_channels(&self, channels: Vec<NewChannel>, retrieve_if_name_exists: bool) -> Result<Vec<Channel>> {
        match self.backend()? {
            Backend::Embedded(e) => e.create_channels_with(channels, retrieve_if_name_exists),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.create_channels(channels, retrieve_if_name_exists, None).await,
        }
    }

    /// [`Client::create_channels`] on cluster node `node` (its name): the channels are
    /// stored there, whichever node this client is connected to (docs/cluster.md §4). Data
    /// channels are always stored with their index, so their index must live on `node`.
    ///
    /// # Errors
    /// As [`Client::create_channels`]; [`crate::Error::InvalidArgument`] on an embedded
    /// engine or a node outside a cluster, for a node name the cluster does not know, or
    /// for an index stored elsewhere; `node.unavailable` when `node` is down.
    pub async fn create_channels_on(&self, node: &str, channels: Vec<NewChannel>, retrieve_if_name_exists: bool) -> Result<Vec<Channel>> {
        match self.backend()? {
            Backend::Embedded(_) => {
                let _ = (channels, retrieve_if_name_exists);
                Err(crate::Error::InvalidArgument {
                    reason: format!(
                        "an embedded engine is not a cluster node, so channels cannot be placed on {node:?}; connect to a node of the cluster"
                    ),
                })
            }
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.create_channels(channels, retrieve_if_name_exists, Some(node)).await,
        }
    }

    /// One channel by key or name.
    ///
    /// # Errors
    /// [`crate::channel::ChannelError::KeyNotFound`] / `NameNotFound`.
    pub async fn channel(&self, r: impl Into<ChannelRef>) -> Result<Channel> {
        let r = r.into();
        self.channels(std::slice::from_ref(&r))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| crate::protocol::NetError::protocol(format!("the node returned no channel for {r:?}")).into())
    }

    /// Channels by key or name, in order.
    ///
    /// # Errors
    /// Not-found errors for the first unknown channel.
    pub async fn channels(&self, refs: &[ChannelRef]) -> Result<Vec<Channel>> {
        match self.backend()? {
            Backend::Embedded(e) => embedded::channels(e, refs),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.channels(refs).await,
        }
    }

    /// User channels whose name contains `term` (case-insensitive); all with `""`.
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn search_channels(&self, term: &str) -> Result<Vec<Channel>> {
        match self.backend()? {
            Backend::Embedded(e) => Ok(e.channels().search(term).into_iter().map(|c| (*c).clone()).collect()),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.search_channels(term).await,
        }
    }

    /// Rename a channel.
    ///
    /// # Errors
    /// See [`Engine::rename_channel`].
    pub async fn rename_channel(&self, key: ChannelKey, name: &str) -> Result<Channel> {
        match self.backend()? {
            Backend::Embedded(e) => e.rename_channel(key, name),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.rename_channel(key, name).await,
        }
    }

    /// Change how compaction stores a channel's samples; what is stored follows at the next
    /// compaction pass.
    ///
    /// # Errors
    /// See [`Engine::set_channel_compression`].
    pub async fn set_channel_compression(&self, key: ChannelKey, compression: crate::channel::Compression) -> Result<Channel> {
        match self.backend()? {
            Backend::Embedded(e) => e.set_channel_compression(key, compression),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.set_channel_compression(key, compression).await,
        }
    }

    /// Delete channels and their data.
    ///
    /// # Errors
    /// See [`Engine::delete_channels`].
    pub async fn delete_channels(&self, keys: &[ChannelKey]) -> Result<()> {
        match self.backend()? {
            Backend::Embedded(e) => e.delete_channels(keys),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.delete_channels(keys).await,
        }
    }

    /// Create a range.
    ///
    /// # Errors
    /// See [`crate::ranger::Ranges::create`].
    pub async fn create_range(&self, range: NewRange) -> Result<Range> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().create(range).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.create_range(range).await,
        }
    }

    /// A range by key.
    ///
    /// # Errors
    /// [`crate::ranger::RangerError::NotFound`].
    pub async fn range(&self, key: Uuid) -> Result<Range> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().get(key).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.range(key).await,
        }
    }

    /// Ranges matching `term` (name, label or metadata value), optionally overlapping a
    /// time range.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn search_ranges(&self, term: &str, overlapping: Option<TimeRange>) -> Result<Vec<Range>> {
        self.query_ranges(&RangeQuery { term: term.to_string(), overlapping, ..RangeQuery::default() }).await
    }

    /// Ranges matching every filter of `q` (term, overlapping time range, labels, exact
    /// metadata, parent), ordered by start time.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn query_ranges(&self, q: &RangeQuery) -> Result<Vec<Range>> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().query(q).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.query_ranges(q).await,
        }
    }

    /// The direct children of a range (created with [`NewRange::parent`]), by start time.
    ///
    /// # Errors
    /// [`crate::ranger::RangerError::NotFound`] if `key` is not a range.
    pub async fn range_children(&self, key: Uuid) -> Result<Vec<Range>> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().children(key).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.range_children(key).await,
        }
    }

    /// Replace a range's labels; returns the updated range.
    ///
    /// # Errors
    /// [`crate::ranger::RangerError::NotFound`], [`crate::ranger::RangerError::Invalid`] for
    /// an empty label.
    pub async fn set_range_labels(&self, key: Uuid, labels: Vec<String>) -> Result<Range> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().set_labels(key, labels).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.set_range_labels(key, labels).await,
        }
    }

    /// Rename a range.
    ///
    /// # Errors
    /// [`crate::ranger::RangerError`].
    pub async fn rename_range(&self, key: Uuid, name: &str) -> Result<Range> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().rename(key, name).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.rename_range(key, name).await,
        }
    }

    /// Delete ranges.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn delete_ranges(&self, keys: &[Uuid]) -> Result<()> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().delete(keys).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.delete_ranges(keys).await,
        }
    }

    /// A range's metadata.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn range_meta(&self, key: Uuid) -> Result<BTreeMap<String, String>> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().meta_data(key).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.range_meta(key).await,
        }
    }

    /// Set metadata entries of a range.
    ///
    /// # Errors
    /// [`crate::ranger::RangerError::NotFound`].
    pub async fn set_range_meta(&self, key: Uuid, entries: BTreeMap<String, String>) -> Result<()> {
        match self.backend()? {
            Backend::Embedded(e) => e.ranges().set_meta_data(key, &entries).map_err(Into::into),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.set_range_meta(key, entries).await,
        }
    }

    /// Remove metadata entries of a range.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn delete_range_meta(&self, key: Uuid, names: &[String]) -> Result<()> {
        match self.backend()? {
            Backend::Embedded(e) => {
                e.ranges().delete_meta_data(key, &names.iter().map(String::as_str).collect::<Vec<_>>()).map_err(Into::into)
            }
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.delete_range_meta(key, names).await,
        }
    }

    /// Read a time range of channels.
    ///
    /// # Errors
    /// See [`Engine::read`].
    pub async fn read(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<Frame> {
        match self.backend()? {
            Backend::Embedded(e) => e.read(range, keys),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.read(range, keys, None).await,
        }
    }

    /// Read a time range of channels reduced to at most `reduction.points` points each; a
    /// remote node reduces next to the data and sends only the points.
    ///
    /// # Errors
    /// See [`Engine::read_reduced`].
    pub async fn read_reduced(&self, range: TimeRange, keys: &[ChannelKey], reduction: Reduction) -> Result<Frame> {
        match self.backend()? {
            Backend::Embedded(e) => e.read_reduced(range, keys, &reduction),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.read(range, keys, Some(reduction)).await,
        }
    }

    /// Write one frame starting at `start` and commit it; fails (writing nothing) if any
    /// channel is controlled by another writer.
    ///
    /// # Errors
    /// See [`Engine::write`].
    pub async fn write(&self, start: TimeStamp, frame: Frame) -> Result<TimeStamp> {
        match self.backend()? {
            Backend::Embedded(e) => e.write(start, frame),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.write(start, frame).await,
        }
    }

    /// Delete a time range of channels.
    ///
    /// # Errors
    /// See [`Engine::delete`].
    pub async fn delete(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<()> {
        match self.backend()? {
            Backend::Embedded(e) => e.delete(range, keys),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.delete(range, keys).await,
        }
    }

    /// The time range covered by a stored channel.
    ///
    /// # Errors
    /// Unknown or virtual channels.
    pub async fn time_range(&self, key: ChannelKey) -> Result<Option<TimeRange>> {
        match self.backend()? {
            Backend::Embedded(e) => e.time_range(key),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.time_range(key).await,
        }
    }

    /// Open a writer.
    ///
    /// # Errors
    /// See [`Engine::open_writer`].
    pub async fn open_writer(&self, config: WriterConfig) -> Result<ClientWriter> {
        match self.backend()? {
            Backend::Embedded(e) => Ok(ClientWriter { inner: WriterInner::Embedded(e.open_writer(config)?) }),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => Ok(ClientWriter { inner: WriterInner::Remote(remote::RemoteWriter::open(&r.http, config).await?) }),
        }
    }

    /// `channels` followed by the index channels of its data channels that are not already
    /// among them (each once, in order of first use): what a writer on `channels` writes, and
    /// what a read needs to put a time index next to its data. The SDKs open writers and
    /// index-aware reads with it.
    ///
    /// # Errors
    /// A transport error (remote), or `channel.not_found` if an index was deleted meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use telemetron::channel::NewChannel;
    /// use telemetron::telem::DataType;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let client = telemetron::open(dir.path()).unwrap();
    /// let ch = client.create_channels(vec![NewChannel::index("t"), NewChannel::data("p", DataType::F64, "t")], false).await.unwrap();
    /// let all = client.with_index_channels(vec![ch[1].clone()]).await.unwrap();
    /// assert_eq!(all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["p", "t"]);
    /// # });
    /// ```
    pub async fn with_index_channels(&self, mut channels: Vec<Channel>) -> Result<Vec<Channel>> {
        let mut missing: Vec<ChannelRef> = Vec::new();
        for k in channels.iter().filter_map(Channel::index_key) {
            let r = ChannelRef::Key(k);
            if !channels.iter().any(|c| c.key == k) && !missing.contains(&r) {
                missing.push(r);
            }
        }
        if !missing.is_empty() {
            channels.extend(self.channels(&missing).await?);
        }
        Ok(channels)
    }

    /// The last `n` samples (at least one) of stored channels, e.g. the current value of a
    /// slow sensor; an empty frame when they hold no data. Channels line up as in
    /// [`Client::read`]: pass a data channel's index too to get its timestamps.
    ///
    /// # Errors
    /// As [`Client::open_iterator`]: unknown or virtual channels, a storage or transport error.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use telemetron::channel::NewChannel;
    /// use telemetron::telem::*;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let client = telemetron::open(dir.path()).unwrap();
    /// let ch = client.create_channels(vec![NewChannel::index("t"), NewChannel::data("p", DataType::F64, "t")], false).await.unwrap();
    /// let f = Frame::new().with(ch[0].key, Series::timestamps(vec![1, 2, 3])).with(ch[1].key, Series::from_vec(vec![0.5f64, 0.6, 0.7]));
    /// client.write(TimeStamp(1), f).await.unwrap();
    /// let last = client.read_latest(&[ch[1].key], 2).await.unwrap();
    /// assert_eq!(last.samples(ch[1].key), 2);
    /// # });
    /// ```
    pub async fn read_latest(&self, keys: &[ChannelKey], n: u64) -> Result<Frame> {
        let n = n.max(1);
        let config = IteratorConfig { chunk_size: n, ..IteratorConfig::new(TimeRange::MAX, keys.to_vec()) };
        let mut it = self.open_iterator(config).await?;
        if it.seek_last().await? && it.prev(IterSpan::Samples(n)).await? {
            return Ok(it.take_value());
        }
        Ok(Frame::new())
    }

    /// Open a streamer.
    ///
    /// # Errors
    /// See [`Engine::open_streamer`].
    pub async fn open_streamer(&self, config: StreamerConfig) -> Result<ClientStreamer> {
        match self.backend()? {
            Backend::Embedded(e) => Ok(ClientStreamer { inner: StreamerInner::Embedded(e.open_streamer(config)?) }),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => Ok(ClientStreamer { inner: StreamerInner::Remote(remote::RemoteStreamer::open(&r.http, config).await?) }),
        }
    }

    /// Open an iterator.
    ///
    /// # Errors
    /// See [`Engine::open_iterator`].
    pub async fn open_iterator(&self, config: IteratorConfig) -> Result<ClientIterator> {
        match self.backend()? {
            Backend::Embedded(e) => Ok(ClientIterator { inner: IteratorInner::Embedded(e.open_iterator(config)?) }),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => Ok(ClientIterator { inner: IteratorInner::Remote(remote::RemoteIterator::open(&r.http, config).await?) }),
        }
    }

    /// Open a raw `writer` or `iterator` stream on the node, to relay another client's
    /// messages to it unchanged (a cluster node passing a stream on to the node that stores
    /// its channels, docs/cluster.md). Remote clients only. `compress` asks the node for
    /// compressed frames (`protocol::COMPRESS_HEADER`) whatever this client's options say:
    /// the relayed frames go to a client that asked for them or not.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] on an embedded client or for another kind; as
    /// [`Client::open_writer`] for the connection.
    #[cfg(feature = "remote")]
    pub async fn relay_stream(&self, kind: crate::protocol::StreamKind, compress: bool) -> Result<RelayedStream> {
        if kind == crate::protocol::StreamKind::Streamer {
            return Err(crate::Error::InvalidArgument { reason: "only writer and iterator streams are relayed, not streamers".into() });
        }
        match self.backend()? {
            Backend::Embedded(_) => Err(crate::Error::InvalidArgument { reason: "an embedded client has no stream to relay to".into() }),
            Backend::Remote(r) => RelayedStream::open(&r.http, kind, compress).await,
        }
    }

    /// Current control holders of `keys` (all if empty).
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn control_states(&self, keys: &[ChannelKey]) -> Result<Vec<State>> {
        match self.backend()? {
            Backend::Embedded(e) => Ok(e.control_states(keys)),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.control_states(keys).await,
        }
    }

    /// The control-state channel's key.
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn control_channel(&self) -> Result<ChannelKey> {
        match self.backend()? {
            Backend::Embedded(e) => Ok(e.control_channel()),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.control_channel().await,
        }
    }

    /// The key of the virtual channel on which changes to channels and ranges are
    /// published ([`crate::CHANGES_CHANNEL`]).
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn changes_channel(&self) -> Result<ChannelKey> {
        match self.backend()? {
            Backend::Embedded(e) => Ok(e.changes_channel()),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => r.changes_channel().await,
        }
    }

    /// Watch changes to channels and ranges (created, renamed, deleted, relabelled,
    /// metadata set), each once and in commit order, from now on. To keep a list current,
    /// open the watcher first, then list, then apply what it reports.
    ///
    /// # Errors
    /// As [`Client::open_streamer`].
    pub async fn watch_changes(&self) -> Result<ChangeWatcher> {
        let key = self.changes_channel().await?;
        let s = self.open_streamer(StreamerConfig::new(vec![key])).await?;
        Ok(ChangeWatcher::new(s, key))
    }

    /// Close the client: an embedded engine is closed and its directory released; a remote
    /// client drops its idle connections (the node keeps running). Either way, later calls
    /// fail with `engine.closed`. Writers, streamers and iterators already open are not
    /// closed on the remote backend (close them first).
    ///
    /// # Errors
    /// An I/O error while syncing.
    pub async fn close(&self) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(e) => e.close(),
            #[cfg(feature = "remote")]
            Backend::Remote(r) => {
                r.http.close();
                Ok(())
            }
        }
    }
}
