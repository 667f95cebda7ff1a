//! [`Frame`]: series keyed by channel.

use super::{ChannelKey, Series};

/// A set of series keyed by channel: the unit of writing, streaming and reading.
///
/// A channel may appear more than once (a read over several domains returns one series per
/// contiguous run; a write may pass a channel's samples in several pieces). Order is kept.
///
/// # Examples
///
/// ```
/// use telemetron::telem::{Frame, Series};
///
/// let mut f = Frame::new();
/// f.push(1, Series::timestamps(vec![10, 20]));
/// f.push(2, Series::from_vec(vec![0.5f64, 0.7]));
/// assert_eq!(f.get(2).count(), 1);
/// assert_eq!(f.samples(1), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    keys: Vec<ChannelKey>,
    series: Vec<Series>,
}

impl Frame {
    /// An empty frame.
    pub fn new() -> Frame {
        Frame::default()
    }

    /// An empty frame with room for `n` series.
    pub fn with_capacity(n: usize) -> Frame {
        Frame { keys: Vec::with_capacity(n), series: Vec::with_capacity(n) }
    }

    /// Add a series for `key`.
    pub fn push(&mut self, key: ChannelKey, series: Series) {
        self.keys.push(key);
        self.series.push(series);
    }

    /// Builder form of [`Frame::push`].
    #[must_use]
    pub fn with(mut self, key: ChannelKey, series: Series) -> Frame {
        self.push(key, series);
        self
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True if the frame holds no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The key of each series, in order.
    pub fn keys(&self) -> &[ChannelKey] {
        &self.keys
    }

    /// Every series, in order.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// `(key, series)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (ChannelKey, &Series)> {
        self.keys.iter().copied().zip(self.series.iter())
    }

    /// The series of one channel, in order.
    pub fn get(&self, key: ChannelKey) -> impl Iterator<Item = &Series> {
        self.iter().filter(move |(k, _)| *k == key).map(|(_, s)| s)
    }

    /// True if the frame holds at least one series of `key`.
    pub fn contains(&self, key: ChannelKey) -> bool {
        self.keys.contains(&key)
    }

    /// Distinct keys in first-seen order.
    pub fn unique_keys(&self) -> Vec<ChannelKey> {
        let mut out: Vec<ChannelKey> = Vec::new();
        for &k in &self.keys {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// Total samples of one channel across its series.
    pub fn samples(&self, key: ChannelKey) -> usize {
        self.get(key).map(Series::len).sum()
    }

    /// Total bytes of sample data across all series.
    pub fn byte_size(&self) -> usize {
        self.series.iter().map(Series::byte_size).sum()
    }

    /// One series per channel: the channel's series concatenated (copies only when a channel
    /// has more than one series).
    ///
    /// # Errors
    /// A type mismatch between series of one channel.
    pub fn concat(&self, key: ChannelKey) -> Result<Option<Series>, super::SeriesError> {
        let parts: Vec<Series> = self.get(key).cloned().collect();
        if parts.is_empty() {
            return Ok(None);
        }
        Series::concat(&parts).map(Some)
    }

    /// A frame with only the series of `keys` (sharing buffers).
    pub fn filter(&self, keys: &[ChannelKey]) -> Frame {
        let mut out = Frame::new();
        for (k, s) in self.iter() {
            if keys.contains(&k) {
                out.push(k, s.clone());
            }
        }
        out
    }

    /// Append all series of `other`.
    pub fn extend(&mut self, other: Frame) {
        self.keys.extend(other.keys);
        self.series.extend(other.series);
    }

    /// Take the frame apart.
    pub fn into_parts(self) -> (Vec<ChannelKey>, Vec<Series>) {
        (self.keys, self.series)
    }
}

impl FromIterator<(ChannelKey, Series)> for Frame {
    fn from_iter<I: IntoIterator<Item = (ChannelKey, Series)>>(iter: I) -> Frame {
        let mut f = Frame::new();
        for (k, s) in iter {
            f.push(k, s);
        }
        f
    }
}
