//! The cluster's state in etcd: key layout, node identity, the member lease and its
//! keep-alive, and the membership watch.
//!
//! Keys under the prefix `p` (default `/telemetron`):
//! - `p/nodes/<name>` → node number (decimal), and `p/numbers/<n>` → name: given once, kept;
//! - `p/members/<n>` → [`Member`] JSON, attached to the member's lease;
//! - `p/channels/<key, 10 digits>` → [`Channel`](crate::channel::Channel) JSON;
//! - `p/names/<name>` → channel key (decimal): reserves the name cluster-wide.

use std::path::Path;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp, WatchOptions, WatchStream};
use serde::{Deserialize, Serialize};

use super::{Cluster, ClusterStatus, MAX_NODES, Member, MemberStatus, Placement};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::net::NetError;

/// The file in a data directory that names the node it belongs to.
pub(super) const IDENTITY_FILE: &str = "cluster.json";

/// A node's name and number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The node's name.
    pub name: String,
    /// Its number, `1..=255`: the top byte of the keys of the channels it stores.
    pub node: u8,
}

pub(super) fn etcd_err(what: &str, e: etcd_client::Error) -> Error {
    NetError::Coordination { reason: format!("{what}: {e}") }.into()
}

/// Find (or give) the number of node `config.name`, checking it against the data
/// directory's `cluster.json` (written by [`super::Cluster::start`] once the engine holds the
/// directory). Call before opening the engine, whose channel keys come from the number
/// ([`super::node_keys`]).
///
/// # Errors
/// [`NetError::Coordination`] if etcd fails; [`Error::InvalidArgument`] if the directory
/// belongs to another node, or the name or number is held by another node, or all 255
/// numbers are taken.
pub async fn identify(config: &super::ClusterConfig, dir: &Path) -> Result<Identity> {
    validate_node_name(&config.name)?;
    let mut c = Coord::connect(&config.etcd, &config.prefix).await?;
    let local = read_identity_file(dir)?;
    if let Some(l) = &local
        && l.name != config.name
    {
        return Err(Error::InvalidArgument {
            reason: format!(
                "this data directory belongs to cluster node {:?} (number {}), not {:?}; serve it with --name {} or use another directory",
                l.name, l.node, config.name, l.name
            ),
        });
    }
    let identity = c.claim(&config.name, local.as_ref().map(|l| l.node)).await?;
    Ok(identity)
}

/// Read `dir/cluster.json`, the identity a data directory was given when it first joined.
pub(super) fn read_identity_file(dir: &Path) -> Result<Option<Identity>> {
    match std::fs::read(dir.join(IDENTITY_FILE)) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::InvalidArgument {
            reason: format!("{} is damaged ({e}); it names the node this directory belongs to", IDENTITY_FILE),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::InvalidArgument { reason: format!("cannot read {}: {e}", dir.join(IDENTITY_FILE).display()) }),
    }
}

/// Write `dir/cluster.json` (atomically: a partial file, synced, renamed).
pub(super) fn write_identity_file(dir: &Path, identity: &Identity) -> Result<()> {
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join(format!(".{IDENTITY_FILE}.partial"));
    let body = serde_json::to_vec_pretty(identity).expect("an identity serializes");
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot write {}: {e}", path.display()) })
}

fn validate_node_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        reason: format!("node name {name:?} must be 1-63 characters of letters, digits, '-', '_' or '.' (it is part of etcd keys)"),
    })
}

/// A connection to etcd and the key layout of one cluster.
pub(super) struct Coord {
    client: Client,
    prefix: String,
}

/// Keys per page of a prefix read ([`Coord::get_prefix`]): a reply must stay under gRPC's
/// 4 MiB message limit, and one of a catalog of 20,000 channels is already over it.
const PAGE: i64 = 1_000;

