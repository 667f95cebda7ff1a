//! Streamer streams: the node subscribes with the engine's streamer and forwards frames.
//!
//! A lag notice from the engine goes to the client as a `notice` (frames continue); a
//! disconnect or close ends the stream with `closed` carrying the same error. A client
//! that reads slowly makes the node's sends wait, so its engine queue fills and it gets
//! lag notices: it never slows a writer or another streamer. One that reads nothing at all
//! for the write-stall timeout is disconnected.

use std::sync::Arc;

use super::AppState;
use super::ws_session::{Event, Session, malformed, timed_out};
use crate::error::Error;
use crate::protocol::messages::{StreamerRequest, StreamerResponse};
use crate::protocol::{NetError, WireError, codec, parse_json};
use crate::relay::{StreamError, Streamer};

async fn end(mut s: Session, error: Option<Error>, code: u16) {
    let reason = error.as_ref().map(|e| e.to_string()).unwrap_or_default();
    let _ = s.send_json(&StreamerResponse::Closed { error: error.as_ref().map(WireError::from) }).await;
    s.close(code, &reason).await;
}

pub(crate) async fn run(state: Arc<AppState>, socket: axum::extract::ws::WebSocket) {
    let _live = state.shutdown.live();
    let mut s = Session::new(&state, socket);
    let config = match s.first().await {
        Event::Json(b) => match parse_json::<StreamerRequest>(&b) {
            Ok(StreamerRequest::Open { config }) => config,
            Ok(_) => return end(s, Some(NetError::protocol("the first message on a streamer stream must be `open`").into()), 1008).await,
            Err(e) => return end(s, Some(e.into()), 1008).await,
        },
        Event::Frame(_) => return end(s, Some(NetError::protocol("streamers take no frames").into()), 1008).await,
        Event::TimedOut => return end(s, Some(timed_out(&state).into()), 1008).await,
        Event::TooLarge(e) => return end(s, Some(e.into()), 1009).await,
        Event::Shutdown => return end(s, Some(NetError::ServerShutdown.into()), 1001).await,
        Event::Gone(_) => return,
    };
    let mut streamer = match state.engine.open_streamer(config) {
        Ok(st) => st,
        Err(e) => return end(s, Some(e), 1008).await,
    };
    if !s.send_json(&StreamerResponse::Opened { keepalive_ms: s.keepalive.as_millis() as u64 }).await {
        return;
    }
    let (error, code) = loop {
        tokio::select! {
            r = streamer.next() => match r {
                Ok(frame) => {
                    if !s.send_frame(codec::encode(&frame)).await {
                        break (None, 1000);
                    }
                }
                Err(e @ StreamError::Lagged { .. }) => {
                    if !s.send_json(&StreamerResponse::Notice { error: WireError::from(&Error::from(e)) }).await {
                        break (None, 1000);
                    }
                }
                Err(StreamError::Closed) => break (None, 1000),
                Err(e) => break (Some(Error::from(e)), 1000),
            },
            ev = s.next() => match ev {
                Event::Json(b) => match parse_json::<StreamerRequest>(&b) {
                    Ok(StreamerRequest::Update { id, channels }) => update(&mut s, &mut streamer, id, channels).await,
                    Ok(StreamerRequest::Close) => break (None, 1000),
                    Ok(StreamerRequest::Open { .. }) => break (Some(NetError::protocol("the streamer is already open").into()), 1008),
                    Err(e) => break (Some(malformed("streamer", e).into()), 1008),
                },
                Event::Frame(_) => break (Some(NetError::protocol("streamers take no frames").into()), 1008),
                Event::Gone(_) => {
                    streamer.close();
                    return;
                }
                Event::TimedOut => break (Some(timed_out(&state).into()), 1008),
                Event::TooLarge(e) => break (Some(e.into()), 1009),
                Event::Shutdown => break (Some(NetError::ServerShutdown.into()), 1001),
            },
        }
    };
    streamer.close();
    end(s, error, code).await;
}

async fn update(s: &mut Session, streamer: &mut Streamer, id: u64, channels: Vec<crate::channel::ChannelKey>) {
    let reply = match streamer.update_channels(channels) {
        Ok(()) => StreamerResponse::Updated { id },
        Err(e) => StreamerResponse::Failed { id, error: WireError::from(&Error::from(e)) },
    };
    s.send_json(&reply).await;
}
