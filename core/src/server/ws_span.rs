//! Cluster mode: a writer whose channels are stored on several nodes is split, one relayed
//! writer stream per leaseholder (docs/cluster.md §5.2).
//!
//! The client sees one writer stream, as from a single node:
//! - each frame is cut by leaseholder and each part goes to its node (a frame of one node's
//!   channels passes as it is);
//! - `commit`, `flush` and `set_authorities` go to every node concerned and are answered once
//!   all of them have answered: `committed` carries the latest end, a failure names the node
//!   that failed and the nodes where the request took effect;
//! - write reports (`write_error`, `dropped`) come back under the client's write numbers;
//! - the channels the writer controls are the union of what every leaseholder granted, pushed
//!   whenever one of them changes.
//!
//! The guarantee is per node: each node commits its part atomically, as a writer of its own;
//! a commit is not atomic across nodes (there is no two-phase commit). Control is arbitrated
//! at each channel's leaseholder, so authority rules hold per channel exactly as for a
//! writer on that node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::AppState;
use super::ws_open::{Ending, WriterKind, already_open, end};
use super::ws_session::{Event, Session, malformed};
use crate::channel::{Channel, ChannelKey};
use crate::cluster::{Cluster, RelayedMessage, RelayedStream, leaseholder};
use crate::control::Authority;
use crate::error::{Error, Result};
use crate::framer::WriterConfig;
use crate::protocol::messages::{WriterRequest, WriterResponse};
use crate::protocol::{NetError, WireError, codec, parse_json};
use crate::telem::{Frame, TimeStamp};

/// One leaseholder's share of the writer.
struct Part {
    node: u8,
    up: Arc<RelayedStream>,
    /// The client's write number of each write sent to this part since `base` (the part's
    /// own numbers are `base + 1 ..`).
    seqs: Vec<u64>,
    base: u64,
    /// What this node granted, as last pushed.
    authorized: Vec<ChannelKey>,
    /// The part's `closed` message, once received.
    closed: Option<(Option<TimeStamp>, Option<WireError>)>,
}

impl Part {
    /// The client's number for this part's write `seq`.
    fn client_seq(&self, seq: u64) -> u64 {
        seq.checked_sub(self.base + 1).and_then(|i| self.seqs.get(i as usize).copied()).unwrap_or(seq)
    }

    /// Every write sent so far has been reported (a request was answered after them).
    fn settled(&mut self) {
        self.base += self.seqs.len() as u64;
        self.seqs.clear();
    }

    async fn send(&self, req: &WriterRequest) -> Result<()> {
        self.up.send_json_text(Bytes::from(serde_json::to_vec(req).expect("a request serializes"))).await
    }
}

/// A request sent to some parts, answered to the client when all of them have answered.
struct Pending {
    id: u64,
    commit: bool,
    waiting: BTreeSet<usize>,
    succeeded: Vec<usize>,
    end: Option<TimeStamp>,
    failed: Option<(usize, WireError)>,
}

