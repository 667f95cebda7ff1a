//! The telemetry vocabulary: data types, time, series and frames.
//!
//! These types are shared by every layer (storage, relay, control, server) and by the
//! Python and Node bindings. A [`Series`] never copies its samples when cloned, sliced or
//! fanned out: its buffer is reference counted.

mod alignment;
#[cfg(feature = "arrow")]
pub mod arrow;
mod data_type;
mod frame;
mod reduce;
mod series;
mod stats;
mod time;

pub use alignment::Alignment;
pub use data_type::{DataType, Sample, UnknownDataType};
pub use frame::Frame;
pub use reduce::{ReduceGroup, ReduceMethod, Reduction, reduce_frame, reducible};
pub use series::{Series, SeriesError};
pub use stats::bucket_quantile;
pub use time::{TimeRange, TimeSpan, TimeStamp, parse_duration};

/// A channel's key: assigned in increasing order by the channel registry and never reused
/// (see [`crate::channel`], which re-exports it as `channel::ChannelKey`). It lives here
/// because a [`Frame`] is keyed by it and `telem` depends on no other module.
pub type ChannelKey = u32;
