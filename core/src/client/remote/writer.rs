//! The remote writer: pipelined writes, authority pushed by the node, errors on the next
//! call. See "Remote writers" in the [client docs](crate::client).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::http::Http;
use super::validate::Validator;
use super::ws::{self, Incoming, TaskGuard, WsConn};
use crate::channel::ChannelKey;
use crate::control::{Authority, ControlError};
use crate::error::{Error, Result};
use crate::framer::{DroppedWrite, WriteReport, WriterConfig};
use crate::protocol::messages::{WriterRequest, WriterResponse};
use crate::protocol::{NetError, StreamKind, WireError, codec};
use crate::telem::{Frame, TimeStamp};

/// How long to wait for the node to answer a request (commits can fsync a lot).
const REPLY_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct State {
    authorized: HashSet<ChannelKey>,
    errors: VecDeque<Error>,
    /// Frames the node applied without some channels, not reported to the caller yet.
    dropped: Vec<DroppedWrite>,
    replies: HashMap<u64, std::result::Result<Option<TimeStamp>, WireError>>,
    /// The node closed the writer: its end and why.
    closed: Option<(Option<TimeStamp>, Option<WireError>)>,
    /// The connection failed.
    fatal: Option<NetError>,
}

#[derive(Debug)]
struct Shared {
    conn: Arc<WsConn>,
    state: parking_lot::Mutex<State>,
}

impl Shared {
    fn handle(&self, m: Result<Incoming>) {
        let mut st = self.state.lock();
        let msg = match m {
            Ok(Incoming::Json(b)) => match serde_json::from_slice::<WriterResponse>(&b) {
                Ok(msg) => msg,
                Err(e) => {
                    st.fatal.get_or_insert(NetError::protocol(format!("unexpected message from the node: {e}")));
                    return;
                }
            },
            Ok(Incoming::Frame(_)) => {
                st.fatal.get_or_insert(NetError::protocol("the node sent a frame on a writer stream"));
                return;
            }
            Ok(Incoming::Closed(reason)) => {
                if st.closed.is_none() {
                    st.fatal.get_or_insert(NetError::ConnectionLost { reason });
                }
                return;
            }
            Err(Error::Net(e)) => {
                st.fatal.get_or_insert(e);
                return;
            }
            Err(e) => {
                st.fatal.get_or_insert(NetError::lost(e));
                return;
            }
        };
        match msg {
            WriterResponse::Authority { authorized } => st.authorized = authorized.into_iter().collect(),
            WriterResponse::WriteError { error, .. } => st.errors.push_back(error.into()),
            WriterResponse::Dropped { seq, channels } => st.dropped.push(DroppedWrite { write: seq, channels }),
            WriterResponse::Committed { id, end } => drop(st.replies.insert(id, Ok(Some(end)))),
            WriterResponse::Done { id } => drop(st.replies.insert(id, Ok(None))),
            WriterResponse::Failed { id, error } => drop(st.replies.insert(id, Err(error))),
            WriterResponse::Closed { end, error } => st.closed = Some((end, error)),
            WriterResponse::Opened { .. } => {}
        }
    }

    /// Process whatever the node has already sent, without waiting.
    fn drain(&self) {
        let Ok(mut s) = self.conn.stream.try_lock() else { return };
        loop {
            match ws::try_recv(&mut s) {
                Ok(None) => return,
                Ok(Some(m)) => {
                    let end = matches!(m, Incoming::Closed(_));
                    self.handle(Ok(m));
                    if end {
                        return;
                    }
                }
                Err(e) => return self.handle(Err(e)),
            }
        }
    }

    /// Read until `done(state)` holds, the writer is closed or the connection fails.
    async fn wait_until(&self, done: impl Fn(&State) -> bool) -> Result<()> {
        let mut s = self.conn.stream.lock().await;
        loop {
            {
                let st = self.state.lock();
                if done(&st) {
                    return Ok(());
                }
                if let Some(e) = &st.fatal {
                    return Err(e.clone().into());
                }
            }
            let m = ws::recv(&mut s, REPLY_IDLE).await;
            self.handle(m);
        }
    }
}

