//! The remote streamer: frames pushed by the node; lag notices and closes arrive as the
//! same [`StreamError`]s as on the embedded backend.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::http::Http;
use super::ws::{self, Incoming, TaskGuard, WsConn};
use crate::channel::ChannelKey;
use crate::error::{Error, Result};
use crate::protocol::messages::{StreamerRequest, StreamerResponse};
use crate::protocol::{NetError, StreamKind, codec};
use crate::relay::{StreamError, StreamerConfig};
use crate::telem::Frame;

/// A streamer on a remote node.
#[derive(Debug)]
pub(crate) struct RemoteStreamer {
    conn: Arc<WsConn>,
    /// Frames and notices read while waiting for an update's acknowledgement.
    queued: VecDeque<Result<Frame>>,
    next_id: u64,
    /// Silence longer than this means the node is gone (it pings more often).
    idle: Duration,
    /// When the node was last heard from.
    last_rx: tokio::time::Instant,
    closed: bool,
    /// How long `next_blocking` polls before it parks (`StreamerConfig::spin_us`).
    spin: Duration,
    handle: tokio::runtime::Handle,
    _keepalive: TaskGuard,
}

enum Step {
    Item(Result<Frame>),
    Updated(u64),
    Failed(u64, Error),
    Skip,
}

impl RemoteStreamer {
    pub(crate) async fn open(http: &Http, config: StreamerConfig) -> Result<RemoteStreamer> {
        let spin = Duration::from_micros(config.spin_us.min(StreamerConfig::MAX_SPIN_US));
        let conn = WsConn::open(http, StreamKind::Streamer).await?;
        conn.send_json(&StreamerRequest::Open { config }).await?;
        let first = {
            let mut s = conn.stream.lock().await;
            ws::recv(&mut s, http.endpoint.timeout().max(Duration::from_secs(30))).await?
        };
        let keepalive_ms = match first {
            Incoming::Json(b) => match super::http::decode::<StreamerResponse>(&b)? {
                StreamerResponse::Opened { keepalive_ms } => keepalive_ms,
                StreamerResponse::Closed { error: Some(e) } => return Err(e.into()),
                other => return Err(NetError::protocol(format!("expected the streamer to open, got {other:?}")).into()),
            },
            Incoming::Frame(_) => return Err(NetError::protocol("expected the streamer to open, got a frame").into()),
            Incoming::Closed(reason) => return Err(NetError::ConnectionLost { reason }.into()),
        };
        let every = Duration::from_millis(keepalive_ms);
        Ok(RemoteStreamer {
            _keepalive: ws::keepalive(Arc::downgrade(&conn), every, None),
            conn,
            queued: VecDeque::new(),
            next_id: 1,
            idle: every * 4 + Duration::from_secs(1),
            last_rx: tokio::time::Instant::now(),
            closed: false,
            spin,
            handle: tokio::runtime::Handle::current(),
        })
    }

    fn step(&mut self, m: Result<Incoming>) -> Step {
        match m {
            Ok(Incoming::Frame(b)) => {
                Step::Item(codec::decode_compressed(b).map_err(|e| NetError::protocol(format!("bad frame from the node: {e}")).into()))
            }
            Ok(Incoming::Json(b)) => match serde_json::from_slice::<StreamerResponse>(&b) {
                Ok(StreamerResponse::Notice { error }) => Step::Item(Err(error.into())),
                Ok(StreamerResponse::Updated { id }) => Step::Updated(id),
                Ok(StreamerResponse::Failed { id, error }) => Step::Failed(id, error.into()),
                Ok(StreamerResponse::Closed { error }) => {
                    self.closed = true;
                    Step::Item(Err(error.map_or(Error::Stream(StreamError::Closed), Error::from)))
                }
                Ok(StreamerResponse::Opened { .. }) => Step::Skip,
                Err(e) => Step::Item(Err(NetError::protocol(format!("unexpected message from the node: {e}")).into())),
            },
            Ok(Incoming::Closed(_)) => {
                self.closed = true;
                Step::Item(Err(StreamError::Closed.into()))
            }
            Err(e) => {
                self.closed = true;
                Step::Item(Err(e))
            }
        }
    }

