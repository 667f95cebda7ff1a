//! Streamers: the receiving end of the relay.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::hub::{Queued, Relay, Subscriber};
use super::sync::{self, Fault};
use crate::channel::ChannelKey;
use crate::telem::Frame;

/// What happens to a streamer whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LagPolicy {
    /// Drop the oldest frames and report how many with [`StreamError::Lagged`] (default).
    #[default]
    Notify,
    /// Close the streamer with [`StreamError::Disconnected`].
    Disconnect,
}

/// How to open a streamer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamerConfig {
    /// Channels to receive.
    pub channels: Vec<ChannelKey>,
    /// Queue capacity in frames (default 1024).
    #[serde(default = "default_cap")]
    pub capacity: usize,
    /// What to do when the queue is full.
    #[serde(default)]
    pub lag_policy: LagPolicy,
    /// Keep every n-th sample of each channel (1 = all).
    #[serde(default = "one")]
    pub decimate: u32,
    /// Deliver at most this many frames per second, merging the ones in between (0 = no
    /// limit).
    #[serde(default)]
    pub throttle_hz: f64,
    /// Busy-wait up to this many microseconds for a frame before parking the receiving
    /// thread (0 = park at once, the default). Applies to the blocking receives
    /// ([`Streamer::recv`], [`Streamer::recv_timeout`]) in the process holding the
    /// streamer; async receives and a remote node ignore it. Parking costs a wake-up
    /// across CPUs on every frame, which on a virtual machine has a tail of tens of
    /// microseconds; spinning keeps one core busy instead. Set it above the frame period
    /// for a control loop that owns a core. At most [`StreamerConfig::MAX_SPIN_US`].
    #[serde(default)]
    pub spin_us: u64,
}

fn default_cap() -> usize {
    1024
}

fn one() -> u32 {
    1
}

impl StreamerConfig {
    /// Longest busy-wait accepted for [`StreamerConfig::spin_us`] (one second): a
    /// receiver expecting longer gaps should park.
    pub const MAX_SPIN_US: u64 = 1_000_000;

    /// Stream `channels` with default settings.
    pub fn new(channels: Vec<ChannelKey>) -> StreamerConfig {
        StreamerConfig { channels, capacity: default_cap(), lag_policy: LagPolicy::Notify, decimate: 1, throttle_hz: 0.0, spin_us: 0 }
    }
}

/// Busy-wait until `done()` holds or `until` passes; true if `done()` did. The clock is
/// read every 64 polls (a poll here is a few ns, a clock read ~20 ns).
pub(crate) fn spin_until(until: Instant, mut done: impl FnMut() -> bool) -> bool {
    let mut polls = 0u32;
    while !done() {
        sync::spin_loop();
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(64) && sync::now() >= until {
            return false;
        }
    }
    true
}

/// Why a receive returned no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum StreamError {
    /// The streamer fell behind and `dropped` frames were lost; later receives continue
    /// with the newest frames.
    #[error("streamer fell behind and lost {dropped} frames; receive faster, enlarge its capacity, or decimate/throttle")]
    Lagged {
        /// Frames lost.
        dropped: u64,
    },
    /// The streamer fell behind and was disconnected (lag policy `Disconnect`).
    #[error("streamer fell behind (lost {dropped} frames) and was disconnected; open a new streamer")]
    Disconnected {
        /// Frames lost.
        dropped: u64,
    },
    /// The streamer or the engine was closed.
    #[error("streamer is closed")]
    Closed,
}

impl StreamError {
    /// Stable code, see [`crate::Error::code`].
    pub fn code(&self) -> &'static str {
        match self {
            StreamError::Lagged { .. } => "stream.lagged",
            StreamError::Disconnected { .. } => "stream.disconnected",
            StreamError::Closed => "stream.closed",
        }
    }

    /// Every code of this enum.
    pub const CODES: &[crate::codes::CodeInfo] = &[
        crate::codes::CodeInfo::new("stream.lagged", "the streamer fell behind and lost frames; later receives continue with the newest"),
        crate::codes::CodeInfo::new("stream.disconnected", "the streamer fell behind and was disconnected"),
        crate::codes::CodeInfo::new("stream.closed", "the streamer or the engine was closed"),
    ];
}

/// Calls `apply` exactly once with a first frame for channels a streamer starts receiving
/// (the control state; `None` if none of them has one). When there is a state, `apply` runs
/// while that state cannot change, so subscribing inside it misses no change and sees none
/// twice.
pub(crate) type SnapshotHook = std::sync::Arc<dyn Fn(&[ChannelKey], &mut dyn FnMut(Option<Frame>)) + Send + Sync>;

