//! The arbiter: regions of gates per channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelKey, Concurrency};
use crate::telem::TimeRange;

/// Control authority, 0..=255.
pub type Authority = u8;

/// The highest authority.
pub const ABSOLUTE: Authority = 255;

/// Identifies a gate (one writer's claim on one channel); increasing in open order.
pub type GateId = u64;

/// Who holds control.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Subject {
    /// Unique key (a UUID string by default).
    pub key: String,
    /// Display name ("press sequence", "operator panel").
    pub name: String,
    /// A family of writers (e.g. one rack), for filtering.
    #[serde(default)]
    pub group: u32,
}

/// What a control fence covers ([`crate::Engine::fence_control`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceScope {
    /// Virtual channels: commands. Recordings (stored channels) go on.
    #[default]
    Commands,
    /// Every channel.
    All,
}

/// Which channels a fence standing now covers.
pub(crate) type Fenced = Arc<dyn Fn(ChannelKey) -> bool + Send + Sync>;

/// The standing fence's cover, if any.
#[derive(Default, Clone)]
struct Cover(Option<Fenced>);

impl std::fmt::Debug for Cover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Cover(fenced)" } else { "Cover(none)" })
    }
}

impl Cover {
    fn covers(&self, channel: ChannelKey) -> bool {
        self.0.as_ref().is_some_and(|f| f(channel))
    }
}

/// A holder of control over one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The holder.
    pub subject: Subject,
    /// The channel.
    pub resource: ChannelKey,
    /// Its authority.
    pub authority: Authority,
}

/// A change of control: acquire (`from` empty), release (`to` empty) or handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Previous holder.
    pub from: Option<State>,
    /// New holder.
    pub to: Option<State>,
}

#[derive(Debug)]
struct GateEntry {
    id: GateId,
    subject: Subject,
    authority: Authority,
    flag: Arc<AtomicBool>,
    /// Opened before (or during) a fence: never holds control until its writer sets its
    /// authority again after the fence is lifted.
    fenced: bool,
}

#[derive(Debug)]
struct Region {
    range: TimeRange,
    gates: Vec<GateEntry>,
    holder: Option<GateId>,
}

impl Region {
    fn state(&self, channel: ChannelKey, id: GateId) -> Option<State> {
        self.gates.iter().find(|g| g.id == id).map(|g| State { subject: g.subject.clone(), resource: channel, authority: g.authority })
    }

    /// The holder's state now (before a change).
    fn holder_state(&self, channel: ChannelKey) -> Option<State> {
        self.holder.and_then(|h| self.state(channel, h))
    }

    /// [`Region::settle`], the transfer (if any) naming `prev`, the holder before the change.
    fn resettle(&mut self, channel: ChannelKey, concurrency: Concurrency, prev: Option<State>) -> Option<Transfer> {
        self.settle(channel, concurrency).map(|mut t| {
            t.from = prev;
            t
        })
    }

    /// Recompute the holder and every gate's write flag; returns a transfer if the holder
    /// changed.
    fn settle(&mut self, channel: ChannelKey, concurrency: Concurrency) -> Option<Transfer> {
        let before = self.holder;
        // Fenced gates take no part: they neither hold nor block.
        let live = || self.gates.iter().filter(|g| !g.fenced);
        let top = live().map(|g| g.authority).max();
        let holder_auth = before.and_then(|h| live().find(|g| g.id == h)).map(|g| g.authority);
        // Keep the holder unless someone is strictly higher (or it left).
        let keep = matches!((holder_auth, top), (Some(a), Some(t)) if a >= t);
        if !keep {
            // Highest authority; ties: earliest opened (lowest id).
            self.holder = live().filter(|g| Some(g.authority) == top).map(|g| g.id).min();
        }
        let holder_auth = self.holder.and_then(|h| self.gates.iter().find(|g| g.id == h)).map(|g| g.authority);
        for g in &self.gates {
            let allowed = !g.fenced
                && match concurrency {
                    Concurrency::Exclusive => Some(g.id) == self.holder,
                    Concurrency::Shared => Some(g.authority) == holder_auth,
                };
            g.flag.store(allowed, Ordering::Release);
        }
        if before == self.holder {
            return None;
        }
        Some(Transfer { from: None, to: self.holder.and_then(|h| self.state(channel, h)) })
    }
}

