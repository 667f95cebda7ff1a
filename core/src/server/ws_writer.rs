//! Writer streams: open, pipelined writes, commits, authority changes, close.
//!
//! Writes get no reply unless rejected (`write_error` with the write's number). The
//! stream is told whenever the channels it controls change (`authority`), before any
//! reply that follows the change. A silent or vanished client's writer is aborted; on
//! shutdown it is committed and closed.

use std::sync::Arc;

use parking_lot::Mutex;

use super::AppState;
use super::http::{permit_authorities, permit_writes};
use super::registry::authorized;
use super::ws_open::{Ending, WriterKind, already_open, end, open};
use super::ws_pipeline::{Done, PIPELINE_MIN_BYTES, Pipeline};
use super::ws_session::{Event, Session, malformed};
use crate::channel::{Channel, ChannelKey};
use crate::error::{Error, Result};
use crate::framer::Writer;
use crate::protocol::messages::{WriterRequest, WriterResponse};
use crate::protocol::{NetError, WireError, codec, parse_json};
use crate::telem::TimeStamp;
use crate::users::User;

/// Run blocking engine work without stalling the other tasks of a multi-thread runtime.
pub(crate) fn heavy<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

struct Stream {
    state: Arc<AppState>,
    s: Session,
    pipe: Pipeline,
    writer: Arc<Mutex<Option<Writer>>>,
    id: u64,
    sent_version: u64,
    seq: u64,
    /// Who opened the stream: authority changes are checked against their role.
    user: User,
}

/// Aborts the writer and unregisters it when dropped (no-op after a normal finish).
struct Cleanup {
    state: Arc<AppState>,
    id: u64,
    writer: Arc<Mutex<Option<Writer>>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.state.writers.remove(self.id);
        if let Some(w) = self.writer.lock().take() {
            w.abort();
            drop(self.state.writers.refresh(None));
        }
    }
}

/// How a stream ended.
enum End {
    /// The client asked to close (committing or not).
    Close(bool),
    /// Shutdown: commit and close.
    Shutdown,
    /// The client vanished, went silent, or broke the protocol: abort.
    Abort(Ending),
}

