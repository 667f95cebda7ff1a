//! The framer: writers, iterators (and, with the relay, streamers) over the storage engine.
//!
//! A [`Writer`] validates each frame completely before any of it takes effect, buffers it,
//! and commits on request or automatically. Its path is: validation → (control gate) →
//! (relay tap) → storage. An [`Iterator`] walks a time range of channels in chunks.

mod iterator;
mod writer;

pub use iterator::{IterSpan, Iterator, IteratorConfig};
pub use writer::{Writer, WriterConfig, WriterMode};
