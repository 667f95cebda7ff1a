//! What every WebSocket stream does alike: keep-alive pings, the silence timeout,
//! shutdown, and sending JSON or frames.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;

use super::AppState;
use super::shutdown::Shutdown;
use crate::protocol::{CloseCode, NetError};

/// Something that happened on a stream.
#[derive(Debug)]
pub(crate) enum Event {
    /// A JSON control message.
    Json(Bytes),
    /// A binary frame.
    Frame(Bytes),
    /// The client closed the stream or the connection failed.
    Gone(String),
    /// Nothing arrived for the control timeout.
    TimedOut,
    /// A message exceeded the size limit (the stream cannot continue).
    TooLarge(NetError),
    /// The server is shutting down.
    Shutdown,
}

/// One stream's socket and keep-alive state.
pub(crate) struct Session {
    tx: SplitSink<WebSocket, Message>,
    rx: SplitStream<WebSocket>,
    last_rx: Instant,
    ping: tokio::time::Interval,
    timeout: Duration,
    /// Resolves at shutdown; created once (a waiter registered per message would contend
    /// across thousands of streams).
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    shut: bool,
    /// The keep-alive interval announced to the client.
    pub keepalive: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("keepalive", &self.keepalive).field("shut", &self.shut).finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(state: &AppState, socket: WebSocket) -> Session {
        let (tx, rx) = socket.split();
        let keepalive = state.config.keepalive();
        let mut ping = tokio::time::interval(keepalive);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Session {
            tx,
            rx,
            last_rx: Instant::now(),
            ping,
            timeout: state.config.control_timeout,
            shutdown: {
                let s: Shutdown = state.shutdown.clone();
                Box::pin(async move { s.wait().await })
            },
            shut: false,
            keepalive,
        }
    }

    /// The next event. Cancel-safe: may be raced against other work in `select!`.
    pub(crate) async fn next(&mut self) -> Event {
        if self.shut {
            return Event::Shutdown;
        }
        loop {
            tokio::select! {
                biased;
                m = self.rx.next() => {
                    self.last_rx = Instant::now();
                    match m {
                        Some(Ok(Message::Text(t))) => return Event::Json(Bytes::copy_from_slice(t.as_str().as_bytes())),
                        Some(Ok(Message::Binary(b))) => return Event::Frame(b),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return Event::Gone("the client closed the stream".into()),
                        Some(Err(e)) => return self.failed(e),
                    }
                }
                _ = self.ping.tick() => {
                    if self.last_rx.elapsed() > self.timeout {
                        return Event::TimedOut;
                    }
                    if self.tx.send(Message::Ping(Bytes::new())).await.is_err() {
                        return Event::Gone("sending a ping failed".into());
                    }
                }
                _ = &mut self.shutdown => {
                    self.shut = true;
                    return Event::Shutdown;
                }
            }
        }
    }

    fn failed(&self, e: axum::Error) -> Event {
        let inner = e.into_inner();
        match inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            Some(tokio_tungstenite::tungstenite::Error::Capacity(c)) => {
                use tokio_tungstenite::tungstenite::error::CapacityError;
                let (size, limit) = match c {
                    CapacityError::MessageTooLong { size, max_size } => (*size as u64, *max_size as u64),
                    CapacityError::TooManyHeaders => (0, 0),
                };
                Event::TooLarge(NetError::TooLarge { size, limit })
            }
            _ => Event::Gone(inner.to_string()),
        }
    }

    /// The next event, which must come within the control timeout (the open request).
    pub(crate) async fn first(&mut self) -> Event {
        match tokio::time::timeout(self.timeout, self.next()).await {
            Ok(e) => e,
            Err(_) => Event::TimedOut,
        }
    }

    /// Send a JSON message; false if the client is gone.
    pub(crate) async fn send_json<T: Serialize>(&mut self, msg: &T) -> bool {
        match serde_json::to_string(msg) {
            Ok(s) => self.tx.send(Message::Text(s.into())).await.is_ok(),
            Err(e) => {
                tracing::error!(key = super::conn_key().as_str(), error = %e, "cannot encode a message");
                false
            }
        }
    }

    /// Send a JSON message given as its text (relayed from another node); false if the
    /// client is gone.
    pub(crate) async fn send_text(&mut self, text: Bytes) -> bool {
        match String::from_utf8(text.to_vec()) {
            Ok(s) => self.tx.send(Message::Text(s.into())).await.is_ok(),
            Err(_) => false,
        }
    }

    /// Send a binary frame already in a buffer; false if the client is gone.
    pub(crate) async fn send_bytes(&mut self, data: Bytes) -> bool {
        self.tx.send(Message::Binary(data)).await.is_ok()
    }

    /// Send a binary frame; false if the client is gone.
    pub(crate) async fn send_frame(&mut self, data: Vec<u8>) -> bool {
        self.tx.send(Message::Binary(Bytes::from(data))).await.is_ok()
    }

    /// Send binary frames, each its own message, in one write to the socket (one flush
    /// for all, where `send_frame` flushes each); false if the client is gone.
    pub(crate) async fn send_frames(&mut self, frames: impl IntoIterator<Item = Vec<u8>>) -> bool {
        for data in frames {
            if self.tx.feed(Message::Binary(Bytes::from(data))).await.is_err() {
                return false;
            }
        }
        self.tx.flush().await.is_ok()
    }

    /// Close the socket with `code` (see [`CloseCode`]).
    pub(crate) async fn close(mut self, code: CloseCode, reason: &str) {
        let frame = CloseFrame { code: code.code(), reason: reason.chars().take(100).collect::<String>().into() };
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.tx.send(Message::Close(Some(frame))).await;
            // Read until the client's close: dropping a socket with unread input resets it,
            // which can destroy the error message just sent.
            while let Some(Ok(m)) = self.rx.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
            let _ = self.tx.close().await;
        })
        .await;
    }
}

/// The error for a silent stream.
pub(crate) fn timed_out(state: &AppState) -> NetError {
    NetError::KeepAliveTimeout { millis: state.config.control_timeout.as_millis() as u64 }
}

/// The error for a message that cannot be parsed.
pub(crate) fn malformed(what: &str, e: impl std::fmt::Display) -> NetError {
    NetError::protocol(format!("malformed {what} message: {e}"))
}
