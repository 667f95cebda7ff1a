//! Cluster mode: several nodes serving as one, coordinated through etcd (docs/cluster.md).
//!
//! ## Pieces
//! - **Identity** ([`identify`]): a node's name maps to a number `1..=255`, kept in etcd
//!   (`<prefix>/nodes/<name>`) and in the data directory (`cluster.json`), so a data
//!   directory always belongs to the same node. A node's engine hands out channel keys from
//!   its own block ([`node_keys`]): a key names the node that stores it, its
//!   **leaseholder** ([`leaseholder`]), with no lookup.
//! - **Membership** (`coord.rs`): a lease with a TTL, kept alive by the node; the member
//!   record (`<prefix>/members/<n>`: name, URL) is attached to it, so a node that dies or is
//!   cut off from etcd disappears from the cluster after the TTL.
//! - **Channel catalog** (`catalog.rs`): every channel's definition is put in etcd
//!   (`<prefix>/channels/<key>`) and its name reserved (`<prefix>/names/<name>`) in one
//!   transaction, so names are unique cluster-wide. Every node watches the definitions and
//!   keeps the other nodes' channels as **mirrors** in its engine
//!   ([`Engine::mirror_channels`]), so list, search and retrieve answer for the whole
//!   cluster with the single-node code.
//! - **Routing** (`route.rs`): reads, time ranges, deletes and renames of another node's
//!   channels go to that node through the remote client; reads of several nodes' channels
//!   fan out and merge.
//! - **Peer taps** (`taps.rs`): a streamer on node A of channels stored on B is fed by one
//!   remote streamer from A to B per peer (the peer tap), opened, updated and closed as the
//!   demand of A's streamers changes (the dynamic delta); its frames are delivered to A's
//!   own relay ([`Engine::relay_mirrored`]), so A's streamers need no change.
//!
//! - **Ranges** (`ranges.rs`): each range is stored by the node it was created through and
//!   published in etcd (`<prefix>/ranges/<node>/<uuid>`); every other node mirrors it in
//!   memory, and changes to it made through another node are forwarded to its home.
//! - **Users** (`users.rs`): the cluster's accounts live in etcd (`<prefix>/users/<name>`),
//!   managed with `telemetron users ... --cluster`, and every node keeps them current.
//!
//! - **Spanning iterators** (`iterate.rs`): an iterator of several nodes' channels runs on
//!   the node of its first channel (the lead, whose index positions it) and reads the
//!   others over each view the lead reports.
//!
//! - **Relayed streams** (`server/ws_relay.rs`): a writer or iterator of another node's
//!   channels is passed on to that node message for message, so control is arbitrated at
//!   the leaseholder for writers connected to any node.
//!
//! What is not built yet is listed in docs/cluster.md §8.

mod catalog;
mod coord;
mod floors;
mod iterate;
mod ranges;
mod route;
mod taps;
mod users;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::channel::ChannelKey;
use crate::error::{Error, Result};
use crate::net::NetError;

/// The raw stream a node relays a client's writer or iterator over (`server/ws_relay.rs`).
pub use crate::client::{RelayedMessage, RelayedStream};
pub use coord::{Identity, identify};
pub use iterate::SpanningIterator;
pub use users::{add_user, list_users, remove_user, set_user_password};

/// How a node joins a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// etcd client URLs (`http://127.0.0.1:2379`).
    pub etcd: Vec<String>,
    /// This node's name, unique in the cluster (`daq-1`).
    pub name: String,
    /// The URL other nodes and clients reach this node at (`http://10.0.0.5:9090`).
    pub advertise: String,
    /// How long the node's lease lives without a keep-alive: a node that dies or is cut
    /// off from etcd leaves the cluster this long after its last keep-alive (default 5 s).
    pub lease_ttl: Duration,
    /// The root of the cluster's keys in etcd (default `/telemetron`); clusters sharing an
    /// etcd use different prefixes.
    pub prefix: String,
    /// The token this node presents to its peers (nodes with authentication).
    pub token: Option<String>,
    /// Where channels created through this node are stored when the request does not say
    /// (`serve --place`): a node name. `None`: here. Data channels always go with their index.
    pub place: Option<String>,
    /// What control is fenced when the lease may have expired (`serve --fence`): commands
    /// (virtual channels; the default) or every channel.
    pub fence: crate::control::FenceScope,
}

impl ClusterConfig {
    /// A configuration with the default TTL and prefix.
    pub fn new(etcd: Vec<String>, name: impl Into<String>, advertise: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            etcd,
            name: name.into(),
            advertise: advertise.into(),
            lease_ttl: Duration::from_secs(5),
            prefix: "/telemetron".into(),
            token: None,
            place: None,
            fence: crate::control::FenceScope::Commands,
        }
    }
}

