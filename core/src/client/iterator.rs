//! [`ClientIterator`]: an iterator on either backend.

use crate::error::Result;
use crate::framer::IterSpan;
use crate::telem::{Frame, TimeRange, TimeStamp};

pub(super) enum IteratorInner {
    Embedded(crate::framer::RangeIterator),
    #[cfg(feature = "remote")]
    Remote(super::remote::RemoteIterator),
}

/// An iterator from [`crate::Client::open_iterator`].
pub struct ClientIterator {
    pub(super) inner: IteratorInner,
}

impl std::fmt::Debug for ClientIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIterator").finish_non_exhaustive()
    }
}

impl ClientIterator {
    /// See [`crate::framer::RangeIterator::seek_first`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_first(&mut self) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_first(),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.seek_first().await,
        }
    }

    /// See [`crate::framer::RangeIterator::seek_last`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_last(&mut self) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_last(),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.seek_last().await,
        }
    }

    /// See [`crate::framer::RangeIterator::seek_ge`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_ge(&mut self, t: TimeStamp) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_ge(t),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.seek_ge(t).await,
        }
    }

    /// See [`crate::framer::RangeIterator::seek_le`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn seek_le(&mut self, t: TimeStamp) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.seek_le(t),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.seek_le(t).await,
        }
    }

    /// See [`crate::framer::RangeIterator::next`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn next(&mut self, span: IterSpan) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.next(span),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.next(span).await,
        }
    }

    /// See [`crate::framer::RangeIterator::prev`].
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn prev(&mut self, span: IterSpan) -> Result<bool> {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.prev(span),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.prev(span).await,
        }
    }

    /// The time range the iterator covers now (see [`crate::framer::RangeIterator::view`]).
    /// `None` before a remote iterator's first command, or from a node older than this
    /// method.
    pub fn view(&self) -> Option<TimeRange> {
        match &self.inner {
            IteratorInner::Embedded(i) => Some(i.view()),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.view(),
        }
    }

    /// The frame read by the last `next`/`prev`.
    pub fn value(&self) -> &Frame {
        match &self.inner {
            IteratorInner::Embedded(i) => i.value(),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.value(),
        }
    }

    /// Take the frame read by the last `next`/`prev`.
    pub fn take_value(&mut self) -> Frame {
        match &mut self.inner {
            IteratorInner::Embedded(i) => i.take_value(),
            #[cfg(feature = "remote")]
            IteratorInner::Remote(i) => i.take_value(),
        }
    }
}
