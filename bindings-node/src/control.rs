//! `control`: authorities and control state.
//!
//! Control sequences (`client.control.acquire(...)`) are composed in the JS layer
//! (`lib/control.js`) from a writer and a streamer, exactly like the Python SDK; this file
//! only translates authorities and holder states.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::control::{Authority, State};

use crate::error::invalid;

/// A JS number as an authority (0..=255).
pub(crate) fn authority(a: u32) -> Result<Authority> {
    Authority::try_from(a).map_err(|_| invalid(format!("authority {a} is out of range; pass 0..=255 (255 is absolute)")))
}

/// Several authorities.
pub(crate) fn authorities(v: &[u32]) -> Result<Vec<Authority>> {
    v.iter().map(|&a| authority(a)).collect()
}

/// Who holds control of a channel.
#[napi(object)]
pub struct StateJs {
    /// The holder's unique key.
    pub subject_key: String,
    /// The holder's display name.
    pub subject_name: String,
    /// The channel.
    pub channel: u32,
    /// The holder's authority.
    pub authority: u32,
}

impl StateJs {
    pub(crate) fn from_core(s: State) -> StateJs {
        StateJs { subject_key: s.subject.key, subject_name: s.subject.name, channel: s.resource, authority: u32::from(s.authority) }
    }
}