/// The highest node number: node numbers are the top byte of a channel key.
pub const MAX_NODES: u8 = u8::MAX;

/// The channel keys node `node` hands out: `node << 24 | 1 ..= node << 24 | 0xFF_FFFF`.
pub fn node_keys(node: u8) -> std::ops::RangeInclusive<ChannelKey> {
    let base = u32::from(node) << 24;
    (base | 1)..=(base | 0x00FF_FFFF)
}

/// The node that stores channel `key` (its leaseholder): the key's top byte.
pub fn leaseholder(key: ChannelKey) -> u8 {
    (key >> 24) as u8
}

/// A live member of the cluster, as its record in etcd says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its number (the top byte of its channels' keys).
    pub node: u8,
    /// Its name.
    pub name: String,
    /// Where it serves clients and peers.
    pub url: String,
    /// Its lease (hex in `cluster status`).
    pub lease: i64,
    /// When it joined (ms since the Unix epoch).
    pub joined_ms: u64,
}

/// What `telemetron cluster status` prints: the live members, the nodes known by name,
/// and how many channels each node stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The etcd key prefix.
    pub prefix: String,
    /// Live members, by number.
    pub members: Vec<MemberStatus>,
    /// Every node ever registered (name to number), live or not.
    pub nodes: BTreeMap<String, u8>,
    /// Channel definitions per node number.
    pub channels: BTreeMap<u8, usize>,
    /// With `--channels`: every channel's key, name and leaseholder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<Placement>,
}

/// One live member and its lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The member record.
    #[serde(flatten)]
    pub member: Member,
    /// Seconds left on its lease as etcd counts them (-1 if it just expired).
    pub lease_ttl_left: i64,
}

/// Where one channel lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placement {
    /// The channel's key.
    pub key: ChannelKey,
    /// Its name.
    pub name: String,
    /// Its leaseholder's number.
    pub node: u8,
}

/// The cluster status read from etcd alone (no node needed): `telemetron cluster status`.
///
/// # Errors
/// [`NetError::Coordination`] if etcd cannot be reached.
pub async fn status(etcd: &[String], prefix: &str, with_channels: bool) -> Result<ClusterStatus> {
    let mut c = coord::Coord::connect(etcd, prefix).await?;
    c.status(with_channels).await
}

/// A running cluster node: membership, the channel catalog's watch, peer connections and
/// taps. Cheap to clone. [`Cluster::leave`] ends it.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("name", &self.inner.identity.name).field("node", &self.inner.identity.node).finish()
    }
}

struct Inner {
    config: ClusterConfig,
    identity: Identity,
    engine: Engine,
    coord: tokio::sync::Mutex<coord::Coord>,
    /// Live members by number, kept current by the membership watch.
    members: Mutex<BTreeMap<u8, Member>>,
    /// Node names by number (live or not), for error messages.
    names: Mutex<BTreeMap<u8, String>>,
    peers: route::Peers,
    /// Background tasks (keep-alive, watches, tapper), aborted by `leave`.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// This node's lease, once granted (0 before): its member record and fencing.
    lease: std::sync::atomic::AtomicI64,
    /// Until when (ms after `born`) the lease surely lasts: the last renewal sent plus the
    /// TTL etcd granted. Past it, control is fenced (`fence_watch`).
    valid_until_ms: std::sync::atomic::AtomicU64,
    born: std::time::Instant,
    /// The channels each peer tap is subscribed to now (by node), as its tap last confirmed.
    tapped: tokio::sync::watch::Sender<BTreeMap<u8, Vec<ChannelKey>>>,
    /// The live members' numbers: requests to a peer end when it leaves this set.
    live: tokio::sync::watch::Sender<std::collections::BTreeSet<u8>>,
    /// Read-your-writes for the mirrors of other nodes' channels and ranges (`floors.rs`).
    channel_floors: floors::Floors<ChannelKey>,
    range_floors: floors::Floors<uuid::Uuid>,
}

