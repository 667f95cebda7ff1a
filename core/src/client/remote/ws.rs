//! WebSocket streams to the node: open with the versioned handshake, send JSON or frames,
//! receive, and keep the connection alive while the caller is idle.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::http::{Http, error_from_body};
use super::transport::Io;
use crate::error::Result;
use crate::protocol::{API_PREFIX, COMPRESS_HEADER, CloseCode, NetError, PROTOCOL_VERSION, StreamKind, VERSION_HEADER};

type Ws = WebSocketStream<Io>;
pub(crate) type WsSink = SplitSink<Ws, Message>;
pub(crate) type WsStream = SplitStream<Ws>;

/// Largest message accepted from the node.
const MAX_MESSAGE: usize = 1 << 30;
/// Frames larger than this are sent in fragments of this size.
pub(crate) const FRAGMENT: usize = 16 << 20;

/// One WebSocket stream. The halves are locked separately so a keep-alive can be sent
/// while the caller waits for a reply.
#[derive(Debug)]
pub(crate) struct WsConn {
    pub sink: tokio::sync::Mutex<WsSink>,
    pub stream: tokio::sync::Mutex<WsStream>,
}

/// A message from the node.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A JSON control message.
    Json(Bytes),
    /// A binary frame.
    Frame(Bytes),
    /// The node closed the stream.
    Closed(String),
}

fn lost(e: WsError) -> crate::Error {
    NetError::lost(e).into()
}

impl WsConn {
    /// Open `/api/v1/stream/{kind}` (logging in again once if the node let the session
    /// expire, as for unary calls), asking for compressed frames if the client's options do.
    pub(crate) async fn open(http: &Http, kind: StreamKind) -> Result<Arc<WsConn>> {
        Self::open_with(http, kind, http.endpoint.compress).await
    }

    /// [`WsConn::open`], asking for compressed frames (`COMPRESS_HEADER`) if `compress`.
    pub(crate) async fn open_with(http: &Http, kind: StreamKind, compress: bool) -> Result<Arc<WsConn>> {
        let used = http.auth.read().clone();
        match Self::open_once(http, kind, compress).await {
            Err(e) if super::http::refused(&e) && http.relogin(used).await? => Self::open_once(http, kind, compress).await,
            r => r,
        }
    }

    async fn open_once(http: &Http, kind: StreamKind, compress: bool) -> Result<Arc<WsConn>> {
        http.check_open()?;
        let ep = &http.endpoint;
        let scheme = if ep.secure() { "wss" } else { "ws" };
        let url = format!("{scheme}://{}{API_PREFIX}/stream/{}", ep.authority, kind.as_str());
        let mut req = url.as_str().into_client_request().map_err(|e| NetError::InvalidUrl { url: url.clone(), reason: e.to_string() })?;
        let h = req.headers_mut();
        h.insert(VERSION_HEADER, PROTOCOL_VERSION.into());
        if compress {
            h.insert(COMPRESS_HEADER, 1.into());
        }
        if let Some(a) = http.auth.read().as_deref() {
            h.insert("authorization", a.parse().map_err(|_| NetError::protocol("credentials are not a valid header value"))?);
        }
        // The stream joins the caller's trace (`with_traceparent`), as HTTP requests do.
        if let Some(tp) = crate::client::current_traceparent()
            && let Ok(v) = tp.as_ref().parse()
        {
            h.insert("traceparent", v);
        }
        let io = ep.dial().await?;
        let mut config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
        if kind.client_reads_small() {
            config = config.read_buffer_size(crate::protocol::SMALL_READ_BUFFER);
        }
        let hs = tokio_tungstenite::client_async_with_config(req, io, Some(config));
        let ws = match tokio::time::timeout(ep.timeout(), hs).await {
            Err(_) => return Err(NetError::Timeout { what: format!("opening {url}"), millis: ep.timeout().as_millis() as u64 }.into()),
            Ok(Err(WsError::Http(resp))) => {
                let status = resp.status().as_u16();
                return Err(error_from_body(status, resp.body().as_deref().unwrap_or_default()));
            }
            Ok(Err(e)) => return Err(NetError::Connect { url, reason: e.to_string() }.into()),
            Ok(Ok((ws, _))) => ws,
        };
        let (sink, stream) = ws.split();
        Ok(Arc::new(WsConn { sink: tokio::sync::Mutex::new(sink), stream: tokio::sync::Mutex::new(stream) }))
    }

    /// Send a JSON control message.
    pub(crate) async fn send_json<T: Serialize>(&self, msg: &T) -> Result<()> {
        let text = serde_json::to_string(msg).map_err(|e| NetError::protocol(format!("cannot encode message: {e}")))?;
        self.sink.lock().await.send(Message::text(text)).await.map_err(lost)
    }

