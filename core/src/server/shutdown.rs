//! Graceful shutdown: one signal every task watches, and a count of live streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// The shutdown signal and the live-stream count.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    live: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

/// Held by a live stream; dropping it counts the stream as finished.
#[derive(Debug)]
pub(crate) struct Live(Shutdown);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown { tx: Arc::new(watch::channel(false).0), live: Arc::default(), idle: Arc::default() }
    }

    /// Start shutting down.
    pub(crate) fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// True once shutdown started.
    pub(crate) fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves when shutdown starts (at once if it already has).
    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Count a live stream until the returned guard drops.
    pub(crate) fn live(&self) -> Live {
        self.live.fetch_add(1, Ordering::AcqRel);
        Live(self.clone())
    }

    /// Wait until no stream is live, at most `grace`; false on timeout.
    pub(crate) async fn drained(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.idle.notified();
            if self.live.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.live.load(Ordering::Acquire) == 0;
            }
        }
    }
}