/// Reads every part's messages into one queue (the tasks stop when dropped).
struct Readers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Readers {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

struct Span {
    state: Arc<AppState>,
    s: Session,
    cluster: Cluster,
    parts: Vec<Part>,
    seq: u64,
    sent_authorized: Vec<ChannelKey>,
    pending: Option<Pending>,
    /// Every part was asked to close: their `closed` messages are expected.
    closing: bool,
}

/// How the split writer ended.
enum Finish {
    /// Every part was asked to close (committing or not); wait for their `closed`.
    Closing(Ending),
    /// Broken off: abort every part (closing their streams) and end with this.
    Abort(Ending),
    /// The client vanished: abort every part, say nothing.
    Gone,
}

/// Run a writer of `groups` (channels by leaseholder, at least two nodes) for the client of
/// `s`, its config `config` already checked against the client's permissions. `refuse`
/// answers the JSON requests this node refuses itself (see [`super::ws_relay::relay`]).
pub(crate) async fn span(
    state: Arc<AppState>,
    s: Session,
    cluster: Cluster,
    groups: BTreeMap<u8, Vec<ChannelKey>>,
    mut config: WriterConfig,
    refuse: impl Fn(&[u8]) -> Option<Bytes>,
) {
    // One subject on every node, so control state names the same writer everywhere.
    if config.subject.key.is_empty() {
        config.subject.key = uuid::Uuid::new_v4().to_string();
    }
    let (tx, mut rx) = mpsc::channel::<(usize, Result<RelayedMessage>)>(256);
    let mut parts = Vec::with_capacity(groups.len());
    let mut readers = Readers(Vec::with_capacity(groups.len()));
    for (node, keys) in &groups {
        let up = match cluster.relay_stream(*node, crate::protocol::StreamKind::Writer, false).await {
            Ok(up) => Arc::new(up),
            Err(e) => {
                close_all(&parts).await;
                return end::<WriterKind>(s, Ending::violation(e)).await;
            }
        };
        let part = Part { node: *node, up: up.clone(), seqs: Vec::new(), base: 0, authorized: Vec::new(), closed: None };
        if let Err(e) = part.send(&WriterRequest::Open { config: part_config(&config, keys) }).await {
            close_all(&parts).await;
            up.close().await;
            return end::<WriterKind>(s, Ending::violation(cluster.unavailable(*node, e))).await;
        }
        readers.0.push(read_into(parts.len(), up, tx.clone()));
        parts.push(part);
    }
    drop(tx);
    let mut sp = Span { state, s, cluster, parts, seq: 0, sent_authorized: Vec::new(), pending: None, closing: false };
    let channels = match sp.opened(&mut rx, &config.channels).await {
        Ok(channels) => channels,
        Err(e) => {
            close_all(&sp.parts).await;
            return end::<WriterKind>(sp.s, Ending::violation(e)).await;
        }
    };
    sp.sent_authorized = sp.authorized();
    let opened =
        WriterResponse::Opened { channels, authorized: sp.sent_authorized.clone(), keepalive_ms: sp.s.keepalive.as_millis() as u64 };
    if !sp.s.send_json(&opened).await {
        close_all(&sp.parts).await;
        return;
    }
    // A leaseholder that stops answering ends the writer when its lease expires.
    let nodes: Vec<u8> = sp.parts.iter().map(|p| p.node).collect();
    let cluster = sp.cluster.clone();
    let left = cluster.left(&nodes);
    tokio::pin!(left);
    let finish = loop {
        tokio::select! {
            (_, e) = &mut left => break Finish::Abort(Ending::violation(e)),
            ev = sp.s.next(), if sp.pending.is_none() => match ev {
                Event::Frame(b) => {
                    if let Err(e) = sp.write(b).await {
                        break Finish::Abort(Ending::violation(e));
                    }
                }
                Event::Json(b) => {
                    if let Some(reply) = refuse(&b) {
                        if !sp.s.send_text(reply).await {
                            break Finish::Gone;
                        }
                        continue;
                    }
                    let r = match parse_json::<WriterRequest>(&b) {
                        Ok(WriterRequest::Commit { id }) => sp.request_all(id, true, &WriterRequest::Commit { id }).await,
                        Ok(WriterRequest::Flush { id }) => sp.request_all(id, false, &WriterRequest::Flush { id }).await,
                        Ok(WriterRequest::SetAuthorities { id, changes }) => sp.set_authorities(id, changes).await,
                        Ok(WriterRequest::Close { commit }) => match sp.close_parts(commit).await {
                            Ok(()) => break Finish::Closing(Ending::normal()),
                            Err(e) => Err(e),
                        },
                        Ok(WriterRequest::Open { .. }) => Err(already_open::<WriterKind>().into()),
                        Err(e) => Err(malformed("writer", e).into()),
                    };
                    if let Err(e) = r {
                        break Finish::Abort(Ending::violation(e));
                    }
                }
                Event::Gone(_) => break Finish::Gone,
                Event::Shutdown => match sp.close_parts(true).await {
                    Ok(()) => break Finish::Closing(Ending::shutdown()),
                    Err(e) => break Finish::Abort(Ending::violation(e)),
                },
                ev => {
                    if let Some(e) = Ending::forced_by(&sp.state, ev) {
                        break Finish::Abort(e);
                    }
                }
            },
            m = rx.recv() => match m {
                Some((i, m)) => match sp.on_part(i, m).await {
                    Ok(true) => {}
                    Ok(false) => break Finish::Gone,
                    Err(e) => break Finish::Abort(Ending::violation(e)),
                },
                None => break Finish::Abort(Ending::violation(NetError::protocol("every node of the writer stopped answering"))),
            },
        }
    };
    match finish {
        Finish::Gone => close_all(&sp.parts).await,
        Finish::Abort(ending) => {
            close_all(&sp.parts).await;
            end::<WriterKind>(sp.s, ending).await;
        }
        Finish::Closing(ending) => {
            // Wait for every part's `closed`; a part that fails meanwhile ends the wait.
            let mut lost = false;
            while sp.parts.iter().any(|p| p.closed.is_none()) {
                let (i, m) = tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => m,
                        None => break,
                    },
                    (node, e) = &mut left, if !lost => match sp.parts.iter().position(|p| p.node == node && p.closed.is_none()) {
                        Some(i) => {
                            lost = true;
                            (i, Err(e))
                        }
                        None => break,
                    },
                };
                if let Err(e) = sp.on_part(i, m).await {
                    let p = &mut sp.parts[i];
                    p.closed.get_or_insert((None, Some(WireError::from(&e))));
                }
            }
            let end_ts = sp.parts.iter().filter_map(|p| p.closed.as_ref().and_then(|c| c.0)).max();
            let failed = sp.parts.iter().position(|p| matches!(p.closed, Some((_, Some(_))) | None));
            let ending = match failed {
                None => ending,
                Some(i) => {
                    let ok: Vec<usize> =
                        (0..sp.parts.len()).filter(|j| *j != i && matches!(sp.parts[*j].closed, Some((_, None)))).collect();
                    let error = match sp.parts[i].closed.clone() {
                        Some((_, Some(w))) => w,
                        _ => WireError::from(&Error::from(NetError::protocol("the node closed the writer without saying how"))),
                    };
                    Ending { error: Some(Error::from(sp.explain(i, &ok, error))), ..ending }
                }
            };
            ending.send(sp.s, |error| WriterResponse::Closed { end: end_ts, error }).await;
        }
    }
    drop(readers);
}