pub(crate) async fn run(state: Arc<AppState>, socket: axum::extract::ws::WebSocket, user: User) {
    let _live = state.shutdown.live();
    let Some((s, config)) = open::<WriterKind>(&state, Session::new(&state, socket)).await else { return };
    // No authorities means the highest for every channel (as `Writer::open` reads it).
    let authorities = if config.authorities.is_empty() { vec![crate::control::ABSOLUTE] } else { config.authorities.clone() };
    let allowed = super::auth::permit(&user, "/api/v1/stream/writer")
        .map_err(Error::from)
        .and_then(|()| permit_writes(&state.engine, &user, &config.channels))
        .and_then(|()| permit_authorities(&user, authorities));
    if let Err(e) = allowed {
        return end::<WriterKind>(s, Ending::violation(e)).await;
    }
    #[cfg(feature = "cluster")]
    if let Some(c) = state.config.cluster.clone() {
        let groups = match c.by_node(&config.channels) {
            Ok(groups) => groups,
            Err(e) => return end::<WriterKind>(s, Ending::violation(e)).await,
        };
        let here = c.node();
        if groups.keys().any(|n| *n != here) {
            // Authority changes are checked here against the client's role, as for a local
            // writer (the leaseholders see this node's credentials).
            let refuse = move |b: &[u8]| match parse_json::<WriterRequest>(b) {
                Ok(WriterRequest::SetAuthorities { id, changes }) => {
                    permit_authorities(&user, changes.iter().map(|(_, a)| *a)).err().map(|e| {
                        let reply = WriterResponse::Failed { id, error: WireError::from(&e) };
                        bytes::Bytes::from(serde_json::to_vec(&reply).expect("a reply serializes"))
                    })
                }
                _ => None,
            };
            if groups.len() > 1 {
                return super::ws_span::span(state.clone(), s, c, groups, config, refuse).await;
            }
            let node = *groups.keys().next().expect("one node");
            let close = bytes::Bytes::from(serde_json::to_vec(&WriterRequest::Close { commit: true }).expect("close serializes"));
            let open = WriterRequest::Open { config };
            return super::ws_relay::relay::<WriterKind>(state.clone(), s, c, node, open, refuse, Some(close), false).await;
        }
    }
    let writer = match heavy(|| state.engine.open_writer(config)) {
        Ok(w) => w,
        Err(e) => return end::<WriterKind>(s, Ending::violation(e)).await,
    };
    let channels: Vec<Channel> = writer.channels().iter().map(|c| (**c).clone()).collect();
    let keys: Vec<ChannelKey> = channels.iter().map(|c| c.key).collect();
    let now = authorized(&writer, &keys);
    let writer = Arc::new(Mutex::new(Some(writer)));
    let (id, mut notices) = state.writers.add(writer.clone(), keys, now);
    // Should this task die (a panic in the engine), the writer is still aborted and leaves
    // the registry, so its control passes on.
    let _cleanup = Cleanup { state: state.clone(), id, writer: writer.clone() };
    state.writers.refresh_and_wait(Some(id)).await;
    let (sent_version, authorized) = state.writers.current(id).unwrap_or_default();
    let keepalive_ms = s.keepalive.as_millis() as u64;
    let pipe = Pipeline::new(writer.clone());
    let mut st = Stream { state: state.clone(), s, pipe, writer, id, sent_version, seq: 0, user };
    if !st.s.send_json(&WriterResponse::Opened { channels, authorized, keepalive_ms }).await {
        return st.finish(End::Abort(Ending::normal())).await;
    }
    state.writers.delivered(id, sent_version);
    let end = loop {
        tokio::select! {
            ev = st.s.next() => match ev {
                Event::Frame(b) => st.write(b).await,
                Event::Json(b) => match parse_json::<WriterRequest>(&b) {
                    Ok(WriterRequest::Commit { id }) => st.commit(id).await,
                    Ok(WriterRequest::SetAuthorities { id, changes }) => st.set_authorities(id, &changes).await,
                    Ok(WriterRequest::Flush { id }) => st.flush(id).await,
                    Ok(WriterRequest::Close { commit }) => break End::Close(commit),
                    Ok(WriterRequest::Open { .. }) => break End::Abort(Ending::violation(already_open::<WriterKind>())),
                    Err(e) => break End::Abort(Ending::violation(malformed("writer", e))),
                },
                Event::Gone(reason) => {
                    tracing::info!(key = super::conn_key().as_str(), %reason, "writer stream ended without close; aborting its writer");
                    break End::Abort(Ending::normal());
                }
                Event::Shutdown => break End::Shutdown,
                ev => {
                    if let Some(e) = Ending::forced_by(&state, ev) {
                        break End::Abort(e);
                    }
                }
            },
            Some(n) = notices.recv() => {
                st.push_authority().await;
                let _ = n.sent.send(());
            }
            Some(d) = st.pipe.next(), if !st.pipe.idle() => st.report(d).await,
        }
    };
    st.finish(end).await;
}

impl Stream {
    /// Send this stream's authorized set if it changed since last sent.
    async fn push_authority(&mut self) -> bool {
        match self.state.writers.current(self.id) {
            Some((v, authorized)) if v > self.sent_version => {
                self.sent_version = v;
                let ok = self.s.send_json(&WriterResponse::Authority { authorized }).await;
                self.state.writers.delivered(self.id, v);
                ok
            }
            _ => true,
        }
    }

