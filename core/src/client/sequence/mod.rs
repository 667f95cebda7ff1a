//! Control sequences: command channels under an authority, react to sensor values, and
//! leave a record of every command. The one implementation the Python and Node SDKs
//! translate (`client.control.acquire(...)`).
//!
//! A [`Sequence`] is a writer on its command channels (at the sequence's authority), a
//! streamer on the channels it reads plus the control-state channel (followed on a
//! background thread), and, unless turned off, a writer on its **command record**.
//!
//! ## Commands take effect or fail
//! [`Sequence::set`] writes each value with a fresh timestamp on its channel's index and
//! waits until the write is applied (on a remote node too). If control moved and the
//! command was not written, `set` fails with `control.lost` ([`ControlError::Lost`]) naming
//! the channels, whatever `raise_on_lost` says: a command is never dropped silently.
//!
//! ## Losing control while running
//! Transfers on the control-state channel tell the sequence when a higher authority takes
//! one of its channels. The `on_lost` hook is called with the names (from the background
//! thread), and with `raise_on_lost` the next `set`, wait, sleep or tick fails with
//! `control.lost` (once per loss).
//!
//! ## Waiting
//! Conditions are the caller's functions of the latest values; [`Wait`] holds the rules
//! (until, while, remains true for) and timeouts. [`Sequence::wait_blocking`] evaluates a
//! condition now and after every change of the values; [`Sequence::changed`] is the async
//! form the Node SDK drives. A channel without a value yet makes a condition false in the
//! SDKs (not an error).
//!
//! ## Loops and sleeps
//! [`Ticker`] is a fixed-rate loop that holds its period (sleep in the kernel, spin the
//! last [`DEFAULT_SPIN`]) and reports lateness and overruns; [`Sequence::tick_blocking`] and
//! [`Sequence::sleep_blocking`] also stop on a loss of control.
//!
//! ## Abort: a safe state
//! `safe` values (`valve = 0`) are written by [`Sequence::abort`] to the channels the
//! sequence still controls, then it releases. The SDKs call it when the sequence's body
//! raises (including `control.lost`); a normal exit calls [`Sequence::release`].
//!
//! ## The command record
//! Every command (and every safe-state write) is kept in five channels named after the
//! sequence, `<name>/commands/time` (index), `/channel` (string: the channel's name),
//! `/value` (f64; NaN for a non-numeric value), `/authority` (u8) and `/outcome` (string:
//! `ok`, or the error code, e.g. `control.lost`). Read them like any channel to audit a run.
//! They are created on first use; two sequences of the same name cannot record at once
//! (the second `acquire` fails with `invalid_argument`).

mod follow;
mod record;
mod ticker;
mod wait;

use follow::{Live, Shared};
use record::{Command, Recorder};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Client, ClientStreamer, ClientWriter};
use crate::channel::{Channel, ChannelKey, ChannelRef};
use crate::control::{Authority, Subject};
use crate::error::{Error, Result};
use crate::framer::WriterConfig;
use crate::relay::{LagPolicy, StreamerConfig};
use crate::telem::{Frame, Series, TimeStamp};

pub use ticker::{DEFAULT_SPIN, LoopStats, Tick, Ticker, sleep_until};
pub use wait::{Until, Wait};

/// Called with the names of channels a sequence lost (from its background thread).
pub type LostHook = Arc<dyn Fn(&[String]) + Send + Sync>;

/// The default authority of a sequence.
pub const DEFAULT_AUTHORITY: Authority = 200;

/// How often blocking waits wake to run the caller's `interrupt` check (Ctrl-C in Python).
const INTERRUPT_EVERY: Duration = Duration::from_millis(100);

