//! Open remote writers, so each learns at once when the channels it controls change.
//!
//! After any stream opens, closes or re-prioritises a writer, it recomputes every other
//! writer's authorized channels and queues a notice to those whose set changed, then waits
//! (briefly) until those notices are on the wire before it answers its own client. So when
//! `open_writer` returns for writer B, writer A's client has already been told that it
//! lost control (on loopback; across networks, or through a cluster gateway that relays
//! each stream on its own connection, the two connections are not ordered).
//! Changes caused by writers inside the server process (the demo's simulator) are picked
//! up by a watcher on the control-state channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use crate::channel::ChannelKey;
use crate::error::Result;
use crate::framer::Writer;
use crate::relay::StreamerConfig;

/// How long a stream waits for other streams to send their authority notices.
const NOTIFY_WAIT: Duration = Duration::from_millis(250);

/// Tells a writer stream that its authorized set changed (read it with
/// [`Registry::current`]); `sent` is fired once the stream has sent it.
#[derive(Debug)]
pub(crate) struct Notice {
    pub sent: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Entry {
    writer: Arc<Mutex<Option<Writer>>>,
    keys: Vec<ChannelKey>,
    last: Vec<ChannelKey>,
    /// Bumped (from a global counter) whenever `last` changes.
    version: u64,
    /// The newest version the stream has sent to its client.
    delivered: u64,
    out: mpsc::UnboundedSender<Notice>,
}

/// Every open writer stream.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    entries: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    version: AtomicU64,
}

/// The channels of `keys` that `w` may write now.
pub(crate) fn authorized(w: &Writer, keys: &[ChannelKey]) -> Vec<ChannelKey> {
    keys.iter().copied().filter(|&k| w.has_control(k)).collect()
}

impl Registry {
    /// Add a writer stream; returns its id and the receiver of its notices.
    pub(crate) fn add(
        &self,
        writer: Arc<Mutex<Option<Writer>>>,
        keys: Vec<ChannelKey>,
        now: Vec<ChannelKey>,
    ) -> (u64, mpsc::UnboundedReceiver<Notice>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (out, rx) = mpsc::unbounded_channel();
        let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        self.entries.lock().insert(id, Entry { writer, keys, last: now, version, delivered: version, out });
        (id, rx)
    }

    /// The stream has sent version `v` to its client.
    pub(crate) fn delivered(&self, id: u64, v: u64) {
        if let Some(e) = self.entries.lock().get_mut(&id) {
            e.delivered = e.delivered.max(v);
        }
    }

    /// The stream's current authorized set and its version.
    pub(crate) fn current(&self, id: u64) -> Option<(u64, Vec<ChannelKey>)> {
        self.entries.lock().get(&id).map(|e| (e.version, e.last.clone()))
    }

    /// Remove a writer stream.
    pub(crate) fn remove(&self, id: u64) {
        self.entries.lock().remove(&id);
    }

    /// Recompute every writer's authorized set and notify the streams whose set changed,
    /// except `own` (the caller, which reads its set with [`Registry::current`]). Returns
    /// the notified streams' send acknowledgements.
    /// The flag is true if a writer was busy (a long write) and must be looked at again.
    pub(crate) fn refresh(&self, own: Option<u64>) -> (Vec<oneshot::Receiver<()>>, bool) {
        let mut entries = self.entries.lock();
        let mut acks = Vec::new();
        let mut busy = false;
        for (id, e) in entries.iter_mut() {
            // A writer busy with a long write is not waited for here (the registry stays
            // free); the caller retries shortly.
            let Some(guard) = e.writer.try_lock_for(Duration::from_millis(2)) else {
                busy = true;
                continue;
            };
            let Some(w) = guard.as_ref() else { continue };
            let now = authorized(w, &e.keys);
            drop(guard);
            if now != e.last {
                e.last = now;
                e.version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
            } else if e.version <= e.delivered {
                continue;
            }
            // Changed now, or changed earlier (e.g. seen first by the watcher) and not yet
            // sent: either way the caller waits until the stream has sent it.
            if Some(*id) == own {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            if e.out.send(Notice { sent: tx }).is_ok() {
                acks.push(rx);
            }
        }
        (acks, busy)
    }

    /// Refresh until no writer was skipped as busy (a bounded number of times).
    async fn refresh_fully(&self, own: Option<u64>) -> Vec<oneshot::Receiver<()>> {
        let mut all = Vec::new();
        for _ in 0..500 {
            let (acks, busy) = self.refresh(own);
            all.extend(acks);
            if !busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        all
    }

    /// Refresh and wait (briefly) until the other streams have sent their notices.
    pub(crate) async fn refresh_and_wait(&self, own: Option<u64>) {
        let acks = self.refresh_fully(own).await;
        let _ = tokio::time::timeout(NOTIFY_WAIT, async {
            for a in acks {
                let _ = a.await;
            }
        })
        .await;
    }
}

/// Watch the control-state channel and refresh the registry on every transfer (catches
/// writers that are not remote streams, e.g. the demo's simulator).
pub(crate) fn spawn_watcher(state: Arc<AppState>) -> Result<tokio::task::JoinHandle<()>> {
    let key = state.engine.control_channel();
    let mut streamer = state.engine.open_streamer(StreamerConfig::new(vec![key]))?;
    Ok(tokio::spawn(async move {
        loop {
            match streamer.next().await {
                Ok(_) | Err(crate::relay::StreamError::Lagged { .. }) => {
                    drop(state.writers.refresh_fully(None).await);
                }
                Err(_) => return,
            }
        }
    }))
}