    /// Send a binary frame. Frames over [`FRAGMENT`] go out as WebSocket fragments, taking
    /// the sink once per fragment so the keep-alive task's pings pass between them (the
    /// node measures silence per message or ping: a huge frame on a slow link must not
    /// look like a dead client).
    pub(crate) async fn send_frame(&self, data: Bytes) -> Result<()> {
        if data.len() <= FRAGMENT {
            return self.sink.lock().await.send(Message::Binary(data)).await.map_err(lost);
        }
        let n = data.len().div_ceil(FRAGMENT);
        for i in 0..n {
            let part = data.slice(i * FRAGMENT..((i + 1) * FRAGMENT).min(data.len()));
            let opcode = if i == 0 { OpCode::Data(Data::Binary) } else { OpCode::Data(Data::Continue) };
            let frame = Frame::message(part, opcode, i + 1 == n);
            self.sink.lock().await.send(Message::Frame(frame)).await.map_err(lost)?;
        }
        Ok(())
    }

    /// Close the socket (best effort).
    pub(crate) async fn close(&self) {
        let _ = self.sink.lock().await.close().await;
    }
}

fn classify(m: Option<std::result::Result<Message, WsError>>) -> Result<Option<Incoming>> {
    match m {
        None => Ok(Some(Incoming::Closed("the node closed the connection".into()))),
        Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Ok(Some(Incoming::Closed("connection closed".into()))),
        Some(Err(e)) => Err(lost(e)),
        Some(Ok(Message::Text(t))) => Ok(Some(Incoming::Json(Bytes::from(t)))),
        Some(Ok(Message::Binary(b))) => Ok(Some(Incoming::Frame(b))),
        Some(Ok(Message::Close(c))) => Ok(Some(Incoming::Closed(match c {
            Some(c) if !c.reason.is_empty() => c.reason.to_string(),
            Some(c) => closed_without_reason(u16::from(c.code)),
            None => "closed by the node".into(),
        }))),
        Some(Ok(_)) => Ok(None),
    }
}

/// Why the node closed a stream, from its close code when it gave no reason (the node
/// sends a `closed` message with the error first, so this is only the fallback).
fn closed_without_reason(code: u16) -> String {
    match CloseCode::from_code(code) {
        Some(CloseCode::Normal) => "closed by the node".into(),
        Some(CloseCode::GoingAway) => "closed by the node: it is shutting down".into(),
        Some(CloseCode::PolicyViolation) => "closed by the node: the stream broke the protocol or was refused".into(),
        Some(CloseCode::TooLarge) => "closed by the node: a message exceeded its size limit".into(),
        None => format!("closed by the node (close code {code})"),
    }
}

/// Wait for the next message (pings and pongs are skipped; pongs are answered by the
/// WebSocket layer). `idle` bounds the wait for any traffic at all: the node pings at
/// least every keep-alive interval, so silence longer than that means it is gone.
pub(crate) async fn recv(stream: &mut WsStream, idle: Duration) -> Result<Incoming> {
    let mut last = tokio::time::Instant::now();
    match recv_until(stream, last + idle, &mut last).await? {
        Some(i) => Ok(i),
        None => Err(NetError::KeepAliveTimeout { millis: idle.as_millis() as u64 }.into()),
    }
}

/// Wait for the next message until `deadline` (`None` then). `last` is set to the time of
/// any traffic (pings included).
pub(crate) async fn recv_until(
    stream: &mut WsStream,
    deadline: tokio::time::Instant,
    last: &mut tokio::time::Instant,
) -> Result<Option<Incoming>> {
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Ok(None),
            Ok(m) => {
                *last = tokio::time::Instant::now();
                if let Some(i) = classify(m)? {
                    return Ok(Some(i));
                }
            }
        }
    }
}

/// The next message if one has already arrived, without waiting.
pub(crate) fn try_recv(stream: &mut WsStream) -> Result<Option<Incoming>> {
    loop {
        match stream.next().now_or_never() {
            None => return Ok(None),
            Some(m) => {
                if let Some(i) = classify(m)? {
                    return Ok(Some(i));
                }
            }
        }
    }
}

/// Aborts its task when dropped.
#[derive(Debug)]
pub(crate) struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every `every`, send a ping (the node closes streams that stay silent past its
/// control timeout) and run `tick` (e.g. drain notices while the caller is idle).
pub(crate) fn keepalive(conn: Weak<WsConn>, every: Duration, tick: Option<Arc<dyn Fn() + Send + Sync>>) -> TaskGuard {
    let every = every.max(Duration::from_millis(10));
    TaskGuard(tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t.tick().await;
        loop {
            t.tick().await;
            let Some(c) = conn.upgrade() else { return };
            if c.sink.lock().await.send(Message::Ping(Bytes::new())).await.is_err() {
                return;
            }
            drop(c);
            if let Some(f) = &tick {
                f();
            }
        }
    }))
}
