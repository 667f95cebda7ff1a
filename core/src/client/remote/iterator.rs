//! The remote iterator: one request, one reply (plus a frame for `next`/`prev`).

use std::sync::Arc;
use std::time::Duration;

use super::http::Http;
use super::ws::{self, Incoming, TaskGuard, WsConn};
use crate::error::{Error, Result};
use crate::framer::{IterSpan, IteratorConfig};
use crate::protocol::messages::{IteratorRequest, IteratorResponse};
use crate::protocol::{NetError, StreamKind, codec};
use crate::telem::{Frame, TimeRange, TimeStamp};

/// How long a single iterator step may take on the node.
const REPLY_IDLE: Duration = Duration::from_secs(120);

/// An iterator on a remote node.
#[derive(Debug)]
pub(crate) struct RemoteIterator {
    conn: Arc<WsConn>,
    value: Frame,
    /// The view the node reported after the last `next`/`prev`.
    view: Option<TimeRange>,
    closed: bool,
    _keepalive: TaskGuard,
}

fn protocol(what: impl std::fmt::Display) -> Error {
    NetError::protocol(format!("unexpected message from the node: {what}")).into()
}

impl RemoteIterator {
    pub(crate) async fn open(http: &Http, config: IteratorConfig) -> Result<RemoteIterator> {
        let conn = WsConn::open(http, StreamKind::Iterator).await?;
        conn.send_json(&IteratorRequest::Open { config }).await?;
        let first = {
            let mut s = conn.stream.lock().await;
            ws::recv(&mut s, http.endpoint.timeout().max(REPLY_IDLE)).await?
        };
        let keepalive_ms = match first {
            Incoming::Json(b) => match super::http::decode::<IteratorResponse>(&b)? {
                IteratorResponse::Opened { keepalive_ms } => keepalive_ms,
                IteratorResponse::Closed { error: Some(e) } | IteratorResponse::Failed { error: e } => return Err(e.into()),
                other => return Err(protocol(format!("{other:?}"))),
            },
            Incoming::Frame(_) => return Err(protocol("a frame before the iterator opened")),
            Incoming::Closed(reason) => return Err(NetError::ConnectionLost { reason }.into()),
        };
        Ok(RemoteIterator {
            _keepalive: ws::keepalive(Arc::downgrade(&conn), Duration::from_millis(keepalive_ms), None),
            conn,
            value: Frame::new(),
            view: None,
            closed: false,
        })
    }

    async fn recv(&mut self) -> Result<Incoming> {
        let mut s = self.conn.stream.lock().await;
        match ws::recv(&mut s, REPLY_IDLE).await {
            Ok(Incoming::Closed(reason)) => {
                self.closed = true;
                Err(NetError::ConnectionLost { reason }.into())
            }
            Err(e) => {
                self.closed = true;
                Err(e)
            }
            Ok(m) => Ok(m),
        }
    }

    async fn command(&mut self, req: IteratorRequest) -> Result<bool> {
        if self.closed {
            return Err(Error::Closed { what: "the iterator".into() });
        }
        self.conn.send_json(&req).await?;
        let (ok, has_frame) = match self.recv().await? {
            Incoming::Json(b) => match super::http::decode::<IteratorResponse>(&b)? {
                IteratorResponse::Result { ok, frame, view } => {
                    self.view = view;
                    (ok, frame)
                }
                IteratorResponse::Failed { error } => return Err(error.into()),
                IteratorResponse::Closed { error } => {
                    self.closed = true;
                    return Err(error.map_or(Error::Closed { what: "the iterator".into() }, Error::from));
                }
                other => return Err(protocol(format!("{other:?}"))),
            },
            Incoming::Frame(_) => return Err(protocol("a frame without a result")),
            Incoming::Closed(reason) => return Err(NetError::ConnectionLost { reason }.into()),
        };
        self.value = Frame::new();
        if has_frame {
            match self.recv().await? {
                Incoming::Frame(b) => {
                    self.value = codec::decode_compressed(b).map_err(|e| NetError::protocol(format!("bad frame from the node: {e}")))?
                }
                _ => return Err(protocol("a result promised a frame that did not follow")),
            }
        }
        Ok(ok)
    }

    pub(crate) async fn seek_first(&mut self) -> Result<bool> {
        self.command(IteratorRequest::SeekFirst).await
    }

    pub(crate) async fn seek_last(&mut self) -> Result<bool> {
        self.command(IteratorRequest::SeekLast).await
    }

    pub(crate) async fn seek_ge(&mut self, t: TimeStamp) -> Result<bool> {
        self.command(IteratorRequest::SeekGe { t }).await
    }

    pub(crate) async fn seek_le(&mut self, t: TimeStamp) -> Result<bool> {
        self.command(IteratorRequest::SeekLe { t }).await
    }

    pub(crate) async fn next(&mut self, span: IterSpan) -> Result<bool> {
        self.command(IteratorRequest::Next { span }).await
    }

    pub(crate) async fn prev(&mut self, span: IterSpan) -> Result<bool> {
        self.command(IteratorRequest::Prev { span }).await
    }

    pub(crate) fn view(&self) -> Option<TimeRange> {
        self.view
    }

    pub(crate) fn value(&self) -> &Frame {
        &self.value
    }

    pub(crate) fn take_value(&mut self) -> Frame {
        std::mem::take(&mut self.value)
    }
}
