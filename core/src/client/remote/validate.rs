//! The remote writer's local checks: the frame-local rules of the embedded writer (the
//! functions of `storage::rules`, which both call), in the same order and with the same
//! errors, so a broken frame fails at once instead of one call later. What only the node
//! can know (data stored by others, shared regions, storage failures) is still checked
//! there and reported on the next call.

use std::collections::HashMap;

use crate::channel::{Channel, ChannelKey};
use crate::error::Result;
use crate::framer::WriterMode;
use crate::storage::WriteError;
use crate::storage::rules::{self, IndexGroup, IndexTimestamps};
use crate::telem::{Frame, TimeStamp};

/// Checks frames against one writer's channels.
#[derive(Debug)]
pub(crate) struct Validator {
    by_key: HashMap<ChannelKey, Channel>,
    groups: Vec<IndexGroup>,
    mode: WriterMode,
    start: TimeStamp,
    /// Last timestamp this writer sent per index channel.
    last: HashMap<ChannelKey, i64>,
}

impl Validator {
    pub(crate) fn new(channels: &[Channel], mode: WriterMode, start: TimeStamp) -> Validator {
        let groups = if mode.persists() { rules::index_groups(channels) } else { Vec::new() };
        let by_key = channels.iter().map(|c| (c.key, c.clone())).collect();
        Validator { by_key, groups, mode, start, last: HashMap::new() }
    }

    /// The channel `key`, if the writer has it.
    pub(crate) fn channel(&self, key: ChannelKey) -> Option<&Channel> {
        self.by_key.get(&key)
    }

    /// First stage (before control filtering): every series belongs to the writer, and
    /// series of virtual channels (or of any channel in stream-only mode) have its type.
    pub(crate) fn check_channels(&self, frame: &Frame) -> Result<()> {
        for (k, s) in frame.iter() {
            let ch = self.by_key.get(&k).ok_or(WriteError::NotInWriter { channel: k })?;
            if !self.mode.persists() || ch.is_virtual() {
                rules::check_type(&ch.name, ch.data_type, s.data_type())?;
            }
        }
        Ok(())
    }

    fn name(&self, k: ChannelKey) -> &str {
        self.by_key.get(&k).map_or("", |c| c.name.as_str())
    }

    /// Second stage, on the frame actually sent (after control filtering): the storage
    /// rules that depend only on the frame and on this writer's own earlier writes.
    /// Returns the last timestamp per index to record once the frame is sent.
    pub(crate) fn check_storage(&self, frame: &Frame) -> Result<Vec<(ChannelKey, i64)>> {
        if self.groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut totals: HashMap<ChannelKey, u64> = HashMap::new();
        for (k, s) in frame.iter() {
            let Some(ch) = self.by_key.get(&k) else { return Err(WriteError::NotInWriter { channel: k }.into()) };
            if ch.is_virtual() {
                continue;
            }
            rules::check_type(&ch.name, ch.data_type, s.data_type())?;
            *totals.entry(k).or_default() += s.len() as u64;
        }
        let total = |k: &ChannelKey| totals.get(k).copied().unwrap_or(0);
        let mut active: Vec<&IndexGroup> = Vec::new();
        for g in &self.groups {
            if rules::check_group(self.name(g.index), total(&g.index), g.data.iter().map(|d| (self.name(*d), total(d))))? {
                active.push(g);
            }
        }
        active.sort_by_key(|g| g.index);
        let mut out = Vec::with_capacity(active.len());
        for g in active {
            let mut rule = IndexTimestamps::new(self.name(g.index), self.start, self.last.get(&g.index).copied(), None);
            for s in frame.get(g.index) {
                rule.check(s.as_timestamps()?)?;
            }
            if let Some(p) = rule.last() {
                out.push((g.index, p));
            }
        }
        Ok(out)
    }
    /// Record the last timestamps of a frame that was sent.
    pub(crate) fn record(&mut self, last: Vec<(ChannelKey, i64)>) {
        self.last.extend(last);
    }

    /// Forget what was sent (after the node rejected a write, its view is authoritative).
    pub(crate) fn reset(&mut self) {
        self.last.clear();
    }
}
