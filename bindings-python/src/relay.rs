//! Streamers: blocking reads in short GIL-free slices (so Ctrl-C works) and awaitables.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use pyo3::prelude::*;
use telemetron::client::ClientStreamer;
use telemetron::relay::{LagPolicy, StreamError};

use crate::channel::{ChanMap, channel_refs};
use crate::error::{IntoPyResult, invalid, to_py};
use crate::runtime::runtime;
use crate::telem::NativeFrame;

type Shared = Arc<tokio::sync::Mutex<Option<ClientStreamer>>>;

/// Parse a lag policy name.
pub fn lag_policy(p: &str) -> PyResult<LagPolicy> {
    match p {
        "notify" => Ok(LagPolicy::Notify),
        "disconnect" => Ok(LagPolicy::Disconnect),
        other => Err(invalid(format!("lag policy must be \"notify\" or \"disconnect\", not {other:?}"))),
    }
}

/// An open streamer (see `telemetron.Streamer`, which wraps it).
#[pyclass(frozen, module = "telemetron._native")]
#[derive(Debug)]
pub struct Streamer {
    inner: Shared,
    chans: RwLock<Arc<ChanMap>>,
    client: telemetron::Client,
    /// Set by `close`; wakes pending awaitables so closing never waits for a frame.
    stop: Arc<(AtomicBool, tokio::sync::Notify)>,
}

impl Streamer {
    pub fn new(s: ClientStreamer, chans: Arc<ChanMap>, client: telemetron::Client) -> Streamer {
        Streamer {
            inner: Arc::new(tokio::sync::Mutex::new(Some(s))),
            chans: RwLock::new(chans),
            client,
            stop: Arc::new((AtomicBool::new(false), tokio::sync::Notify::new())),
        }
    }
}

pub(crate) fn closed() -> telemetron::Error {
    StreamError::Closed.into()
}

/// Wait for `recv` (called with the GIL released, for at most the duration it is given)
/// in slices of `slice` seconds, checking for Ctrl-C between them, until it returns
/// something or `timeout` seconds (None: forever) have passed.
pub(crate) fn wait_sliced<T: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    slice: f64,
    mut recv: impl FnMut(Duration) -> telemetron::Result<Option<T>> + Send,
) -> PyResult<Option<T>> {
    let start = Instant::now();
    let total = match timeout {
        Some(t) if !(t >= 0.0 && t.is_finite()) => {
            return Err(invalid(format!("timeout must be a finite number of seconds >= 0, not {t}")));
        }
        Some(t) => Some(Duration::from_secs_f64(t)),
        None => None,
    };
    let slice = Duration::from_secs_f64(slice.clamp(0.001, 1.0));
    loop {
        let wait = match total {
            Some(t) => t.saturating_sub(start.elapsed()).min(slice),
            None => slice,
        };
        match py.detach(|| recv(wait)).py()? {
            Some(v) => return Ok(Some(v)),
            None => {
                py.check_signals()?;
                if total.is_some_and(|t| start.elapsed() >= t) {
                    return Ok(None);
                }
            }
        }
    }
}

#[pymethods]
impl Streamer {
    /// The next frame, or None after `timeout` seconds (None: wait forever). Waits in
    /// slices of `slice` seconds with the GIL released, checking for Ctrl-C between them.
    #[pyo3(signature = (timeout=None, slice=0.05))]
    fn read(&self, py: Python<'_>, timeout: Option<f64>, slice: f64) -> PyResult<Option<NativeFrame>> {
        let inner = &self.inner;
        // A blocking receive (not `block_on` of the async one): it honours the streamer's
        // `spin_us` on both backends.
        let frame = wait_sliced(py, timeout, slice, |wait| match inner.blocking_lock().as_mut() {
            Some(s) => s.next_blocking(wait),
            None => Err(closed()),
        })?;
        Ok(frame.map(|frame| NativeFrame { frame, chans: self.chans.read().clone(), complete: false }))
    }

    /// Awaitable of the next frame (raises the streamer errors, `StreamClosed` at the end).
    fn next_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        let chans = self.chans.read().clone();
        let stop = self.stop.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let stopped = stop.1.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if stop.0.load(Ordering::Acquire) {
                return Err(to_py(closed()));
            }
            let r = tokio::select! {
                r = async {
                    let mut g = inner.lock().await;
                    match g.as_mut() {
                        Some(s) => s.next().await,
                        None => Err(closed()),
                    }
                } => r,
                () = &mut stopped => Err(closed()),
            };
            r.map(|frame| NativeFrame { frame, chans, complete: false }).map_err(to_py)
        })
    }

    /// Change the channels received (takes effect for the next frame published).
    fn update_channels(&self, py: Python<'_>, channels: &Bound<'_, PyAny>) -> PyResult<()> {
        let refs = channel_refs(channels)?;
        let client = self.client.clone();
        let inner = &self.inner;
        let chans = py
            .detach(|| {
                runtime().block_on(async {
                    let chans = client.channels(&refs).await?;
                    let mut g = inner.lock().await;
                    match g.as_mut() {
                        Some(s) => s.update_channels(chans.iter().map(|c| c.key).collect()).await?,
                        None => return Err(closed()),
                    }
                    Ok(chans)
                })
            })
            .py()?;
        *self.chans.write() = ChanMap::new(chans);
        Ok(())
    }

    /// Keys of the channels received.
    fn keys(&self) -> Vec<u32> {
        let mut k: Vec<u32> = self.chans.read().by_key.keys().copied().collect();
        k.sort_unstable();
        k
    }

    /// Stop receiving. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.stop.0.store(true, Ordering::Release);
        self.stop.1.notify_waiters();
        let inner = &self.inner;
        py.detach(|| {
            runtime().block_on(async {
                if let Some(mut s) = inner.lock().await.take() {
                    s.close().await;
                }
            })
        });
    }
}