/// A live subscription to channels. See the [relay docs](crate::relay).
///
/// # Examples
///
/// ```
/// # use telemetron::{Engine, channel::NewChannel, framer::WriterConfig, relay::StreamerConfig, telem::*};
/// # let dir = tempfile::tempdir().unwrap();
/// # let engine = Engine::open(dir.path()).unwrap();
/// let cmd = engine.create_channel(NewChannel::virtual_("valve_cmd", DataType::U8)).unwrap();
/// let mut s = engine.open_streamer(StreamerConfig::new(vec![cmd.key])).unwrap();
/// let mut w = engine.open_writer(WriterConfig::new(TimeStamp::now(), vec![cmd.key])).unwrap();
/// w.write(&Frame::new().with(cmd.key, Series::from_vec(vec![1u8]))).unwrap();
/// let f = s.recv_timeout(std::time::Duration::from_secs(5)).unwrap().unwrap();
/// assert_eq!(f.get(cmd.key).next().unwrap().as_slice::<u8>().unwrap(), &[1]);
/// ```
pub struct Streamer {
    relay: std::sync::Arc<Relay>,
    hook: Option<SnapshotHook>,
    sub: sync::Arc<Subscriber>,
    channels: Vec<ChannelKey>,
    decimate: usize,
    counters: HashMap<ChannelKey, usize>,
    period: Option<Duration>,
    held: Option<Frame>,
    last_emit: Option<Instant>,
    spin: Duration,
    closed: bool,
}

impl Streamer {
    /// A streamer over `sub`, which was subscribed with its first frames (the state
    /// snapshot) already queued; `hook` provides them for channels added later.
    pub(crate) fn new(
        relay: std::sync::Arc<Relay>,
        sub: sync::Arc<Subscriber>,
        cfg: &StreamerConfig,
        hook: Option<SnapshotHook>,
    ) -> Streamer {
        let period = (cfg.throttle_hz > 0.0 && cfg.throttle_hz.is_finite()).then(|| Duration::from_secs_f64(1.0 / cfg.throttle_hz));
        Streamer {
            relay,
            hook,
            sub,
            channels: cfg.channels.clone(),
            decimate: cfg.decimate.max(1) as usize,
            counters: HashMap::new(),
            period,
            held: None,
            last_emit: None,
            spin: Duration::from_micros(cfg.spin_us.min(StreamerConfig::MAX_SPIN_US)),
            closed: false,
        }
    }

    /// The channels this streamer receives.
    pub fn channels(&self) -> &[ChannelKey] {
        &self.channels
    }