    pub(crate) async fn next(&mut self) -> Result<Frame> {
        loop {
            if let Some(r) = self.next_until(None).await? {
                return Ok(r);
            }
        }
    }

    pub(crate) async fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        self.next_until(Some(tokio::time::Instant::now() + timeout)).await
    }

    /// The next frame, or `None` at `deadline`; one timer per call.
    async fn next_until(&mut self, deadline: Option<tokio::time::Instant>) -> Result<Option<Frame>> {
        loop {
            if let Some(r) = self.queued.pop_front() {
                return r.map(Some);
            }
            if self.closed {
                return Err(StreamError::Closed.into());
            }
            let dead = self.last_rx + self.idle;
            let until = deadline.map_or(dead, |d| d.min(dead));
            let m = {
                let mut s = self.conn.stream.lock().await;
                ws::recv_until(&mut s, until, &mut self.last_rx).await
            };
            let m = match m {
                Ok(Some(m)) => Ok(m),
                Ok(None) if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => return Ok(None),
                Ok(None) if tokio::time::Instant::now() >= self.last_rx + self.idle => {
                    Err(NetError::KeepAliveTimeout { millis: self.idle.as_millis() as u64 }.into())
                }
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            if let Step::Item(r) = self.step(m) {
                return r.map(Some);
            }
        }
    }

    pub(crate) fn try_next(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some(r) = self.queued.pop_front() {
                return r.map(Some);
            }
            if self.closed {
                return Err(StreamError::Closed.into());
            }
            let m = match self.conn.stream.try_lock() {
                Ok(mut s) => ws::try_recv(&mut s),
                Err(_) => Ok(None),
            };
            let m = match m {
                Ok(None) => return Ok(None),
                Ok(Some(m)) => Ok(m),
                Err(e) => Err(e),
            };
            if let Step::Item(r) = self.step(m) {
                return r.map(Some);
            }
        }
    }

    pub(crate) fn next_blocking(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InvalidArgument {
                reason: "next_blocking on a remote streamer cannot run inside an async runtime; use next().await".into(),
            });
        }
        // Spinning: poll the socket's readiness, which the runtime's reactor sets, instead
        // of parking this thread and having the reactor's worker wake it (one wake-up of
        // an idle CPU fewer per frame).
        let start = std::time::Instant::now();
        if !self.spin.is_zero() {
            let mut got = None;
            crate::relay::spin_until(start + self.spin.min(timeout), || match self.try_next() {
                Ok(None) => false,
                r => {
                    got = Some(r);
                    true
                }
            });
            if let Some(r) = got {
                return r;
            }
        }
        let handle = self.handle.clone();
        handle.block_on(self.next_timeout(timeout.saturating_sub(start.elapsed())))
    }

    pub(crate) async fn update_channels(&mut self, keys: Vec<ChannelKey>) -> Result<()> {
        if self.closed {
            return Err(StreamError::Closed.into());
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conn.send_json(&StreamerRequest::Update { id, channels: keys }).await.map_err(|_| Error::Stream(StreamError::Closed))?;
        loop {
            let m = {
                let mut s = self.conn.stream.lock().await;
                ws::recv(&mut s, self.idle).await
            };
            match self.step(m) {
                Step::Updated(i) if i == id => return Ok(()),
                Step::Failed(i, e) if i == id => return Err(e),
                Step::Item(r) => {
                    let end = self.closed;
                    self.queued.push_back(r);
                    if end {
                        return Err(StreamError::Closed.into());
                    }
                }
                _ => {}
            }
        }
    }

    pub(crate) async fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.queued.clear();
        let _ = self.conn.send_json(&StreamerRequest::Close).await;
        self.conn.close().await;
    }
}
