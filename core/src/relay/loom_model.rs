//! The shipping relay without an engine around it, for the loom models in
//! `core/tests/relay_loom.rs`. Exists only under `--cfg telemetron_loom`.
//!
//! A [`Hub`] is the engine's relay hub; [`Hub::subscribe`] opens a real [`Streamer`] on it
//! (the engine's `open_streamer` without the control-state snapshot) and [`Hub::publish`]
//! is a writer's relay tap. Frames carry one `u32` on channel [`KEY`].

use std::sync::Arc;

use super::hub::{PublishCache, Relay};
use super::{LagPolicy, Streamer, StreamerConfig};
use crate::channel::ChannelKey;
use crate::telem::{Frame, Series};

pub use super::sync::Fault;

/// The channel every model frame is on.
pub const KEY: ChannelKey = 1;

/// A relay hub, as an engine holds one.
#[derive(Debug)]
pub struct Hub {
    relay: Arc<Relay>,
}

impl Hub {
    /// A hub whose subscribers break the protocol as `fault` says ([`Fault::None`]: the
    /// shipping protocol).
    pub fn new(fault: Fault) -> Hub {
        let mut relay = Relay::default();
        relay.fault = fault;
        Hub { relay: Arc::new(relay) }
    }

    /// Open a streamer on [`KEY`] with a queue of `capacity` frames, `policy` when it is
    /// full, and a spin of `spin_us` before parking (with loom's frozen clock, any spin is
    /// unbounded).
    pub fn subscribe(&self, capacity: usize, policy: LagPolicy, spin_us: u64) -> Streamer {
        let cfg = StreamerConfig { capacity, lag_policy: policy, spin_us, ..StreamerConfig::new(vec![KEY]) };
        let sub = self.relay.subscribe(&cfg.channels, cfg.capacity, cfg.lag_policy, Vec::new());
        Streamer::new(self.relay.clone(), sub, &cfg, None)
    }

    /// Publish `value` on [`KEY`] as a writer does (demand check, then fan-out).
    pub fn publish(&self, value: u32) {
        let frame = Frame::new().with(KEY, Series::from_vec(vec![value]));
        let mut cache = PublishCache::default();
        self.relay.publish(std::borrow::Cow::Borrowed(&frame), &mut cache, &mut std::iter::once(KEY));
        self.relay.wake(&mut cache);
    }

    /// Close every streamer, as closing the engine does.
    pub fn close(&self) {
        self.relay.close();
    }
}

/// The value a model frame carries.
pub fn value(frame: &Frame) -> Option<u32> {
    frame.get(KEY).next()?.as_slice::<u32>().ok()?.first().copied()
}
