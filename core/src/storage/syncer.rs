//! Background threads: group-commit sync and space reclaim share this small runner.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{Durability, Storage};

/// A wake-up signal for a background thread.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signal(Arc<(Mutex<SignalState>, Condvar)>);

#[derive(Debug, Default)]
struct SignalState {
    woken: bool,
    stop: bool,
}

impl Signal {
    pub(crate) fn notify(&self) {
        self.0.0.lock().woken = true;
        self.0.1.notify_all();
    }

    fn stop(&self) {
        self.0.0.lock().stop = true;
        self.0.1.notify_all();
    }

    /// Wait up to `timeout` or until notified; false once stopped.
    fn wait(&self, timeout: Duration) -> bool {
        let mut st = self.0.0.lock();
        if !st.woken && !st.stop {
            self.0.1.wait_for(&mut st, timeout);
        }
        st.woken = false;
        !st.stop
    }
}

/// A named background thread and its stop signal.
#[derive(Debug)]
pub(crate) struct Background {
    signal: Signal,
    handle: Option<JoinHandle<()>>,
}

impl Background {
    pub(crate) fn stop(mut self) {
        self.signal.stop();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Run `tick` every `period` (or on signal) on a thread named `name` until stopped or the
/// storage is gone.
pub(crate) fn spawn_loop(
    name: &str,
    signal: Signal,
    period: Duration,
    storage: Weak<Storage>,
    tick: impl Fn(&Storage) + Send + 'static,
) -> Background {
    let s = signal.clone();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            while s.wait(period) {
                let Some(st) = storage.upgrade() else { break };
                tick(&st);
            }
        })
        .ok();
    Background { signal, handle }
}

/// The group-commit thread: syncs segments of interval-durability writers.
pub(crate) fn spawn_syncer(storage: Weak<Storage>) -> Background {
    let Some(st) = storage.upgrade() else {
        return Background { signal: Signal::default(), handle: None };
    };
    let period = match st.opts.durability {
        Durability::Interval { interval, .. } => interval,
        _ => Duration::from_secs(1),
    };
    let signal = st.sync_signal.clone();
    drop(st);
    spawn_loop("telemetron:sync", signal, period, storage, |st| {
        let t = std::time::Instant::now();
        match st.segments.sync_dirty(false) {
            Ok(0) => {}
            Ok(n) => tracing::trace!(key = "storage/syncer", segments = n, took_us = t.elapsed().as_micros() as u64, "group commit sync"),
            Err(e) => tracing::error!(key = "storage/syncer", error = %e, "background sync failed; will retry"),
        }
    })
}