impl Cluster {
    /// Join the cluster with an engine opened with `Options::channel_keys` =
    /// [`node_keys`]`(identity.node)`: register this node's channels, mirror the others',
    /// take a lease and publish the member record, then keep all of that current in the
    /// background.
    ///
    /// # Errors
    /// [`NetError::Coordination`] if etcd fails; [`Error::InvalidArgument`] if the engine
    /// holds channels outside this node's key block (a data directory that was served
    /// alone before: export and import its data into a cluster node instead).
    pub async fn start(config: ClusterConfig, identity: Identity, engine: Engine) -> Result<Cluster> {
        let block = node_keys(identity.node);
        let foreign: Vec<String> = engine
            .channels()
            .list()
            .iter()
            .filter(|c| !block.contains(&c.key))
            .take(5)
            .map(|c| format!("{:?} (key {})", c.name, c.key))
            .collect();
        if !foreign.is_empty() {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "this data directory holds channels with keys outside node {}'s block ({}, ...): it was served outside a cluster, or by another node; serve it without --cluster, or export its data and import it through a cluster node",
                    identity.node,
                    foreign.join(", ")
                ),
            });
        }
        if coord::read_identity_file(engine.dir())?.as_ref() != Some(&identity) {
            coord::write_identity_file(engine.dir(), &identity)?;
        }
        let coord = coord::Coord::connect(&config.etcd, &config.prefix).await?;
        let inner = Arc::new(Inner {
            peers: route::Peers::new(config.token.clone()),
            config,
            identity,
            engine,
            coord: tokio::sync::Mutex::new(coord),
            members: Mutex::new(BTreeMap::new()),
            names: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
            lease: std::sync::atomic::AtomicI64::new(0),
            valid_until_ms: std::sync::atomic::AtomicU64::new(0),
            born: std::time::Instant::now(),
            tapped: tokio::sync::watch::Sender::new(BTreeMap::new()),
            live: tokio::sync::watch::Sender::new(std::collections::BTreeSet::new()),
            channel_floors: floors::Floors::default(),
            range_floors: floors::Floors::default(),
        });
        let cluster = Cluster { inner };
        // Watch the engine's changes before registering what it holds, so a channel it
        // creates meanwhile (self-telemetry starting) is not missed.
        let changes = crate::Client::embedded(cluster.inner.engine.clone()).watch_changes().await?;
        cluster.register_local_channels().await?;
        let range_watch = cluster.sync_ranges().await?;
        let user_watch = cluster.sync_users().await?;
        let (members, channels) = {
            let mut c = cluster.inner.coord.lock().await;
            (c.members().await?, c.channels().await?)
        };
        cluster.apply_members(members.0);
        let listed = channels.0.iter().map(|(c, _)| c.key).collect();
        cluster.apply_channels(channels.0.into_iter().map(|(c, _)| c).collect(), Some(listed));
        cluster.join().await?;
        let tasks = vec![
            tokio::spawn(coord::keep_alive(cluster.clone())),
            tokio::spawn(coord::watch_members(cluster.clone(), members.1)),
            tokio::spawn(catalog::watch_channels(cluster.clone(), channels.1)),
            tokio::spawn(catalog::follow_engine(cluster.clone(), changes)),
            tokio::spawn(ranges::watch_ranges(cluster.clone(), range_watch)),
            tokio::spawn(users::watch_users(cluster.clone(), user_watch)),
            tokio::spawn(taps::tapper(cluster.clone())),
            tokio::spawn(fence_watch(cluster.clone())),
        ];
        cluster.inner.tasks.lock().extend(tasks);
        tracing::info!(key = "cluster", node = cluster.inner.identity.node, name = %cluster.inner.identity.name, "joined the cluster");
        Ok(cluster)
    }

    /// This node's number.
    pub fn node(&self) -> u8 {
        self.inner.identity.node
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.identity.name
    }

    /// The engine this node serves.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The live members, by number.
    pub fn members(&self) -> Vec<Member> {
        self.inner.members.lock().values().cloned().collect()
    }

    /// True when `key` is stored by this node.
    pub fn is_local(&self, key: ChannelKey) -> bool {
        leaseholder(key) == self.inner.identity.node
    }

    /// The status as this node sees it in etcd.
    ///
    /// # Errors
    /// [`NetError::Coordination`].
    pub async fn status(&self, with_channels: bool) -> Result<ClusterStatus> {
        self.inner.coord.lock().await.status(with_channels).await
    }

    /// Leave the cluster: stop the background tasks, close the peer taps and connections,
    /// and revoke the lease, so the member record goes at once (not after the TTL).
    pub async fn leave(&self) {
        for t in self.inner.tasks.lock().drain(..) {
            t.abort();
        }
        self.inner.peers.close().await;
        let lease = self.inner.lease.swap(0, std::sync::atomic::Ordering::AcqRel);
        if lease != 0 {
            let revoke = async { self.inner.coord.lock().await.revoke(lease).await };
            match tokio::time::timeout(Duration::from_secs(2), revoke).await {
                Ok(Ok(())) => tracing::info!(key = "cluster", lease, "left the cluster (lease revoked)"),
                Ok(Err(e)) => tracing::warn!(key = "cluster", error = %e, "could not revoke the lease; it expires after its TTL"),
                Err(_) => tracing::warn!(key = "cluster", "etcd did not answer the lease revocation; the lease expires after its TTL"),
            }
        }
    }

    /// Take a lease and put the member record (at start, and again after the lease was
    /// lost: a node cut off from etcd past its TTL rejoins when etcd is back).
    async fn join(&self) -> Result<()> {
        let member = Member {
            node: self.inner.identity.node,
            name: self.inner.identity.name.clone(),
            url: self.inner.config.advertise.clone(),
            lease: 0,
            joined_ms: crate::telem::TimeStamp::now().0.max(0) as u64 / 1_000_000,
        };
        let ttl = self.inner.config.lease_ttl;
        let previous = self.inner.lease.load(std::sync::atomic::Ordering::Acquire);
        let asked = std::time::Instant::now();
        if previous != 0 && self.lease_left().is_zero() {
            // The old lease may have lapsed (a stopped process wakes up to this): fence
            // before a new lease can make the lapse invisible to `fence_watch`.
            self.inner.engine.fence_control(self.inner.config.fence);
        }
        let lease = self.inner.coord.lock().await.join(ttl, member, previous).await?;
        self.inner.lease.store(lease, std::sync::atomic::Ordering::Release);
        self.renewed(asked, ttl);
        if self.inner.engine.control_fenced() {
            self.inner.engine.lift_control_fence();
            tracing::warn!(
                key = "cluster",
                lease,
                "control fence lifted under a new lease; writers open during the fence command again only after setting their authority"
            );
        }
        Ok(())
    }

    /// The lease was granted or renewed by a request sent at `asked`, for `ttl`: it lasts
    /// at least until `asked + ttl` (etcd counts from when it received the request).
    pub(crate) fn renewed(&self, asked: std::time::Instant, ttl: Duration) {
        let until = (asked + ttl).saturating_duration_since(self.inner.born).as_millis() as u64;
        self.inner.valid_until_ms.fetch_max(until, std::sync::atomic::Ordering::AcqRel);
    }

    /// How long the lease surely lasts from now (zero once it may have expired).
    fn lease_left(&self) -> Duration {
        let until = Duration::from_millis(self.inner.valid_until_ms.load(std::sync::atomic::Ordering::Acquire));
        until.saturating_sub(self.inner.born.elapsed())
    }

    /// True while this node's control is fenced (its lease may have expired).
    pub fn fenced(&self) -> bool {
        self.inner.engine.control_fenced()
    }

    fn apply_members(&self, members: Vec<Member>) {
        let mut m = self.inner.members.lock();
        m.clear();
        for member in members {
            self.inner.names.lock().insert(member.node, member.name.clone());
            m.insert(member.node, member);
        }
        self.members_changed(&m);
    }

    /// Tell requests in flight which members are live now (see [`Cluster::ask`]).
    fn members_changed(&self, m: &BTreeMap<u8, Member>) {
        self.inner.live.send_if_modified(|live| {
            let now: std::collections::BTreeSet<u8> = m.keys().copied().collect();
            let changed = *live != now;
            *live = now;
            changed
        });
    }

    /// Node `node`'s name for messages (`#n` when this node never saw it).
    pub(crate) fn node_name(&self, node: u8) -> String {
        self.inner.names.lock().get(&node).cloned().unwrap_or_else(|| format!("#{node}"))
    }

    /// The live member that stores `key`, or `node.unavailable`.
    fn member_of(&self, key: ChannelKey) -> Result<Member> {
        let node = leaseholder(key);
        if let Some(m) = self.inner.members.lock().get(&node) {
            return Ok(m.clone());
        }
        Err(NetError::NodeUnavailable {
            node: self.node_name(node),
            reason: format!("it stores channel {key} and holds no lease (it is down, cut off, or has not joined)"),
        }
        .into())
    }
}

/// Fence control once the lease may have expired: a node cut off from etcd keeps arbitrating
/// its channels while its lease surely lasts (no other node can take them meanwhile), then
/// fails safe, releasing every writer's control, until it rejoins under a new lease
/// (docs/cluster.md §6).
async fn fence_watch(cluster: Cluster) {
    loop {
        let left = cluster.lease_left();
        if !left.is_zero() {
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            continue;
        }
        if !cluster.inner.engine.control_fenced() {
            cluster.inner.engine.fence_control(cluster.inner.config.fence);
            tracing::error!(
                key = "cluster",
                lease = cluster.inner.lease.load(std::sync::atomic::Ordering::Acquire),
                "the member lease may have expired (no renewal from etcd for a whole TTL): control fenced, every writer released; it is lifted when the node rejoins"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
