//! A stream relayed as it is: a cluster node passes a client's writer or iterator stream on
//! to the node that stores its channels, message for message, so every rule of that stream
//! (control at the leaseholder, write reports, authority notices) is the leaseholder's own
//! (docs/cluster.md §5).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use super::ws::{self, Incoming, TaskGuard, WsConn};
use crate::error::Result;
use crate::net::NetError;

/// How often a relayed stream pings the node it relays to (well inside any control
/// timeout a node accepts).
const PING_EVERY: Duration = Duration::from_millis(250);

/// Longest silence accepted from the node relayed to (it pings at least every quarter of
/// its control timeout).
const IDLE: Duration = Duration::from_secs(30);

/// A message from the node a stream is relayed to.
#[derive(Debug)]
pub enum RelayedMessage {
    /// A JSON message, as its text.
    Json(Bytes),
    /// A binary frame.
    Frame(Bytes),
    /// The node closed the stream, with this reason.
    Closed(String),
}

/// One stream opened on a node to relay another's messages (see [`crate::Client::relay_stream`]).
#[derive(Debug)]
pub struct RelayedStream {
    conn: Arc<WsConn>,
    _keepalive: TaskGuard,
}

impl RelayedStream {
    pub(crate) async fn open(http: &super::http::Http, kind: crate::protocol::StreamKind, compress: bool) -> Result<RelayedStream> {
        let conn = WsConn::open_with(http, kind, compress).await?;
        let keepalive = ws::keepalive(Arc::downgrade(&conn), PING_EVERY, None);
        Ok(RelayedStream { conn, _keepalive: keepalive })
    }

    /// Send a JSON message given as its text.
    ///
    /// # Errors
    /// `protocol.violation` if it is not UTF-8; `net.connection_lost`.
    pub async fn send_json_text(&self, text: Bytes) -> Result<()> {
        let text = String::from_utf8(text.to_vec()).map_err(|_| NetError::protocol("a JSON message is not UTF-8"))?;
        self.conn.sink.lock().await.send(Message::text(text)).await.map_err(|e| NetError::lost(e).into())
    }

    /// Send a binary frame.
    ///
    /// # Errors
    /// `net.connection_lost`.
    pub async fn send_frame(&self, frame: Bytes) -> Result<()> {
        self.conn.send_frame(frame).await
    }

    /// The next message from the node.
    ///
    /// # Errors
    /// `net.connection_lost`; `net.keepalive_timeout` after 30 s without any traffic.
    pub async fn recv(&self) -> Result<RelayedMessage> {
        let mut stream = self.conn.stream.lock().await;
        Ok(match ws::recv(&mut stream, IDLE).await? {
            Incoming::Json(b) => RelayedMessage::Json(b),
            Incoming::Frame(b) => RelayedMessage::Frame(b),
            Incoming::Closed(reason) => RelayedMessage::Closed(reason),
        })
    }

    /// Close the stream (best effort): the node then ends it as a vanished client's.
    pub async fn close(&self) {
        self.conn.close().await;
    }
}
