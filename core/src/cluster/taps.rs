//! Peer taps: live frames of other nodes' channels for this node's streamers.
//!
//! The **tapper** follows this engine's relay demand ([`crate::Engine::demand`]). For each
//! peer that stores some wanted channel it keeps one **peer tap**: a remote streamer on that
//! peer (whose node side is the ordinary streamer endpoint: the peer server) for exactly
//! those channels. When the demand changes the tap's channels are updated in place
//! (`update_channels`, no reconnect), a tap nobody needs is closed, and a new one is
//! opened: the dynamic delta. Each tap hands its frames to this engine's relay
//! ([`crate::Engine::relay_mirrored`]), whose fan-out delivers them to the streamers that
//! want them, as it does for local writers.
//!
//! Every live peer has a tap, wanted channels or not: it also streams the peer's control
//! channel, whose transfers this node shows on its own
//! ([`crate::Engine::relay_peer_control`]), so a streamer of any node's control channel
//! sees control change hands on every node.
//!
//! ## No deadlocks at start-up or shutdown
//! Nothing here blocks on another task: the tapper polls the demand (an atomic generation
//! read every [`POLL`]) and sends a tap its channels through a `watch` channel, which keeps
//! only the latest value and never waits. A tap's task owns its remote streamer and ends
//! when its `watch` sender is dropped (tapper ends or the channels are no longer wanted),
//! closing the streamer. The relay never waits for a receiver. A tap to a node that is
//! down retries every second; it holds no lock while it waits.

use std::collections::BTreeMap;
use std::time::Duration;

/// Frames a peer tap's streamer queues on the peer (a plain streamer's default is 1,024).
const TAP_CAPACITY: usize = 65_536;

use tokio::sync::watch;

use super::{Cluster, leaseholder, node_keys};
use crate::channel::ChannelKey;
use crate::control::Transfer;
use crate::relay::StreamerConfig;
use crate::telem::Frame;

/// How often the tapper looks at the relay's demand generation.
pub(super) const POLL: Duration = Duration::from_millis(5);

pub(super) async fn tapper(cluster: Cluster) {
    let mut taps: BTreeMap<u8, (watch::Sender<Vec<ChannelKey>>, tokio::task::JoinHandle<()>)> = BTreeMap::new();
    let mut seen = u64::MAX;
    let mut seen_peers: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (generation, keys) = cluster.engine().demand();
        let peers: Vec<u8> = cluster.members().iter().map(|m| m.node).filter(|n| *n != cluster.node()).collect();
        if generation == seen && peers == seen_peers {
            continue;
        }
        (seen, seen_peers) = (generation, peers);
        // Every live peer, for its control channel; plus the wanted channels' leaseholders.
        let mut wanted: BTreeMap<u8, Vec<ChannelKey>> = seen_peers.iter().map(|n| (*n, Vec::new())).collect();
        for k in keys {
            if !cluster.is_local(k) && cluster.engine().channels().is_mirror(k) {
                wanted.entry(leaseholder(k)).or_default().push(k);
            }
        }
        // Dropping a tap's sender ends its task, which closes its remote streamer.
        taps.retain(|node, (_, task)| {
            let keep = wanted.contains_key(node) && !task.is_finished();
            if !keep {
                tracing::debug!(key = "cluster", node, "peer tap closed");
            }
            keep
        });
        for (node, keys) in wanted {
            match taps.get(&node) {
                Some((tx, _)) => {
                    tx.send_if_modified(|cur| {
                        let changed = *cur != keys;
                        *cur = keys.clone();
                        changed
                    });
                }
                None => {
                    tracing::debug!(key = "cluster", node, channels = keys.len(), "peer tap opened");
                    let (tx, rx) = watch::channel(keys);
                    let task = tokio::spawn(tap(cluster.clone(), node, rx));
                    taps.insert(node, (tx, task));
                }
            }
        }
    }
}

