//! The rules a written frame must satisfy, written once.
//!
//! The embedded writer ([`super::StorageWriter`]) applies them under its region locks; the
//! remote client's writer applies the same functions before sending a frame, so a broken frame
//! fails at once with the same error on both backends. Everything here is pure: no I/O, no
//! locks, no engine state beyond what the caller passes in.
//!
//! The rules, in the order they are checked:
//! 1. every series has its channel's data type ([`accepts`], [`check_type`]);
//! 2. per index group ([`check_group`]): data channels are written only together with their
//!    index, each with as many samples as the index, and the index with at most
//!    [`DOMAIN_CAPACITY`] samples;
//! 3. per index ([`IndexTimestamps`]): no timestamp before the writer's start, timestamps
//!    strictly increasing within and across writes, and (embedded only, where stored data
//!    is known) below the next stored data.

use crate::channel::{Channel, ChannelKey};
use crate::telem::{DataType, TimeStamp};

use super::WriteError;

/// Most samples in one domain, and so in one write per index group (positions are u32).
pub(crate) const DOMAIN_CAPACITY: u64 = u32::MAX as u64;

/// True if a series of type `series` may be written to a channel of type `channel`: the
/// same type, or `i64` nanoseconds for a timestamp channel.
pub(crate) fn accepts(channel: DataType, series: DataType) -> bool {
    series == channel || (channel == DataType::Timestamp && series == DataType::I64)
}

/// [`accepts`] as an error naming the channel.
///
/// # Errors
/// [`WriteError::TypeMismatch`] if the series' type does not fit the channel.
pub(crate) fn check_type(channel: &str, expected: DataType, actual: DataType) -> Result<(), WriteError> {
    if accepts(expected, actual) { Ok(()) } else { Err(WriteError::TypeMismatch { channel: channel.to_string(), expected, actual }) }
}

/// One index channel and the data channels a writer writes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexGroup {
    /// The index channel.
    pub index: ChannelKey,
    /// Its data channels among the writer's channels, in the writer's order.
    pub data: Vec<ChannelKey>,
}

/// The index groups of a writer's channels, in order of first appearance. Virtual channels
/// belong to none; an index is a group even when none of its data channels is written.
pub(crate) fn index_groups<'a>(channels: impl IntoIterator<Item = &'a Channel>) -> Vec<IndexGroup> {
    let mut groups: Vec<IndexGroup> = Vec::new();
    for ch in channels {
        let Some(index) = ch.index_key() else { continue };
        let at = match groups.iter().position(|g| g.index == index) {
            Some(at) => at,
            None => {
                groups.push(IndexGroup { index, data: Vec::new() });
                groups.len() - 1
            }
        };
        if ch.key != index
            && let Some(g) = groups.get_mut(at)
        {
            g.data.push(ch.key);
        }
    }
    groups
}

/// Check the sample counts of one index group in one write: `index_samples` for the index
/// channel `index`, and `(name, samples)` per data channel (zero if it is not written).
/// Returns whether the group is written at all.
///
/// # Errors
/// [`WriteError::IndexMissing`] if data is written without its index,
/// [`WriteError::LengthMismatch`] if a written data channel's count differs from the
/// index's, [`WriteError::TooLarge`] past [`DOMAIN_CAPACITY`].
pub(crate) fn check_group<'a, D>(index: &str, index_samples: u64, data: D) -> Result<bool, WriteError>
where
    D: IntoIterator<Item = (&'a str, u64)>,
{
    let mut written = data.into_iter().filter(|&(_, n)| n > 0);
    if index_samples == 0 {
        let data: Vec<String> = written.map(|(name, _)| name.to_string()).collect();
        if data.is_empty() {
            return Ok(false);
        }
        return Err(WriteError::IndexMissing { index: index.to_string(), data });
    }
    if let Some((name, n)) = written.find(|&(_, n)| n != index_samples) {
        return Err(WriteError::LengthMismatch {
            channel: name.to_string(),
            index: index.to_string(),
            expected: index_samples as usize,
            actual: n as usize,
        });
    }
    if index_samples > DOMAIN_CAPACITY {
        return Err(WriteError::TooLarge { samples: index_samples, limit: DOMAIN_CAPACITY });
    }
    Ok(true)
}

/// The timestamp rules of one index channel over one write, fed the write's index series in
/// order ([`IndexTimestamps::check`]).
#[derive(Debug)]
pub(crate) struct IndexTimestamps<'a> {
    index: &'a str,
    start: TimeStamp,
    limit: Option<i64>,
    prev: Option<i64>,
    position: usize,
}

impl<'a> IndexTimestamps<'a> {
    /// Rules for index `index` of a writer that started at `start`, whose last timestamp
    /// written so far is `prev`. With a `limit`, timestamps must stay below it.
    pub(crate) fn new(index: &'a str, start: TimeStamp, prev: Option<i64>, limit: Option<i64>) -> Self {
        IndexTimestamps { index, start, limit, prev, position: 0 }
    }

    /// Check the next series of index timestamps.
    ///
    /// # Errors
    /// [`WriteError::BeforeStart`], [`WriteError::NotMonotonic`] (with the position in the
    /// whole write), or [`WriteError::Overlap`] for a timestamp at or past the limit.
    pub(crate) fn check(&mut self, timestamps: &[i64]) -> Result<(), WriteError> {
        for &t in timestamps {
            if t < self.start.0 {
                return Err(WriteError::BeforeStart { index: self.index.to_string(), start: self.start, value: TimeStamp(t) });
            }
            if let Some(p) = self.prev
                && t <= p
            {
                return Err(WriteError::NotMonotonic {
                    index: self.index.to_string(),
                    position: self.position,
                    previous: TimeStamp(p),
                    value: TimeStamp(t),
                });
            }
            if let Some(limit) = self.limit
                && t >= limit
            {
                return Err(WriteError::Overlap { index: self.index.to_string(), value: TimeStamp(t), next_start: TimeStamp(limit) });
            }
            self.prev = Some(t);
            self.position += 1;
        }
        Ok(())
    }

