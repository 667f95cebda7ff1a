//! The relay hub: demand table, per-subscriber bounded queues, publish.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;

use serde::Serialize;
use tokio::sync::Notify;

use super::dispatch::{Job, Shared};
use super::streamer::LagPolicy;
use super::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Fault, Mutex, RwLock};
use crate::channel::ChannelKey;
use crate::telem::Frame;

/// A frame for at most this many streamers is queued to them by the writer itself (each
/// push and wake costs it about 0.2 µs); a frame for more is handed to the dispatcher.
pub(crate) const INLINE_TARGETS: usize = 32;

/// A streamer with at least this many frames waiting gets its own series of a shared
/// frame copied out when it is queued (`Queued::Own`), instead of a reference to the
/// whole frame: a receiver that falls behind then holds at most this many whole frames
/// alive, not a queue's capacity of them (a streamer of one small channel of large
/// frames would otherwise keep every channel's samples of up to 1,024 frames).
const SHARED_DEPTH: usize = 16;

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

/// One streamer's counters (its experiment key is `relay/streamer/<id>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamerMetrics {
    /// The relay's id for it (unique while the engine is open).
    pub id: u64,
    /// Channels it subscribes to.
    pub channels: u64,
    /// Frames waiting in its queue now.
    pub queued: u64,
    /// Frames queued to it since it opened.
    pub delivered: u64,
    /// Frames dropped from its queue because it fell behind.
    pub dropped: u64,
}

/// A frame waiting in a streamer's queue.
#[derive(Debug)]
pub(crate) enum Queued {
    /// A frame for this streamer alone (a control state, a snapshot).
    Own(Frame),
    /// A published frame, one allocation shared by every streamer it was queued to.
    /// Each takes its own series out of it when it receives (on its own thread), so
    /// queuing it costs the publisher two reference counts per streamer and no
    /// allocation.
    Shared {
        frame: std::sync::Arc<Frame>,
        /// The streamer's channels among the writer's, sorted; `None` when `count` is 1
        /// or every series of `frame` (nothing to look up).
        keys: Option<std::sync::Arc<[ChannelKey]>>,
        /// Index in `frame` of the first series it wants.
        first: u32,
        /// How many series of `frame` it wants.
        count: u32,
    },
}

impl Queued {
    /// True for a reference to a shared frame of which the streamer takes only part.
    fn is_part(&self) -> bool {
        matches!(self, Queued::Shared { frame, count, .. } if *count as usize != frame.len())
    }

