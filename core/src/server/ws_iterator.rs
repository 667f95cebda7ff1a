//! Iterator streams: one command, one `result` (then a frame for `next`/`prev`).

use std::sync::Arc;

use super::AppState;
use super::ws_open::{Ending, IteratorKind, already_open, end, no_frames, open};
use super::ws_session::{Event, Session, malformed};
use super::ws_writer::heavy;
use crate::error::Result;
use crate::framer::RangeIterator;
use crate::protocol::messages::{IteratorRequest, IteratorResponse};
use crate::protocol::{WireError, codec, parse_json};

/// `compress`: the client asked for compressed frames (`COMPRESS_HEADER` on the upgrade).
pub(crate) async fn run(state: Arc<AppState>, socket: axum::extract::ws::WebSocket, compress: bool) {
    let _live = state.shutdown.live();
    let Some((mut s, config)) = open::<IteratorKind>(&state, Session::new(&state, socket)).await else { return };
    #[cfg(feature = "cluster")]
    let spanning = match state.config.cluster.clone() {
        None => None,
        Some(c) => match c.by_node(&config.channels).map(|g| g.into_keys().collect::<Vec<u8>>()) {
            Ok(nodes) if nodes.len() > 1 => Some(c.open_spanning_iterator(config.clone()).await),
            Ok(nodes) if nodes.first().is_some_and(|n| *n != c.node()) => {
                let open = IteratorRequest::Open { config };
                return super::ws_relay::relay::<IteratorKind>(state.clone(), s, c, nodes[0], open, |_| None, None, compress).await;
            }
            Ok(_) => None,
            Err(e) => return end::<IteratorKind>(s, Ending::violation(e)).await,
        },
    };
    #[cfg(feature = "cluster")]
    let opened = match spanning {
        Some(r) => r.map(Cursor::Spanning),
        None => heavy(|| state.engine.open_iterator(config)).map(Cursor::Here),
    };
    #[cfg(not(feature = "cluster"))]
    let opened = heavy(|| state.engine.open_iterator(config)).map(Cursor::Here);
    let mut it = match opened {
        Ok(it) => it,
        Err(e) => return end::<IteratorKind>(s, Ending::violation(e)).await,
    };
    if !s.send_json(&IteratorResponse::Opened { keepalive_ms: s.keepalive.as_millis() as u64 }).await {
        return;
    }
    let ending = loop {
        match s.next().await {
            Event::Json(b) => match parse_json::<IteratorRequest>(&b) {
                Ok(IteratorRequest::Close) => break Ending::normal(),
                Ok(IteratorRequest::Open { .. }) => break Ending::violation(already_open::<IteratorKind>()),
                Ok(cmd) => {
                    if !step(&mut s, &mut it, cmd, compress).await {
                        return;
                    }
                }
                Err(e) => break Ending::violation(malformed("iterator", e)),
            },
            Event::Frame(_) => break Ending::violation(no_frames::<IteratorKind>()),
            Event::Gone(_) => return,
            ev => {
                if let Some(e) = Ending::forced_by(&state, ev) {
                    break e;
                }
            }
        }
    };
    end::<IteratorKind>(s, ending).await;
}

/// What an iterator stream walks: this node's engine, or channels of several cluster nodes.
enum Cursor {
    Here(RangeIterator),
    #[cfg(feature = "cluster")]
    Spanning(crate::cluster::SpanningIterator),
}

impl Cursor {
    /// Run `cmd`: its result, and whether it read (`next`/`prev`).
    async fn apply(&mut self, cmd: IteratorRequest) -> (Result<bool>, bool) {
        match self {
            Cursor::Here(it) => heavy(|| match cmd {
                IteratorRequest::SeekFirst => (it.seek_first(), false),
                IteratorRequest::SeekLast => (it.seek_last(), false),
                IteratorRequest::SeekGe { t } => (it.seek_ge(t), false),
                IteratorRequest::SeekLe { t } => (it.seek_le(t), false),
                IteratorRequest::Next { span } => (it.next(span), true),
                IteratorRequest::Prev { span } => (it.prev(span), true),
                IteratorRequest::Open { .. } | IteratorRequest::Close => (Ok(false), false),
            }),
            #[cfg(feature = "cluster")]
            Cursor::Spanning(it) => match cmd {
                IteratorRequest::SeekFirst => (it.seek_first().await, false),
                IteratorRequest::SeekLast => (it.seek_last().await, false),
                IteratorRequest::SeekGe { t } => (it.seek_ge(t).await, false),
                IteratorRequest::SeekLe { t } => (it.seek_le(t).await, false),
                IteratorRequest::Next { span } => (it.next(span).await, true),
                IteratorRequest::Prev { span } => (it.prev(span).await, true),
                IteratorRequest::Open { .. } | IteratorRequest::Close => (Ok(false), false),
            },
        }
    }

    fn view(&self) -> Option<crate::telem::TimeRange> {
        match self {
            Cursor::Here(it) => Some(it.view()),
            #[cfg(feature = "cluster")]
            Cursor::Spanning(it) => it.view(),
        }
    }

    fn has_value(&self) -> bool {
        match self {
            Cursor::Here(it) => !it.value().is_empty(),
            #[cfg(feature = "cluster")]
            Cursor::Spanning(it) => !it.value().is_empty(),
        }
    }

    fn take_value(&mut self) -> crate::telem::Frame {
        match self {
            Cursor::Here(it) => it.take_value(),
            #[cfg(feature = "cluster")]
            Cursor::Spanning(it) => it.take_value(),
        }
    }
}

/// Run one command and reply; false if the client is gone.
async fn step(s: &mut Session, it: &mut Cursor, cmd: IteratorRequest, compress: bool) -> bool {
    let (r, reads) = it.apply(cmd).await;
    match r {
        Err(e) => s.send_json(&IteratorResponse::Failed { error: WireError::from(&e) }).await,
        Ok(ok) => {
            let frame = reads && it.has_value();
            if !s.send_json(&IteratorResponse::Result { ok, frame, view: it.view() }).await {
                return false;
            }
            if frame { s.send_frame(heavy(|| codec::encode_for(&it.take_value(), compress))).await } else { true }
        }
    }
}
