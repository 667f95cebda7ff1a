//! The relay hub: demand table, per-subscriber bounded queues, publish.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;

use serde::Serialize;
use tokio::sync::Notify;

use super::streamer::LagPolicy;
use super::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Fault, Mutex, RwLock};
use crate::channel::ChannelKey;
use crate::telem::{Frame, Series};

/// Counters of the relay, shared by every streamer.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    disconnected: AtomicU64,
}

/// A copy of the relay counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayMetricsSnapshot {
    /// Frames published by writers (with at least one subscriber).
    pub published_frames: u64,
    /// Frames enqueued to streamers.
    pub delivered_frames: u64,
    /// Frames dropped from full queues (reported to the streamer as lag).
    pub dropped_frames: u64,
    /// Streamers disconnected for falling behind.
    pub disconnected_streamers: u64,
    /// Streamers open now.
    pub active_streamers: u64,
}

#[derive(Debug, Default)]
pub(crate) struct QueueState {
    pub frames: VecDeque<Frame>,
    /// Frames dropped since the streamer last heard about it.
    pub lagged: u64,
    pub disconnected: bool,
    pub closed: bool,
}

/// One streamer's end of the relay.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub id: u64,
    pub cap: usize,
    pub policy: LagPolicy,
    pub queue: Mutex<QueueState>,
    pub cv: Condvar,
    pub notify: Notify,
    pub waiting: AtomicBool,
    /// Bumped after every change a receiver must look at (a push, a lag, a close), so a
    /// spinning receiver polls one shared word instead of taking the queue lock.
    pub events: AtomicU64,
    /// A protocol break for the loom models (see [`Fault`]).
    #[cfg(telemetron_loom)]
    pub fault: Fault,
}

impl Subscriber {
    /// True if the loom model under way breaks the protocol this way; a constant `false`
    /// outside `--cfg telemetron_loom`.
    #[inline(always)]
    pub(crate) fn faulty(&self, fault: Fault) -> bool {
        #[cfg(telemetron_loom)]
        return self.fault == fault && fault != Fault::None;
        #[cfg(not(telemetron_loom))]
        {
            let _ = fault;
            false
        }
    }

    fn push(&self, f: Frame, m: &RelayMetrics) {
        let early = self.faulty(Fault::WakeBeforePush);
        if early {
            self.wake();
        }
        let mut q = self.queue.lock();
        if q.closed || q.disconnected {
            return;
        }
        if q.frames.len() >= self.cap {
            match self.policy {
                LagPolicy::Notify => {
                    q.frames.pop_front();
                    q.lagged += 1;
                    m.dropped.fetch_add(1, Ordering::Relaxed);
                }
                LagPolicy::Disconnect => {
                    q.lagged += q.frames.len() as u64 + 1;
                    q.frames.clear();
                    q.disconnected = true;
                    m.disconnected.fetch_add(1, Ordering::Relaxed);
                    drop(q);
                    self.wake();
                    return;
                }
            }
        }
        q.frames.push_back(f);
        drop(q);
        m.delivered.fetch_add(1, Ordering::Relaxed);
        if !early {
            self.wake();
        }
    }

    pub(crate) fn wake(&self) {
        self.events.fetch_add(1, Ordering::Release);
        if self.waiting.load(Ordering::Acquire) {
            self.cv.notify_one();
        }
        self.notify.notify_one();
    }

    pub(crate) fn close(&self) {
        self.queue.lock().closed = true;
        self.events.fetch_add(1, Ordering::Release);
        self.cv.notify_all();
        self.notify.notify_one();
    }
}

#[derive(Debug, Default)]
struct Table {
    by_channel: HashMap<ChannelKey, Vec<Arc<Subscriber>>>,
    keys: HashMap<u64, Vec<ChannelKey>>,
    subs: HashMap<u64, Arc<Subscriber>>,
}

/// A writer's memo of whether any of its channels is demanded, valid for one generation.
#[derive(Debug, Default)]
pub(crate) struct PublishCache {
    generation: u64,
    demanded: bool,
    valid: bool,
}

/// The relay hub.
#[derive(Debug, Default)]
pub(crate) struct Relay {
    table: RwLock<Table>,
    generation: AtomicU64,
    count: AtomicUsize,
    next_id: AtomicU64,
    closed: AtomicBool,
    pub metrics: RelayMetrics,
    /// A protocol break for the loom models, given to every subscriber.
    #[cfg(telemetron_loom)]
    pub fault: Fault,
}

