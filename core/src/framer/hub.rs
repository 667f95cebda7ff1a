//! What writers and streamers share: storage, relay, arbiter, control-state channel.

use std::sync::Arc;

use crate::channel::ChannelKey;
use crate::control::{Arbiter, State, Transfer};
use crate::relay::Relay;
use crate::storage::Storage;
use crate::telem::{Alignment, Frame, Series, TimeRange, TimeStamp};

/// The engine's shared core.
#[derive(Debug)]
pub(crate) struct Hub {
    pub storage: Arc<Storage>,
    pub relay: Arc<Relay>,
    pub arbiter: Arbiter,
    pub control_key: ChannelKey,
    /// The change channel: channel and range changes (see [`crate::Change`]).
    pub changes_key: ChannelKey,
    /// Set when the engine closes: writers refuse further work.
    pub closed: std::sync::atomic::AtomicBool,
    /// The last writer id handed out (writers are `framer/writer/<id>` in the experiment
    /// tree, and their storage parts `storage/writer/<id>`).
    pub writers: std::sync::atomic::AtomicU64,
}

impl Hub {
    /// One JSON sample on a virtual channel, stamped now.
    fn json_frame(key: ChannelKey, body: &serde_json::Value) -> Frame {
        let now = TimeStamp::now();
        let s = Series::json(&[body.to_string()])
            .unwrap_or_else(|_| Series::strings(&["{}"]))
            .with_time_range(TimeRange::new(now, TimeStamp(now.0 + 1)))
            .with_alignment(Alignment::new(Alignment::VIRTUAL_DOMAIN, 0));
        Frame::new().with(key, s)
    }

    fn control_frame(&self, body: serde_json::Value) -> Frame {
        Hub::json_frame(self.control_key, &body)
    }

    /// Publish a change to channels or ranges on the change channel. Called by the registry
    /// and the ranges while they hold their lock, so changes go out in commit order.
    pub(crate) fn publish_change(&self, change: &impl serde::Serialize) {
        match serde_json::to_value(change) {
            Ok(body) => self.relay.publish_now(&Hub::json_frame(self.changes_key, &body)),
            Err(e) => tracing::error!(key = "engine", error = %e, "a change could not be encoded; watchers miss it"),
        }
    }

    /// Publish transfers on the control-state channel. Called by the arbiter while it
    /// still holds its lock, so transfers go out in the order they happened.
    pub(crate) fn publish_transfers(&self, transfers: &[Transfer]) {
        if transfers.is_empty() {
            return;
        }
        for t in transfers {
            tracing::info!(
                key = "control",
                from = t.from.as_ref().map(|s| s.subject.name.as_str()).unwrap_or("-"),
                to = t.to.as_ref().map(|s| s.subject.name.as_str()).unwrap_or("-"),
                channel = t.from.as_ref().or(t.to.as_ref()).map(|s| s.resource).unwrap_or(0),
                "control transfer"
            );
        }
        self.relay.publish_now(&self.control_frame(serde_json::json!({ "transfers": transfers })));
    }

    /// Publish another node's transfers on the control-state channel (cluster mode; its
    /// leaseholder logged them). Called by the arbiter while it holds its lock.
    pub(crate) fn publish_peer_transfers(&self, transfers: &[Transfer]) {
        self.relay.publish_now(&self.control_frame(serde_json::json!({ "transfers": transfers })));
    }

    /// Run `f` with the current control state as a frame (sent first to new control-channel
    /// streamers) while no transfer can be published: a subscription made inside `f`
    /// receives exactly the transfers after the state it was given.
    pub(crate) fn with_control_snapshot<R>(&self, f: impl FnOnce(Frame) -> R) -> R {
        self.arbiter.with_states(|states: Vec<State>| {
            let transfers: Vec<Transfer> = states.into_iter().map(|s| Transfer { from: None, to: Some(s) }).collect();
            f(self.control_frame(serde_json::json!({ "snapshot": true, "transfers": transfers })))
        })
    }
}
