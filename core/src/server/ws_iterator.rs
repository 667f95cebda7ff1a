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
    if let Some(c) = state.config.cluster.clone() {
        match c.route_stream(&config.channels) {
            Ok(None) => {}
            Ok(Some(node)) => {
                let open = IteratorRequest::Open { config };
                return super::ws_relay::relay::<IteratorKind>(state.clone(), s, c, node, open, |_| None, None, compress).await;
            }
            Err(e) => return end::<IteratorKind>(s, Ending::violation(e)).await,
        }
    }
    let mut it = match heavy(|| state.engine.open_iterator(config)) {
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

/// Run one command and reply; false if the client is gone.
async fn step(s: &mut Session, it: &mut RangeIterator, cmd: IteratorRequest, compress: bool) -> bool {
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
            if frame { s.send_frame(heavy(|| codec::encode_for(&it.take_value(), compress))).await } else { true }
        }
    }
}