/// The config of the part of `config` that `keys` are (authorities given per channel are
/// cut to match; one authority, or none, applies as it is).
fn part_config(config: &WriterConfig, keys: &[ChannelKey]) -> WriterConfig {
    let authorities: Vec<Authority> = if config.authorities.len() == config.channels.len() && config.authorities.len() > 1 {
        keys.iter().filter_map(|k| config.channels.iter().position(|c| c == k).map(|i| config.authorities[i])).collect()
    } else {
        config.authorities.clone()
    };
    WriterConfig { channels: keys.to_vec(), authorities, ..config.clone() }
}

/// Pass every message of `up` into `tx`, tagged with `i`, until it ends.
fn read_into(i: usize, up: Arc<RelayedStream>, tx: mpsc::Sender<(usize, Result<RelayedMessage>)>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let m = up.recv().await;
            let last = !matches!(m, Ok(RelayedMessage::Json(_) | RelayedMessage::Frame(_)));
            if tx.send((i, m)).await.is_err() || last {
                return;
            }
        }
    })
}

/// Close every part's stream (its node aborts that part, as a vanished client's).
async fn close_all(parts: &[Part]) {
    for p in parts {
        p.up.close().await;
    }
}

impl Span {
    /// Wait for every part's `opened`; the writer's channels, those asked for first, in order.
    async fn opened(&mut self, rx: &mut mpsc::Receiver<(usize, Result<RelayedMessage>)>, asked: &[ChannelKey]) -> Result<Vec<Channel>> {
        let mut got: Vec<Option<Vec<Channel>>> = vec![None; self.parts.len()];
        while got.iter().any(Option::is_none) {
            let Some((i, m)) = rx.recv().await else {
                return Err(NetError::protocol("the writer's nodes closed before opening it").into());
            };
            let node = self.parts[i].node;
            let b = match m {
                Ok(RelayedMessage::Json(b)) => b,
                Ok(RelayedMessage::Frame(_)) => continue,
                Ok(RelayedMessage::Closed(reason)) => {
                    return Err(self.cluster.unavailable(node, NetError::lost(format!("closed the writer: {reason}")).into()));
                }
                Err(e) => return Err(self.cluster.unavailable(node, e)),
            };
            match parse_json::<WriterResponse>(&b)? {
                WriterResponse::Opened { channels, authorized, .. } => {
                    self.parts[i].authorized = authorized;
                    got[i] = Some(channels);
                }
                WriterResponse::Authority { authorized } => self.parts[i].authorized = authorized,
                WriterResponse::Closed { error: Some(e), .. } => return Err(Error::from(e)),
                other => {
                    return Err(NetError::protocol(format!("node {} answered an open with {other:?}", self.cluster.node_name(node))).into());
                }
            }
        }
        let mut all: Vec<Channel> = got.into_iter().flatten().flatten().collect();
        all.sort_by_key(|c| asked.iter().position(|k| *k == c.key).unwrap_or(usize::MAX));
        Ok(all)
    }

