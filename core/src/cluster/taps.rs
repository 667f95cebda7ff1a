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
//! ## No deadlocks at start-up or shutdown
//! Nothing here blocks on another task: the tapper polls the demand (an atomic generation
//! read every [`POLL`]) and sends a tap its channels through a `watch` channel, which keeps
//! only the latest value and never waits. A tap's task owns its remote streamer and ends
//! when its `watch` sender is dropped (tapper ends or the channels are no longer wanted),
//! closing the streamer. The relay never waits for a receiver. A tap to a node that is
//! down retries every second; it holds no lock while it waits.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use super::{Cluster, leaseholder};
use crate::channel::ChannelKey;
use crate::relay::StreamerConfig;

/// How often the tapper looks at the relay's demand generation.
pub(super) const POLL: Duration = Duration::from_millis(5);

pub(super) async fn tapper(cluster: Cluster) {
    let mut taps: BTreeMap<u8, (watch::Sender<Vec<ChannelKey>>, tokio::task::JoinHandle<()>)> = BTreeMap::new();
    let mut seen = u64::MAX;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (generation, keys) = cluster.engine().demand();
        if generation == seen {
            continue;
        }
        seen = generation;
        let mut wanted: BTreeMap<u8, Vec<ChannelKey>> = BTreeMap::new();
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

/// One peer tap: a remote streamer on `node` for the channels in `keys`, reopened when it
/// fails, ended when `keys`' sender is dropped.
async fn tap(cluster: Cluster, node: u8, mut keys: watch::Receiver<Vec<ChannelKey>>) {
    loop {
        let current = keys.borrow_and_update().clone();
        let opened = async { cluster.peer(node).await?.open_streamer(StreamerConfig::new(current)).await };
        let mut streamer = match opened.await {
            Ok(s) => s,
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
                    if let Err(e) = streamer.update_channels(k).await {
                        tracing::debug!(key = "cluster", node, error = %e, "peer tap update failed; reopening");
                        break;
                    }
                }
                frame = streamer.next() => match frame {
                    Ok(f) => {
                        if let Err(e) = cluster.engine().relay_mirrored(&f) {
                            tracing::debug!(key = "cluster", node, error = %e, "peer frame not relayed");
                        }
                    }
                    Err(e) if e.code() == "stream.lagged" => {
                        tracing::warn!(key = "cluster", node, error = %e, "peer tap lagged");
                    }
                    Err(e) => {
                        tracing::debug!(key = "cluster", node, error = %e, "peer tap ended; reopening");
                        break;
                    }
                },
            }
        }
        streamer.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
