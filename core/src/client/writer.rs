//! [`ClientWriter`]: a writer on either backend.

use crate::channel::ChannelKey;
use crate::control::Authority;
use crate::error::Result;
use crate::framer::WriteReport;
use crate::telem::{Frame, TimeStamp};

// The embedded writer is used in place (no box) because it is the hot path in-process.
#[allow(clippy::large_enum_variant)]
pub(super) enum WriterInner {
    Embedded(crate::framer::Writer),
    #[cfg(feature = "remote")]
    Remote(super::remote::RemoteWriter),
}

/// A writer from [`crate::Client::open_writer`].
pub struct ClientWriter {
    pub(super) inner: WriterInner,
}

impl std::fmt::Debug for ClientWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientWriter").finish_non_exhaustive()
    }
}

impl ClientWriter {
    /// Write a frame; see [`crate::framer::Writer::write`].
    ///
    /// # Errors
    /// As the embedded writer.
    pub async fn write(&mut self, frame: &Frame) -> Result<WriteReport> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.write(frame),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.write(frame).await,
        }
    }

    /// Wait until every write made so far has been applied, and report what was dropped
    /// since the last report (see [`WriteReport`]). Embedded writes are applied when made,
    /// so this returns an empty report at once; a remote writer asks the node and waits.
    ///
    /// # Errors
    /// A write the node rejected, or a transport error.
    pub async fn confirm(&mut self) -> Result<WriteReport> {
        match &mut self.inner {
            WriterInner::Embedded(_) => Ok(WriteReport::default()),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.confirm().await,
        }
    }

    /// [`ClientWriter::write`], then [`ClientWriter::confirm`]: when it returns, every
    /// channel of `frame` not named by [`WriteReport::not_written`] has been applied. What a
    /// control sequence uses for commands, which must take effect or say why not.
    ///
    /// # Errors
    /// As [`ClientWriter::write`] and [`ClientWriter::confirm`].
    pub async fn write_confirmed(&mut self, frame: &Frame) -> Result<WriteReport> {
        let mut report = self.write(frame).await?;
        if !report.unauthorized.is_empty() && report.unauthorized.len() == frame.unique_keys().len() {
            return Ok(report); // nothing was sent
        }
        report.dropped.extend(self.confirm().await?.dropped);
        Ok(report)
    }

    /// Commit; returns the committed end.
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn commit(&mut self) -> Result<TimeStamp> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.commit(),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.commit().await,
        }
    }

    /// Set one authority for every channel.
    ///
    /// # Errors
    /// A transport error (remote).
    pub async fn set_authority(&mut self, authority: Authority) -> Result<()> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.set_authority(authority),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.set_authority(authority).await,
        }
    }

    /// Set the authority of some channels.
    ///
    /// # Errors
    /// [`crate::control::ControlError::UnknownChannel`].
    pub async fn set_authorities(&mut self, changes: &[(ChannelKey, Authority)]) -> Result<()> {
        match &mut self.inner {
            WriterInner::Embedded(w) => w.set_authorities(changes),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.set_authorities(changes).await,
        }
    }

    /// True if this writer controls `key` (and its index) now.
    pub fn has_control(&self, key: ChannelKey) -> bool {
        match &self.inner {
            WriterInner::Embedded(w) => w.has_control(key),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.has_control(key),
        }
    }

    /// Commit and close; returns the committed end.
    ///
    /// # Errors
    /// A storage or transport error.
    pub async fn close(self) -> Result<TimeStamp> {
        match self.inner {
            WriterInner::Embedded(w) => w.close(),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.close().await,
        }
    }

    /// Close without committing.
    pub async fn abort(self) {
        match self.inner {
            WriterInner::Embedded(w) => w.abort(),
            #[cfg(feature = "remote")]
            WriterInner::Remote(w) => w.abort().await,
        }
    }
}