/// A JSON record from etcd with the revision it was written at (what keeps an older record
/// from replacing a newer mirror, `floors.rs`); `None` if it does not parse.
pub(super) fn record<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Option<(T, i64)> {
    Some((serde_json::from_slice(kv.value()).ok()?, kv.mod_revision()))
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Coord {
    /// Every key under `prefix` (a full key, `self.key(...)`), and the revision it was read
    /// at. Read in pages of [`PAGE`] keys, all at that one revision, so the whole is one
    /// consistent snapshot whatever its size; a page over the message limit (large range
    /// records) is asked again in halves. `what` names the step in an error.
    pub(super) async fn get_prefix(&mut self, prefix: &str, what: &str) -> Result<(Vec<KeyValue>, i64)> {
        let end = prefix_end(prefix.as_bytes());
        let (mut from, mut rev, mut limit) = (prefix.as_bytes().to_vec(), 0i64, PAGE);
        let mut out: Vec<KeyValue> = Vec::new();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(limit);
            if rev > 0 {
                options = options.with_revision(rev);
            }
            let mut got = match self.client.get(from.clone(), Some(options)).await {
                Ok(g) => g,
                Err(e) if limit > 1 && e.to_string().contains("message length too large") => {
                    limit = (limit / 2).max(1);
                    continue;
                }
                Err(e) => return Err(etcd_err(what, e)),
            };
            if rev == 0 {
                rev = got.header().map_or(0, |h| h.revision());
            }
            let more = got.more();
            let page = got.take_kvs();
            if let Some(last) = page.last() {
                from = last.key().to_vec();
                from.push(0);
            }
            out.extend(page);
            if !more {
                return Ok((out, rev));
            }
        }
    }

    pub(super) async fn connect(endpoints: &[String], prefix: &str) -> Result<Coord> {
        if endpoints.is_empty() {
            return Err(Error::InvalidArgument { reason: "no etcd endpoint given; pass --cluster http://host:2379".into() });
        }
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        let client = Client::connect(endpoints, Some(opts))
            .await
            .map_err(|e| etcd_err(&format!("cannot connect to etcd at {}", endpoints.join(",")), e))?;
        let mut c = Coord { client, prefix: prefix.trim_end_matches('/').to_string() };
        // Connecting is lazy: ask something, so a wrong address fails here and not later.
        c.client.status().await.map_err(|e| etcd_err(&format!("etcd at {} does not answer", endpoints.join(",")), e))?;
        Ok(c)
    }

    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    pub(super) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The number of node `name`: the one etcd has, else `wanted` (from the data
    /// directory), else the lowest free one.
    async fn claim(&mut self, name: &str, wanted: Option<u8>) -> Result<Identity> {
        let by_name = self.key(&format!("nodes/{name}"));
        for _ in 0..16 {
            let got = self.client.get(by_name.as_str(), None).await.map_err(|e| etcd_err("reading node numbers", e))?;
            if let Some(kv) = got.kvs().first() {
                let node: u8 = kv.value_str().ok().and_then(|v| v.parse().ok()).ok_or_else(|| NetError::Coordination {
                    reason: format!("{by_name} holds {:?}, not a node number", String::from_utf8_lossy(kv.value())),
                })?;
                if let Some(w) = wanted
                    && w != node
                {
                    return Err(Error::InvalidArgument {
                        reason: format!(
                            "this data directory was node {w} of the cluster, but etcd gives {name:?} number {node}: the cluster's etcd data was replaced; serve this directory against the etcd it joined"
                        ),
                    });
                }
                return Ok(Identity { name: name.to_string(), node });
            }
            let (taken, _) = self.get_prefix(&self.key("numbers/"), "reading node numbers").await?;
            let used: Vec<u8> = taken.iter().filter_map(|kv| kv.key_str().ok()?.rsplit('/').next()?.parse().ok()).collect();
            let node = match wanted {
                Some(w) if used.contains(&w) => {
                    return Err(Error::InvalidArgument {
                        reason: format!(
                            "this data directory was node {w}, which another node now holds in etcd; serve it against the etcd it joined"
                        ),
                    });
                }
                Some(w) => w,
                None => (1..=MAX_NODES).find(|n| !used.contains(n)).ok_or_else(|| Error::InvalidArgument {
                    reason: format!("all {MAX_NODES} node numbers of this cluster are taken; use another --cluster-prefix"),
                })?,
            };
            let by_number = self.key(&format!("numbers/{node}"));
            let txn = Txn::new()
                .when([Compare::version(by_name.as_str(), CompareOp::Equal, 0), Compare::version(by_number.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(by_name.as_str(), node.to_string(), None), TxnOp::put(by_number.as_str(), name, None)]);
            if self.client.txn(txn).await.map_err(|e| etcd_err("claiming a node number", e))?.succeeded() {
                return Ok(Identity { name: name.to_string(), node });
            }
            // Another node claimed that number (or this name) first: look again.
        }
        Err(NetError::Coordination { reason: "could not claim a node number after 16 attempts (heavy contention)".into() }.into())
    }

    /// Grant a lease of `ttl` and put the member record on it; returns the lease.
    ///
    /// The record is put only if no live member holds this number, or if the one that does
    /// is this process under its previous lease (`previous`): two processes never serve one
    /// node number (they would hand out the same channel keys).
    pub(super) async fn join(&mut self, ttl: Duration, mut member: Member, previous: i64) -> Result<i64> {
        let secs = ttl.as_secs().max(1) as i64;
        let key = self.key(&format!("members/{}", member.node));
        let lease = self.client.lease_grant(secs, None).await.map_err(|e| etcd_err("granting the member lease", e))?.id();
        member.lease = lease;
        let record = serde_json::to_vec(&member).expect("a member serializes");
        let put = || TxnOp::put(key.as_str(), record.clone(), Some(PutOptions::new().with_lease(lease)));
        let mut when = vec![Compare::version(key.as_str(), CompareOp::Equal, 0)];
        if previous != 0 {
            when = vec![Compare::lease(key.as_str(), CompareOp::Equal, previous)];
        }
        let mut joined = self
            .client
            .txn(Txn::new().when(when).and_then([put()]))
            .await
            .map_err(|e| etcd_err("putting the member record", e))?
            .succeeded();
        if !joined && previous != 0 {
            // The previous lease's record is gone (it expired): take the free number.
            let when = [Compare::version(key.as_str(), CompareOp::Equal, 0)];
            joined = self
                .client
                .txn(Txn::new().when(when).and_then([put()]))
                .await
                .map_err(|e| etcd_err("putting the member record", e))?
                .succeeded();
        }
        if joined {
            return Ok(lease);
        }
        let _ = self.client.lease_revoke(lease).await;
        let holder = self
            .client
            .get(key.as_str(), None)
            .await
            .ok()
            .and_then(|g| g.kvs().first().and_then(|kv| serde_json::from_slice::<Member>(kv.value()).ok()));
        Err(Error::InvalidArgument {
            reason: format!(
                "node {:?} (number {}) is already served by another process{}; stop it first, or give this one another --name and data directory",
                member.name,
                member.node,
                holder.map(|h| format!(" at {}", h.url)).unwrap_or_default()
            ),
        })
    }

    pub(super) async fn revoke(&mut self, lease: i64) -> Result<()> {
        self.client.lease_revoke(lease).await.map_err(|e| etcd_err("revoking the lease", e))?;
        Ok(())
    }

    /// The live members, and a watch of their changes from that revision on.
    pub(super) async fn members(&mut self) -> Result<(Vec<Member>, WatchStream)> {
        self.snapshot_and_watch("members/").await
    }

    /// Every channel definition, and a watch of their changes from that revision on.
    pub(super) async fn channels(&mut self) -> Result<(Vec<(Channel, i64)>, WatchStream)> {
        self.snapshot_and_watch_with("channels/", record).await
    }

    /// Every cluster user account (`users/`), and a watch of them.
    pub(super) async fn users(&mut self) -> Result<(Vec<crate::users::StoredUser>, WatchStream)> {
        self.snapshot_and_watch("users/").await
    }

    /// Every range record (`ranges/`), and a watch of them.
    pub(super) async fn ranges(&mut self) -> Result<(Vec<(crate::ranger::MirroredRange, i64)>, WatchStream)> {
        self.snapshot_and_watch_with("ranges/", record).await
    }

    /// The record at `etcd_key` (a full key) as etcd holds it now, with the revision it was
    /// written at; or, when there is none, the revision etcd is at. `what` names it in an
    /// error.
    pub(super) async fn read_back<T: serde::de::DeserializeOwned>(
        &mut self,
        etcd_key: &str,
        what: &str,
    ) -> Result<std::result::Result<(T, i64), i64>> {
        let got = self.client.get(etcd_key, None).await.map_err(|e| etcd_err(what, e))?;
        let now = got.header().map_or(0, |h| h.revision());
        Ok(got.kvs().first().and_then(record).ok_or(now))
    }

    /// The JSON values under `prefix`, and a watch of the prefix from the revision after
    /// that read: no change can fall between the two.
    async fn snapshot_and_watch<T: serde::de::DeserializeOwned>(&mut self, prefix: &str) -> Result<(Vec<T>, WatchStream)> {
        self.snapshot_and_watch_with(prefix, |kv| serde_json::from_slice(kv.value()).ok()).await
    }

    /// [`Coord::snapshot_and_watch`], each value read by `parse` (unreadable ones left out).
    async fn snapshot_and_watch_with<T>(&mut self, prefix: &str, parse: impl Fn(&KeyValue) -> Option<T>) -> Result<(Vec<T>, WatchStream)> {
        let prefix = self.key(prefix);
        let what = |verb: &str| format!("{verb} {prefix}");
        let (got, rev) = self.get_prefix(&prefix, &what("reading")).await?;
        let values = got.iter().filter_map(parse).collect();
        let options = WatchOptions::new().with_prefix().with_start_revision(rev + 1);
        let watch = self.client.watch(prefix.as_str(), Some(options)).await.map_err(|e| etcd_err(&what("watching"), e))?;
        Ok((values, watch))
    }

    /// Every node that ever joined, name to number.
    pub(super) async fn node_numbers(&mut self) -> Result<std::collections::BTreeMap<String, u8>> {
        let (got, _) = self.get_prefix(&self.key("nodes/"), "reading nodes").await?;
        Ok(got
            .iter()
            .filter_map(|kv| Some((kv.key_str().ok()?.rsplit('/').next()?.to_string(), kv.value_str().ok()?.parse().ok()?)))
            .collect())
    }

    pub(super) async fn status(&mut self, with_channels: bool) -> Result<ClusterStatus> {
        let (members_got, _) = self.get_prefix(&self.key("members/"), "reading members").await?;
        let mut members = Vec::new();
        for kv in &members_got {
            let Ok(member) = serde_json::from_slice::<Member>(kv.value()) else { continue };
            let left = match self.client.lease_time_to_live(member.lease, None).await {
                Ok(r) => r.ttl(),
                Err(_) => -1,
            };
            members.push(MemberStatus { member, lease_ttl_left: left });
        }
        members.sort_by_key(|m| m.member.node);
        let nodes = self.node_numbers().await?;
        let (got, _) = self.get_prefix(&self.key("channels/"), "reading channels").await?;
        let defs: Vec<Channel> = got.iter().filter_map(|kv| serde_json::from_slice(kv.value()).ok()).collect();
        let mut channels = std::collections::BTreeMap::new();
        let mut placement = Vec::new();
        for c in defs {
            *channels.entry(super::leaseholder(c.key)).or_insert(0) += 1;
            if with_channels {
                placement.push(Placement { key: c.key, name: c.name, node: super::leaseholder(c.key) });
            }
        }
        Ok(ClusterStatus { prefix: self.prefix.clone(), members, nodes, channels, placement })
    }
}

/// Keep the member lease alive at a third of its TTL. When it cannot (etcd down, or the
/// lease expired while this node was cut off or stopped), try to join again every second:
/// the node is out of the cluster until it has a lease again.
pub(super) async fn keep_alive(cluster: Cluster) {
    let ttl = cluster.inner.config.lease_ttl;
    let every = (ttl / 3).max(Duration::from_millis(100));
    loop {
        let lease = cluster.inner.lease.load(std::sync::atomic::Ordering::Acquire);
        let kept = async {
            let (mut keeper, mut stream) = {
                let mut c = cluster.inner.coord.lock().await;
                c.client().lease_keep_alive(lease).await.map_err(|e| etcd_err("keep-alive", e))?
            };
            // A slow answer is not a lost lease: keep renewing until etcd says the lease is
            // gone, or a whole TTL passes without an answer (then it is gone anyway).
            let mut renewed = tokio::time::Instant::now();
            // The earliest renewal not answered yet: an answer may be to it, so the lease
            // is counted from there (never longer than it surely lasts).
            let mut unanswered: Option<std::time::Instant> = None;
            loop {
                let asked = *unanswered.get_or_insert_with(std::time::Instant::now);
                keeper.keep_alive().await.map_err(|e| etcd_err("keep-alive", e))?;
                match tokio::time::timeout(every, stream.message()).await {
                    Ok(Ok(Some(r))) if r.ttl() > 0 => {
                        renewed = tokio::time::Instant::now();
                        unanswered = None;
                        cluster.renewed(asked, Duration::from_secs(r.ttl() as u64));
                    }
                    Ok(Ok(_)) => return Err(Error::from(NetError::Coordination { reason: "the member lease expired".into() })),
                    Ok(Err(e)) => return Err(etcd_err("keep-alive", e)),
                    Err(_) if renewed.elapsed() < ttl => continue,
                    Err(_) => return Err(NetError::Coordination { reason: "etcd answered no keep-alive for a whole TTL".into() }.into()),
                }
                tokio::time::sleep(every).await;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        };
        if let Err(e) = kept.await {
            tracing::warn!(key = "cluster", error = %e, "lost the member lease; rejoining");
        }
        loop {
            match cluster.join().await {
                Ok(()) => {
                    tracing::info!(key = "cluster", "rejoined the cluster with a new lease");
                    break;
                }
                Err(e) => tracing::debug!(key = "cluster", error = %e, "cannot rejoin yet"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Keep the member table current. A broken watch (etcd restarted) is replaced by a fresh
/// read and watch.
pub(super) async fn watch_members(cluster: Cluster, mut watch: WatchStream) {
    loop {
        while let Ok(Some(r)) = watch.message().await {
            let mut m = cluster.inner.members.lock();
            for ev in r.events() {
                let Some(kv) = ev.kv() else { continue };
                let node: Option<u8> = kv.key_str().ok().and_then(|k| k.rsplit('/').next()?.parse().ok());
                match (ev.event_type(), node) {
                    (EventType::Put, _) => {
                        if let Ok(member) = serde_json::from_slice::<Member>(kv.value()) {
                            tracing::info!(key = "cluster", node = member.node, name = %member.name, url = %member.url, "member up");
                            cluster.inner.names.lock().insert(member.node, member.name.clone());
                            m.insert(member.node, member);
                        }
                    }
                    (EventType::Delete, Some(node)) => {
                        tracing::warn!(key = "cluster", node, "member down (lease expired or revoked)");
                        m.remove(&node);
                        cluster.inner.peers.forget(node);
                        // Its holders are gone with it: this node's control channel says so.
                        cluster.inner.engine.relay_peer_control(&super::node_keys(node), true, Vec::new());
                    }
                    (EventType::Delete, None) => {}
                }
            }
            cluster.members_changed(&m);
        }
        watch = resync(|| async {
            let (members, w) = cluster.inner.coord.lock().await.members().await?;
            cluster.apply_members(members);
            Ok(w)
        })
        .await;
    }
}

/// After a broken watch (etcd restarted or unreachable): run `again` (a full read and a
/// fresh watch) every 500 ms until etcd answers.
pub(super) async fn resync<T, F: std::future::Future<Output = Result<T>>>(mut again: impl FnMut() -> F) -> T {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match again().await {
            Ok(v) => return v,
            Err(e) => tracing::debug!(key = "cluster", error = %e, "etcd not back yet"),
        }
    }
}