    /// The frame the streamer receives: the series of its channels, in publish order.
    pub(crate) fn into_frame(self) -> Frame {
        match self {
            Queued::Own(f) => f,
            Queued::Shared { frame, keys, first, count } => {
                debug_assert!(count >= 1 && (keys.is_some() || count == 1 || count as usize == frame.len()));
                let count = count as usize;
                if count == frame.len() {
                    // Every series: the last streamer to receive takes the frame itself.
                    return std::sync::Arc::try_unwrap(frame).unwrap_or_else(|f| (*f).clone());
                }
                let (ks, series) = (frame.keys(), frame.series());
                let first = first as usize;
                let mut out = Frame::with_capacity(count);
                let Some(keys) = keys.filter(|_| count > 1) else {
                    out.push(ks[first], series[first].clone());
                    return out;
                };
                for (&k, s) in ks[first..].iter().zip(&series[first..]) {
                    if keys.binary_search(&k).is_ok() {
                        out.push(k, s.clone());
                        if out.len() == count {
                            break;
                        }
                    }
                }
                out
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct QueueState {
    pub frames: VecDeque<Queued>,
    /// Frames dropped since the streamer last heard about it.
    pub lagged: u64,
    /// Frames queued to it since it opened.
    pub delivered: u64,
    /// Frames dropped from its queue since it opened.
    pub dropped: u64,
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

    /// Queue `f` (or count it lost, by the lag policy). Returns whether the subscriber must
    /// be woken: the caller wakes it with [`Subscriber::wake`] once it holds no lock of the
    /// write path, so waking costs the writer nothing while other writers wait.
    pub(super) fn enqueue(&self, mut f: Queued, m: &RelayMetrics) -> bool {
        let early = self.faulty(Fault::WakeBeforePush);
        if early {
            self.wake();
        }
        let mut q = self.queue.lock();
        if q.closed || q.disconnected {
            return false;
        }
        if q.frames.len() >= self.cap {
            match self.policy {
                LagPolicy::Notify => {
                    q.frames.pop_front();
                    Self::count_lost(&mut q, 1, m);
                }
                LagPolicy::Disconnect => {
                    let queued = Self::disconnect(&mut q, m);
                    Self::count_lost(&mut q, queued + 1, m);
                    return true;
                }
            }
        }
        if q.frames.len() >= SHARED_DEPTH && f.is_part() {
            f = Queued::Own(f.into_frame());
        }
        q.frames.push_back(f);
        q.delivered += 1;
        drop(q);
        m.delivered.fetch_add(1, Ordering::Relaxed);
        !early
    }

    /// Count `lost` frames of its channels lost before they reached this relay (a peer tap
    /// fell behind), as its own queue counts the frames it drops: the next receive reports
    /// the lag, or, under [`LagPolicy::Disconnect`], the disconnection. Returns whether the
    /// subscriber must be woken.
    pub(super) fn lose(&self, lost: u64, m: &RelayMetrics) -> bool {
        let mut q = self.queue.lock();
        if q.closed || q.disconnected || lost == 0 {
            return false;
        }
        let lost = match self.policy {
            LagPolicy::Notify => lost,
            LagPolicy::Disconnect => lost + Self::disconnect(&mut q, m),
        };
        Self::count_lost(&mut q, lost, m);
        true
    }

    /// Count `n` frames lost to this subscriber: reported at its next receive.
    fn count_lost(q: &mut QueueState, n: u64, m: &RelayMetrics) {
        q.lagged += n;
        q.dropped += n;
        m.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Disconnect it for falling behind (lag policy `Disconnect`): its queued frames are
    /// dropped. Returns how many.
    fn disconnect(q: &mut QueueState, m: &RelayMetrics) -> u64 {
        let queued = q.frames.len() as u64;
        q.frames.clear();
        q.disconnected = true;
        m.disconnected.fetch_add(1, Ordering::Relaxed);
        queued
    }

    /// Queue `f` whatever the capacity (a state the streamer must not miss); the caller wakes.
    pub(super) fn push_state(&self, f: Frame) {
        self.queue.lock().frames.push_back(Queued::Own(f));
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
pub(super) struct Table {
    by_channel: HashMap<ChannelKey, Vec<Arc<Subscriber>>>,
    keys: HashMap<u64, Vec<ChannelKey>>,
    subs: HashMap<u64, Arc<Subscriber>>,
}

/// Which subscribers want which of a writer's channels. Built when subscriptions change
/// (the relay's generation moves), not per frame, and shared with the dispatcher, so
/// routing a frame costs one lookup per series plus one push per subscriber fed (two
/// reference counts: the frame is shared, see [`Queued::Shared`]).
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Every subscriber that wants at least one of the writer's channels.
    pub(super) targets: Vec<Arc<Subscriber>>,
    /// The writer's channel -> indices into `targets` of the subscribers that want it.
    routes: HashMap<ChannelKey, Vec<usize>>,
    /// Per target, which of the writer's channels it wants, sorted.
    keys: Vec<std::sync::Arc<[ChannelKey]>>,
}

/// Per target of a plan, where its series are in the frame being delivered: the index
/// of the first and how many (scratch space of whoever delivers).
pub(super) type Marks = Vec<(u32, u32)>;

impl Plan {
    fn build(t: &Table, writer_keys: &mut dyn Iterator<Item = ChannelKey>) -> Plan {
        let mut plan = Plan::default();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut wants: Vec<Vec<ChannelKey>> = Vec::new();
        for k in writer_keys {
            // A key given twice (a frame with several series of one channel) is routed
            // once: its route already sends each of its series to every subscriber.
            if plan.routes.contains_key(&k) {
                continue;
            }
            let Some(subs) = t.by_channel.get(&k) else { continue };
            let route = plan.routes.entry(k).or_default();
            for sub in subs {
                let i = *index.entry(sub.id).or_insert_with(|| {
                    plan.targets.push(sub.clone());
                    wants.push(Vec::new());
                    plan.targets.len() - 1
                });
                route.push(i);
                wants[i].push(k);
            }
        }
        plan.keys = wants
            .into_iter()
            .map(|mut k| {
                k.sort_unstable();
                k.into()
            })
            .collect();
        plan
    }

    /// Queue `frame` to the targets that want any of its series; the ones to wake go to
    /// `to_wake`. `marks` is scratch space. Returns false when no series of `frame` is
    /// wanted.
    pub(super) fn deliver(
        &self,
        frame: &std::sync::Arc<Frame>,
        marks: &mut Marks,
        m: &RelayMetrics,
        to_wake: &mut Vec<Arc<Subscriber>>,
    ) -> bool {
        marks.clear();
        marks.resize(self.targets.len(), (0, 0));
        let mut any = false;
        for (j, (k, _)) in frame.iter().enumerate() {
            let Some(route) = self.routes.get(&k) else { continue };
            for &i in route {
                let (first, count) = &mut marks[i];
                if *count == 0 {
                    *first = j as u32;
                }
                *count += 1;
                any = true;
            }
        }
        if any {
            m.published.fetch_add(1, Ordering::Relaxed);
            for ((sub, keys), &(first, count)) in self.targets.iter().zip(&self.keys).zip(marks.iter()) {
                if count > 0 {
                    let keys = (count > 1 && count as usize != frame.len()).then(|| keys.clone());
                    let q = Queued::Shared { frame: frame.clone(), keys, first, count };
                    if sub.enqueue(q, m) {
                        to_wake.push(sub.clone());
                    }
                }
            }
        }
        any
    }
}

/// A writer's routing state: its plan and scratch space, kept across its writes.
#[derive(Debug, Default)]
pub(crate) struct PublishCache {
    generation: u64,
    plan: Option<std::sync::Arc<Plan>>,
    /// Scratch space for [`Plan::deliver`].
    marks: Marks,
    /// Subscribers queued to since the last [`Relay::wake`].
    to_wake: Vec<Arc<Subscriber>>,
    /// A frame was handed to the dispatcher since the last [`Relay::wake`].
    handed_off: bool,
}

/// The routing a stream of frames from outside the write path keeps across its frames (a
/// cluster node's peer tap, [`crate::Engine::relay_mirrored`]): as a writer's
/// [`PublishCache`], the plan of which streamers want which of its channels is built once
/// and rebuilt only when subscriptions change, or when a frame brings a channel the route
/// has not carried before.
#[derive(Debug, Default)]
pub struct MirrorRoute {
    /// Every channel the route has carried, sorted: what its plan is built for.
    keys: Vec<ChannelKey>,
    cache: PublishCache,
}

/// The relay hub.
#[derive(Debug, Default)]
pub(crate) struct Relay {
    table: RwLock<Table>,
    generation: AtomicU64,
    count: AtomicUsize,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// See [`INLINE_TARGETS`] (`None`: that default).
    inline_targets: Option<usize>,
    /// The counters and the dispatcher, shared with the dispatcher's thread.
    shared: std::sync::Arc<Shared>,
    /// A protocol break for the loom models, given to every subscriber.
    #[cfg(telemetron_loom)]
    pub fault: Fault,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.dispatch.stop();
    }
}

impl Relay {
    /// A relay whose writers queue a frame to at most `inline_targets` streamers themselves
    /// (`None`: [`INLINE_TARGETS`]).
    pub(crate) fn new(inline_targets: Option<usize>) -> Relay {
        let mut relay = Relay::default();
        relay.inline_targets = inline_targets;
        relay
    }

    fn inline_targets(&self) -> usize {
        self.inline_targets.unwrap_or(INLINE_TARGETS)
    }

    /// Register a subscriber for `keys`, with `initial` frames queued before anything else.
    pub(crate) fn subscribe(&self, keys: &[ChannelKey], cap: usize, policy: LagPolicy, initial: Vec<Frame>) -> Arc<Subscriber> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Arc::new(Subscriber {
            id,
            cap: cap.max(1),
            policy,
            queue: Mutex::new(QueueState { frames: initial.into_iter().map(Queued::Own).collect(), ..QueueState::default() }),
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

    /// The generation of the demand table (it moves whenever a subscription changes) and
    /// the channels some subscriber wants, in key order.
    pub(crate) fn demand(&self) -> (u64, Vec<ChannelKey>) {
        let t = self.table.read();
        let mut keys: Vec<ChannelKey> = t.by_channel.keys().copied().collect();
        keys.sort_unstable();
        (self.generation.load(Ordering::Acquire), keys)
    }

    /// True when any streamer is open (a writer may skip preparing a frame for the relay
    /// when this is false; [`Relay::publish`] checks it again).
    pub(crate) fn wanted(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Queue `frame` for everyone who wants any of its channels, routing by the writer's
    /// plan in `cache` (rebuilt only when subscriptions changed), and skipping all work when
    /// nobody wants any of `writer_keys`. Nobody is woken yet: call [`Relay::wake`] with the
    /// same cache once the write path's locks are released. Frames are queued here, under
    /// those locks, so every streamer sees frames in the order storage has them.
    ///
    /// A frame for more than [`INLINE_TARGETS`] streamers (or the number the engine was
    /// opened with) is not queued to them here: it is
    /// handed to the dispatcher (one push), whose thread queues it to each and wakes them,
    /// so a writer's cost does not grow with the number of streamers it feeds. While any
    /// handed-off frame is not yet delivered, every frame goes the same way, so each
    /// streamer still receives frames in publish order.
    pub(crate) fn publish(&self, frame: Cow<'_, Frame>, cache: &mut PublishCache, writer_keys: &mut dyn Iterator<Item = ChannelKey>) {
        if self.count.load(Ordering::Acquire) == 0 || frame.is_empty() {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        let plan = match &cache.plan {
            Some(p) if cache.generation == generation => p.clone(),
            _ => {
                let p = std::sync::Arc::new(Plan::build(&self.table.read(), writer_keys));
                cache.plan = Some(p.clone());
                cache.generation = generation;
                p
            }
        };
        if plan.targets.is_empty() {
            return;
        }
        let dispatch = &self.shared.dispatch;
        // One copy of a borrowed frame (its series are reference counted), shared by every
        // streamer it goes to; a frame the writer built for the relay is moved in.
        let frame = std::sync::Arc::new(frame.into_owned());
        if plan.targets.len() <= self.inline_targets() && !dispatch.busy() {
            plan.deliver(&frame, &mut cache.marks, &self.shared.metrics, &mut cache.to_wake);
        } else {
            dispatch.push(&self.shared, Job::Routed { frame, plan });
            cache.handed_off = true;
        }
    }

    /// Wake the subscribers the last publishes with `cache` queued to, and the dispatcher
    /// if they handed it frames.
    pub(crate) fn wake(&self, cache: &mut PublishCache) {
        for sub in cache.to_wake.drain(..) {
            sub.wake();
        }
        if std::mem::take(&mut cache.handed_off) {
            self.shared.dispatch.kick(&self.shared);
        }
    }

    /// Queue `frame` to `sub` alone, whatever its capacity (a state it must not miss, see
    /// [`crate::relay::Streamer::update_channels`]), after every frame already handed to
    /// the dispatcher, and wake it.
    pub(crate) fn push_state(&self, sub: &Arc<Subscriber>, frame: Frame) {
        let dispatch = &self.shared.dispatch;
        if dispatch.busy() {
            dispatch.push(&self.shared, Job::State { sub: sub.clone(), frame });
            dispatch.kick(&self.shared);
        } else {
            sub.push_state(frame);
            sub.wake();
        }
    }

    /// Publish `frame` to everyone who wants any of its channels, and wake them (for
    /// frames off the write path: control transfers).
    pub(crate) fn publish_now(&self, frame: &Frame) {
        let mut cache = PublishCache::default();
        self.publish(Cow::Borrowed(frame), &mut cache, &mut frame.iter().map(|(k, _)| k));
        self.wake(&mut cache);
    }

    /// Publish `frame`, one of a stream of frames from outside the write path, routed by
    /// `route`, and wake its streamers.
    pub(crate) fn publish_routed(&self, frame: &Frame, route: &mut MirrorRoute) {
        let mut grew = false;
        for (k, _) in frame.iter() {
            if let Err(i) = route.keys.binary_search(&k) {
                route.keys.insert(i, k);
                grew = true;
            }
        }
        if grew {
            route.cache = PublishCache::default();
        }
        let MirrorRoute { keys, cache } = route;
        self.publish(Cow::Borrowed(frame), cache, &mut keys.iter().copied());
        self.wake(cache);
    }

    /// Tell every streamer of any of `keys` that `lost` frames were lost upstream (see
    /// [`Subscriber::lose`]), and wake it. A streamer of several of them hears it once.
    pub(crate) fn report_lost(&self, keys: &[ChannelKey], lost: u64) {
        let subs: Vec<Arc<Subscriber>> = {
            let t = self.table.read();
            let mut seen = std::collections::HashSet::new();
            keys.iter().filter_map(|k| t.by_channel.get(k)).flatten().filter(|s| seen.insert(s.id)).cloned().collect()
        };
        for sub in subs {
            if sub.lose(lost, &self.shared.metrics) {
                sub.wake();
            }
        }
    }

    /// Close every subscriber (engine shutdown), after queueing to them every frame
    /// already handed to the dispatcher: receivers get every frame published before the
    /// close, then [`crate::relay::StreamError::Closed`].
    pub(crate) fn close(&self) {
        self.shared.dispatch.drain(&self.shared.metrics);
        let subs: Vec<Arc<Subscriber>> = {
            let t = self.table.write();
            self.closed.store(true, Ordering::Release);
            t.subs.values().cloned().collect()
        };
        for s in subs {
            s.close();
        }
    }

    /// Each open streamer's counters (locks each queue briefly; for metrics collection).
    pub(crate) fn streamers(&self) -> Vec<StreamerMetrics> {
        // The list first, then the table lock released: a subscribe waiting behind a long
        // walk would hold up publishers rebuilding their routing plans.
        let subs: Vec<(Arc<Subscriber>, u64)> = {
            let t = self.table.read();
            t.subs.values().map(|s| (s.clone(), t.keys.get(&s.id).map_or(0, Vec::len) as u64)).collect()
        };
        let mut out: Vec<StreamerMetrics> = subs
            .iter()
            .map(|(sub, channels)| {
                let q = sub.queue.lock();
                StreamerMetrics {
                    id: sub.id,
                    channels: *channels,
                    queued: q.frames.len() as u64,
                    delivered: q.delivered,
                    dropped: q.dropped,
                }
            })
            .collect();
        out.sort_unstable_by_key(|s| s.id);
        out
    }

    pub(crate) fn snapshot(&self) -> RelayMetricsSnapshot {
        let m = &self.shared.metrics;
        RelayMetricsSnapshot {
            published_frames: m.published.load(Ordering::Relaxed),
            delivered_frames: m.delivered.load(Ordering::Relaxed),
            dropped_frames: m.dropped.load(Ordering::Relaxed),
            disconnected_streamers: m.disconnected.load(Ordering::Relaxed),
            active_streamers: self.count.load(Ordering::Relaxed) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telem::Series;

    #[test]
    fn a_frame_with_several_series_of_one_channel_is_delivered_once() {
        let relay = Relay::default();
        let sub = relay.subscribe(&[1, 2], 8, LagPolicy::Notify, Vec::new());
        let f = Frame::new()
            .with(1, Series::from_vec(vec![1.0f64]))
            .with(2, Series::from_vec(vec![2u8]))
            .with(1, Series::from_vec(vec![3.0f64]));
        relay.publish_now(&f);
        let got = sub.queue.lock().frames.pop_front().expect("a frame").into_frame();
        assert_eq!(got, f, "each series once, in order");
    }

    fn take(sub: &Subscriber) -> Option<Frame> {
        sub.queue.lock().frames.pop_front().map(Queued::into_frame)
    }

    #[test]
    fn a_streamer_that_falls_behind_holds_only_its_own_series_of_later_frames() {
        let relay = Relay::new(Some(100));
        let small = relay.subscribe(&[1], 64, LagPolicy::Notify, Vec::new());
        let big = Series::from_vec(vec![0.0f64; 100_000]);
        for i in 0..(SHARED_DEPTH + 4) {
            let f = Frame::new().with(1, Series::from_vec(vec![i as u8])).with(2, big.clone());
            relay.publish_now(&f);
        }
        let q = small.queue.lock();
        let shared = q.frames.iter().filter(|e| matches!(e, Queued::Shared { .. })).count();
        assert_eq!(shared, SHARED_DEPTH, "whole frames are held only for the first {SHARED_DEPTH} waiting");
        assert_eq!(q.frames.len(), SHARED_DEPTH + 4);
        drop(q);
        for i in 0..(SHARED_DEPTH + 4) {
            assert_eq!(take(&small), Some(Frame::new().with(1, Series::from_vec(vec![i as u8]))), "frame {i}");
        }
    }

    #[test]
    fn each_streamer_receives_its_own_series_of_a_shared_frame() {
        // Inline (the writer queues) and dispatched (the dispatcher's thread queues).
        for inline in [Some(100), Some(0)] {
            let relay = Relay::new(inline);
            let only_2 = relay.subscribe(&[2], 8, LagPolicy::Notify, Vec::new());
            let one_and_3 = relay.subscribe(&[3, 1], 8, LagPolicy::Notify, Vec::new());
            let all = relay.subscribe(&[1, 2, 3], 8, LagPolicy::Notify, Vec::new());
            let none = relay.subscribe(&[4], 8, LagPolicy::Notify, Vec::new());
            let (a, b, c, d) =
                (Series::from_vec(vec![1.0f64]), Series::from_vec(vec![2u8]), Series::from_vec(vec![3.0f64]), Series::from_vec(vec![4i32]));
            let f = Frame::new().with(1, a.clone()).with(2, b.clone()).with(1, c.clone()).with(3, d.clone());
            relay.publish_now(&f);
            relay.shared.dispatch.drain(&relay.shared.metrics);
            assert_eq!(take(&only_2), Some(Frame::new().with(2, b.clone())), "inline {inline:?}");
            assert_eq!(take(&one_and_3), Some(Frame::new().with(1, a.clone()).with(1, c.clone()).with(3, d.clone())), "inline {inline:?}");
            assert_eq!(take(&all), Some(f.clone()), "inline {inline:?}");
            assert_eq!(take(&none), None, "inline {inline:?}");
            assert_eq!(relay.snapshot().delivered_frames, 3, "one queue entry per streamer fed");
        }
    }
}
