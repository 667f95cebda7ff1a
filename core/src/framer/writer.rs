//! Writers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Hub;
use crate::channel::{Channel, ChannelKey};
use crate::control::{ABSOLUTE, Authority, ControlError, Gate, Subject};
use crate::error::Result;
use crate::relay::PublishCache;
use crate::storage::Tap;
use crate::storage::{Durability, StorageWriter, WriteError, WriterGroupSpec, rules};
use crate::telem::{Frame, TimeRange, TimeStamp};

/// What a writer does with its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterMode {
    /// Store and stream live (default).
    #[default]
    PersistStream,
    /// Store only.
    Persist,
    /// Stream only; nothing is stored.
    Stream,
}

impl WriterMode {
    /// True if frames are stored.
    pub fn persists(self) -> bool {
        matches!(self, WriterMode::PersistStream | WriterMode::Persist)
    }

    /// True if frames are streamed.
    pub fn streams(self) -> bool {
        matches!(self, WriterMode::PersistStream | WriterMode::Stream)
    }
}

/// How to open a writer.
///
/// # Examples
///
/// ```
/// use telemetron::framer::WriterConfig;
/// use telemetron::telem::TimeStamp;
///
/// let cfg = WriterConfig::new(TimeStamp(0), vec![1, 2]).auto_commit(false).authority(200);
/// assert!(!cfg.auto_commit);
/// assert_eq!(cfg.authorities, vec![200]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterConfig {
    /// The earliest timestamp the writer may write.
    pub start: TimeStamp,
    /// Optional end of the writer's time region (exclusive). A back-fill writer that sets
    /// it never contends for control with a live writer after that time.
    #[serde(default)]
    pub end: Option<TimeStamp>,
    /// Channels to write. The index of each data channel is added if missing.
    pub channels: Vec<ChannelKey>,
    /// Control authority: one value for all channels, or one per channel (default 255).
    #[serde(default = "default_authorities")]
    pub authorities: Vec<Authority>,
    /// Who is writing (for control state); a random key is generated if empty.
    #[serde(default)]
    pub subject: Subject,
    /// Fail writes that include channels this writer does not control, instead of
    /// dropping those channels and reporting them.
    #[serde(default)]
    pub err_on_unauthorized: bool,
    /// Persist and/or stream.
    #[serde(default)]
    pub mode: WriterMode,
    /// Durability for this writer; `None` uses the engine's default.
    #[serde(default)]
    pub durability: Option<Durability>,
    /// Commit automatically after writes (default `true`).
    #[serde(default = "default_true")]
    pub auto_commit: bool,
    /// With auto-commit, commit at most this often (zero: after every write).
    #[serde(default)]
    pub auto_commit_interval: Duration,
    /// A name for logs and control state (used as the subject name if that is empty).
    #[serde(default)]
    pub name: String,
}

fn default_true() -> bool {
    true
}

fn default_authorities() -> Vec<Authority> {
    vec![ABSOLUTE]
}

impl WriterConfig {
    /// A persist+stream writer with authority 255 and auto-commit after every write.
    pub fn new(start: TimeStamp, channels: Vec<ChannelKey>) -> WriterConfig {
        WriterConfig {
            start,
            end: None,
            channels,
            authorities: default_authorities(),
            subject: Subject::default(),
            err_on_unauthorized: false,
            mode: WriterMode::default(),
            durability: None,
            auto_commit: true,
            auto_commit_interval: Duration::ZERO,
            name: String::new(),
        }
    }

    /// Set the mode.
    #[must_use]
    pub fn mode(mut self, mode: WriterMode) -> WriterConfig {
        self.mode = mode;
        self
    }

    /// Set the durability.
    #[must_use]
    pub fn durability(mut self, d: Durability) -> WriterConfig {
        self.durability = Some(d);
        self
    }

    /// Turn auto-commit on or off.
    #[must_use]
    pub fn auto_commit(mut self, on: bool) -> WriterConfig {
        self.auto_commit = on;
        self
    }

    /// Auto-commit at most every `every`.
    #[must_use]
    pub fn auto_commit_interval(mut self, every: Duration) -> WriterConfig {
        self.auto_commit_interval = every;
        self
    }

