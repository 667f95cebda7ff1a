//! Iterator streams: one command, one `result` (then a frame for `next`/`prev`).

use std::sync::Arc;

use super::AppState;
use super::ws_session::{Event, Session, malformed, timed_out};
use super::ws_writer::heavy;
use crate::error::{Error, Result};
use crate::framer::RangeIterator;
use crate::protocol::messages::{IteratorRequest, IteratorResponse};
use crate::protocol::{NetError, WireError, codec, parse_json};

async fn end(mut s: Session, error: Option<Error>, code: u16) {
    let reason = error.as_ref().map(|e| e.to_string()).unwrap_or_default();
    let _ = s.send_json(&IteratorResponse::Closed { error: error.as_ref().map(WireError::from) }).await;
    s.close(code, &reason).await;
}

pub(crate) async fn run(state: Arc<AppState>, socket: axum::extract::ws::WebSocket) {
    let _live = state.shutdown.live();
    let mut s = Session::new(&state, socket);
    let config = match s.first().await {
        Event::Json(b) => match parse_json::<IteratorRequest>(&b) {
            Ok(IteratorRequest::Open { config }) => config,
            Ok(_) => return end(s, Some(NetError::protocol("the first message on an iterator stream must be `open`").into()), 1008).await,
            Err(e) => return end(s, Some(e.into()), 1008).await,
        },
        Event::Frame(_) => return end(s, Some(NetError::protocol("iterators take no frames").into()), 1008).await,
        Event::TimedOut => return end(s, Some(timed_out(&state).into()), 1008).await,
        Event::TooLarge(e) => return end(s, Some(e.into()), 1009).await,
        Event::Shutdown => return end(s, Some(NetError::ServerShutdown.into()), 1001).await,
        Event::Gone(_) => return,
    };
    let mut it = match heavy(|| state.engine.open_iterator(config)) {
        Ok(it) => it,
        Err(e) => return end(s, Some(e), 1008).await,
    };
    if !s.send_json(&IteratorResponse::Opened { keepalive_ms: s.keepalive.as_millis() as u64 }).await {
        return;
    }
    let (error, code) = loop {
        match s.next().await {
            Event::Json(b) => match parse_json::<IteratorRequest>(&b) {
                Ok(IteratorRequest::Close) => break (None, 1000),
                Ok(IteratorRequest::Open { .. }) => break (Some(NetError::protocol("the iterator is already open").into()), 1008),
                Ok(cmd) => {
                    if !step(&mut s, &mut it, cmd).await {
                        return;
                    }
                }
                Err(e) => break (Some(malformed("iterator", e).into()), 1008),
            },
            Event::Frame(_) => break (Some(NetError::protocol("iterators take no frames").into()), 1008),
            Event::Gone(_) => return,
            Event::TimedOut => break (Some(timed_out(&state).into()), 1008),
            Event::TooLarge(e) => break (Some(e.into()), 1009),
            Event::Shutdown => break (Some(NetError::ServerShutdown.into()), 1001),
        }
    };
    end(s, error, code).await;
}

/// Run one command and reply; false if the client is gone.
async fn step(s: &mut Session, it: &mut RangeIterator, cmd: IteratorRequest) -> bool {
    let (r, reads): (Result<bool>, bool) = heavy(|| match cmd {
        IteratorRequest::SeekFirst => (it.seek_first(), false),
        IteratorRequest::SeekLast => (it.seek_last(), false),
        IteratorRequest::SeekGe { t } => (it.seek_ge(t), false),
        IteratorRequest::SeekLe { t } => (it.seek_le(t), false),
        IteratorRequest::Next { span } => (it.next(span), true),
        IteratorRequest::Prev { span } => (it.prev(span), true),
        IteratorRequest::Open { .. } | IteratorRequest::Close => (Ok(false), false),
    });
    match r {
        Err(e) => s.send_json(&IteratorResponse::Failed { error: WireError::from(&e) }).await,
        Ok(ok) => {
            let frame = reads && !it.value().is_empty();
            if !s.send_json(&IteratorResponse::Result { ok, frame }).await {
                return false;
            }
            if frame { s.send_frame(codec::encode(&it.take_value())).await } else { true }
        }
    }
}
