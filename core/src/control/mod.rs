//! Control: which writer may command a channel, decided by a `u8` authority.
//!
//! Control is per channel *and* per time region: writers whose time ranges overlap on a
//! channel share a region and contend for it; a back-fill writer over a disjoint past range
//! has a region of its own and never contends with a live one.
//!
//! ## Authority
//! [`Authority`] is a `u8`; 255 ([`ABSOLUTE`]) cannot be exceeded. The four rules:
//! 1. a higher authority blocks a lower one from writing;
//! 2. a higher authority takes control from a lower one (on open or on `set_authority`);
//! 3. when the holder leaves or lowers its authority, control passes to the next highest
//!    (ties: the earliest opened);
//! 4. per channel [`Concurrency`](crate::channel::Concurrency): `Exclusive` (default; among
//!    equals the first holder keeps control) or `Shared` (every writer at the top authority
//!    may write).
//!
//! ## Index channels follow their data
//! A writer's authority on an index channel is the highest of its authorities on that
//! index's data channels (and on the index itself, if given), so raising a valve's
//! authority raises its timestamps' too. A data sample is only written when its writer
//! controls both the data channel and its index.
//!
//! ## No silent drops
//! Each write reports the channels it was not authorized for; with `err_on_unauthorized`
//! the write fails instead and nothing of it is written.
//!
//! ## Authority handoff
//! Every transfer (acquire, handoff, release) is published on the virtual control-state
//! channel ([`CONTROL_CHANNEL`]) as JSON; a new streamer of that channel first receives the
//! current state. The current holders can also be queried directly.

mod arbiter;

pub(crate) use arbiter::Fenced;
pub use arbiter::{ABSOLUTE, Authority, ControlMetricsSnapshot, FenceScope, GateId, State, Subject, Transfer};
pub(crate) use arbiter::{Arbiter, Gate};

/// The old name of [`Arbiter`]; in the SDKs a `Controller` is a control-sequence handle.
#[deprecated(note = "renamed to `Arbiter`; `Controller` names the SDKs' control-sequence handle")]
#[allow(dead_code)]
pub(crate) type Controller = Arbiter;

/// Name of the virtual channel on which control transfers are published.
pub const CONTROL_CHANNEL: &str = "telemetron_control";

/// Why a control request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum ControlError {
    /// The writer does not control some channels of the frame (and asked to fail).
    #[error(
        "not authorized to write channels {channels:?}: another writer holds control; raise this writer's authority or wait for release"
    )]
    Unauthorized {
        /// Names of the channels not written.
        channels: Vec<String>,
    },
    /// An authority change names a channel the writer does not have.
    #[error("channel {channel} is not one of this writer's channels")]
    UnknownChannel {
        /// The channel key.
        channel: u32,
    },
    /// A control sequence lost control of channels to a higher authority: a command to
    /// them was not written, or a handoff took them while the sequence ran.
    #[error(
        "control sequence {sequence:?} lost control of {channels:?} to a higher authority; the command was not applied. Raise its authority or wait for release"
    )]
    Lost {
        /// The sequence's name.
        sequence: String,
        /// Names of the channels lost.
        channels: Vec<String>,
    },
}

impl ControlError {
    /// Stable code, see [`crate::Error::code`].
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::Unauthorized { .. } => "control.unauthorized",
            ControlError::UnknownChannel { .. } => "control.unknown_channel",
            ControlError::Lost { .. } => "control.lost",
        }
    }

    /// Every code of this enum.
    pub const CODES: &[crate::codes::CodeInfo] = &[
        crate::codes::CodeInfo::new("control.unauthorized", "another writer holds control of some channels of the frame"),
        crate::codes::CodeInfo::new("control.unknown_channel", "an authority change names a channel the writer does not have"),
        crate::codes::CodeInfo::new("control.lost", "a control sequence lost control of channels to a higher authority"),
    ];
}