    /// Name the writer.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> WriterConfig {
        self.name = name.into();
        self
    }

    /// One authority for every channel.
    #[must_use]
    pub fn authority(mut self, a: Authority) -> WriterConfig {
        self.authorities = vec![a];
        self
    }

    /// Bound the writer's time region.
    #[must_use]
    pub fn end(mut self, end: TimeStamp) -> WriterConfig {
        self.end = Some(end);
        self
    }

    /// Fail writes to channels this writer does not control.
    #[must_use]
    pub fn err_on_unauthorized(mut self, on: bool) -> WriterConfig {
        self.err_on_unauthorized = on;
        self
    }
}

/// What a successful write did.
///
/// On the embedded backend a write is gated when it is made, so `unauthorized` is the whole
/// story and `dropped` is always empty. A remote writer sends its frames without waiting
/// (pipelined): it refuses at once the channels it already knows it does not control
/// (`unauthorized`), but control can move on the node while a frame is on its way. The node
/// then writes the frame without those channels and says so; the writer puts that in
/// `dropped` of the next report it returns (from `write`, or from `confirm`, which waits
/// until the node has applied every write sent before it). Nothing is dropped without a
/// report saying so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Channels of the frame that were not written because another writer controls them
    /// (a data channel is also not written when its index is not controlled).
    pub unauthorized: Vec<ChannelKey>,
    /// Writes (this one or earlier ones) that the node applied without some channels
    /// because control moved while they were in flight, oldest first. Remote only.
    pub dropped: Vec<DroppedWrite>,
}

/// A write that a node applied without some of its channels (see [`WriteReport`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedWrite {
    /// Which write: the n-th frame this writer sent to the node, counting from 1 (writes
    /// that sent nothing, because every channel was refused at once, are not counted).
    pub write: u64,
    /// The channels of that write that were not written.
    pub channels: Vec<ChannelKey>,
}

impl WriteReport {
    /// True if every channel was written: nothing refused, nothing dropped in flight.
    pub fn all_written(&self) -> bool {
        self.unauthorized.is_empty() && self.dropped.is_empty()
    }

    /// Every channel this report says was not written (refused or dropped), each once, in
    /// the order reported.
    pub fn not_written(&self) -> Vec<ChannelKey> {
        let mut out: Vec<ChannelKey> = Vec::new();
        for &k in self.unauthorized.iter().chain(self.dropped.iter().flat_map(|d| d.channels.iter())) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }
}

/// An open writer. See the [module docs](crate::framer).
///
/// Dropping a writer without [`Writer::close`] discards what was not committed and releases
/// its control.
#[derive(Debug)]
pub struct Writer {
    /// Its key in the experiment tree, `framer/writer/<id>`, carried by its log events and
    /// spans; its storage part is `storage/writer/<id>`.
    key: Box<str>,
    hub: Arc<Hub>,
    storage: Option<StorageWriter>,
    channels: Vec<Arc<Channel>>,
    by_key: HashMap<ChannelKey, Arc<Channel>>,
    gates: HashMap<ChannelKey, Gate>,
    /// Authorities asked for explicitly (channels listed in the config).
    requested: HashMap<ChannelKey, Authority>,
    config: WriterConfig,
    last_commit: Instant,
    end: TimeStamp,
    cache: PublishCache,
    auth_epoch: Option<u64>,
    /// Channels whose gate was authorized at `auth_epoch`.
    authorized: Vec<ChannelKey>,
    all_authorized: bool,
    closed: bool,
}

