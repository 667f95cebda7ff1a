//! Requests for other nodes' channels, sent through the remote client to their
//! leaseholders; reads of several nodes' channels fan out and merge.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use super::{Cluster, leaseholder};
use crate::channel::ChannelKey;
use crate::client::{Client, ConnectOptions, Credentials};
use crate::error::{Error, Result};
use crate::net::NetError;
use crate::telem::{Frame, Reduction, TimeRange};

/// Connections to peers, one [`Client`] per node (a client pools its HTTP connections, and
/// each streamer has its own WebSocket).
pub(super) struct Peers {
    token: Option<String>,
    clients: Mutex<BTreeMap<u8, (String, Client)>>,
}

impl Peers {
    pub(super) fn new(token: Option<String>) -> Peers {
        Peers { token, clients: Mutex::new(BTreeMap::new()) }
    }

    /// Drop the connection to `node` (it left; a new member under that number may have
    /// another URL).
    pub(super) fn forget(&self, node: u8) {
        self.clients.lock().remove(&node);
    }

    pub(super) async fn close(&self) {
        let all: Vec<Client> = std::mem::take(&mut *self.clients.lock()).into_values().map(|(_, c)| c).collect();
        for c in all {
            let _ = c.close().await;
        }
    }

    fn options(&self) -> ConnectOptions {
        let credentials = match &self.token {
            Some(token) => Credentials::Token { token: token.clone() },
            None => Credentials::None,
        };
        ConnectOptions { credentials, timeout: std::time::Duration::from_secs(3), ..ConnectOptions::default() }
    }
}

impl Cluster {
    /// A client of `node`, connected on first use and kept.
    pub(super) async fn peer(&self, node: u8) -> Result<Client> {
        let member = self.member_of(u32::from(node) << 24)?;
        if let Some((url, c)) = self.inner.peers.clients.lock().get(&node)
            && *url == member.url
        {
            return Ok(c.clone());
        }
        let client = crate::client::connect(&member.url, self.inner.peers.options()).await.map_err(|e| self.unavailable(node, e))?;
        self.inner.peers.clients.lock().insert(node, (member.url, client.clone()));
        Ok(client)
    }

    /// Run `call` on a client of `node`. It ends with `node.unavailable` as soon as `node`
    /// leaves the member list (its lease expired: stopped or cut off), not only when its
    /// connection fails, so no request waits on a node the cluster has given up on.
    /// Connection failures become `node.unavailable` too; the peer's own errors pass.
    ///
    /// # Errors
    /// As `call`; `node.unavailable`.
    pub(crate) async fn ask<T, F>(&self, node: u8, call: impl FnOnce(Client) -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let mut live = self.inner.live.subscribe();
        // Connecting is inside the race too: a stopped node accepts TCP connections (the
        // kernel does) and then answers nothing, so the first call to it would otherwise
        // wait out the client's request timeout.
        let work = async {
            let peer = self.peer(node).await?;
            call(peer).await.map_err(|e| self.unavailable(node, e))
        };
        tokio::select! {
            r = work => r,
            _ = live.wait_for(|l| !l.contains(&node)) => Err(NetError::NodeUnavailable {
                node: self.node_name(node),
                reason: "its lease expired while the request was in flight".into(),
            }
            .into()),
        }
    }

    /// Resolves once one of `nodes` is no longer a live member (its lease expired or was
    /// revoked), with that node and the error to end its streams with.
    pub(crate) async fn left(&self, nodes: &[u8]) -> (u8, Error) {
        let mut live = self.inner.live.subscribe();
        let mut gone = None;
        if live
            .wait_for(|l| {
                gone = nodes.iter().copied().find(|n| !l.contains(n));
                gone.is_some()
            })
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
        let node = gone.unwrap_or_default();
        let e = NetError::NodeUnavailable {
            node: self.node_name(node),
            reason: "its lease expired (it stopped answering or was cut off)".into(),
        };
        (node, e.into())
    }

    /// A peer's failure as the caller should see it: connection failures become
    /// `node.unavailable` naming the node; the peer's own errors (a bad request) pass.
    pub fn unavailable(&self, node: u8, e: Error) -> Error {
        match &e {
            Error::Net(NetError::Connect { reason, .. } | NetError::ConnectionLost { reason }) => {
                NetError::NodeUnavailable { node: self.node_name(node), reason: reason.clone() }.into()
            }
            Error::Net(NetError::Timeout { what, millis }) => {
                NetError::NodeUnavailable { node: self.node_name(node), reason: format!("{what} timed out after {millis} ms") }.into()
            }
            _ => e,
        }
    }

    /// A raw stream of `kind` on `node`, to relay a client's writer or iterator to it
    /// (`compress`: the client asked for compressed frames).
    ///
    /// # Errors
    /// `node.unavailable`.
    pub async fn relay_stream(&self, node: u8, kind: crate::client::StreamKind, compress: bool) -> Result<crate::client::RelayedStream> {
        self.ask(node, |peer| async move { peer.relay_stream(kind, compress).await }).await
    }