impl Relay {
    /// Register a subscriber for `keys`, with `initial` frames queued before anything else.
    pub(crate) fn subscribe(&self, keys: &[ChannelKey], cap: usize, policy: LagPolicy, initial: Vec<Frame>) -> Arc<Subscriber> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Arc::new(Subscriber {
            id,
            cap: cap.max(1),
            policy,
            queue: Mutex::new(QueueState { frames: initial.into(), ..QueueState::default() }),
            cv: Condvar::new(),
            notify: Notify::new(),
            waiting: AtomicBool::new(false),
            events: AtomicU64::new(0),
            #[cfg(telemetron_loom)]
            fault: self.fault,
        });
        // Check `closed` under the table lock: `close` sets it and then walks the table
        // under the same lock, so a subscriber is either seen by that walk or sees `closed`.
        let mut t = self.table.write();
        if self.closed.load(Ordering::Acquire) {
            sub.close();
            return sub;
        }
        t.subs.insert(id, sub.clone());
        t.keys.insert(id, Vec::new());
        Self::set_keys(&mut t, id, keys);
        self.count.fetch_add(1, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
        sub
    }

    fn set_keys(t: &mut Table, id: u64, keys: &[ChannelKey]) {
        let Some(sub) = t.subs.get(&id).cloned() else { return };
        let old = t.keys.insert(id, Vec::new()).unwrap_or_default();
        for k in old {
            if let Some(v) = t.by_channel.get_mut(&k) {
                v.retain(|s| s.id != id);
                if v.is_empty() {
                    t.by_channel.remove(&k);
                }
            }
        }
        let mut uniq: Vec<ChannelKey> = keys.to_vec();
        uniq.sort_unstable();
        uniq.dedup();
        for &k in &uniq {
            t.by_channel.entry(k).or_default().push(sub.clone());
        }
        t.keys.insert(id, uniq);
    }

    /// Change a subscriber's channels; returns false if it is gone.
    pub(crate) fn update(&self, id: u64, keys: &[ChannelKey]) -> bool {
        let mut t = self.table.write();
        if !t.subs.contains_key(&id) {
            return false;
        }
        Self::set_keys(&mut t, id, keys);
        self.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Remove a subscriber and release its demand.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut t = self.table.write();
        Self::set_keys(&mut t, id, &[]);
        t.keys.remove(&id);
        if let Some(s) = t.subs.remove(&id) {
            s.close();
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// True if any of `keys` has a subscriber.
    fn any_demanded(&self, keys: &mut dyn Iterator<Item = ChannelKey>) -> bool {
        let t = self.table.read();
        for k in keys {
            if t.by_channel.contains_key(&k) {
                return true;
            }
        }
        false
    }

    /// Publish `frame`, skipping all work when nobody wants any of `writer_keys`.
    pub(crate) fn publish(&self, frame: &Frame, cache: &mut PublishCache, writer_keys: &mut dyn Iterator<Item = ChannelKey>) {
        if self.count.load(Ordering::Acquire) == 0 || frame.is_empty() {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if !cache.valid || cache.generation != generation {
            cache.demanded = self.any_demanded(writer_keys);
            cache.generation = generation;
            cache.valid = true;
        }
        if !cache.demanded {
            return;
        }
        self.publish_now(frame);
    }

    /// Publish `frame` to everyone who wants any of its channels.
    pub(crate) fn publish_now(&self, frame: &Frame) {
        let mut out: Vec<(Arc<Subscriber>, Frame)> = Vec::new();
        {
            let t = self.table.read();
            for (k, s) in frame.iter() {
                let Some(subs) = t.by_channel.get(&k) else { continue };
                for sub in subs {
                    match out.iter_mut().find(|(x, _)| x.id == sub.id) {
                        Some((_, f)) => f.push(k, s.clone()),
                        None => out.push((sub.clone(), Frame::new().with(k, Series::clone(s)))),
                    }
                }
            }
        }
        if out.is_empty() {
            return;
        }
        self.metrics.published.fetch_add(1, Ordering::Relaxed);
        for (sub, f) in out {
            sub.push(f, &self.metrics);
        }
    }

    /// Close every subscriber (engine shutdown).
    pub(crate) fn close(&self) {
        let subs: Vec<Arc<Subscriber>> = {
            let t = self.table.write();
            self.closed.store(true, Ordering::Release);
            t.subs.values().cloned().collect()
        };
        for s in subs {
            s.close();
        }
    }

    pub(crate) fn snapshot(&self) -> RelayMetricsSnapshot {
        RelayMetricsSnapshot {
            published_frames: self.metrics.published.load(Ordering::Relaxed),
            delivered_frames: self.metrics.delivered.load(Ordering::Relaxed),
            dropped_frames: self.metrics.dropped.load(Ordering::Relaxed),
            disconnected_streamers: self.metrics.disconnected.load(Ordering::Relaxed),
            active_streamers: self.count.load(Ordering::Relaxed) as u64,
        }
    }
}
