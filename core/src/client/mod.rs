//! The client: one API over an embedded engine or a remote node.
//!
//! [`open`] gives a client over an engine in this process (nothing to start: notebooks,
//! test sequences); [`connect`] gives the same client type over a network connection to a
//! `telemetron serve` node. Every method behaves the same on both backends, including its
//! errors (the core's integration suite runs against both). The Python and Node SDKs wrap
//! this type once and get both backends.
//!
//! All methods are `async`. On the embedded backend they complete without waiting on I/O
//! other than the storage engine's own, so bindings may drive them with a simple
//! `block_on`.
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

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::channel::{Channel, ChannelKey, NewChannel};
use crate::control::{Authority, State};
use crate::error::Result;
use crate::framer::{IterSpan, IteratorConfig, WriteReport, WriterConfig};
use crate::ranger::{NewRange, Range};
use crate::relay::StreamerConfig;
use crate::telem::{Frame, TimeRange, TimeStamp};
use crate::{Engine, Options};

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

/// How to authenticate to a remote node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// No credentials (accepted only by nodes that do not require authentication).
    #[default]
    None,
    /// A bearer token.
    Token {
        /// The token.
        token: String,
    },
    /// Username and password.
    Password {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

/// Connection settings for [`connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Credentials.
    pub credentials: Credentials,
    /// PEM file of a CA certificate to trust (for `https`/`wss` with a private CA).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Give up connecting after this long.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { credentials: Credentials::None, ca_cert: None, timeout: Duration::from_secs(10) }
    }
}

/// How a caller names a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChannelRef {
    /// By key.
    Key(ChannelKey),
    /// By name.
    Name(String),
}

impl From<ChannelKey> for ChannelRef {
    fn from(k: ChannelKey) -> Self {
        ChannelRef::Key(k)
    }
}

impl From<&str> for ChannelRef {
    fn from(n: &str) -> Self {
        ChannelRef::Name(n.to_string())
    }
}

impl From<String> for ChannelRef {
    fn from(n: String) -> Self {
        ChannelRef::Name(n)
    }
}

pub(crate) enum Backend {
    Embedded(Engine),
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

    /// The embedded engine, if this client is embedded.
    pub fn engine(&self) -> Option<&Engine> {
        match &*self.backend {
            Backend::Embedded(e) => Some(e),
        }
    }

    /// Create channels (all or none). With `retrieve_if_name_exists`, existing channels
    /// with the same names are returned instead of failing.
    ///
    /// # Errors
    /// See [`crate::channel::Channels::create_many`].
    pub async fn create_channels(&self, channels: Vec<NewChannel>, retrieve_if_name_exists: bool) -> Result<Vec<Channel>> {
        match &*self.backend {
            Backend::Embedded(e) => e.create_channels_with(channels, retrieve_if_name_exists),
        }
    }

    /// One channel by key or name.
    ///
    /// # Errors
    /// [`crate::channel::ChannelError::KeyNotFound`] / `NameNotFound`.
    pub async fn channel(&self, r: impl Into<ChannelRef>) -> Result<Channel> {
        Ok(self.channels(&[r.into()]).await?.remove(0))
    }

    /// Channels by key or name, in order.
    ///
    /// # Errors
    /// Not-found errors for the first unknown channel.
    pub async fn channels(&self, refs: &[ChannelRef]) -> Result<Vec<Channel>> {
        match &*self.backend {
            Backend::Embedded(e) => embedded::channels(e, refs),
        }
    }

    /// User channels whose name contains `term` (case-insensitive); all with `""`.
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn search_channels(&self, term: &str) -> Result<Vec<Channel>> {
        match &*self.backend {
            Backend::Embedded(e) => Ok(e.channels().search(term).into_iter().map(|c| (*c).clone()).collect()),
        }
    }

    /// Rename a channel.
    ///
    /// # Errors
    /// See [`Engine::rename_channel`].
    pub async fn rename_channel(&self, key: ChannelKey, name: &str) -> Result<Channel> {
        match &*self.backend {
            Backend::Embedded(e) => e.rename_channel(key, name),
        }
    }