    /// Where a one-shot request of `keys` runs: `None` here (every channel is local),
    /// `Some(node)` on the one other node that stores them all.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the channels are stored on several nodes (writer
    /// streams are split per node, `server/ws_span.rs`, and iterators span nodes,
    /// `iterate.rs`; a one-shot write does neither).
    pub fn route_stream(&self, keys: &[ChannelKey]) -> Result<Option<u8>> {
        let groups = self.by_node(keys)?;
        match groups.keys().copied().collect::<Vec<u8>>().as_slice() {
            [] => Ok(None),
            [n] if *n == self.node() => Ok(None),
            [n] => Ok(Some(*n)),
            many => Err(Error::InvalidArgument {
                reason: format!(
                    "these channels are stored on {} nodes ({}); this request runs on one node: write each node's channels separately, or open a writer (a writer spanning nodes is split per node; `telemetron cluster status --channels` shows where each channel lives)",
                    many.len(),
                    many.iter().map(|n| self.node_name(*n)).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }

    /// `keys` grouped by leaseholder, each once, in the order given.
    ///
    /// # Errors
    /// `channel.not_found` for a key no node defines (not `node.unavailable`: nothing is
    /// down, the key is wrong).
    pub fn by_node(&self, keys: &[ChannelKey]) -> Result<BTreeMap<u8, Vec<ChannelKey>>> {
        let mut groups: BTreeMap<u8, Vec<ChannelKey>> = BTreeMap::new();
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for &k in keys {
            self.inner.engine.channels().get(k)?;
            if seen.insert(k) {
                groups.entry(leaseholder(k)).or_default().push(k);
            }
        }
        Ok(groups)
    }

    /// Read `keys` over `range`, each node's channels from that node, merged into one frame
    /// (each node's series in the order it returned them). With `reduce`, each node reduces
    /// its own channels.
    ///
    /// # Errors
    /// As [`crate::Engine::read`]; `node.unavailable` when a leaseholder is down (nothing
    /// partial is returned).
    pub async fn read(&self, range: TimeRange, keys: &[ChannelKey], reduce: Option<Reduction>) -> Result<Frame> {
        let groups = self.by_node(keys)?;
        let mut reads = Vec::new();
        for (node, group) in groups {
            let this = self.clone();
            reads.push(tokio::spawn(async move {
                if node == this.node() {
                    let engine = this.inner.engine.clone();
                    tokio::task::spawn_blocking(move || match &reduce {
                        Some(r) => engine.read_reduced(range, &group, r),
                        None => engine.read(range, &group),
                    })
                    .await
                    .map_err(|e| Error::from(NetError::Server { reason: format!("read failed: {e}") }))?
                } else {
                    this.ask(node, |peer| async move {
                        match reduce {
                            Some(r) => peer.read_reduced(range, &group, r).await,
                            None => peer.read(range, &group).await,
                        }
                    })
                    .await
                }
            }));
        }
        let mut out = Frame::new();
        for r in reads {
            let f = r.await.map_err(|e| NetError::Server { reason: format!("read failed: {e}") })??;
            for (k, s) in f.iter() {
                out.push(k, s.clone());
            }
        }
        Ok(out)
    }

    /// A one-shot write (open, write, commit, close) of `frame` at `authority`, on the one
    /// node that stores its channels (as [`crate::Engine::write_at`] there: refused with
    /// `control.unauthorized` unless it gets control of every channel).
    ///
    /// # Errors
    /// As [`crate::Engine::write_at`]; [`Error::InvalidArgument`] when the frame's channels
    /// are stored on several nodes; `node.unavailable`.
    pub async fn write_at(&self, start: crate::telem::TimeStamp, frame: Frame, authority: u8) -> Result<crate::telem::TimeStamp> {
        let keys = frame.unique_keys();
        let Some(node) = self.route_stream(&keys)? else {
            let engine = self.inner.engine.clone();
            return tokio::task::spawn_blocking(move || engine.write_at(start, frame, authority))
                .await
                .map_err(|e| NetError::Server { reason: format!("write failed: {e}") })?;
        };
        let config = crate::framer::WriterConfig { authorities: vec![authority], ..crate::framer::WriterConfig::new(start, keys) }
            .auto_commit(false)
            .err_on_unauthorized(true)
            .name("one-shot write");
        self.ask(node, |peer| async move {
            let mut w = peer.open_writer(config).await?;
            w.write(&frame).await?;
            w.close().await
        })
        .await
    }

    /// Who controls `keys`, each asked of its leaseholder (which arbitrates it). With no
    /// keys, this node's own holders.
    ///
    /// # Errors
    /// `channel.not_found`; `node.unavailable`.
    pub async fn control_states(&self, keys: &[ChannelKey]) -> Result<Vec<crate::control::State>> {
        if keys.is_empty() {
            return Ok(self.inner.engine.control_states(keys));
        }
        let mut out = Vec::new();
        for (node, group) in self.by_node(keys)? {
            if node == self.node() {
                out.extend(self.inner.engine.control_states(&group));
            } else {
                out.extend(self.ask(node, |peer| async move { peer.control_states(&group).await }).await?);
            }
        }
        Ok(out)
    }

    /// The stored time range of a channel, from its leaseholder.
    ///
    /// # Errors
    /// As [`crate::Engine::time_range`]; `node.unavailable`.
    pub async fn time_range(&self, key: ChannelKey) -> Result<Option<TimeRange>> {
        if self.is_local(key) {
            let engine = self.inner.engine.clone();
            return tokio::task::spawn_blocking(move || engine.time_range(key))
                .await
                .map_err(|e| NetError::Server { reason: format!("time range failed: {e}") })?;
        }
        let node = leaseholder(key);
        self.ask(node, |peer| async move { peer.time_range(key).await }).await
    }

    /// Delete `range` of `keys`, each node's channels on that node.
    ///
    /// # Errors
    /// As [`crate::Engine::delete`]; `node.unavailable` (the nodes before it in key order
    /// have deleted their part).
    pub async fn delete(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<()> {
        for (node, group) in self.by_node(keys)? {
            if node == self.node() {
                let engine = self.inner.engine.clone();
                tokio::task::spawn_blocking(move || engine.delete(range, &group))
                    .await
                    .map_err(|e| NetError::Server { reason: format!("delete failed: {e}") })??;
            } else {
                self.ask(node, |peer| async move { peer.delete(range, &group).await }).await?;
            }
        }
        Ok(())
    }
}
