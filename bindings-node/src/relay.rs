//! `relay`: live streamers.
//!
//! `next()` waits for a frame while holding the streamer; `updateChannels()` and `close()`
//! interrupt a pending `next()` (it gives the streamer up and takes it back afterwards), so
//! they never wait for the next frame to arrive. A lag notice is returned as a value
//! (`{ lagged }`), and the JS layer turns it into a `'lag'` event or an error per the
//! streamer's options.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::Client;
use telemetron::client::ClientStreamer;
use telemetron::relay::{LagPolicy, StreamError, StreamerConfig};
use tokio::sync::{Mutex, Notify};

use crate::channel::channel_refs;
use crate::error::{core, invalid};
use crate::telem::FrameJs;

/// How to open a streamer.
#[napi(object)]
pub struct StreamerOptionsJs {
    /// Queue capacity in frames (default 1024).
    pub capacity: Option<u32>,
    /// `"notify"` (default: drop the oldest frames and report how many) or `"disconnect"`.
    pub lag_policy: Option<String>,
    /// Keep every n-th sample of each channel.
    pub decimate: Option<u32>,
    /// Deliver at most this many frames per second, merging the frames in between.
    pub throttle_hz: Option<f64>,
}

pub(crate) fn streamer_config(keys: Vec<u32>, o: Option<&StreamerOptionsJs>) -> Result<StreamerConfig> {
    let mut c = StreamerConfig::new(keys);
    let Some(o) = o else { return Ok(c) };
    if let Some(cap) = o.capacity {
        if cap == 0 {
            return Err(invalid("capacity must be at least 1 frame"));
        }
        c.capacity = cap as usize;
    }
    c.lag_policy = match o.lag_policy.as_deref() {
        None | Some("notify") => LagPolicy::Notify,
        Some("disconnect") => LagPolicy::Disconnect,
        Some(p) => return Err(invalid(format!("lagPolicy {p:?} is not \"notify\" or \"disconnect\""))),
    };
    if let Some(d) = o.decimate {
        c.decimate = d.max(1);
    }
    if let Some(hz) = o.throttle_hz {
        if !(hz.is_finite() && hz >= 0.0) {
            return Err(invalid(format!("throttleHz {hz} must be a finite number >= 0")));
        }
        c.throttle_hz = hz;
    }
    Ok(c)
}

/// What `next()` produced: a frame, a lag notice, or the end of the stream (both empty).
#[napi(object, object_from_js = false)]
pub struct StreamEventJs {
    /// The next frame.
    pub frame: Option<FrameJs>,
    /// Frames lost because the streamer fell behind (lag policy `notify`).
    pub lagged: Option<f64>,
}

struct Shared {
    streamer: Mutex<ClientStreamer>,
    /// Wakes a pending `next()` so it lets go of the streamer.
    interrupt: Notify,
    /// Callers waiting for the streamer (updateChannels / close).
    pending: AtomicUsize,
    closed: AtomicBool,
}

/// A live subscription to channels.
#[napi]
pub struct Streamer {
    client: Client,
    shared: Arc<Shared>,
}

impl Streamer {
    pub(crate) fn new(client: Client, s: ClientStreamer) -> Streamer {
        Streamer {
            client,
            shared: Arc::new(Shared {
                streamer: Mutex::new(s),
                interrupt: Notify::new(),
                pending: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl Shared {
    /// Take the streamer away from a pending `next()`.
    async fn take(&self) -> tokio::sync::MutexGuard<'_, ClientStreamer> {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.interrupt.notify_waiters();
        let g = self.streamer.lock().await;
        self.pending.fetch_sub(1, Ordering::AcqRel);
        g
    }
}

#[napi]
impl Streamer {
    /// Wait for the next frame; `{}` (no frame, no lag) once the streamer is closed.
    #[napi]
    pub async fn next(&self) -> Result<StreamEventJs> {
        let sh = self.shared.clone();
        loop {
            if sh.closed.load(Ordering::Acquire) {
                return Ok(StreamEventJs { frame: None, lagged: None });
            }
            let mut g = sh.streamer.lock().await;
            let interrupted = sh.interrupt.notified();
            tokio::pin!(interrupted);
            interrupted.as_mut().enable();
            if sh.pending.load(Ordering::Acquire) > 0 {
                drop(g);
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                r = g.next() => {
                    return match r {
                        Ok(f) => Ok(StreamEventJs { frame: Some(FrameJs::from_core(f)), lagged: None }),
                        Err(telemetron::Error::Stream(StreamError::Lagged { dropped })) => {
                            Ok(StreamEventJs { frame: None, lagged: Some(dropped as f64) })
                        }
                        Err(telemetron::Error::Stream(StreamError::Closed)) => {
                            sh.closed.store(true, Ordering::Release);
                            Ok(StreamEventJs { frame: None, lagged: None })
                        }
                        Err(e) => Err(core(e)),
                    };
                }
                _ = &mut interrupted => {
                    drop(g);
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Change the channels received (keys or names); takes effect for the next frame.
    #[napi]
    pub async fn update_channels(&self, #[napi(ts_arg_type = "Array<number | string>")] channels: Vec<Either<u32, String>>) -> Result<()> {
        let keys: Vec<u32> = self.client.channels(&channel_refs(&channels)).await.map_err(core)?.iter().map(|c| c.key).collect();
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(core(StreamError::Closed.into()));
        }
        let mut g = self.shared.take().await;
        g.update_channels(keys).await.map_err(core)
    }

    /// Stop receiving; a pending and every later `next()` resolves empty. Idempotent.
    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.shared.closed.store(true, Ordering::Release);
        let mut g = self.shared.take().await;
        g.close().await;
        Ok(())
    }
}