#[derive(Debug, Default)]
struct ChannelControl {
    concurrency: Concurrency,
    regions: Vec<Region>,
}

/// A writer's gate on one channel: its id and the flag the arbiter keeps current.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    pub id: GateId,
    pub channel: ChannelKey,
    pub authority: Authority,
    pub flag: Arc<AtomicBool>,
}

impl Gate {
    /// True while this gate may write (one atomic load).
    pub(crate) fn authorized(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// The control arbiter of one engine.
#[derive(Debug, Default)]
pub(crate) struct Arbiter {
    channels: Mutex<HashMap<ChannelKey, ChannelControl>>,
    next_id: AtomicU64,
    /// Bumped on every change so writers can skip per-channel checks.
    epoch: AtomicU64,
    transfers: AtomicU64,
    refused: AtomicU64,
    /// Set by [`Arbiter::fence`]: no gate on a channel `fence_scope` covers holds control
    /// until it is lifted.
    fenced: AtomicBool,
    cover: Mutex<Cover>,
    /// Holders of other nodes' channels (cluster mode), as their control channels tell:
    /// shown on this engine's control channel, never arbitrated here. Changed only with
    /// `channels` locked, so they are ordered with this arbiter's own transfers.
    peers: Mutex<Vec<State>>,
}

/// What one engine's arbiter has decided since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ControlMetricsSnapshot {
    /// Control transfers (acquired, handed over, released), as published on the
    /// control-state channel.
    pub transfers: u64,
    /// Series refused because their writer did not hold control of the channel (a write
    /// that failed with `control.unauthorized`, or the channels dropped from a frame).
    pub refused: u64,
    /// Channels under control now (with at least one open gate).
    pub controlled_channels: u64,
}

impl Arbiter {
    /// Count series refused for lack of control (the writer that refused them calls this).
    pub(crate) fn refused(&self, series: usize) {
        self.refused.fetch_add(series as u64, Ordering::Relaxed);
    }

    pub(crate) fn metrics(&self) -> ControlMetricsSnapshot {
        let controlled_channels = self.channels.lock().len() as u64;
        ControlMetricsSnapshot {
            transfers: self.transfers.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            controlled_channels,
        }
    }