impl Writer {
    pub(crate) fn open(
        hub: &Arc<Hub>,
        channels: Vec<Arc<Channel>>,
        mut config: WriterConfig,
        default_durability: Durability,
    ) -> Result<Writer> {
        if channels.is_empty() {
            return Err(WriteError::InvalidConfig { reason: "a writer needs at least one channel".into() }.into());
        }
        let listed = config.channels.len();
        let requested: HashMap<ChannelKey, Authority> = match config.authorities.len() {
            0 => config.channels.iter().map(|&k| (k, ABSOLUTE)).collect(),
            1 => config.channels.iter().map(|&k| (k, config.authorities[0])).collect(),
            n if n == listed => config.channels.iter().copied().zip(config.authorities.iter().copied()).collect(),
            n => {
                return Err(WriteError::InvalidConfig {
                    reason: format!("{n} authorities for {listed} channels; give one authority, or one per channel"),
                }
                .into());
            }
        };
        if config.subject.key.is_empty() {
            config.subject.key = uuid::Uuid::new_v4().to_string();
        }
        if config.subject.name.is_empty() {
            config.subject.name = if config.name.is_empty() { "writer".to_string() } else { config.name.clone() };
        }
        let storage = &hub.storage;
        let store = |key: ChannelKey| storage.store(key).ok_or(crate::channel::ChannelError::KeyNotFound { key });
        let mut groups: Vec<WriterGroupSpec> = Vec::new();
        if config.mode.persists() {
            for g in rules::index_groups(channels.iter().map(|c| c.as_ref())) {
                let index = store(g.index)?;
                let data = g.data.into_iter().map(store).collect::<Result<Vec<_>, _>>()?;
                groups.push(WriterGroupSpec { index, data });
            }
        }
        let end = config.end.unwrap_or(TimeStamp::MAX);
        let id = hub.writers.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let sw = if groups.is_empty() {
            None
        } else {
            Some(StorageWriter::open(id, storage.clone(), groups, config.start, end, config.durability.unwrap_or(default_durability))?)
        };
        let by_key = channels.iter().map(|c| (c.key, c.clone())).collect();
        let mut w = Writer {
            key: format!("framer/writer/{id}").into(),
            hub: hub.clone(),
            storage: sw,
            end: config.start,
            channels,
            by_key,
            gates: HashMap::new(),
            requested,
            config,
            last_commit: Instant::now(),
            cache: PublishCache::default(),
            auth_epoch: None,
            authorized: Vec::new(),
            all_authorized: false,
            closed: false,
        };
        let effective = w.effective_authorities();
        let region = TimeRange::new(w.config.start, end);
        // All of the writer's gates at once, so a data channel and its index settle alike.
        let specs: Vec<_> = w.channels.iter().map(|ch| (ch.key, ch.concurrency, effective[&ch.key])).collect();
        let (gates, _) = hub.arbiter.open_many(&specs, region, &w.config.subject, &|t| hub.publish_transfers(t));
        for gate in gates {
            w.gates.insert(gate.channel, gate);
        }
        if w.config.err_on_unauthorized {
            let denied: Vec<String> = w.gates.values().filter(|g| !g.authorized()).map(|g| w.by_key[&g.channel].name.clone()).collect();
            if !denied.is_empty() {
                hub.arbiter.refused(denied.len());
                w.close_gates();
                return Err(ControlError::Unauthorized { channels: denied }.into());
            }
        }
        tracing::info!(key = &*w.key, name = %w.config.name, channels = w.channels.len(), start = %w.config.start, mode = ?w.config.mode, "writer opened");
        Ok(w)
    }

    /// Authority per channel: as requested; an index follows the highest of its data
    /// channels in this writer (and its own request, if any).
    fn effective_authorities(&self) -> HashMap<ChannelKey, Authority> {
        let mut out: HashMap<ChannelKey, Authority> = HashMap::new();
        for ch in &self.channels {
            let own = self.requested.get(&ch.key).copied();
            if ch.is_index() {
                let from_data = self
                    .channels
                    .iter()
                    .filter(|c| c.index_key() == Some(ch.key) && c.key != ch.key)
                    .filter_map(|c| self.requested.get(&c.key).copied())
                    .max();
                out.insert(ch.key, own.into_iter().chain(from_data).max().unwrap_or(ABSOLUTE));
            } else {
                out.insert(ch.key, own.unwrap_or(ABSOLUTE));
            }
        }
        out
    }

