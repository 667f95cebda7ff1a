//! Streamer streams: the node subscribes with the engine's streamer and forwards frames.
//!
//! A lag notice from the engine goes to the client as a `notice` (frames continue); a
//! disconnect or close ends the stream with `closed` carrying the same error. A client
//! that reads slowly makes the node's sends wait, so its engine queue fills and it gets
//! lag notices: it never slows a writer or another streamer. One that reads nothing at all
//! for the write-stall timeout is disconnected.
//!
//! Frames already queued behind the one just received go out in the same socket write
//! (at most [`COALESCE`], each still its own message): a client that falls behind, on a
//! crowded node, costs one send per batch instead of one per frame, and so catches up.

use std::sync::Arc;

use super::AppState;
use super::ws_open::{Ending, StreamerKind, already_open, end, no_frames, open};
use super::ws_session::{Event, Session, malformed};
use crate::error::Error;
use crate::protocol::messages::{StreamerRequest, StreamerResponse};
use crate::protocol::{WireError, codec, parse_json};
use crate::relay::{StreamError, Streamer};

/// At most this many queued frames are sent in one socket write.
const COALESCE: usize = 64;

/// What the stream does after an engine streamer error: tell the client and go on (a lag
/// notice), or end.
enum AfterError {
    Notice(WireError),
    End(Ending),
}

fn after_error(e: StreamError) -> AfterError {
    match e {
        e @ StreamError::Lagged { .. } => AfterError::Notice(WireError::from(&Error::from(e))),
        StreamError::Closed => AfterError::End(Ending::normal()),
        e => AfterError::End(Ending { error: Some(Error::from(e)), ..Ending::normal() }),
    }
}

/// `compress`: the client asked for compressed frames (`COMPRESS_HEADER` on the upgrade);
/// a live frame is compressed only where a series is large enough to pay
/// (`codec::WIRE_COMPRESS_MIN`), so small frames keep the raw fast path.
pub(crate) async fn run(state: Arc<AppState>, socket: axum::extract::ws::WebSocket, compress: bool) {
    let _live = state.shutdown.live();
    let Some((mut s, config)) = open::<StreamerKind>(&state, Session::new(&state, socket)).await else { return };
    let keys = config.channels.clone();
    let mut streamer = match state.engine.open_streamer(config) {
        Ok(st) => st,
        Err(e) => return end::<StreamerKind>(s, Ending::violation(e)).await,
    };
    peer_taps_ready(&state, &keys).await;
    if !s.send_json(&StreamerResponse::Opened { keepalive_ms: s.keepalive.as_millis() as u64 }).await {
        return;
    }
    // Kept across frames, so a frame costs no allocation beyond its encoding.
    let mut batch = Vec::with_capacity(COALESCE);
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(COALESCE);
    let ending = loop {
        tokio::select! {
            r = streamer.next() => {
                let mut failed = None;
                if let Ok(frame) = r {
                    batch.push(frame);
                    while batch.len() < COALESCE {
                        match streamer.try_recv() {
                            Ok(Some(f)) => batch.push(f),
                            Ok(None) => break,
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    // Compressing runs off the async workers, as an iterator step's does.
                    if compress {
                        super::ws_writer::heavy(|| encoded.extend(batch.iter().map(|f| codec::encode_for(f, true))));
                    } else {
                        encoded.extend(batch.iter().map(codec::encode));
                    }
                    batch.clear();
                    if !s.send_frames(encoded.drain(..)).await {
                        break Ending::normal();
                    }
                } else {
                    failed = r.err();
                }
                let sent = match failed.map(after_error) {
                    None => true,
                    Some(AfterError::Notice(error)) => s.send_json(&StreamerResponse::Notice { error }).await,
                    Some(AfterError::End(ending)) => break ending,
                };
                if !sent {
                    break Ending::normal();
                }
            },
            ev = s.next() => match ev {
                Event::Json(b) => match parse_json::<StreamerRequest>(&b) {
                    Ok(StreamerRequest::Update { id, channels }) => update(&state, &mut s, &mut streamer, id, channels).await,
                    Ok(StreamerRequest::Close) => break Ending::normal(),
                    Ok(StreamerRequest::Open { .. }) => break Ending::violation(already_open::<StreamerKind>()),
                    Err(e) => break Ending::violation(malformed("streamer", e)),
                },
                Event::Frame(_) => break Ending::violation(no_frames::<StreamerKind>()),
                Event::Gone(_) => {
                    streamer.close();
                    return;
                }
                ev => if let Some(e) = Ending::forced_by(&state, ev) { break e },
            },
        }
    };
    streamer.close();
    end::<StreamerKind>(s, ending).await;
}

/// Cluster mode: wait until frames of other nodes' channels among `keys` reach this node
/// (its peer taps carry them), so a streamer gets every frame written after it opened or
/// updated, wherever it is written (docs/cluster.md §5).
async fn peer_taps_ready(state: &AppState, keys: &[crate::channel::ChannelKey]) {
    #[cfg(feature = "cluster")]
    if let Some(c) = &state.config.cluster
        && !c.peer_taps_ready(keys, std::time::Duration::from_secs(2)).await
    {
        tracing::warn!(key = "cluster", "a peer tap was not ready within 2 s; the streamer's frames from that node start later");
    }
    #[cfg(not(feature = "cluster"))]
    let _ = (state, keys);
}

async fn update(state: &AppState, s: &mut Session, streamer: &mut Streamer, id: u64, channels: Vec<crate::channel::ChannelKey>) {
    let keys = channels.clone();
    let reply = match streamer.update_channels(channels) {
        Ok(()) => {
            peer_taps_ready(state, &keys).await;
            StreamerResponse::Updated { id }
        }
        Err(e) => StreamerResponse::Failed { id, error: WireError::from(&Error::from(e)) },
    };
    s.send_json(&reply).await;
}