    /// After a change (with the map still locked): bump the epoch, count and publish the
    /// transfers it caused, so they go out in the order they happened.
    fn changed(&self, transfers: &[Transfer], publish: &dyn Fn(&[Transfer])) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if !transfers.is_empty() {
            self.transfers.fetch_add(transfers.len() as u64, Ordering::Relaxed);
            publish(transfers);
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Run `f` (which reads gate flags) while no gate can change, with the epoch those
    /// flags belong to: a consistent view of several gates at once.
    pub(crate) fn snapshot<R>(&self, f: impl FnOnce() -> R) -> (u64, R) {
        let _map = self.channels.lock();
        (self.epoch(), f())
    }

    /// Open a gate for `subject` on `channel` over `range`; returns the gate and the
    /// transfer it caused, if any.
    #[cfg(test)]
    pub(crate) fn open(
        &self,
        channel: ChannelKey,
        concurrency: Concurrency,
        range: TimeRange,
        subject: &Subject,
        authority: Authority,
    ) -> (Gate, Option<Transfer>) {
        let (mut gates, transfers) = self.open_many(&[(channel, concurrency, authority)], range, subject, &|_| {});
        (gates.remove(0), transfers.into_iter().next())
    }

    /// Open one writer's gates (`(channel, concurrency, authority)` each) in one step:
    /// no other open, authority change or close is seen between them. A writer's gates on a
    /// data channel and its index therefore always settle the same way, so two writers of
    /// equal authority opening at once can never end up holding one each (which would let
    /// neither write). The transfers caused are handed to `publish` before any other change
    /// can happen, so they are published in the order they happened. Returns the gates (in
    /// the order given) and the transfers.
    pub(crate) fn open_many(
        &self,
        specs: &[(ChannelKey, Concurrency, Authority)],
        range: TimeRange,
        subject: &Subject,
        publish: &dyn Fn(&[Transfer]),
    ) -> (Vec<Gate>, Vec<Transfer>) {
        let mut map = self.channels.lock();
        let cover = self.cover.lock().clone();
        let mut gates = Vec::with_capacity(specs.len());
        let mut transfers = Vec::new();
        for &(channel, concurrency, authority) in specs {
            // Ids are taken under the lock, so id order (the tie-break) is open order on
            // every channel alike.
            let id = self.next_id.fetch_add(1, Ordering::AcqRel);
            let flag = Arc::new(AtomicBool::new(false));
            let cc = map.entry(channel).or_default();
            cc.concurrency = concurrency;
            let fenced = cover.covers(channel);
            let entry = GateEntry { id, subject: subject.clone(), authority, flag: flag.clone(), fenced };
            let ri = match cc.regions.iter().position(|r| r.range.overlaps(&range)) {
                Some(ri) => {
                    let r = &mut cc.regions[ri];
                    r.range = TimeRange::new(r.range.start.min(range.start), r.range.end.max(range.end));
                    r.gates.push(entry);
                    ri
                }
                None => {
                    cc.regions.push(Region { range, gates: vec![entry], holder: None });
                    cc.regions.len() - 1
                }
            };
            let prev = cc.regions[ri].holder_state(channel);
            transfers.extend(cc.regions[ri].resettle(channel, concurrency, prev));
            gates.push(Gate { id, channel, authority, flag });
        }
        self.changed(&transfers, publish);
        drop(map);
        (gates, transfers)
    }

    /// Change a gate's authority; returns the transfer it caused, if any.
    #[cfg(test)]
    pub(crate) fn set_authority(&self, gate: &mut Gate, authority: Authority) -> Option<Transfer> {
        self.set_authorities(&mut [(gate, authority)], &|_| {}).into_iter().next()
    }

    /// Change the authority of several gates of one writer in one step (see
    /// [`Arbiter::open_many`]); publishes and returns the transfers caused.
    pub(crate) fn set_authorities(&self, changes: &mut [(&mut Gate, Authority)], publish: &dyn Fn(&[Transfer])) -> Vec<Transfer> {
        let mut map = self.channels.lock();
        let mut transfers = Vec::new();
        for (gate, authority) in changes.iter_mut() {
            gate.authority = *authority;
            let Some(cc) = map.get_mut(&gate.channel) else { continue };
            let concurrency = cc.concurrency;
            let Some(r) = cc.regions.iter_mut().find(|r| r.gates.iter().any(|g| g.id == gate.id)) else { continue };
            let prev = r.holder_state(gate.channel);
            let lifted = !self.fenced.load(Ordering::Acquire);
            if let Some(g) = r.gates.iter_mut().find(|g| g.id == gate.id) {
                g.authority = *authority;
                // Setting an authority after a fence is lifted takes control again.
                g.fenced &= !lifted;
            }
            transfers.extend(r.resettle(gate.channel, concurrency, prev));
        }
        self.changed(&transfers, publish);
        drop(map);
        transfers
    }

    /// Close a gate; returns the transfer it caused (release or handoff), if any.
    #[cfg(test)]
    pub(crate) fn close(&self, gate: &Gate) -> Option<Transfer> {
        self.close_many(std::slice::from_ref(gate), &|_| {}).into_iter().next()
    }

    /// Close one writer's gates in one step (see [`Arbiter::open_many`]); returns the
    /// transfers caused (releases or handoffs), publishing them first.
    pub(crate) fn close_many(&self, gates: &[Gate], publish: &dyn Fn(&[Transfer])) -> Vec<Transfer> {
        for gate in gates {
            gate.flag.store(false, Ordering::Release);
        }
        let mut map = self.channels.lock();
        let mut transfers = Vec::new();
        for gate in gates {
            let Some(cc) = map.get_mut(&gate.channel) else { continue };
            let concurrency = cc.concurrency;
            let Some(ri) = cc.regions.iter().position(|r| r.gates.iter().any(|g| g.id == gate.id)) else { continue };
            let r = &mut cc.regions[ri];
            let prev = r.holder_state(gate.channel);
            r.gates.retain(|g| g.id != gate.id);
            transfers.extend(r.resettle(gate.channel, concurrency, prev));
            if r.gates.is_empty() {
                cc.regions.remove(ri);
            }
            if cc.regions.is_empty() {
                map.remove(&gate.channel);
            }
        }
        self.changed(&transfers, publish);
        drop(map);
        transfers
    }

    /// Fence every gate on a channel `covers` names: from now on none of them holds
    /// control, and gates opened on those channels while the fence stands hold none either. A node does this when it can no longer be sure it is
    /// still the leaseholder of its channels (its cluster lease expired while cut off from
    /// etcd), so it stops commanding (docs/cluster.md §6). Publishes and returns the
    /// releases.
    pub(crate) fn fence(&self, covers: Fenced, publish: &dyn Fn(&[Transfer])) -> Vec<Transfer> {
        let mut map = self.channels.lock();
        self.fenced.store(true, Ordering::Release);
        let cover = Cover(Some(covers));
        let mut transfers = Vec::new();
        for (channel, cc) in map.iter_mut().filter(|(k, _)| cover.covers(**k)) {
            for r in &mut cc.regions {
                let prev = r.holder_state(*channel);
                for g in &mut r.gates {
                    g.fenced = true;
                }
                transfers.extend(r.resettle(*channel, cc.concurrency, prev));
            }
        }
        *self.cover.lock() = cover;
        self.changed(&transfers, publish);
        drop(map);
        transfers
    }

    /// Lift the fence: gates opened from now on take part again. Gates fenced before keep
    /// out until their writer sets its authority (a writer from before the fence does not
    /// command again without asking).
    pub(crate) fn lift_fence(&self) {
        let _map = self.channels.lock();
        self.fenced.store(false, Ordering::Release);
        *self.cover.lock() = Cover(None);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// True while a fence stands.
    pub(crate) fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// Run `f` with the current holders of every channel (other nodes' included, cluster
    /// mode) while no transfer can happen (or be published): what `f` does is ordered
    /// exactly between transfers.
    pub(crate) fn with_states<R>(&self, f: impl FnOnce(Vec<State>) -> R) -> R {
        let map = self.channels.lock();
        let mut states = Self::states_of(&map, &[]);
        states.extend(self.peers.lock().iter().cloned());
        states.sort_by_key(|s| s.resource);
        f(states)
    }

    /// Take in another node's control message about the channels of `block` (its key
    /// block): with `snapshot`, `transfers` name every holder it has (what changed since the
    /// last message is published as transfers); otherwise they are transfers to apply.
    /// Anything outside `block` is ignored (a node also shows what it heard from others).
    /// Publishes and returns the transfers this engine's control channel shows.
    pub(crate) fn peer_transfers(
        &self,
        block: &std::ops::RangeInclusive<ChannelKey>,
        snapshot: bool,
        transfers: Vec<Transfer>,
        publish: &dyn Fn(&[Transfer]),
    ) -> Vec<Transfer> {
        let _map = self.channels.lock();
        let mut peers = self.peers.lock();
        let same = |a: &State, b: &State| a.resource == b.resource && a.subject.key == b.subject.key;
        let ours = |t: &Transfer| t.from.as_ref().or(t.to.as_ref()).is_some_and(|s| block.contains(&s.resource));
        let mut out = Vec::new();
        if snapshot {
            let now: Vec<State> = transfers.into_iter().filter(|t| ours(t)).filter_map(|t| t.to).collect();
            peers.retain(|s| {
                let keep = !block.contains(&s.resource) || now.iter().any(|n| same(n, s));
                if !keep {
                    out.push(Transfer { from: Some(s.clone()), to: None });
                }
                keep
            });
            for s in now {
                if !peers.iter().any(|p| same(p, &s)) {
                    out.push(Transfer { from: None, to: Some(s.clone()) });
                    peers.push(s);
                }
            }
        } else {
            for t in transfers.into_iter().filter(|t| ours(t)) {
                if let Some(from) = &t.from {
                    peers.retain(|s| !same(s, from));
                }
                if let Some(to) = &t.to {
                    peers.push(to.clone());
                }
                out.push(t);
            }
        }
        if !out.is_empty() {
            publish(&out);
        }
        out
    }

    /// Current holders of `keys` (all channels if empty), one state per region.
    pub(crate) fn states(&self, keys: &[ChannelKey]) -> Vec<State> {
        Self::states_of(&self.channels.lock(), keys)
    }

    fn states_of(map: &HashMap<ChannelKey, ChannelControl>, keys: &[ChannelKey]) -> Vec<State> {
        let mut out: Vec<State> = map
            .iter()
            .filter(|(k, _)| keys.is_empty() || keys.contains(k))
            .flat_map(|(k, cc)| cc.regions.iter().filter_map(move |r| r.holder.and_then(|h| r.state(*k, h))))
            .collect();
        out.sort_by_key(|s| s.resource);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subj(n: &str) -> Subject {
        Subject { key: n.into(), name: n.into(), group: 0 }
    }

    const ALL: TimeRange = TimeRange::MAX;

    #[test]
    fn higher_takes_lower_blocks_and_release_passes_to_next() {
        let c = Arbiter::default();
        let (a, t) = c.open(1, Concurrency::Exclusive, ALL, &subj("a"), 10);
        assert!(a.authorized());
        assert_eq!(t.unwrap().to.unwrap().subject.name, "a");
        let (b, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("b"), 5);
        assert!(!b.authorized(), "lower authority is blocked");
        let (h, t) = c.open(1, Concurrency::Exclusive, ALL, &subj("h"), 200);
        let t = t.unwrap();
        assert_eq!((t.from.unwrap().subject.name, t.to.unwrap().subject.name), ("a".to_string(), "h".to_string()));
        assert!(h.authorized() && !a.authorized());
        let t = c.close(&h).unwrap();
        assert_eq!(t.to.unwrap().subject.name, "a", "next highest takes over");
        assert!(a.authorized() && !b.authorized());
    }

    #[test]
    fn a_fence_releases_everything_and_only_writers_that_ask_again_get_control_back() {
        let c = Arbiter::default();
        let (mut a, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("a"), 10);
        let (x, _) = c.open(2, Concurrency::Shared, ALL, &subj("x"), 7);
        // A channel outside the fence's cover (a recording, under `FenceScope::Commands`).
        let (rec, _) = c.open(9, Concurrency::Exclusive, ALL, &subj("rec"), 5);
        assert!(a.authorized() && x.authorized() && rec.authorized());
        let released = c.fence(Arc::new(|k| k != 9), &|_| {});
        assert_eq!(released.len(), 2, "{released:?}");
        assert!(rec.authorized(), "the fence covers only what it names");
        let (rec2, _) = c.open(9, Concurrency::Exclusive, ALL, &subj("rec2"), 50);
        assert!(rec2.authorized() && !rec.authorized(), "uncovered channels are arbitrated as usual");
        c.close(&rec2);
        assert!(released.iter().all(|t| t.to.is_none() && t.from.is_some()));
        assert!(!a.authorized() && !x.authorized() && c.is_fenced());
        assert_eq!(c.states(&[]).len(), 1, "only the uncovered recording is held");
        // While fenced, new writers and authority changes get nothing.
        let (b, t) = c.open(1, Concurrency::Exclusive, ALL, &subj("b"), 1);
        assert!(t.is_none() && !b.authorized());
        assert!(c.set_authority(&mut a, 20).is_none() && !a.authorized());
        // Lifted: a writer opened now takes control; those from before stay out until they
        // set their authority again.
        c.lift_fence();
        let (n, t) = c.open(3, Concurrency::Exclusive, ALL, &subj("n"), 1);
        assert!(n.authorized() && t.is_some());
        assert!(!a.authorized() && !b.authorized() && !x.authorized());
        let t = c.set_authority(&mut a, 10).unwrap();
        assert_eq!(t.to.unwrap().subject.name, "a");
        assert!(a.authorized() && !b.authorized());
    }

    #[test]
    fn peer_holders_join_the_snapshot_and_a_peer_snapshot_publishes_only_what_changed() {
        let c = Arbiter::default();
        let (_a, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("a"), 10);
        let block = (2 << 24)..=((2 << 24) | 0xFF_FFFF);
        let held = |name: &str, key: ChannelKey| State { subject: subj(name), resource: key, authority: 50 };
        let acquire = |s: State| Transfer { from: None, to: Some(s) };
        let (p1, p2) = ((2 << 24) | 1, (2 << 24) | 2);
        // A first snapshot: every holder is new; a holder outside the block is ignored.
        let out = c.peer_transfers(&block, true, vec![acquire(held("x", p1)), acquire(held("far", (3 << 24) | 1))], &|_| {});
        assert_eq!(out, vec![acquire(held("x", p1))]);
        let names = || c.with_states(|s| s.iter().map(|s| s.subject.name.clone()).collect::<Vec<_>>());
        assert_eq!(names(), vec!["a", "x"]);
        // A handoff, then a snapshot that no longer has x's successor but has a new one.
        let hand = Transfer { from: Some(held("x", p1)), to: Some(held("y", p1)) };
        assert_eq!(c.peer_transfers(&block, false, vec![hand.clone()], &|_| {}), vec![hand]);
        assert_eq!(names(), vec!["a", "y"]);
        let out = c.peer_transfers(&block, true, vec![acquire(held("z", p2))], &|_| {});
        assert_eq!(out, vec![Transfer { from: Some(held("y", p1)), to: None }, acquire(held("z", p2))]);
        // The same snapshot again changes nothing; an empty one releases everything.
        assert!(c.peer_transfers(&block, true, vec![acquire(held("z", p2))], &|_| {}).is_empty());
        assert_eq!(c.peer_transfers(&block, true, vec![], &|_| {}).len(), 1);
        assert_eq!(names(), vec!["a"]);
        assert_eq!(c.states(&[]).len(), 1, "peer holders are not this arbiter's");
    }

    #[test]
    fn equal_authority_exclusive_first_keeps_shared_all_write() {
        let c = Arbiter::default();
        let (a, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("a"), 7);
        let (b, t) = c.open(1, Concurrency::Exclusive, ALL, &subj("b"), 7);
        assert!(t.is_none() && a.authorized() && !b.authorized());
        let (x, _) = c.open(2, Concurrency::Shared, ALL, &subj("x"), 7);
        let (y, _) = c.open(2, Concurrency::Shared, ALL, &subj("y"), 7);
        let (z, _) = c.open(2, Concurrency::Shared, ALL, &subj("z"), 3);
        assert!(x.authorized() && y.authorized() && !z.authorized());
    }

    #[test]
    fn ties_on_release_go_to_the_earliest() {
        let c = Arbiter::default();
        let (top, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("top"), 9);
        let (e1, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("e1"), 4);
        let (e2, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("e2"), 4);
        c.close(&top);
        assert!(e1.authorized() && !e2.authorized());
    }

    #[test]
    fn set_authority_takes_and_hands_away() {
        let c = Arbiter::default();
        let (mut a, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("a"), 10);
        let (mut b, _) = c.open(1, Concurrency::Exclusive, ALL, &subj("b"), 5);
        let t = c.set_authority(&mut b, 11).unwrap();
        assert_eq!(t.to.unwrap().subject.name, "b");
        assert!(b.authorized() && !a.authorized());
        let t = c.set_authority(&mut b, 1).unwrap();
        assert_eq!(t.to.unwrap().subject.name, "a");
        assert!(c.set_authority(&mut a, 10).is_none());
        assert_eq!(c.states(&[1])[0].authority, 10);
    }

    #[test]
    fn a_writers_gates_open_change_and_close_together() {
        let c = Arbiter::default();
        // Data channel 1 and its index 2, two writers of equal authority.
        let spec = |a| [(1, Concurrency::Exclusive, a), (2, Concurrency::Exclusive, a)];
        let (x, t) = c.open_many(&spec(50), ALL, &subj("x"), &|_| {});
        assert_eq!(t.len(), 2);
        let (mut y, t) = c.open_many(&spec(50), ALL, &subj("y"), &|_| {});
        assert!(t.is_empty() && x.iter().all(Gate::authorized) && !y.iter().any(Gate::authorized));
        let mut changes: Vec<(&mut Gate, Authority)> = y.iter_mut().map(|g| (g, 60)).collect();
        assert_eq!(c.set_authorities(&mut changes, &|_| {}).len(), 2);
        assert!(y.iter().all(Gate::authorized) && !x.iter().any(Gate::authorized));
        let t = c.close_many(&y, &|_| {});
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.to.as_ref().unwrap().subject.name == "x"));
        assert!(x.iter().all(Gate::authorized));
        assert_eq!(c.close_many(&x, &|_| {}).len(), 2);
        assert!(c.states(&[]).is_empty());
    }

    #[test]
    fn disjoint_regions_do_not_contend() {
        let c = Arbiter::default();
        let (live, _) = c.open(1, Concurrency::Exclusive, TimeRange::from_nanos(100, i64::MAX), &subj("live"), 10);
        let (fill, t) = c.open(1, Concurrency::Exclusive, TimeRange::from_nanos(0, 50), &subj("fill"), 1);
        assert!(t.is_some() && live.authorized() && fill.authorized());
        assert_eq!(c.states(&[]).len(), 2);
    }
}
