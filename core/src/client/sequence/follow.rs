//! The sequence's follower: the background thread that keeps the latest values and
//! notices losses of control from the transfers on the control-state channel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::LostHook;
use crate::channel::{Channel, ChannelKey};
use crate::client::ClientStreamer;
use crate::control::{ControlError, Transfer};
use crate::error::Error;
use crate::telem::{Frame, Series};

/// What the background thread keeps up to date.
#[derive(Default)]
pub(super) struct Live {
    /// The latest sample of each channel (a one-sample series).
    pub(super) values: HashMap<ChannelKey, Series>,
    /// Bumped on every change of `values` or control.
    pub(super) version: u64,
    /// Whether this sequence holds each write channel (data and index).
    pub(super) held: HashMap<ChannelKey, bool>,
    /// Channels (write channels and their indexes) this sequence handed over itself by
    /// lowering its authority: the next transfer away of each is not a loss, and consumes
    /// the entry. A lowering that kept control leaves no entry (`set_authority` removes it
    /// once the writer says it still holds the channel). A transfer *to* this sequence
    /// does not end an entry: the follower may see the gain of a channel only after the
    /// sequence lowered it.
    pub(super) yielded: HashSet<ChannelKey>,
    /// Write channels whose loss was reported and not regained since: a loss is reported
    /// once, though the channel and its index each bring a transfer.
    pub(super) reported: HashSet<ChannelKey>,
    /// An error for the next call: a loss (`raise_on_lost`) or a stream failure.
    pub(super) pending: Option<Error>,
    pub(super) released: bool,
}

pub(super) struct Shared {
    pub(super) name: String,
    pub(super) subject_key: String,
    pub(super) write: Vec<Channel>,
    pub(super) control_key: ChannelKey,
    pub(super) raise_on_lost: bool,
    pub(super) on_lost: Option<LostHook>,
    pub(super) live: Mutex<Live>,
    pub(super) cond: Condvar,
    pub(super) notify: tokio::sync::Notify,
    pub(super) stop: AtomicBool,
}

#[derive(serde::Deserialize)]
pub(super) struct TransferDoc {
    #[serde(default)]
    pub(super) transfers: Vec<Transfer>,
}

impl Shared {
    pub(super) fn wake(&self) {
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    pub(super) fn lost_error(&self, channels: Vec<String>) -> Error {
        ControlError::Lost { sequence: self.name.clone(), channels }.into()
    }

    /// Apply one streamed frame: latest values and control transfers.
    ///
    /// A loss is a transfer *from* this sequence to someone else of one of its write
    /// channels (or a write channel's index). Deciding from the transfers themselves,
    /// not from a holder table compared with what was held, keeps a stale snapshot (the
    /// streamer's first frame may predate the sequence's own writer) from reading as a loss.
    pub(super) fn apply(&self, frame: &Frame) {
        let mut lost: Vec<String> = Vec::new();
        {
            let mut live = self.live.lock();
            let released = live.released;
            let ours = |s: &Option<crate::control::State>| s.as_ref().is_some_and(|s| s.subject.key == self.subject_key);
            for (k, s) in frame.iter() {
                if k == self.control_key {
                    for i in 0..s.len() {
                        let Some(doc) = s.value_str(i).and_then(|t| serde_json::from_str::<TransferDoc>(t).ok()) else { continue };
                        for t in doc.transfers {
                            let Some(resource) = t.to.as_ref().or(t.from.as_ref()).map(|s| s.resource) else { continue };
                            let (from_us, to_us) = (ours(&t.from), ours(&t.to));
                            // A handoff this sequence made itself is consumed, not lost: once per
                            // transfer, though an index may serve several write channels.
                            let handed = from_us && !to_us && live.yielded.remove(&resource);
                            for c in &self.write {
                                if c.key != resource && c.index_key() != Some(resource) {
                                    continue;
                                }
                                if from_us && !to_us {
                                    live.held.insert(c.key, false);
                                    // A channel and its index arrive as two transfers, maybe in
                                    // two frames: the first reports the loss, once.
                                    if !handed && !released && live.reported.insert(c.key) {
                                        lost.push(c.name.clone());
                                    }
                                } else if to_us {
                                    // Not the end of a `yielded` mark: this may be the late
                                    // notice of gaining the channel before it was lowered.
                                    live.held.insert(c.key, true);
                                    live.reported.remove(&c.key);
                                }
                            }
                        }
                    }
                } else if let Some(last) = s.len().checked_sub(1).and_then(|i| s.slice(i..i + 1).ok()) {
                    live.values.insert(k, last);
                }
            }
            live.version += 1;
            if !lost.is_empty() && self.raise_on_lost && live.pending.is_none() {
                live.pending = Some(self.lost_error(lost.clone()));
            }
        }
        self.wake();
        if !lost.is_empty() {
            tracing::warn!(key = format!("client/sequence/{}", self.name).as_str(), channels = ?lost, "control sequence lost control");
            if let Some(hook) = &self.on_lost {
                hook(&lost);
            }
        }
    }

    /// The background thread: follow the streamer until stopped; hand the streamer back
    /// for closing.
    pub(super) fn follow(self: Arc<Shared>, mut streamer: ClientStreamer) -> ClientStreamer {
        while !self.stop.load(Ordering::Acquire) {
            match streamer.next_blocking(Duration::from_millis(50)) {
                Ok(Some(f)) => self.apply(&f),
                Ok(None) => {}
                Err(e) if e.code() == "stream.lagged" => {}
                Err(e) => {
                    if !self.stop.load(Ordering::Acquire) {
                        self.live.lock().pending.get_or_insert(e);
                        self.wake();
                    }
                    break;
                }
            }
        }
        streamer
    }
}
