//! The relay: live frames from writers to streamers, in microseconds.
//!
//! Writers publish each validated frame to the relay *before* it is handed to storage, so
//! live delivery never waits for disk. Virtual channels take the same path and are simply
//! never stored.
//!
//! ## Demand
//! Each streamer declares the channels it wants; the relay keeps, per channel, the list of
//! streamers that want it. Each streamer receives just its channels of a frame: every queue
//! gets a reference to the one published frame, and the receiver takes its own series out
//! (`hub::Queued`). When no streamer wants any channel of a writer, publishing is one
//! atomic load.
//!
//! ## Fan-out
//! Series are reference counted: every streamer receives the same buffers; nothing is
//! copied per subscriber. A frame for a few streamers is queued to them by the writer; a
//! frame for many is handed to the dispatcher (`dispatch.rs`), whose thread queues it to
//! each, so a writer's cost does not grow with the crowd watching it. Every streamer
//! receives frames in publish order either way.
//!
//! ## Lagging
//! Every streamer has a bounded queue (default 1024 frames). A writer never waits for a
//! streamer: if a queue is full, the oldest frame is dropped and counted. The streamer's
//! next receive returns [`StreamError::Lagged`] with the number of frames lost, then
//! continues with the newest frames ([`LagPolicy::Notify`], the default). With
//! [`LagPolicy::Disconnect`] the streamer is closed instead and receives
//! [`StreamError::Disconnected`]. One slow streamer never delays another: a publish costs
//! each streamer one short, uncontended queue push, on the writer's thread or the
//! dispatcher's. Drops and disconnects are counted in
//! [`RelayMetrics`].
//!
//! ## Reductions
//! For live plots a streamer may decimate (keep every n-th sample per channel, continuing
//! across frames) and throttle (deliver at most `rate` frames per second, merging the
//! frames in between). Both run on the receiving side, never on the writer's.
//!
//! ## Closing
//! Closing a streamer releases its demand at once. Closing the engine closes every
//! streamer: receivers get [`StreamError::Closed`] after the frames already queued.
//!
//! ## Checked with loom
//! The wake-up, spin, close and lag protocols above are model-checked on this code: under
//! `--cfg telemetron_loom` the primitives in `sync.rs` are loom's, and the models in
//! `core/tests/relay_loom.rs` (`make test-loom`) drive a real [`Streamer`].

mod dispatch;
mod hub;
#[cfg(telemetron_loom)]
#[doc(hidden)]
pub mod loom_model;
mod streamer;
mod sync;

pub use hub::{MirrorRoute, RelayMetrics, RelayMetricsSnapshot, StreamerMetrics};
pub(crate) use hub::{PublishCache, Relay};
pub(crate) use streamer::SnapshotHook;
#[cfg(feature = "remote")]
pub(crate) use streamer::spin_until;
pub use streamer::{LagPolicy, StreamError, Streamer, StreamerConfig};
