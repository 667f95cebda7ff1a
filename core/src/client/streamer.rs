//! [`ClientStreamer`]: a streamer on either backend.

use std::time::Duration;

use crate::channel::ChannelKey;
use crate::error::Result;
use crate::telem::Frame;

pub(super) enum StreamerInner {
    Embedded(crate::relay::Streamer),
    #[cfg(feature = "remote")]
    Remote(super::remote::RemoteStreamer),
}

/// A streamer from [`crate::Client::open_streamer`].
pub struct ClientStreamer {
    pub(super) inner: StreamerInner,
}

impl std::fmt::Debug for ClientStreamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStreamer").finish_non_exhaustive()
    }
}

impl ClientStreamer {
    /// The next frame. A lag notice is returned once as
    /// `Err(Error::Stream(StreamError::Lagged { .. }))`; later calls continue.
    ///
    /// # Errors
    /// [`crate::relay::StreamError`] (wrapped) or a transport error.
    pub async fn next(&mut self) -> Result<Frame> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.next().await?),
            #[cfg(feature = "remote")]
            StreamerInner::Remote(s) => s.next().await,
        }
    }

    /// The next frame, or `None` after `timeout`.
    ///
    /// # Errors
    /// As [`ClientStreamer::next`].
    pub async fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => match tokio::time::timeout(timeout, s.next()).await {
                Ok(r) => Ok(Some(r?)),
                Err(_) => Ok(None),
            },
            #[cfg(feature = "remote")]
            StreamerInner::Remote(s) => s.next_timeout(timeout).await,
        }
    }

    /// Receive without waiting.
    ///
    /// # Errors
    /// As [`ClientStreamer::next`].
    pub fn try_next(&mut self) -> Result<Option<Frame>> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.try_recv()?),
            #[cfg(feature = "remote")]
            StreamerInner::Remote(s) => s.try_next(),
        }
    }

    /// Blocking receive for threads outside any async runtime (embedded backend waits on
    /// a condition variable; it never needs a runtime).
    ///
    /// # Errors
    /// As [`ClientStreamer::next`].
    pub fn next_blocking(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.recv_timeout(timeout)?),
            #[cfg(feature = "remote")]
            StreamerInner::Remote(s) => s.next_blocking(timeout),
        }
    }

    /// Change the channels received.
    ///
    /// # Errors
    /// [`crate::relay::StreamError::Closed`].
    pub async fn update_channels(&mut self, keys: Vec<ChannelKey>) -> Result<()> {
        match &mut self.inner {
            StreamerInner::Embedded(s) => Ok(s.update_channels(keys)?),
            #[cfg(feature = "remote")]
            StreamerInner::Remote(s) => s.update_channels(keys).await,
        }
    }

    /// Close the streamer.
    pub async fn close(&mut self) {
        match &mut self.inner {
            StreamerInner::Embedded(s) => s.close(),
            #[cfg(feature = "remote")]
            StreamerInner::Remote(s) => s.close().await,
        }
    }
}
