//! Cluster mode: a writer or iterator stream whose channels another node stores is relayed
//! to that node, message for message (docs/cluster.md §5). The leaseholder opens the writer,
//! arbitrates its control and answers every request; this node checks the client's
//! permissions first (as for its own channels) and then only passes messages on, in order,
//! both ways. The client sees the same protocol as from the leaseholder itself.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::AppState;
use super::ws_open::{Ending, StreamProtocol, end};
use super::ws_session::{Event, Session};
use crate::cluster::{Cluster, RelayedMessage, RelayedStream};
use crate::protocol::CloseCode;

/// Relay stream `s` (already opened with `open`, its first message) to node `node`. Each
/// later JSON message of the client passes `refuse` first: a message it answers (with the
/// reply to send back) is not relayed, so this node's permission checks hold for every
/// request, not only the first. On shutdown, `on_shutdown` is sent to the leaseholder (a
/// writer is committed and closed, as a local one would be) and its reply is passed on
/// before the stream ends. `compress`: the client asked this node for compressed frames,
/// so the leaseholder is asked for them (the frames pass through as they are).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay<K: StreamProtocol>(
    state: Arc<AppState>,
    mut s: Session,
    cluster: Cluster,
    node: u8,
    open: impl Serialize,
    refuse: impl Fn(&[u8]) -> Option<Bytes>,
    on_shutdown: Option<Bytes>,
    compress: bool,
) {
    let up: RelayedStream = match cluster.relay_stream(node, K::KIND, compress).await {
        Ok(up) => up,
        Err(e) => return end::<K>(s, Ending::violation(e)).await,
    };
    let text = Bytes::from(serde_json::to_vec(&open).expect("an open message serializes"));
    if let Err(e) = up.send_json_text(text).await {
        return end::<K>(s, Ending::violation(cluster.unavailable(node, e))).await;
    }
    let mut shutting_down = false;
    // A leaseholder that stops answering ends the stream when its lease expires, not after
    // the relayed stream's own 30 s silence limit.
    let nodes = [node];
    let left = cluster.left(&nodes);
    tokio::pin!(left);
    loop {
        tokio::select! {
            (_, e) = &mut left => {
                up.close().await;
                return end::<K>(s, Ending::violation(e)).await;
            }
            ev = s.next(), if !shutting_down => match ev {
                Event::Json(b) => {
                    if let Some(reply) = refuse(&b) {
                        if !s.send_text(reply).await {
                            up.close().await;
                            return;
                        }
                        continue;
                    }
                    if let Err(e) = up.send_json_text(b).await {
                        return end::<K>(s, Ending::violation(cluster.unavailable(node, e))).await;
                    }
                }
                Event::Frame(b) => {
                    if let Err(e) = up.send_frame(b).await {
                        return end::<K>(s, Ending::violation(cluster.unavailable(node, e))).await;
                    }
                }
                Event::Gone(_) => {
                    // The leaseholder ends the stream as a vanished client's (a writer is
                    // aborted and its control passes on).
                    up.close().await;
                    return;
                }
                Event::Shutdown if on_shutdown.is_some() => {
                    shutting_down = true;
                    if up.send_json_text(on_shutdown.clone().unwrap_or_default()).await.is_err() {
                        return end::<K>(s, Ending::shutdown()).await;
                    }
                }
                ev => {
                    if let Some(e) = Ending::forced_by(&state, ev) {
                        up.close().await;
                        return end::<K>(s, e).await;
                    }
                }
            },
            m = up.recv() => match m {
                Ok(RelayedMessage::Json(b)) => {
                    if !s.send_text(b).await {
                        up.close().await;
                        return;
                    }
                }
                Ok(RelayedMessage::Frame(b)) => {
                    if !s.send_bytes(b).await {
                        up.close().await;
                        return;
                    }
                }
                Ok(RelayedMessage::Closed(reason)) => {
                    let code = if shutting_down { CloseCode::GoingAway } else { CloseCode::Normal };
                    return s.close(code, &reason).await;
                }
                Err(e) => return end::<K>(s, Ending::violation(cluster.unavailable(node, e))).await,
            },
        }
    }
}