    /// The writer's channels (data channels' indexes included).
    pub fn channels(&self) -> &[Arc<Channel>] {
        &self.channels
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    /// True if this writer may write `key` now (and, for a data channel, its index).
    pub fn has_control(&self, key: ChannelKey) -> bool {
        let Some(ch) = self.by_key.get(&key) else { return false };
        let own = self.gates.get(&key).is_some_and(Gate::authorized);
        match ch.index_key() {
            Some(i) if i != key => own && self.gates.get(&i).is_some_and(Gate::authorized),
            _ => own,
        }
    }

    /// Channels of `frame` this writer may not write now.
    ///
    /// Decided on one consistent snapshot of the writer's gates, taken under the arbiter's
    /// lock whenever control changed: reading the gates one by one while another writer
    /// takes or hands back control could see the index already handed over but not its
    /// data channel (or the reverse), and write a frame's timestamps without its data or
    /// fail it with a missing index.
    fn unauthorized_in(&mut self, frame: &Frame) -> Vec<ChannelKey> {
        let epoch = self.hub.arbiter.epoch();
        if self.auth_epoch != Some(epoch) {
            let gates = &self.gates;
            let (epoch, authorized) =
                self.hub.arbiter.snapshot(|| gates.values().filter(|g| g.authorized()).map(|g| g.channel).collect::<Vec<_>>());
            self.all_authorized = authorized.len() == self.gates.len();
            self.authorized = authorized;
            self.auth_epoch = Some(epoch);
        }
        if self.all_authorized {
            return Vec::new();
        }
        let mut out = Vec::new();
        for k in frame.unique_keys() {
            let own = self.authorized.contains(&k);
            let ok = match self.by_key.get(&k).and_then(|c| c.index_key()) {
                Some(i) if i != k => own && self.authorized.contains(&i),
                _ => own,
            };
            if !ok {
                out.push(k);
            }
        }
        out
    }

    /// Write a frame. It is validated completely first: if any rule is broken, nothing of
    /// it is stored or streamed and the error names the channel and sample at fault.
    /// Channels this writer does not control are dropped and listed in the report (or the
    /// write fails, with `err_on_unauthorized`).
    ///
    /// # Errors
    /// [`WriteError`] for a broken rule; [`ControlError::Unauthorized`]; a storage error if
    /// buffering had to write out.
    pub fn write(&mut self, frame: &Frame) -> Result<WriteReport> {
        if self.closed {
            return Err(crate::Error::Closed { what: "the writer".into() });
        }
        if self.hub.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(crate::Error::Closed { what: "the engine".into() });
        }
        let span = tracing::trace_span!("writer.write", key = &*self.key, series = frame.len());
        let _e = span.enter();
        let mut has_virtual = false;
        for (k, s) in frame.iter() {
            let ch = self.by_key.get(&k).ok_or(WriteError::NotInWriter { channel: k })?;
            if !self.config.mode.persists() || ch.is_virtual() {
                has_virtual |= ch.is_virtual();
                rules::check_type(&ch.name, ch.data_type, s.data_type())?;
            }
        }
        let unauthorized = self.unauthorized_in(frame);
        if !unauthorized.is_empty() {
            self.hub.arbiter.refused(unauthorized.len());
        }
        if !unauthorized.is_empty() && self.config.err_on_unauthorized {
            return Err(ControlError::Unauthorized { channels: unauthorized.iter().map(|k| self.by_key[k].name.clone()).collect() }.into());
        }
        let filtered;
        let frame: &Frame = if unauthorized.is_empty() {
            frame
        } else {
            filtered = frame.iter().filter(|(k, _)| !unauthorized.contains(k)).map(|(k, s)| (k, s.clone())).collect::<Frame>();
            &filtered
        };
        let streams = self.config.mode.streams();
        let hub = self.hub.clone();
        let cache = &mut self.cache;
        let channels = &self.channels;
        let by_key = &self.by_key;
        let stored = |k: &ChannelKey| by_key.get(k).is_some_and(|c| !c.is_virtual());
        // Queued for streamers under the region locks (storage order), woken after them.
        // Stored series go out with the alignment and time range storage gives them, so a
        // live stream stitches onto a read without gap or overlap.
        // Stamps are worked out (under the region locks) only while some streamer is open.
        let stamped = streams && hub.relay.wanted();
        let mut tap = |t: Tap| {
            if !streams {
                return;
            }
            match t {
                Tap::Valid(stamps) if stamped => {
                    // The whole frame: virtual channels' series go out with the stored ones.
                    let mut stamps = stamps.iter();
                    let aligned: Frame = frame
                        .iter()
                        .map(|(k, s)| match if stored(&k) { stamps.next() } else { None } {
                            Some(&(a, tr)) => (k, s.clone().with_alignment(a).with_time_range(tr)),
                            None => (k, s.clone()),
                        })
                        .collect();
                    hub.relay.publish(std::borrow::Cow::Owned(aligned), cache, &mut channels.iter().map(|c| c.key));
                }
                // Nobody was streaming when the write began; one who subscribed since still
                // gets the frame (unstamped: this race is the only case without stamps).
                Tap::Valid(_) => hub.relay.publish(std::borrow::Cow::Borrowed(frame), cache, &mut channels.iter().map(|c| c.key)),
                Tap::Released => hub.relay.wake(cache),
            }
        };
        match self.storage.as_mut() {
            Some(sw) if !has_virtual => sw.write(frame, stamped, &mut tap)?,
            Some(sw) => {
                let persisted: Frame = frame.iter().filter(|(k, _)| stored(k)).map(|(k, s)| (k, s.clone())).collect();
                sw.write(&persisted, stamped, &mut tap)?;
            }
            None if streams => {
                hub.relay.publish(std::borrow::Cow::Borrowed(frame), cache, &mut channels.iter().map(|c| c.key));
                hub.relay.wake(cache);
            }
            None => {}
        }
        if self.config.auto_commit && self.last_commit.elapsed() >= self.config.auto_commit_interval {
            self.commit()?;
        }
        Ok(WriteReport { unauthorized, dropped: Vec::new() })
    }

