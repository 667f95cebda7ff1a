//! What every stream does alike at its ends: the open handshake, and how it is refused or
//! ended (a `closed` message with the error, then a [`CloseCode`]).
//!
//! The first client message must be `open`, within the control timeout. Anything else (a
//! frame, another request, malformed JSON, silence, an oversized message, shutdown) refuses
//! the stream with the same `closed` message and code on every kind of stream.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::ws_session::{Event, Session, timed_out};
use crate::error::Error;
use crate::protocol::messages::{IteratorRequest, IteratorResponse, StreamerRequest, StreamerResponse, WriterRequest, WriterResponse};
use crate::protocol::{CloseCode, NetError, WireError, parse_json};

/// One kind of stream: the messages its handshake reads and writes.
pub(crate) trait StreamProtocol {
    /// What the client sends.
    type Request: DeserializeOwned;
    /// What its `open` request carries.
    type Config;
    /// What the node sends.
    type Response: Serialize;
    /// Which of the three streams it is.
    const KIND: crate::protocol::StreamKind;
    /// The config of an `open` request; `None` for any other request.
    fn open_config(request: Self::Request) -> Option<Self::Config>;
    /// The `closed` message carrying `error`.
    fn closed(error: Option<WireError>) -> Self::Response;
}

/// A [`StreamProtocol`] of kind `$name`, whose requests are `$req` (with an `Open { config }`),
/// replies `$resp`, and whose `closed` message is `$closed`.
macro_rules! stream_kind {
    ($kind:ident, $name:ident, $req:ident, $config:ty, $resp:ident, |$error:ident| $closed:expr) => {
        #[doc = concat!("`/api/v1/stream/` streams of kind ", stringify!($name), ".")]
        #[derive(Debug)]
        pub(crate) struct $kind;

        impl StreamProtocol for $kind {
            type Request = $req;
            type Config = $config;
            type Response = $resp;
            const KIND: crate::protocol::StreamKind = crate::protocol::StreamKind::$name;
            fn open_config(request: $req) -> Option<$config> {
                match request {
                    $req::Open { config } => Some(config),
                    _ => None,
                }
            }
            fn closed($error: Option<WireError>) -> $resp {
                $closed
            }
        }
    };
}

stream_kind!(WriterKind, Writer, WriterRequest, crate::framer::WriterConfig, WriterResponse, |error| WriterResponse::Closed {
    end: None,
    error
});
stream_kind!(StreamerKind, Streamer, StreamerRequest, crate::relay::StreamerConfig, StreamerResponse, |error| {
    StreamerResponse::Closed { error }
});
stream_kind!(IteratorKind, Iterator, IteratorRequest, crate::framer::IteratorConfig, IteratorResponse, |error| {
    IteratorResponse::Closed { error }
});

/// How the node ends a stream: the error its `closed` message carries and the close code.
#[derive(Debug)]
pub(crate) struct Ending {
    pub error: Option<Error>,
    pub code: CloseCode,
}

impl Ending {
    /// The stream ended as asked.
    pub(crate) fn normal() -> Ending {
        Ending { error: None, code: CloseCode::Normal }
    }

    /// The stream was refused or broken off with `error`.
    pub(crate) fn violation(error: impl Into<Error>) -> Ending {
        Ending { error: Some(error.into()), code: CloseCode::PolicyViolation }
    }

    /// The node is shutting down.
    pub(crate) fn shutdown() -> Ending {
        Ending { error: Some(NetError::ServerShutdown.into()), code: CloseCode::GoingAway }
    }

    /// The ending that `ev` forces on every stream alike: silence past the control timeout,
    /// an oversized message, shutdown. `None` for the events a stream handles itself.
    pub(crate) fn forced_by(state: &AppState, ev: Event) -> Option<Ending> {
        match ev {
            Event::TimedOut => Some(Ending::violation(timed_out(state))),
            Event::TooLarge(e) => Some(Ending { error: Some(e.into()), code: CloseCode::TooLarge }),
            Event::Shutdown => Some(Ending::shutdown()),
            Event::Json(_) | Event::Frame(_) | Event::Gone(_) => None,
        }
    }

    /// Send `closed` (built by `closed` from the error), then the close frame.
    pub(crate) async fn send<M: Serialize>(self, mut s: Session, closed: impl FnOnce(Option<WireError>) -> M) {
        let reason = self.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
        let _ = s.send_json(&closed(self.error.as_ref().map(WireError::from))).await;
        s.close(self.code, &reason).await;
    }
}

/// The error for a second `open` on an open stream.
pub(crate) fn already_open<K: StreamProtocol>() -> NetError {
    NetError::protocol(format!("the {} is already open; open another stream for another {0}", K::KIND.as_str()))
}

/// The error for a frame on a stream that takes none.
pub(crate) fn no_frames<K: StreamProtocol>() -> NetError {
    NetError::protocol(format!("{}s take no frames; frames are written on a writer stream", K::KIND.as_str()))
}

/// Read the `open` request and return its config. On anything else, refuse the stream
/// (see the module docs) and return `None`.
pub(crate) async fn open<K: StreamProtocol>(state: &AppState, mut s: Session) -> Option<(Session, K::Config)> {
    let ending = match s.first().await {
        Event::Json(b) => match parse_json::<K::Request>(&b).map(K::open_config) {
            Ok(Some(config)) => return Some((s, config)),
            Ok(None) => Ending::violation(NetError::protocol(format!(
                "the first message on a {} stream must be `open` (with its config)",
                K::KIND.as_str()
            ))),
            Err(e) => Ending::violation(e),
        },
        Event::Frame(_) => {
            Ending::violation(NetError::protocol(format!("a frame arrived before the {} was opened; send `open` first", K::KIND.as_str())))
        }
        Event::Gone(_) => return None,
        ev => Ending::forced_by(state, ev)?,
    };
    end::<K>(s, ending).await;
    None
}

/// End a stream with `ending`: its `closed` message, then the close frame.
pub(crate) async fn end<K: StreamProtocol>(s: Session, ending: Ending) {
    ending.send(s, K::closed).await;
}
