//! Embedded-backend helpers that are more than a one-line delegation.

use super::ChannelRef;
use crate::Engine;
use crate::channel::Channel;
use crate::error::Result;

pub(super) fn channels(e: &Engine, refs: &[ChannelRef]) -> Result<Vec<Channel>> {
    refs.iter()
        .map(|r| {
            let c = match r {
                ChannelRef::Key(k) => e.channels().get(*k)?,
                ChannelRef::Name(n) => e.channels().by_name(n)?,
            };
            Ok((*c).clone())
        })
        .collect()
}