    /// Change this writer's authority on every channel. Raising it can take control;
    /// lowering it can hand control to the next writer. Each transfer is published.
    ///
    /// # Errors
    /// None today; reserved for remote writers.
    pub fn set_authority(&mut self, authority: Authority) -> Result<()> {
        let keys: Vec<ChannelKey> = self.channels.iter().map(|c| c.key).collect();
        self.set_authorities(&keys.iter().map(|&k| (k, authority)).collect::<Vec<_>>())
    }

    /// Change the authority of some channels (an index follows its data channels).
    ///
    /// # Errors
    /// [`ControlError::UnknownChannel`] for a channel the writer does not have.
    pub fn set_authorities(&mut self, changes: &[(ChannelKey, Authority)]) -> Result<()> {
        for (k, _) in changes {
            if !self.by_key.contains_key(k) {
                return Err(ControlError::UnknownChannel { channel: *k }.into());
            }
        }
        for &(k, a) in changes {
            self.requested.insert(k, a);
        }
        let effective = self.effective_authorities();
        // Gates without control are set again even at the same authority: after a control
        // fence that is how a writer asks for control back.
        let mut changed: Vec<(&mut Gate, Authority)> = self
            .gates
            .iter_mut()
            .filter(|(k, g)| effective[*k] != g.authority || !g.authorized())
            .map(|(k, g)| (g, effective[k]))
            .collect();
        // In one step, so a data channel and its index change hands together.
        if !changed.is_empty() {
            let hub = &self.hub;
            hub.arbiter.set_authorities(&mut changed, &|t| hub.publish_transfers(t));
        }
        self.auth_epoch = None;
        Ok(())
    }

    /// Commit everything written so far and return the committed end (last timestamp + 1).
    ///
    /// # Errors
    /// A storage error; the uncommitted samples stay buffered and a later commit retries.
    pub fn commit(&mut self) -> Result<TimeStamp> {
        self.last_commit = Instant::now();
        if let Some(sw) = self.storage.as_mut() {
            self.end = sw.commit()?;
        }
        Ok(self.end)
    }

    fn close_gates(&mut self) {
        let gates: Vec<Gate> = self.gates.drain().map(|(_, g)| g).collect();
        self.hub.arbiter.close_many(&gates, &|t| self.hub.publish_transfers(t));
    }

    /// Commit and close; returns the committed end. Control passes to the next writer.
    ///
    /// # Errors
    /// As [`Writer::commit`]; on error the writer is still closed and uncommitted samples
    /// are discarded.
    pub fn close(mut self) -> Result<TimeStamp> {
        let r = self.commit();
        self.shutdown(true);
        tracing::info!(key = &*self.key, name = %self.config.name, end = %self.end, "writer closed");
        r
    }

    /// Close without committing: buffered samples are discarded.
    pub fn abort(mut self) {
        self.shutdown(true);
    }

    fn shutdown(&mut self, seal: bool) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(mut sw) = self.storage.take() {
            sw.release(seal);
        }
        self.close_gates();
    }

    /// True if samples are waiting for a commit.
    pub fn has_uncommitted(&self) -> bool {
        self.storage.as_ref().is_some_and(StorageWriter::has_uncommitted)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}
