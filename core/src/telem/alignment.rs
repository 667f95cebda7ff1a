//! Alignment: where a series sits in its channel's storage.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A `u64` position `(domain << 32) | sample` that lets clients stitch series of one channel
/// and line up channels that share an index.
///
/// Data channels use their index channel's alignment space: sample `i` of a data series and
/// sample `i` of the index series with the same alignment carry the same timestamp. Live
/// series of virtual channels use the domain [`Alignment::VIRTUAL_DOMAIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Alignment(pub u64);

impl Alignment {
    /// Domain used for series of virtual (never stored) channels.
    pub const VIRTUAL_DOMAIN: u32 = u32::MAX;

    /// The alignment of `sample` in `domain`.
    pub const fn new(domain: u32, sample: u32) -> Alignment {
        Alignment(((domain as u64) << 32) | sample as u64)
    }

    /// The domain part.
    pub const fn domain(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The sample position within the domain.
    pub const fn sample(self) -> u32 {
        self.0 as u32
    }

    /// The alignment `n` samples later in the same domain (saturating within the domain).
    pub const fn add_samples(self, n: u32) -> Alignment {
        Alignment::new(self.domain(), self.sample().saturating_add(n))
    }
}

impl fmt::Display for Alignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.domain(), self.sample())
    }
}