    /// Run `f` on the writer; `blocking` work (commits) leaves the async worker first.
    fn with_writer<R>(&self, blocking: bool, f: impl FnOnce(&mut Writer) -> Result<R>) -> Result<R> {
        let mut g = self.writer.lock();
        match g.as_mut() {
            Some(w) if blocking => heavy(|| f(w)),
            Some(w) => f(w),
            None => Err(Error::Closed { what: "the writer".into() }),
        }
    }

    async fn write(&mut self, b: bytes::Bytes) {
        self.seq += 1;
        let seq = self.seq;
        let size = b.len();
        let r = match codec::decode(b) {
            Err(e) => Err(Error::from(NetError::protocol(format!("write {seq} is not a valid frame: {e}")))),
            Ok(frame) if size >= PIPELINE_MIN_BYTES || !self.pipe.idle() => {
                for d in self.pipe.queue(seq, frame).await {
                    self.report(d).await;
                }
                return;
            }
            // Small frames: inline, no thread handoff (the latency path).
            Ok(frame) => self.with_writer(false, |w| w.write(&frame)),
        };
        self.report((seq, r)).await;
    }

    /// Wait for queued writes and report their results.
    async fn settle(&mut self) {
        for d in self.pipe.drain().await {
            self.report(d).await;
        }
    }

    /// Tell the client about write `seq` if it was rejected or lost channels.
    async fn report(&mut self, (seq, r): Done) {
        let reply = match r {
            Ok(report) if report.unauthorized.is_empty() => return,
            Ok(report) => WriterResponse::Dropped { seq, channels: report.unauthorized },
            Err(e) => WriterResponse::WriteError { seq, error: WireError::from(&e) },
        };
        self.s.send_json(&reply).await;
    }

    /// Apply every queued write and report them, then answer `Done`.
    async fn flush(&mut self, id: u64) {
        self.settle().await;
        self.push_authority().await;
        self.s.send_json(&WriterResponse::Done { id }).await;
    }

    async fn commit(&mut self, id: u64) {
        self.settle().await;
        let reply = match self.with_writer(true, |w| w.commit()) {
            Ok(end) => WriterResponse::Committed { id, end },
            Err(e) => WriterResponse::Failed { id, error: WireError::from(&e) },
        };
        self.push_authority().await;
        self.s.send_json(&reply).await;
    }

    async fn set_authorities(&mut self, id: u64, changes: &[(ChannelKey, crate::control::Authority)]) {
        self.settle().await;
        let user = &self.user;
        let r = permit_authorities(user, changes.iter().map(|(_, a)| *a))
            .and_then(|()| self.with_writer(false, |w| w.set_authorities(changes)));
        if r.is_ok() {
            self.state.writers.refresh_and_wait(Some(self.id)).await;
        }
        self.push_authority().await;
        let reply = match r {
            Ok(()) => WriterResponse::Done { id },
            Err(e) => WriterResponse::Failed { id, error: WireError::from(&e) },
        };
        self.s.send_json(&reply).await;
    }

    /// Close the writer as `end` says, let the other streams know, tell the client.
    async fn finish(mut self, end: End) {
        self.settle().await;
        let writer = self.writer.lock().take();
        let (result, ending): (Result<Option<TimeStamp>>, Ending) = match end {
            End::Close(true) => (writer.map(|w| heavy(|| w.close())).transpose(), Ending::normal()),
            End::Close(false) => (Ok(writer.map(Writer::abort).map(|_| None).unwrap_or(None)), Ending::normal()),
            End::Abort(ending) => {
                if let Some(w) = writer {
                    w.abort();
                }
                (Ok(None), ending)
            }
            End::Shutdown => (writer.map(|w| heavy(|| w.close())).transpose(), Ending::shutdown()),
        };
        self.state.writers.remove(self.id);
        self.state.writers.refresh_and_wait(None).await;
        let (end, ending) = match result {
            Ok(end) => (end, ending),
            Err(e) => (None, Ending { error: Some(e), ..ending }),
        };
        ending.send(self.s, |error| WriterResponse::Closed { end, error }).await;
    }
}