/// A writer on a remote node.
#[derive(Debug)]
pub(crate) struct RemoteWriter {
    shared: Arc<Shared>,
    max_message: u64,
    validator: Validator,
    keys: Vec<ChannelKey>,
    err_on_unauthorized: bool,
    start: TimeStamp,
    next_id: u64,
    /// Frames sent so far (the node numbers them the same way: `seq`).
    sent: u64,
    done: bool,
    _keepalive: TaskGuard,
}

impl RemoteWriter {
    pub(crate) async fn open(http: &Http, config: WriterConfig) -> Result<RemoteWriter> {
        let conn = WsConn::open(http, StreamKind::Writer).await?;
        let (err_on_unauthorized, mode, start) = (config.err_on_unauthorized, config.mode, config.start);
        conn.send_json(&WriterRequest::Open { config }).await?;
        let first = {
            let mut s = conn.stream.lock().await;
            ws::recv(&mut s, http.endpoint.timeout().max(REPLY_IDLE)).await?
        };
        let (channels, authorized, keepalive_ms) = match first {
            Incoming::Json(b) => match super::http::decode::<WriterResponse>(&b)? {
                WriterResponse::Opened { channels, authorized, keepalive_ms } => (channels, authorized, keepalive_ms),
                WriterResponse::Closed { error: Some(e), .. } => return Err(e.into()),
                other => return Err(NetError::protocol(format!("expected the writer to open, got {other:?}")).into()),
            },
            Incoming::Frame(_) => return Err(NetError::protocol("expected the writer to open, got a frame").into()),
            Incoming::Closed(reason) => return Err(NetError::ConnectionLost { reason }.into()),
        };
        let state = State { authorized: authorized.into_iter().collect(), ..State::default() };
        let shared = Arc::new(Shared { conn: conn.clone(), state: parking_lot::Mutex::new(state) });
        let weak = Arc::downgrade(&shared);
        let tick: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            if let Some(s) = weak.upgrade() {
                s.drain();
            }
        });
        let keepalive = ws::keepalive(Arc::downgrade(&conn), Duration::from_millis(keepalive_ms), Some(tick));
        Ok(RemoteWriter {
            validator: Validator::new(&channels, mode, start),
            keys: channels.iter().map(|c| c.key).collect(),
            shared,
            max_message: http.max_message.load(std::sync::atomic::Ordering::Relaxed),
            err_on_unauthorized,
            start,
            next_id: 1,
            sent: 0,
            done: false,
            _keepalive: keepalive,
        })
    }

    /// Fail with what the node reported since the last call, if anything.
    fn ready(&mut self) -> Result<()> {
        if self.done {
            return Err(Error::Closed { what: "the writer".into() });
        }
        self.shared.drain();
        let mut st = self.shared.state.lock();
        if let Some(e) = st.errors.pop_front() {
            drop(st);
            self.validator.reset();
            return Err(e);
        }
        if let Some((_, e)) = &st.closed {
            return Err(e.clone().map_or(Error::Closed { what: "the writer".into() }, Error::from));
        }
        if let Some(e) = &st.fatal {
            return Err(e.clone().into());
        }
        Ok(())
    }

    pub(crate) async fn write(&mut self, frame: &Frame) -> Result<WriteReport> {
        self.ready()?;
        self.validator.check_channels(frame)?;
        let unauthorized: Vec<ChannelKey> = {
            let st = self.shared.state.lock();
            frame.unique_keys().into_iter().filter(|k| !st.authorized.contains(k)).collect()
        };
        if !unauthorized.is_empty() && self.err_on_unauthorized {
            let names = unauthorized.iter().map(|&k| self.validator.channel(k).map(|c| c.name.clone()).unwrap_or_default()).collect();
            return Err(ControlError::Unauthorized { channels: names }.into());
        }
        let filtered;
        let frame = if unauthorized.is_empty() {
            frame
        } else {
            filtered = frame.iter().filter(|(k, _)| !unauthorized.contains(k)).map(|(k, s)| (k, s.clone())).collect::<Frame>();
            &filtered
        };
        let last = self.validator.check_storage(frame)?;
        if !frame.is_empty() {
            let size = codec::encoded_len(frame);
            if self.max_message > 0 && size as u64 > self.max_message {
                return Err(NetError::TooLarge { size: size as u64, limit: self.max_message }.into());
            }
            self.shared.conn.send_frame(Bytes::from(codec::encode(frame))).await?;
            self.sent += 1;
            self.validator.record(last);
        }
        Ok(WriteReport { unauthorized, dropped: self.take_dropped() })
    }

    /// What the node reported dropped since the last report.
    fn take_dropped(&self) -> Vec<DroppedWrite> {
        self.shared.drain();
        std::mem::take(&mut self.shared.state.lock().dropped)
    }

    /// Wait until the node has applied every frame sent so far; report what it dropped
    /// since the last report. See [`WriteReport`].
    pub(crate) async fn confirm(&mut self) -> Result<WriteReport> {
        if self.sent > 0 {
            self.request(|id| WriterRequest::Flush { id }).await?;
        }
        Ok(WriteReport { unauthorized: Vec::new(), dropped: self.take_dropped() })
    }

    async fn request(&mut self, make: impl FnOnce(u64) -> WriterRequest) -> Result<Option<TimeStamp>> {
        self.ready()?;
        let id = self.next_id;
        self.next_id += 1;
        self.shared.conn.send_json(&make(id)).await?;
        self.shared.wait_until(|st| st.replies.contains_key(&id) || st.closed.is_some()).await?;
        let mut st = self.shared.state.lock();
        let reply = st.replies.remove(&id);
        if let Some(e) = st.errors.pop_front() {
            drop(st);
            self.validator.reset();
            return Err(e);
        }
        match reply {
            Some(r) => r.map_err(Error::from),
            None => Err(st.closed.as_ref().and_then(|(_, e)| e.clone()).map_or(Error::Closed { what: "the writer".into() }, Error::from)),
        }
    }

    pub(crate) async fn commit(&mut self) -> Result<TimeStamp> {
        Ok(self.request(|id| WriterRequest::Commit { id }).await?.unwrap_or(self.start))
    }

    pub(crate) async fn set_authorities(&mut self, changes: &[(ChannelKey, Authority)]) -> Result<()> {
        for (k, _) in changes {
            if self.validator.channel(*k).is_none() {
                return Err(ControlError::UnknownChannel { channel: *k }.into());
            }
        }
        let changes = changes.to_vec();
        self.request(|id| WriterRequest::SetAuthorities { id, changes }).await.map(|_| ())
    }

    pub(crate) async fn set_authority(&mut self, a: Authority) -> Result<()> {
        let changes: Vec<_> = self.keys.iter().map(|&k| (k, a)).collect();
        self.set_authorities(&changes).await
    }

    pub(crate) fn has_control(&self, key: ChannelKey) -> bool {
        self.shared.drain();
        self.shared.state.lock().authorized.contains(&key)
    }

    async fn finish(&mut self, commit: bool) -> Result<TimeStamp> {
        if self.done {
            return Err(Error::Closed { what: "the writer".into() });
        }
        self.done = true;
        self.shared.drain();
        let pending = self.shared.state.lock().errors.pop_front();
        let r = async {
            if self.shared.state.lock().closed.is_none() {
                self.shared.conn.send_json(&WriterRequest::Close { commit }).await?;
                self.shared.wait_until(|st| st.closed.is_some()).await?;
            }
            let st = self.shared.state.lock();
            match st.closed.clone() {
                Some((_, Some(e))) => Err(Error::from(e)),
                Some((end, None)) => Ok(end.unwrap_or(self.start)),
                None => Err(Error::Closed { what: "the writer".into() }),
            }
        }
        .await;
        self.shared.conn.close().await;
        let dropped = std::mem::take(&mut self.shared.state.lock().dropped);
        if !dropped.is_empty() {
            // Reported by the node after the last write; call confirm() before closing to get it.
            tracing::warn!(
                key = "client/writer",
                ?dropped,
                "writes applied without some channels (control moved in flight) were not confirmed before close"
            );
        }
        // A write refused while the close was on its way is reported after it: the node
        // sends the refusal before it closes, so it is here now.
        let late = self.shared.state.lock().errors.pop_front();
        match pending.or(late) {
            Some(e) => Err(e),
            None => r,
        }
    }

    pub(crate) async fn close(mut self) -> Result<TimeStamp> {
        self.finish(true).await
    }

    pub(crate) async fn abort(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.finish(false)).await;
    }
}