/// One peer tap: a remote streamer on `node` for its control channel and the channels in
/// `keys`, reopened when it fails, ended when `keys`' sender is dropped.
async fn tap(cluster: Cluster, node: u8, mut keys: watch::Receiver<Vec<ChannelKey>>) {
    let with_control = |ctl: ChannelKey, mut k: Vec<ChannelKey>| {
        k.push(ctl);
        k
    };
    loop {
        let current = keys.borrow_and_update().clone();
        let opened = async {
            let peer = cluster.peer(node).await?;
            let ctl = peer.control_channel().await?;
            // One tap carries every frame of its channels for all of this node's streamers:
            // a deep queue, so a burst does not make it lag. When it lags all the same, the
            // streamers of its channels here are told (`stream.lagged`), as if their own
            // queues had dropped the frames.
            let mut config = StreamerConfig::new(with_control(ctl, current.clone()));
            config.capacity = TAP_CAPACITY;
            Ok::<_, crate::Error>((ctl, peer.open_streamer(config).await?))
        };
        let mut carried = current.clone();
        // The routing of this tap's frames to the streamers here, kept across frames.
        let mut route = crate::relay::MirrorRoute::default();
        let (ctl, mut streamer) = match opened.await {
            Ok(s) => {
                tapped(&cluster, node, current);
                s
            }
            Err(e) => {
                tracing::debug!(key = "cluster", node, error = %e, "peer tap cannot open; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    gone = keys.changed() => if gone.is_err() { return } else { continue },
                }
            }
        };
        loop {
            tokio::select! {
                changed = keys.changed() => {
                    if changed.is_err() {
                        streamer.close().await;
                        return;
                    }
                    let k = keys.borrow_and_update().clone();
                    if let Err(e) = streamer.update_channels(with_control(ctl, k.clone())).await {
                        tracing::debug!(key = "cluster", node, error = %e, "peer tap update failed; reopening");
                        break;
                    }
                    carried.clone_from(&k);
                    tapped(&cluster, node, k);
                }
                frame = streamer.next() => match frame {
                    Ok(f) => deliver(&cluster, node, ctl, f, &mut route),
                    Err(crate::Error::Stream(crate::relay::StreamError::Lagged { dropped })) => {
                        tracing::warn!(key = "cluster", node, dropped, "peer tap lagged; its streamers here are told");
                        cluster.engine().relay_mirrored_lost(&carried, dropped);
                    }
                    Err(e) => {
                        tracing::debug!(key = "cluster", node, error = %e, "peer tap ended; reopening");
                        break;
                    }
                },
            }
        }
        tapped(&cluster, node, Vec::new());
        streamer.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Record that `node`'s tap is subscribed to `keys` now (the peer applied it).
fn tapped(cluster: &Cluster, node: u8, keys: Vec<ChannelKey>) {
    cluster.inner.tapped.send_modify(|t| {
        t.insert(node, keys);
    });
}

impl Cluster {
    /// Wait (at most `within`) until the peer taps carry every channel of `keys` stored on
    /// a live peer, so frames written there from now on reach this node's streamers. A
    /// streamer opened or updated on this node returns only then, as on a single node,
    /// where a streamer receives every frame written after it opened. Returns false if
    /// `within` passed first (a peer slow to answer; its frames start arriving later).
    ///
    /// A streamer of this node's control channel waits the same way for a tap to every
    /// live peer (each tap carries its peer's control channel), so it sees every transfer
    /// decided anywhere after it opened.
    pub async fn peer_taps_ready(&self, keys: &[ChannelKey], within: Duration) -> bool {
        let live: Vec<u8> = self.members().iter().map(|m| m.node).collect();
        let wanted: Vec<ChannelKey> = keys
            .iter()
            .copied()
            .filter(|k| !self.is_local(*k) && live.contains(&leaseholder(*k)) && self.engine().channels().is_mirror(*k))
            .collect();
        let peers: Vec<u8> = if keys.contains(&self.engine().control_channel()) {
            live.iter().copied().filter(|n| *n != self.node()).collect()
        } else {
            Vec::new()
        };
        if wanted.is_empty() && peers.is_empty() {
            return true;
        }
        let mut rx = self.inner.tapped.subscribe();
        let covered = |t: &BTreeMap<u8, Vec<ChannelKey>>| {
            wanted.iter().all(|k| t.get(&leaseholder(*k)).is_some_and(|ks| ks.contains(k))) && peers.iter().all(|n| t.contains_key(n))
        };
        tokio::time::timeout(within, rx.wait_for(covered)).await.is_ok_and(|r| r.is_ok())
    }
}

/// One message of a control channel (docs/architecture.md §14).
#[derive(serde::Deserialize)]
struct ControlMessage {
    #[serde(default)]
    snapshot: bool,
    transfers: Vec<Transfer>,
}

/// Hand a frame of `node`'s tap on: its control channel's messages to this engine's
/// control channel, the rest to this engine's relay.
fn deliver(cluster: &Cluster, node: u8, ctl: ChannelKey, f: Frame, route: &mut crate::relay::MirrorRoute) {
    let f = if f.contains(ctl) {
        for series in f.get(ctl) {
            for i in 0..series.len() {
                match series.value_str(i).map(serde_json::from_str::<ControlMessage>) {
                    Some(Ok(m)) => cluster.engine().relay_peer_control(&node_keys(node), m.snapshot, m.transfers),
                    _ => tracing::warn!(key = "cluster", node, "a peer's control message could not be read; skipped"),
                }
            }
        }
        let rest: Vec<ChannelKey> = f.unique_keys().into_iter().filter(|k| *k != ctl).collect();
        if rest.is_empty() {
            return;
        }
        f.filter(&rest)
    } else {
        f
    };
    if let Err(e) = cluster.engine().relay_mirrored(&f, route) {
        tracing::debug!(key = "cluster", node, error = %e, "peer frame not relayed");
    }
}