    /// The channels controlled on any node, sorted.
    fn authorized(&self) -> Vec<ChannelKey> {
        let mut all: Vec<ChannelKey> = self.parts.iter().flat_map(|p| p.authorized.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The part storing `key`; the first part for a key no part has (its node then refuses
    /// it with the error a single node gives).
    fn part_of(&self, key: ChannelKey) -> usize {
        let node = leaseholder(key);
        self.parts.iter().position(|p| p.node == node).unwrap_or(0)
    }

    /// Cut frame `b` by leaseholder and send each part to its node.
    async fn write(&mut self, b: Bytes) -> Result<()> {
        self.seq += 1;
        let seq = self.seq;
        let frame = match codec::decode(b.clone()) {
            Ok(f) => f,
            Err(e) => {
                let error = WireError::from(&Error::from(NetError::protocol(format!("write {seq} is not a valid frame: {e}"))));
                self.s.send_json(&WriterResponse::WriteError { seq, error }).await;
                return Ok(());
            }
        };
        let mut cut: BTreeMap<usize, Frame> = BTreeMap::new();
        for (key, series) in frame.iter() {
            cut.entry(self.part_of(key)).or_default().push(key, series.clone());
        }
        if cut.is_empty() {
            cut.insert(0, Frame::new()); // the node reports the empty frame as it would
        }
        let whole = cut.len() == 1;
        for (i, part) in cut {
            let p = &mut self.parts[i];
            p.seqs.push(seq);
            let bytes = if whole { b.clone() } else { Bytes::from(codec::encode(&part)) };
            p.up.send_frame(bytes).await.map_err(|e| self.cluster.unavailable(p.node, e))?;
        }
        Ok(())
    }

    /// Send `req` (request `id`) to every part.
    async fn request_all(&mut self, id: u64, commit: bool, req: &WriterRequest) -> Result<()> {
        let all: Vec<(usize, WriterRequest)> = (0..self.parts.len()).map(|i| (i, req.clone())).collect();
        self.send_request(id, commit, all).await
    }

    /// Split `changes` by leaseholder and send each share to its node (all nodes when there
    /// are none, so the answer is the same as a single node's).
    async fn set_authorities(&mut self, id: u64, changes: Vec<(ChannelKey, Authority)>) -> Result<()> {
        if changes.is_empty() {
            return self.request_all(id, false, &WriterRequest::SetAuthorities { id, changes }).await;
        }
        let mut by_part: BTreeMap<usize, Vec<(ChannelKey, Authority)>> = BTreeMap::new();
        for (k, a) in changes {
            by_part.entry(self.part_of(k)).or_default().push((k, a));
        }
        let reqs = by_part.into_iter().map(|(i, changes)| (i, WriterRequest::SetAuthorities { id, changes })).collect();
        self.send_request(id, false, reqs).await
    }

    async fn send_request(&mut self, id: u64, commit: bool, reqs: Vec<(usize, WriterRequest)>) -> Result<()> {
        let mut waiting = BTreeSet::new();
        for (i, req) in reqs {
            let p = &self.parts[i];
            p.send(&req).await.map_err(|e| self.cluster.unavailable(p.node, e))?;
            waiting.insert(i);
        }
        self.pending = Some(Pending { id, commit, waiting, succeeded: Vec::new(), end: None, failed: None });
        Ok(())
    }

    /// Ask every part to close.
    async fn close_parts(&mut self, commit: bool) -> Result<()> {
        self.closing = true;
        for p in &self.parts {
            p.send(&WriterRequest::Close { commit }).await.map_err(|e| self.cluster.unavailable(p.node, e))?;
        }
        Ok(())
    }

    /// `error` from part `i`, saying where the request took effect (`ok`): a request is
    /// not atomic across nodes.
    fn explain(&self, i: usize, ok: &[usize], mut error: WireError) -> WireError {
        let name = |j: usize| self.cluster.node_name(self.parts[j].node);
        let done = if ok.is_empty() { "no other node".to_string() } else { ok.iter().map(|j| name(*j)).collect::<Vec<_>>().join(", ") };
        error.message = format!("{} (on node {}; this writer spans nodes, and it took effect on {done})", error.message, name(i));
        error
    }

    /// Handle message `m` of part `i`. `Ok(false)` when the client is gone.
    async fn on_part(&mut self, i: usize, m: Result<RelayedMessage>) -> Result<bool> {
        let node = self.parts[i].node;
        let b = match m {
            Ok(RelayedMessage::Json(b)) => b,
            Ok(RelayedMessage::Frame(_)) => return Ok(true),
            Ok(RelayedMessage::Closed(reason)) => {
                if self.parts[i].closed.is_some() {
                    return Ok(true);
                }
                return Err(self.cluster.unavailable(node, NetError::lost(format!("the writer's stream closed: {reason}")).into()));
            }
            Err(e) => return Err(self.cluster.unavailable(node, e)),
        };
        let reply = match parse_json::<WriterResponse>(&b)? {
            WriterResponse::Authority { authorized } => {
                self.parts[i].authorized = authorized;
                let now = self.authorized();
                if now == self.sent_authorized {
                    return Ok(true);
                }
                self.sent_authorized = now.clone();
                WriterResponse::Authority { authorized: now }
            }
            WriterResponse::WriteError { seq, mut error } => {
                let node = self.cluster.node_name(node);
                error.message = format!(
                    "{} (on node {node}; this writer spans nodes, and the frame's channels on other nodes were written)",
                    error.message
                );
                WriterResponse::WriteError { seq: self.parts[i].client_seq(seq), error }
            }
            WriterResponse::Dropped { seq, channels } => WriterResponse::Dropped { seq: self.parts[i].client_seq(seq), channels },
            WriterResponse::Committed { id, end } => return self.answered(i, id, Ok(Some(end))).await,
            WriterResponse::Done { id } => return self.answered(i, id, Ok(None)).await,
            WriterResponse::Failed { id, error } => return self.answered(i, id, Err(error)).await,
            WriterResponse::Closed { end, error } => {
                if self.parts[i].closed.is_some() {
                    return Ok(true);
                }
                self.parts[i].closed = Some((end, error.clone()));
                if self.closing {
                    return Ok(true);
                }
                // A node ended its part on its own: the writer cannot go on whole.
                let e = error.map(Error::from).unwrap_or_else(|| NetError::lost("the node closed its part of the writer").into());
                return Err(self.cluster.unavailable(node, e));
            }
            WriterResponse::Opened { .. } => {
                return Err(NetError::protocol(format!("node {} opened a writer twice", self.cluster.node_name(node))).into());
            }
        };
        Ok(self.s.send_json(&reply).await)
    }

    /// Part `i` answered request `id` (with an end for a commit, or an error).
    async fn answered(&mut self, i: usize, id: u64, r: std::result::Result<Option<TimeStamp>, WireError>) -> Result<bool> {
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id && p.waiting.contains(&i)) else {
            let node = self.cluster.node_name(self.parts[i].node);
            return Err(NetError::protocol(format!("node {node} answered request {id}, which it was not asked")).into());
        };
        p.waiting.remove(&i);
        self.parts[i].settled();
        match r {
            Ok(end) => {
                p.succeeded.push(i);
                p.end = p.end.max(end);
            }
            Err(e) => {
                p.failed.get_or_insert((i, e));
            }
        }
        if !p.waiting.is_empty() {
            return Ok(true);
        }
        let p = self.pending.take().expect("pending");
        let reply = match p.failed {
            Some((j, e)) => WriterResponse::Failed { id, error: self.explain(j, &p.succeeded, e) },
            None if p.commit => WriterResponse::Committed { id, end: p.end.unwrap_or_default() },
            None => WriterResponse::Done { id },
        };
        Ok(self.s.send_json(&reply).await)
    }
}
