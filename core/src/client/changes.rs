//! [`ChangeWatcher`]: changes to channels and ranges as they are committed, on either
//! backend (a streamer of the change channel, decoded).

use std::collections::VecDeque;
use std::time::Duration;

use super::ClientStreamer;
use crate::Change;
use crate::channel::ChannelKey;
use crate::error::Result;
use crate::telem::Frame;

/// The changes a frame of the change channel `key` carries, in order. A sample that does
/// not decode (a change kind from a newer node) is skipped with a warning.
pub fn decode_changes(frame: &Frame, key: ChannelKey) -> Vec<Change> {
    let mut out = Vec::new();
    for s in frame.get(key) {
        for i in 0..s.len() {
            let Some(text) = s.value_str(i) else { continue };
            match serde_json::from_str::<Change>(text) {
                Ok(c) => out.push(c),
                Err(e) => tracing::warn!(key = "client", error = %e, change = text, "a change this client does not know was skipped"),
            }
        }
    }
    out
}

/// Changes to channels and ranges, from [`crate::Client::watch_changes`]: each change once,
/// in commit order, from the moment the watcher opened.
#[derive(Debug)]
pub struct ChangeWatcher {
    streamer: ClientStreamer,
    key: ChannelKey,
    pending: VecDeque<Change>,
}

impl ChangeWatcher {
    pub(super) fn new(streamer: ClientStreamer, key: ChannelKey) -> ChangeWatcher {
        ChangeWatcher { streamer, key, pending: VecDeque::new() }
    }

    /// The next change.
    ///
    /// # Errors
    /// As [`ClientStreamer::next`]: a lag notice (`stream.lagged`: changes were missed;
    /// list again) or a closed stream.
    pub async fn next(&mut self) -> Result<Change> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Ok(c);
            }
            let f = self.streamer.next().await?;
            self.pending.extend(decode_changes(&f, self.key));
        }
    }

    /// The next change, or `None` after `timeout`.
    ///
    /// # Errors
    /// As [`ChangeWatcher::next`].
    pub async fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Change>> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Ok(Some(c));
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.streamer.next_timeout(left).await? {
                Some(f) => self.pending.extend(decode_changes(&f, self.key)),
                None => return Ok(None),
            }
        }
    }

    /// The next change, waiting at most `timeout` on this thread (outside an async
    /// runtime).
    ///
    /// # Errors
    /// As [`ChangeWatcher::next`].
    pub fn next_blocking(&mut self, timeout: Duration) -> Result<Option<Change>> {
        let until = std::time::Instant::now() + timeout;
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Ok(Some(c));
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.streamer.next_blocking(left)? {
                Some(f) => self.pending.extend(decode_changes(&f, self.key)),
                None => return Ok(None),
            }
        }
    }

    /// Stop watching.
    pub async fn close(&mut self) {
        self.streamer.close().await;
    }
}