    /// The last timestamp accepted so far (or the one passed to [`IndexTimestamps::new`]).
    pub(crate) fn last(&self) -> Option<i64> {
        self.prev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelKind;

    #[test]
    fn timestamp_channels_accept_i64_and_nothing_else_mixes() {
        assert!(accepts(DataType::Timestamp, DataType::I64));
        assert!(accepts(DataType::F64, DataType::F64));
        assert!(!accepts(DataType::I64, DataType::Timestamp));
        assert!(!accepts(DataType::F64, DataType::F32));
        let e = check_type("pt", DataType::F64, DataType::F32).unwrap_err();
        assert_eq!(e, WriteError::TypeMismatch { channel: "pt".into(), expected: DataType::F64, actual: DataType::F32 });
        assert_eq!(e.code(), "write.type_mismatch");
    }

    fn channel(key: ChannelKey, kind: ChannelKind) -> Channel {
        let data_type = if matches!(kind, ChannelKind::Index) { DataType::Timestamp } else { DataType::F64 };
        Channel {
            key,
            name: format!("c{key}"),
            data_type,
            kind,
            concurrency: Default::default(),
            internal: false,
            compression: Default::default(),
        }
    }

    #[test]
    fn groups_follow_first_appearance_and_skip_virtual_channels() {
        let chans = [
            channel(3, ChannelKind::Data { index: 1 }),
            channel(1, ChannelKind::Index),
            channel(9, ChannelKind::Virtual),
            channel(4, ChannelKind::Data { index: 2 }),
            channel(5, ChannelKind::Data { index: 1 }),
        ];
        let groups = index_groups(&chans);
        assert_eq!(
            groups,
            vec![IndexGroup { index: 1, data: vec![3, 5] }, IndexGroup { index: 2, data: vec![4] }],
            "the index of a data channel forms a group even when the writer does not name it"
        );
    }

    #[test]
    fn group_without_samples_is_not_written() {
        assert_eq!(check_group("t", 0, [("a", 0), ("b", 0)]), Ok(false));
        assert_eq!(check_group("t", 3, [("a", 3), ("b", 0)]), Ok(true));
    }

    #[test]
    fn data_without_its_index_names_every_data_channel_written() {
        let e = check_group("t", 0, [("a", 2), ("b", 0), ("c", 1)]).unwrap_err();
        assert_eq!(e, WriteError::IndexMissing { index: "t".into(), data: vec!["a".into(), "c".into()] });
        assert_eq!(e.code(), "write.index_missing");
    }

    #[test]
    fn lengths_must_match_the_index() {
        let e = check_group("t", 3, [("a", 3), ("b", 2)]).unwrap_err();
        assert_eq!(e, WriteError::LengthMismatch { channel: "b".into(), index: "t".into(), expected: 3, actual: 2 });
        assert_eq!(e.code(), "write.length_mismatch");
    }

    #[test]
    fn a_write_is_capped_at_one_domain() {
        assert_eq!(check_group("t", DOMAIN_CAPACITY, []), Ok(true));
        let e = check_group("t", DOMAIN_CAPACITY + 1, []).unwrap_err();
        assert_eq!(e, WriteError::TooLarge { samples: DOMAIN_CAPACITY + 1, limit: DOMAIN_CAPACITY });
        // Lengths are checked before the cap: the mismatch is the more useful error.
        let e = check_group("t", DOMAIN_CAPACITY + 1, [("a", 1)]).unwrap_err();
        assert_eq!(e.code(), "write.length_mismatch");
    }

    #[test]
    fn timestamps_strictly_increase_across_series_and_writes() {
        let mut ts = IndexTimestamps::new("t", TimeStamp(10), None, None);
        ts.check(&[10, 11]).unwrap();
        ts.check(&[12]).unwrap();
        assert_eq!(ts.last(), Some(12));
        let e = ts.check(&[13, 13]).unwrap_err();
        assert_eq!(
            e,
            WriteError::NotMonotonic { index: "t".into(), position: 4, previous: TimeStamp(13), value: TimeStamp(13) },
            "the position counts every sample of the write"
        );
        let mut next_write = IndexTimestamps::new("t", TimeStamp(10), Some(20), None);
        let e = next_write.check(&[20]).unwrap_err();
        assert_eq!(e, WriteError::NotMonotonic { index: "t".into(), position: 0, previous: TimeStamp(20), value: TimeStamp(20) });
    }

    #[test]
    fn timestamps_before_the_start_are_refused() {
        let mut ts = IndexTimestamps::new("t", TimeStamp(10), None, None);
        let e = ts.check(&[9]).unwrap_err();
        assert_eq!(e, WriteError::BeforeStart { index: "t".into(), start: TimeStamp(10), value: TimeStamp(9) });
        assert_eq!(ts.last(), None);
    }

    #[test]
    fn timestamps_stay_below_the_limit() {
        let mut ts = IndexTimestamps::new("t", TimeStamp(0), None, Some(100));
        ts.check(&[99]).unwrap();
        let e = ts.check(&[100]).unwrap_err();
        assert_eq!(e, WriteError::Overlap { index: "t".into(), value: TimeStamp(100), next_start: TimeStamp(100) });
        let mut unlimited = IndexTimestamps::new("t", TimeStamp(0), None, None);
        unlimited.check(&[i64::MAX]).unwrap();
    }
}
