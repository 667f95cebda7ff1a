//! The framer: writers, streamers and iterators over storage, relay and control.
//!
//! A [`Writer`]'s path is: validation → control gate → relay tap → storage buffer. The frame
//! is validated completely first (nothing of a rejected frame is stored or streamed), then
//! channels the writer does not control are dropped and reported, then the frame is
//! published live, then buffered for the next commit. A [`RangeIterator`] walks a time range of
//! stored channels in chunks.

mod hub;
mod iterator;
mod writer;

pub(crate) use hub::Hub;
pub(crate) use iterator::read_view;
pub use iterator::{IterSpan, IteratorConfig, RangeIterator};

/// The old name of [`RangeIterator`], which shadowed the std `Iterator` trait.
#[deprecated(note = "renamed to `RangeIterator`, which does not shadow `std::iter::Iterator`")]
pub type Iterator = RangeIterator;
pub use writer::{DroppedWrite, WriteReport, Writer, WriterConfig, WriterMode};