/// What [`Client::acquire`] starts.
#[derive(Clone)]
pub struct SequenceConfig {
    /// Shown in control state, and names the command record.
    pub name: String,
    /// Channels to command (their indexes are added).
    pub write: Vec<ChannelRef>,
    /// Channels whose latest values the sequence follows.
    pub read: Vec<ChannelRef>,
    /// One authority for every write channel, or one per write channel (in order).
    pub authorities: Vec<Authority>,
    /// Fail the next call with `control.lost` after a loss (default true).
    pub raise_on_lost: bool,
    /// Told of every loss.
    pub on_lost: Option<LostHook>,
    /// Values [`Sequence::abort`] writes (a safe state).
    pub safe: Vec<(ChannelRef, Series)>,
    /// Keep the command record (default true).
    pub record: bool,
}

impl std::fmt::Debug for SequenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceConfig")
            .field("name", &self.name)
            .field("write", &self.write)
            .field("read", &self.read)
            .field("authorities", &self.authorities)
            .field("raise_on_lost", &self.raise_on_lost)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl SequenceConfig {
    /// A sequence named `name` at [`DEFAULT_AUTHORITY`] that raises on loss and records.
    pub fn new(name: impl Into<String>) -> SequenceConfig {
        SequenceConfig {
            name: name.into(),
            write: Vec::new(),
            read: Vec::new(),
            authorities: vec![DEFAULT_AUTHORITY],
            raise_on_lost: true,
            on_lost: None,
            safe: Vec::new(),
            record: true,
        }
    }
}

/// A running control sequence (see the module docs). Dropping it without
/// [`Sequence::release`] stops its background thread and aborts its writers (control
/// passes on; nothing uncommitted of the record is kept).
pub struct Sequence {
    client: Client,
    shared: Arc<Shared>,
    read: Vec<Channel>,
    by_name: HashMap<String, ChannelKey>,
    by_key: HashMap<ChannelKey, Channel>,
    writer: tokio::sync::Mutex<Option<ClientWriter>>,
    recorder: tokio::sync::Mutex<Option<Recorder>>,
    safe: Mutex<Vec<(ChannelKey, Series)>>,
    authorities: Mutex<HashMap<ChannelKey, Authority>>,
    last_ts: Mutex<HashMap<ChannelKey, i64>>,
    reader: Mutex<Option<std::thread::JoinHandle<ClientStreamer>>>,
}

