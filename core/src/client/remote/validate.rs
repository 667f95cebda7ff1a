//! The remote writer's local checks: the frame-local rules of the embedded writer, in the
//! same order and with the same errors, so a broken frame fails at once instead of one
//! call later. What only the node can know (data stored by others, shared regions,
//! storage failures) is still checked there and reported on the next call.

use std::collections::HashMap;

use crate::channel::{Channel, ChannelKey};
use crate::error::Result;
use crate::framer::WriterMode;
use crate::storage::WriteError;
use crate::telem::{DataType, Frame, TimeStamp};

/// Largest write per index group (positions are u32 in storage).
const DOMAIN_CAPACITY: u64 = u32::MAX as u64;

#[derive(Debug)]
struct Group {
    index: ChannelKey,
    data: Vec<ChannelKey>,
}

/// Checks frames against one writer's channels.
#[derive(Debug)]
pub(crate) struct Validator {
    by_key: HashMap<ChannelKey, Channel>,
    groups: Vec<Group>,
    mode: WriterMode,
    start: TimeStamp,
    /// Last timestamp this writer sent per index channel.
    last: HashMap<ChannelKey, i64>,
}

fn type_ok(channel: DataType, series: DataType) -> bool {
    series == channel || (channel == DataType::Timestamp && series == DataType::I64)
}

impl Validator {
    pub(crate) fn new(channels: &[Channel], mode: WriterMode, start: TimeStamp) -> Validator {
        let mut groups: Vec<Group> = Vec::new();
        if mode.persists() {
            for ch in channels {
                let Some(idx) = ch.index_key() else { continue };
                let gi = match groups.iter().position(|g| g.index == idx) {
                    Some(gi) => gi,
                    None => {
                        groups.push(Group { index: idx, data: Vec::new() });
                        groups.len() - 1
                    }
                };
                if ch.key != idx {
                    groups[gi].data.push(ch.key);
                }
            }
        }
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
            if (!self.mode.persists() || ch.is_virtual()) && !type_ok(ch.data_type, s.data_type()) {
                return Err(WriteError::TypeMismatch { channel: ch.name.clone(), expected: ch.data_type, actual: s.data_type() }.into());
            }
        }
        Ok(())
    }

    fn name(&self, k: ChannelKey) -> String {
        self.by_key.get(&k).map(|c| c.name.clone()).unwrap_or_default()
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
            if !type_ok(ch.data_type, s.data_type()) {
                return Err(WriteError::TypeMismatch { channel: ch.name.clone(), expected: ch.data_type, actual: s.data_type() }.into());
            }
            *totals.entry(k).or_default() += s.len() as u64;
        }
        let mut active: Vec<&Group> = Vec::new();
        for g in &self.groups {
            let n = totals.get(&g.index).copied().unwrap_or(0);
            let present: Vec<ChannelKey> = g.data.iter().copied().filter(|d| totals.get(d).copied().unwrap_or(0) > 0).collect();
            if n == 0 {
                if !present.is_empty() {
                    return Err(WriteError::IndexMissing {
                        index: self.name(g.index),
                        data: present.iter().map(|&d| self.name(d)).collect(),
                    }
                    .into());
                }
                continue;
            }
            for &d in &present {
                let actual = totals[&d];
                if actual != n {
                    return Err(WriteError::LengthMismatch {
                        channel: self.name(d),
                        index: self.name(g.index),
                        expected: n as usize,
                        actual: actual as usize,
                    }
                    .into());
                }
            }
            if n > DOMAIN_CAPACITY {
                return Err(WriteError::TooLarge { samples: n, limit: DOMAIN_CAPACITY }.into());
            }
            active.push(g);
        }
        active.sort_by_key(|g| g.index);
        let mut out = Vec::with_capacity(active.len());
        for g in active {
            let name = self.name(g.index);
            let mut prev = self.last.get(&g.index).copied();
            let mut position = 0usize;
            for s in frame.get(g.index) {
                let ts: &[i64] = s.as_timestamps()?;
                for &t in ts {
                    if t < self.start.0 {
                        return Err(WriteError::BeforeStart { index: name, start: self.start, value: TimeStamp(t) }.into());
                    }
                    if let Some(p) = prev
                        && t <= p
                    {
                        return Err(WriteError::NotMonotonic { index: name, position, previous: TimeStamp(p), value: TimeStamp(t) }.into());
                    }
                    prev = Some(t);
                    position += 1;
                }
            }
            if let Some(p) = prev {
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