    /// Delete channels and their data.
    ///
    /// # Errors
    /// See [`Engine::delete_channels`].
    pub async fn delete_channels(&self, keys: &[ChannelKey]) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(e) => e.delete_channels(keys),
        }
    }

    /// Create a range.
    ///
    /// # Errors
    /// See [`crate::ranger::Ranges::create`].
    pub async fn create_range(&self, range: NewRange) -> Result<Range> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().create(range),
        }
    }

    /// A range by key.
    ///
    /// # Errors
    /// [`crate::ranger::RangeError::NotFound`].
    pub async fn range(&self, key: Uuid) -> Result<Range> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().get(key),
        }
    }

    /// Ranges matching `term` (name, label or metadata value), optionally overlapping a
    /// time range.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn search_ranges(&self, term: &str, overlapping: Option<TimeRange>) -> Result<Vec<Range>> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().search(term, overlapping),
        }
    }

    /// Rename a range.
    ///
    /// # Errors
    /// [`crate::ranger::RangeError`].
    pub async fn rename_range(&self, key: Uuid, name: &str) -> Result<Range> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().rename(key, name),
        }
    }

    /// Delete ranges.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn delete_ranges(&self, keys: &[Uuid]) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().delete(keys),
        }
    }

    /// A range's metadata.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn range_meta(&self, key: Uuid) -> Result<BTreeMap<String, String>> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().meta_data(key),
        }
    }

    /// Set metadata entries of a range.
    ///
    /// # Errors
    /// [`crate::ranger::RangeError::NotFound`].
    pub async fn set_range_meta(&self, key: Uuid, entries: BTreeMap<String, String>) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().set_meta_data(key, &entries),
        }
    }

    /// Remove metadata entries of a range.
    ///
    /// # Errors
    /// A catalog or transport error.
    pub async fn delete_range_meta(&self, key: Uuid, names: &[String]) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(e) => e.ranges().delete_meta_data(key, &names.iter().map(String::as_str).collect::<Vec<_>>()),
        }
    }

    /// Read a time range of channels.
    ///
    /// # Errors
    /// See [`Engine::read`].
    pub async fn read(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<Frame> {
        match &*self.backend {
            Backend::Embedded(e) => e.read(range, keys),
        }
    }

    /// Write one frame starting at `start` and commit it; fails (writing nothing) if any
    /// channel is controlled by another writer.
    ///
    /// # Errors
    /// See [`Engine::write`].
    pub async fn write(&self, start: TimeStamp, frame: Frame) -> Result<TimeStamp> {
        match &*self.backend {
            Backend::Embedded(e) => e.write(start, frame),
        }
    }

    /// Delete a time range of channels.
    ///
    /// # Errors
    /// See [`Engine::delete`].
    pub async fn delete(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(e) => e.delete(range, keys),
        }
    }

    /// The time range covered by a stored channel.
    ///
    /// # Errors
    /// Unknown or virtual channels.
    pub async fn time_range(&self, key: ChannelKey) -> Result<Option<TimeRange>> {
        match &*self.backend {
            Backend::Embedded(e) => e.time_range(key),
        }
    }

    /// Open a writer.
    ///
    /// # Errors
    /// See [`Engine::open_writer`].
    pub async fn open_writer(&self, config: WriterConfig) -> Result<ClientWriter> {
        match &*self.backend {
            Backend::Embedded(e) => Ok(ClientWriter { inner: WriterInner::Embedded(e.open_writer(config)?) }),
        }
    }

    /// Open a streamer.
    ///
    /// # Errors
    /// See [`Engine::open_streamer`].
    pub async fn open_streamer(&self, config: StreamerConfig) -> Result<ClientStreamer> {
        match &*self.backend {
            Backend::Embedded(e) => Ok(ClientStreamer { inner: StreamerInner::Embedded(e.open_streamer(config)?) }),
        }
    }

    /// Open an iterator.
    ///
    /// # Errors
    /// See [`Engine::open_iterator`].
    pub async fn open_iterator(&self, config: IteratorConfig) -> Result<ClientIterator> {
        match &*self.backend {
            Backend::Embedded(e) => Ok(ClientIterator { inner: IteratorInner::Embedded(e.open_iterator(config)?) }),
        }
    }

    /// Current control holders of `keys` (all if empty).
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn control_states(&self, keys: &[ChannelKey]) -> Result<Vec<State>> {
        match &*self.backend {
            Backend::Embedded(e) => Ok(e.control_states(keys)),
        }
    }

    /// The control-state channel's key.
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn control_channel(&self) -> Result<ChannelKey> {
        match &*self.backend {
            Backend::Embedded(e) => Ok(e.control_channel()),
        }
    }

    /// Close the client (an embedded engine is closed and its directory released).
    ///
    /// # Errors
    /// An I/O error while syncing.
    pub async fn close(&self) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(e) => e.close(),
        }
    }
}

enum WriterInner {
    Embedded(crate::framer::Writer),
}

/// A writer from [`Client::open_writer`].
pub struct ClientWriter {
    inner: WriterInner,
}