impl std::fmt::Debug for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequence")
            .field("name", &self.shared.name)
            .field("write", &self.shared.write.iter().map(|c| &c.name).collect::<Vec<_>>())
            .field("read", &self.read.iter().map(|c| &c.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Start a control sequence: open a writer on `config.write` at its authority, follow
    /// `config.read` and control transfers, and open the command record.
    ///
    /// # Errors
    /// Unknown channels, authorities that do not match the write channels, a record
    /// already in use by a running sequence of the same name, or a transport error.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use telemetron::channel::NewChannel;
    /// use telemetron::client::SequenceConfig;
    /// use telemetron::telem::*;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let client = telemetron::open(dir.path()).unwrap();
    /// client.create_channels(vec![NewChannel::index("t"), NewChannel::data("valve", DataType::U8, "t")], false).await.unwrap();
    /// let mut config = SequenceConfig::new("press");
    /// config.write = vec!["valve".into()];
    /// let seq = client.acquire(config).await.unwrap();
    /// seq.set(vec![("valve".into(), Series::from_vec(vec![1u8]))]).await.unwrap();
    /// assert_eq!(seq.value(&"valve".into()).unwrap().value_f64(0), Some(1.0));
    /// seq.release().await.unwrap();
    /// # });
    /// ```
    pub async fn acquire(&self, config: SequenceConfig) -> Result<Sequence> {
        Sequence::start(self.clone(), config).await
    }
}

impl Sequence {
    async fn start(client: Client, config: SequenceConfig) -> Result<Sequence> {
        let write = if config.write.is_empty() { Vec::new() } else { client.channels(&config.write).await? };
        let read = if config.read.is_empty() { Vec::new() } else { client.channels(&config.read).await? };
        let authorities = match config.authorities.len() {
            1 => vec![config.authorities[0]; write.len()],
            n if n == write.len() => config.authorities.clone(),
            n => {
                return Err(Error::InvalidArgument {
                    reason: format!("{n} authorities for {} write channels: give one authority, or one per write channel", write.len()),
                });
            }
        };
        let subject_key = uuid::Uuid::new_v4().to_string();
        let writer = if write.is_empty() {
            None
        } else {
            let mut wc = WriterConfig::new(TimeStamp::now(), write.iter().map(|c| c.key).collect());
            wc.authorities = authorities.clone();
            wc.subject = Subject { key: subject_key.clone(), name: config.name.clone(), group: 0 };
            wc.name = config.name.clone();
            Some(client.open_writer(wc).await?)
        };
        let mut by_key: HashMap<ChannelKey, Channel> = HashMap::new();
        let mut by_name = HashMap::new();
        for c in write.iter().chain(&read) {
            by_name.insert(c.name.clone(), c.key);
            by_key.insert(c.key, c.clone());
        }
        let safe = safe_keys(&config.safe, &write, &by_name)?;
        let recorder = if config.record { Some(Recorder::open(&client, &config.name).await?) } else { None };

        let mut live = Live::default();
        for c in &write {
            live.held.insert(c.key, writer.as_ref().is_some_and(|w| w.has_control(c.key)));
        }
        for c in read.iter().filter(|c| !c.is_virtual()) {
            let f = client.read_latest(&[c.key], 1).await?;
            if let Some(s) = f.get(c.key).last().filter(|s| !s.is_empty()) {
                live.values.insert(c.key, s.clone());
            }
        }
        let control_key = client.control_channel().await?;
        let mut keys: Vec<ChannelKey> = read.iter().map(|c| c.key).collect();
        keys.push(control_key);
        let mut sc = StreamerConfig::new(keys);
        sc.capacity = 1024;
        sc.lag_policy = LagPolicy::Notify;
        let streamer = client.open_streamer(sc).await?;
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            subject_key,
            write: write.clone(),
            control_key,
            raise_on_lost: config.raise_on_lost,
            on_lost: config.on_lost.clone(),
            live: Mutex::new(live),
            cond: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
        });
        let follower = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name(format!("telemetron-seq-{}", config.name.chars().take(16).collect::<String>()))
            .spawn(move || follower.follow(streamer))
            .map_err(|e| Error::InvalidArgument { reason: format!("could not start the sequence's thread: {e}") })?;
        let authorities = write.iter().map(|c| c.key).zip(authorities).collect();
        Ok(Sequence {
            client,
            shared,
            read,
            by_name,
            by_key,
            writer: tokio::sync::Mutex::new(writer),
            recorder: tokio::sync::Mutex::new(recorder),
            safe: Mutex::new(safe),
            authorities: Mutex::new(authorities),
            last_ts: Mutex::new(HashMap::new()),
            reader: Mutex::new(Some(reader)),
        })
    }

    /// The sequence's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The subject key identifying the sequence in control state.
    pub fn subject_key(&self) -> &str {
        &self.shared.subject_key
    }

    /// The channels it commands (as given, without added indexes).
    pub fn write_channels(&self) -> &[Channel] {
        &self.shared.write
    }

    /// The channels it reads.
    pub fn read_channels(&self) -> &[Channel] {
        &self.read
    }

    /// The client the sequence runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A write or read channel of the sequence.
    pub fn channel(&self, r: &ChannelRef) -> Option<&Channel> {
        let key = match r {
            ChannelRef::Key(k) => *k,
            ChannelRef::Name(n) => *self.by_name.get(n)?,
        };
        self.by_key.get(&key)
    }

    /// The latest value of a channel (the last sample received of a read channel, the last
    /// command of a write channel), as a one-sample series; `None` before the first.
    pub fn value(&self, r: &ChannelRef) -> Option<Series> {
        let key = self.channel(r)?.key;
        self.shared.live.lock().values.get(&key).cloned()
    }

    /// Every latest value, by channel.
    pub fn values(&self) -> Vec<(Channel, Series)> {
        let live = self.shared.live.lock();
        live.values.iter().filter_map(|(k, s)| Some((self.by_key.get(k)?.clone(), s.clone()))).collect()
    }

    /// True if the sequence controls `key` now (both the channel and its index).
    pub fn has_control(&self, key: ChannelKey) -> bool {
        if let Ok(w) = self.writer.try_lock() {
            return w.as_ref().is_some_and(|w| w.has_control(key));
        }
        self.shared.live.lock().held.get(&key).copied().unwrap_or(false)
    }

    /// True if the sequence controls every write channel (false without any).
    pub fn has_control_all(&self) -> bool {
        !self.shared.write.is_empty() && self.shared.write.iter().all(|c| self.has_control(c.key))
    }

    /// Fail with the pending error (a loss with `raise_on_lost`, a stream failure), once;
    /// `engine.closed` after release.
    ///
    /// # Errors
    /// As described.
    pub fn check(&self) -> Result<()> {
        let mut live = self.shared.live.lock();
        if live.released {
            return Err(self.closed());
        }
        match live.pending.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn closed(&self) -> Error {
        Error::Closed { what: format!("control sequence {:?}", self.shared.name) }
    }

    /// Command channels: each value is written with a fresh timestamp on its channel's
    /// index, and the call returns once the write is applied.
    ///
    /// # Errors
    /// `control.lost` if any command was not written (control moved); the pending error
    /// ([`Sequence::check`]); `invalid_argument` for a channel that is not a write channel;
    /// a write error (wrong type, ...).
    pub async fn set(&self, values: Vec<(ChannelRef, Series)>) -> Result<()> {
        self.check()?;
        let mut cmds = Vec::with_capacity(values.len());
        for (r, s) in values {
            let c =
                self.channel(&r).filter(|c| self.shared.write.iter().any(|w| w.key == c.key)).ok_or_else(|| Error::InvalidArgument {
                    reason: format!(
                        "{r:?} is not one of the write channels of control sequence {:?}; acquire it with write=[...]",
                        self.shared.name
                    ),
                })?;
            cmds.push((c.key, s));
        }
        self.command(cmds).await
    }

    /// Write commands (already resolved to write channels), update values, record.
    async fn command(&self, cmds: Vec<(ChannelKey, Series)>) -> Result<()> {
        if cmds.is_empty() {
            return Ok(());
        }
        let now = TimeStamp::now().0;
        let mut frame = Frame::with_capacity(cmds.len() * 2);
        let mut time = now;
        {
            let mut last = self.last_ts.lock();
            let mut stamped: Vec<ChannelKey> = Vec::new();
            for (k, s) in &cmds {
                frame.push(*k, s.clone());
                let Some(c) = self.by_key.get(k) else { continue };
                if let Some(i) = c.index_key().filter(|&i| i != c.key && !c.is_virtual() && !stamped.contains(&i)) {
                    let t = now.max(last.get(&i).map_or(i64::MIN, |l| l.saturating_add(1)));
                    last.insert(i, t);
                    time = t;
                    stamped.push(i);
                    frame.push(i, Series::timestamps(vec![t]));
                }
            }
        }
        let result = {
            let mut guard = self.writer.lock().await;
            let w = guard.as_mut().ok_or_else(|| {
                if self.shared.write.is_empty() {
                    Error::InvalidArgument { reason: format!("control sequence {:?} has no write channels", self.shared.name) }
                } else {
                    self.closed()
                }
            })?;
            w.write_confirmed(&frame).await
        };
        let not_written = match &result {
            Ok(report) => report.not_written(),
            Err(_) => Vec::new(),
        };
        let dropped: Vec<ChannelKey> = cmds
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| {
                not_written.contains(k) || self.by_key.get(k).and_then(Channel::index_key).is_some_and(|i| not_written.contains(&i))
            })
            .collect();
        let names = |keys: &[ChannelKey]| keys.iter().filter_map(|k| self.by_key.get(k)).map(|c| c.name.clone()).collect::<Vec<_>>();
        let rows: Vec<Command> = {
            let auth = self.authorities.lock();
            cmds.iter()
                .map(|(k, s)| Command {
                    time,
                    channel: self.by_key.get(k).map(|c| c.name.clone()).unwrap_or_default(),
                    value: s.value_f64(s.len().saturating_sub(1)).unwrap_or(f64::NAN),
                    authority: auth.get(k).copied().unwrap_or(0),
                    outcome: match &result {
                        Err(e) => e.code().to_string(),
                        Ok(_) if dropped.contains(k) => "control.lost".to_string(),
                        Ok(_) => "ok".to_string(),
                    },
                })
                .collect()
        };
        if let Some(r) = self.recorder.lock().await.as_mut() {
            r.record(&rows).await;
        }
        result?;
        {
            let mut live = self.shared.live.lock();
            for (k, s) in &cmds {
                if !dropped.contains(k)
                    && !s.is_empty()
                    && let Ok(last) = s.slice(s.len() - 1..s.len())
                {
                    live.values.insert(*k, last);
                }
            }
            for k in &dropped {
                live.held.insert(*k, false);
            }
            live.version += 1;
        }
        self.shared.wake();
        if dropped.is_empty() {
            return Ok(());
        }
        let lost = names(&dropped);
        if let Some(hook) = &self.shared.on_lost {
            hook(&lost);
        }
        Err(self.shared.lost_error(lost))
    }

    /// Change authorities: `(None, a)` for every write channel, `(Some(channel), a)` for one.
    /// Raising can take control back; lowering hands it to the next highest.
    ///
    /// # Errors
    /// A channel that is not a write channel, or a transport error.
    pub async fn set_authority(&self, changes: Vec<(Option<ChannelRef>, Authority)>) -> Result<()> {
        let mut keyed: Vec<(ChannelKey, Authority)> = Vec::new();
        for (r, a) in changes {
            match r {
                None => keyed.extend(self.shared.write.iter().map(|c| (c.key, a))),
                Some(r) => {
                    let c = self.channel(&r).filter(|c| self.shared.write.iter().any(|w| w.key == c.key)).ok_or_else(|| {
                        Error::InvalidArgument {
                            reason: format!("{r:?} is not one of the write channels of control sequence {:?}", self.shared.name),
                        }
                    })?;
                    keyed.push((c.key, a));
                }
            }
        }
        let mut guard = self.writer.lock().await;
        let Some(w) = guard.as_mut() else { return Ok(()) };
        // Lowering an authority may hand a channel over: mark it before the transfer can
        // arrive, so the follower does not read it as a loss.
        let lowered: Vec<ChannelKey> = {
            let auth = self.authorities.lock();
            // Only what it holds can be handed over; a mark on anything else would never be
            // consumed and would hide a later loss.
            let lowered = |k: &ChannelKey, a: &Authority| w.has_control(*k) && auth.get(k).is_none_or(|cur| a < cur);
            let channel = |k: &ChannelKey| self.shared.write.iter().find(|c| c.key == *k);
            keyed
                .iter()
                .filter(|(k, a)| lowered(k, a))
                .flat_map(|(k, _)| std::iter::once(*k).chain(channel(k).and_then(|c| c.index_key()).filter(|i| i != k)))
                .collect()
        };
        self.shared.live.lock().yielded.extend(lowered.iter().copied());
        let result = w.set_authorities(&keyed).await;
        let mut auth = self.authorities.lock();
        let mut live = self.shared.live.lock();
        if result.is_ok() {
            for (k, a) in keyed {
                auth.insert(k, a);
            }
        }
        for c in &self.shared.write {
            live.held.insert(c.key, w.has_control(c.key));
        }
        // A lowering that kept the channel hands nothing over: no transfer will consume its
        // mark, and a later takeover must read as the loss it is.
        for k in &lowered {
            if result.is_err() || w.has_control(*k) {
                live.yielded.remove(k);
            }
        }
        result
    }

    /// Replace the safe state [`Sequence::abort`] writes (each value for one of the write
    /// channels). The Node SDK sets it here, converting values once it knows the
    /// channels' data types.
    ///
    /// # Errors
    /// `invalid_argument` for a channel that is not a write channel, or a value of the
    /// wrong data type.
    pub fn set_safe(&self, values: Vec<(ChannelRef, Series)>) -> Result<()> {
        let safe = safe_keys(&values, &self.shared.write, &self.by_name)?;
        for (k, s) in &safe {
            let dt = self.by_key.get(k).map(|c| c.data_type);
            if dt != Some(s.data_type()) || s.len() != 1 {
                return Err(Error::InvalidArgument {
                    reason: format!("safe value for channel {k}: give one {} sample", dt.map_or("?", |d| d.name())),
                });
            }
        }
        *self.safe.lock() = safe;
        Ok(())
    }

    /// The current value version and the pending error: what a wait starts from.
    ///
    /// # Errors
    /// As [`Sequence::check`].
    pub fn observe(&self, wait: &mut Wait) -> Result<()> {
        let mut live = self.shared.live.lock();
        if live.released {
            return Err(self.closed());
        }
        if let Some(e) = live.pending.take() {
            return Err(e);
        }
        wait.seen = live.version;
        Ok(())
    }

    /// Wait (async) until the values change after the last [`Sequence::observe`], or until
    /// the wait's wake time. Callers loop: observe, evaluate, [`Wait::check`], `changed`.
    pub async fn changed(&self, wait: &Wait) {
        let notified = self.shared.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let live = self.shared.live.lock();
            if live.version != wait.seen || live.pending.is_some() || live.released {
                return;
            }
        }
        match wait.wake_at() {
            Some(at) => {
                let _ = tokio::time::timeout_at(tokio::time::Instant::from_std(at), notified).await;
            }
            None => notified.await,
        }
    }

    /// Wait, blocking this thread: evaluate `cond` now and after every change of the
    /// values, until `wait` is answered. `interrupt` runs at least every 100 ms (Python
    /// checks Ctrl-C there) and stops the wait by failing.
    ///
    /// # Errors
    /// The pending error (a loss with `raise_on_lost`), `engine.closed` after release, or
    /// what `cond` or `interrupt` return.
    pub fn wait_blocking(
        &self,
        wait: &mut Wait,
        mut cond: impl FnMut() -> Result<bool>,
        mut interrupt: impl FnMut() -> Result<()>,
    ) -> Result<bool> {
        loop {
            self.observe(wait)?;
            if let Some(answer) = wait.check(cond()?) {
                return Ok(answer);
            }
            interrupt()?;
            let until = wait.wake_at().map_or(Instant::now() + INTERRUPT_EVERY, |w| w.min(Instant::now() + INTERRUPT_EVERY));
            let mut live = self.shared.live.lock();
            while live.version == wait.seen && live.pending.is_none() && !live.released && Instant::now() < until {
                self.shared.cond.wait_until(&mut live, until);
            }
        }
    }

    /// Sleep `duration` precisely (kernel sleep, then a short spin), failing early on the
    /// pending error (a loss with `raise_on_lost`) or when `interrupt` fails.
    ///
    /// # Errors
    /// As [`Sequence::check`], or what `interrupt` returns.
    pub fn sleep_blocking(&self, duration: Duration, mut interrupt: impl FnMut() -> Result<()>) -> Result<()> {
        let deadline = Instant::now() + duration;
        loop {
            self.check()?;
            let now = Instant::now();
            if deadline.saturating_duration_since(now) <= DEFAULT_SPIN * 2 {
                break;
            }
            interrupt()?;
            let until = (deadline - DEFAULT_SPIN * 2).min(now + INTERRUPT_EVERY);
            let mut live = self.shared.live.lock();
            while live.pending.is_none() && !live.released && Instant::now() < until {
                self.shared.cond.wait_until(&mut live, until);
            }
        }
        sleep_until(deadline, DEFAULT_SPIN);
        self.check()
    }

    /// [`Sequence::sleep_blocking`] for async callers (no spin: as precise as the runtime's
    /// timer, about a millisecond).
    ///
    /// # Errors
    /// As [`Sequence::check`].
    pub async fn sleep(&self, duration: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.check()?;
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.check();
            }
        }
    }

    /// The next tick of `ticker`, or `None` once its count or duration is reached
    /// ([`Ticker::done`]); fails early on the pending error. `interrupt` runs at least
    /// every 100 ms while waiting.
    ///
    /// # Errors
    /// As [`Sequence::check`], or what `interrupt` returns.
    pub fn tick_blocking(&self, ticker: &mut Ticker, mut interrupt: impl FnMut() -> Result<()>) -> Result<Option<Tick>> {
        loop {
            self.check()?;
            if ticker.done() {
                return Ok(None);
            }
            let started = Instant::now();
            let pending = || {
                let live = self.shared.live.lock();
                live.pending.is_some() || live.released || started.elapsed() >= INTERRUPT_EVERY
            };
            if let Some(t) = ticker.tick_or(Duration::from_millis(10), pending) {
                return Ok(Some(t));
            }
            interrupt()?;
        }
    }

    /// Put outputs in the safe state, then release: the `safe` values are written to the
    /// write channels the sequence still controls (recorded like any command). Errors of
    /// the safe-state write are logged, not returned: the caller is usually handling
    /// another error already.
    ///
    /// # Errors
    /// As [`Sequence::release`].
    pub async fn abort(&self) -> Result<()> {
        if !self.shared.live.lock().released {
            let held: Vec<(ChannelKey, Series)> = self.safe.lock().iter().filter(|(k, _)| self.has_control(*k)).cloned().collect();
            if let Err(e) = self.command(held).await {
                tracing::warn!(key = format!("client/sequence/{}", self.shared.name).as_str(), error = %e, "could not put every output in its safe state");
            }
        }
        self.release().await
    }

    /// Release control: stop following, close the writer (control passes to the next
    /// highest writer) and the command record. Idempotent.
    ///
    /// # Errors
    /// A failure to commit the last commands or records.
    pub async fn release(&self) -> Result<()> {
        {
            let mut live = self.shared.live.lock();
            if live.released {
                return Ok(());
            }
            live.released = true;
        }
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        let reader = self.reader.lock().take();
        let mut first: Result<()> = Ok(());
        if let Some(w) = self.writer.lock().await.take() {
            first = w.close().await.map(|_| ());
        }
        if let Some(r) = self.recorder.lock().await.take() {
            let closed = r.writer.close().await.map(|_| ());
            first = first.and(closed);
        }
        if let Some(h) = reader {
            let joined = tokio::task::spawn_blocking(move || h.join()).await;
            if let Ok(Ok(mut streamer)) = joined {
                streamer.close().await;
            }
        }
        first
    }
}

/// The write channels' keys for safe values given by reference.
fn safe_keys(
    values: &[(ChannelRef, Series)],
    write: &[Channel],
    by_name: &HashMap<String, ChannelKey>,
) -> Result<Vec<(ChannelKey, Series)>> {
    let mut safe = Vec::with_capacity(values.len());
    for (r, s) in values {
        let key = match r {
            ChannelRef::Key(k) => Some(*k),
            ChannelRef::Name(n) => by_name.get(n).copied(),
        }
        .filter(|k| write.iter().any(|c| c.key == *k));
        let Some(key) = key else {
            return Err(Error::InvalidArgument {
                reason: format!("safe value for {r:?}: it is not one of this sequence's write channels"),
            });
        };
        safe.push((key, s.clone()));
    }
    Ok(safe)
}

impl Drop for Sequence {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}