    /// Change the channels this streamer receives; takes effect for the next frame
    /// published. Newly added channels with a state (the control channel) first deliver
    /// that state.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if the streamer is closed.
    pub fn update_channels(&mut self, keys: Vec<ChannelKey>) -> Result<(), StreamError> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        let added: Vec<ChannelKey> = keys.iter().copied().filter(|k| !self.channels.contains(k)).collect();
        let (relay, sub) = (&self.relay, &self.sub);
        let mut updated = false;
        // Demand and state change together: no transfer falls between them.
        let mut apply = |state: Option<Frame>| {
            updated = relay.update(sub.id, &keys);
            if let (true, Some(f)) = (updated, state) {
                relay.push_state(sub, f);
            }
        };
        match &self.hook {
            Some(h) => h(&added, &mut apply),
            None => apply(None),
        }
        if !updated {
            return Err(StreamError::Closed);
        }
        self.channels = keys;
        Ok(())
    }

    /// Take the next queued frame, or a lag/close notice. The frame is taken out of its
    /// queue entry after the queue's lock is released.
    fn pop(&mut self) -> Result<Option<Frame>, StreamError> {
        Ok(self.pop_queued()?.map(Queued::into_frame))
    }

    fn pop_queued(&mut self) -> Result<Option<Queued>, StreamError> {
        let mut q = self.sub.queue.lock();
        if q.disconnected {
            let dropped = std::mem::take(&mut q.lagged);
            q.closed = true;
            drop(q);
            self.closed = true;
            self.relay.unsubscribe(self.sub.id);
            return Err(if dropped > 0 { StreamError::Disconnected { dropped } } else { StreamError::Closed });
        }
        if q.lagged > 0 {
            return Err(StreamError::Lagged { dropped: std::mem::take(&mut q.lagged) });
        }
        match q.frames.pop_front() {
            Some(f) => Ok(Some(f)),
            None if q.closed => Err(StreamError::Closed),
            None => Ok(None),
        }
    }

    fn reduce(&mut self, f: Frame) -> Frame {
        if self.decimate <= 1 {
            return f;
        }
        let mut out = Frame::with_capacity(f.len());
        for (k, s) in f.iter() {
            let c = self.counters.entry(k).or_insert(0);
            let first = (self.decimate - *c % self.decimate) % self.decimate;
            *c += s.len();
            let d = s.take_every(first, self.decimate);
            if !d.is_empty() {
                out.push(k, d);
            }
        }
        out
    }

    /// One step without waiting: a frame ready for the caller, if any. `now` is the
    /// caller's clock reading, if it has one; the clock is read here only when throttling
    /// needs it (an unthrottled receive never reads it).
    fn step(&mut self, now: Option<Instant>) -> Result<Option<Frame>, StreamError> {
        let mut clock = now;
        let mut now = || *clock.get_or_insert_with(sync::now);
        loop {
            let f = match self.pop() {
                Ok(Some(f)) => self.reduce(f),
                Ok(None) => break,
                Err(StreamError::Closed) if self.held.is_some() => return Ok(self.held.take()),
                Err(e) => return Err(e),
            };
            let Some(period) = self.period else { return Ok(Some(f)) };
            match &mut self.held {
                Some(h) => h.extend(f),
                None => self.held = Some(f),
            }
            if self.last_emit.is_none_or(|t| now().duration_since(t) >= period) {
                break;
            }
        }
        if let (Some(period), Some(_)) = (self.period, &self.held) {
            let now = now();
            if self.last_emit.is_none_or(|t| now.duration_since(t) >= period) {
                self.last_emit = Some(now);
                return Ok(self.held.take());
            }
        }
        Ok(None)
    }

    /// When the next throttled emission is due.
    fn throttle_due(&self) -> Option<Instant> {
        match (self.period, &self.held, self.last_emit) {
            (Some(p), Some(_), Some(t)) => Some(t + p),
            _ => None,
        }
    }

    /// Receive without waiting: `Ok(None)` if nothing is ready.
    ///
    /// # Errors
    /// [`StreamError`] for a lag notice or a closed streamer.
    pub fn try_recv(&mut self) -> Result<Option<Frame>, StreamError> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.step(None)
    }

    /// Wait up to `timeout` for a frame: `Ok(None)` on timeout.
    ///
    /// # Errors
    /// [`StreamError::Lagged`] once after frames were lost (then frames continue);
    /// [`StreamError::Disconnected`] or [`StreamError::Closed`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>, StreamError> {
        let start = sync::now();
        let deadline = start + timeout;
        let spin_until = start + self.spin;
        loop {
            if self.closed {
                return Err(StreamError::Closed);
            }
            // Read before looking at the queue: a push after this bumps it.
            let mut seen = self.sub.events.load(Ordering::Acquire);
            let now = sync::now();
            if let Some(f) = self.step(Some(now))? {
                return Ok(Some(f));
            }
            if self.sub.faulty(Fault::ReadEventsLate) {
                seen = self.sub.events.load(Ordering::Acquire);
            }
            let wake = self.throttle_due().map_or(deadline, |t| t.min(deadline));
            if now >= deadline {
                return Ok(None);
            }
            if now < spin_until {
                self.spin_while_quiet(seen, spin_until.min(wake));
                continue;
            }
            let mut q = self.sub.queue.lock();
            if q.frames.is_empty() && !q.closed && !q.disconnected && q.lagged == 0 {
                self.sub.waiting.store(true, Ordering::Release);
                self.sub.cv.wait_until(&mut q, wake);
                self.sub.waiting.store(false, Ordering::Release);
            }
        }
    }

    /// Busy-wait until the subscriber changes after `seen` or `until` passes. Bounded, so
    /// the parking path after it (which re-checks the queue under its lock) stays the only
    /// place a receiver sleeps.
    fn spin_while_quiet(&self, seen: u64, until: Instant) {
        spin_until(until, || self.sub.events.load(Ordering::Acquire) != seen);
    }

    /// Wait for the next frame.
    ///
    /// # Errors
    /// As [`Streamer::recv_timeout`].
    pub fn recv(&mut self) -> Result<Frame, StreamError> {
        loop {
            if let Some(f) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(f);
            }
        }
    }

    /// Wait for the next frame without blocking a thread (for async runtimes).
    ///
    /// # Errors
    /// As [`Streamer::recv_timeout`].
    pub async fn next(&mut self) -> Result<Frame, StreamError> {
        loop {
            if self.closed {
                return Err(StreamError::Closed);
            }
            if let Some(f) = self.step(None)? {
                return Ok(f);
            }
            let notified = self.sub.notify.notified();
            match self.throttle_due() {
                Some(t) => {
                    let _ = tokio::time::timeout_at(t.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Stop receiving and release this streamer's demand. Idempotent.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.relay.unsubscribe(self.sub.id);
        }
    }
}

impl std::fmt::Debug for Streamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamer").field("id", &self.sub.id).field("channels", &self.channels).finish_non_exhaustive()
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.close();
    }
}