impl std::fmt::Debug for ClientWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientWriter").finish_non_exhaustive()
    }
}

impl ClientWriter {
    /// Write a frame; see [`crate::framer::Writer::write`].
    ///
    /// # Errors
    /// As the embedded writer.
    pub async fn write(&mut self, frame: &Frame) -> Result<WriteReport> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.write(frame),
        }
    }

    /// Commit; returns the committed end.
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn commit(&mut self) -> Result<TimeStamp> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.commit(),
        }
    }

    /// Set one authority for every channel.
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn set_authority(&mut self, authority: Authority) -> Result<()> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.set_authority(authority),
        }
    }

    /// Set the authority of some channels.
    ///
    /// # Errors
    /// [`crate::control::ControlError::UnknownChannel`].
    pub async fn set_authorities(&mut self, changes: &[(ChannelKey, Authority)]) -> Result<()> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.set_authorities(changes),
        }
    }

    /// True if this writer controls `key` (and its index) now.
    pub fn has_control(&self, key: ChannelKey) -> bool {
        match &self.inner {
            WriterInner::Embedded(w) => w.has_control(key),
        }
    }

    /// Commit and close; returns the committed end.
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn close(self) -> Result<TimeStamp> {
        match self.inner {
            WriterInner::Embedded(w) => w.close(),
        }
    }

    /// Close without committing.
    pub async fn abort(self) {
        match self.inner {
            WriterInner::Embedded(w) => w.abort(),
        }
    }
}

enum StreamerInner {
    Embedded(crate::relay::Streamer),
}

/// A streamer from [`Client::open_streamer`].
pub struct ClientStreamer {
    inner: StreamerInner,
}

impl std::fmt::Debug for ClientStreamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStreamer").finish_non_exhaustive()
    }
}

impl ClientStreamer {
    /// The next frame. A lag notice is returned once as
    /// `Err(Error::Stream(StreamError::Lagged { .. }))`; later calls continue.
    ///
    /// # Errors
    /// [`crate::relay::StreamError`] (wrapped) or a transport error.
    pub async fn next(&mut self) -> Result<Frame> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.next().await?),
        }
    }

    /// The next frame, or `None` after `timeout`.
    ///
    /// # Errors
    /// As [`ClientStreamer::next`].
    pub async fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Receive without waiting.
    ///
    /// # Errors
    /// As [`ClientStreamer::next`].
    pub fn try_next(&mut self) -> Result<Option<Frame>> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.try_recv()?),
        }
    }

    /// Blocking receive for threads outside any async runtime (embedded backend waits on
    /// a condition variable; it never needs a runtime).
    ///
    /// # Errors
    /// As [`ClientStreamer::next`].
    pub fn next_blocking(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.recv_timeout(timeout)?),
        }
    }

    /// Change the channels received.
    ///
    /// # Errors
    /// [`crate::relay::StreamError::Closed`].
    pub async fn update_channels(&mut self, keys: Vec<ChannelKey>) -> Result<()> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.update_channels(keys)?),
        }
    }

    /// Close the streamer.
    pub async fn close(&mut self) {
        match &mut self.inner {
            StreamerInner::Embedded(s) => s.close(),
        }
    }
}

enum IteratorInner {
    Embedded(crate::framer::Iterator),
}

/// An iterator from [`Client::open_iterator`].
pub struct ClientIterator {
    inner: IteratorInner,
}

impl std::fmt::Debug for ClientIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIterator").finish_non_exhaustive()
    }
}

impl ClientIterator {
    /// See [`crate::framer::Iterator::seek_first`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_first(&mut self) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_first(),
        }
    }

    /// See [`crate::framer::Iterator::seek_last`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_last(&mut self) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_last(),
        }
    }

    /// See [`crate::framer::Iterator::seek_ge`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_ge(&mut self, t: TimeStamp) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_ge(t),
        }
    }

    /// See [`crate::framer::Iterator::seek_le`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_le(&mut self, t: TimeStamp) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_le(t),
        }
    }

    /// See [`crate::framer::Iterator::next`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn next(&mut self, span: IterSpan) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.next(span),
        }
    }

    /// See [`crate::framer::Iterator::prev`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn prev(&mut self, span: IterSpan) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.prev(span),
        }
    }

    /// The frame read by the last `next`/`prev`.
    pub fn value(&self) -> &Frame {
        match &self.inner {
            IteratorInner::Embedded(i) => i.value(),
        }
    }

    /// Take the frame read by the last `next`/`prev`.
    pub fn take_value(&mut self) -> Frame {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.take_value(),
        }
    }
}
