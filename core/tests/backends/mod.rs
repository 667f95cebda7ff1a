//! Run the same scenario on both client backends: an embedded engine, and a node served
//! in-process on 127.0.0.1:0 reached through `telemetron::connect`. With feature `cluster`,
//! a third run goes through a cluster node that stores nothing itself: a gateway whose
//! channels are placed on another node, so every call crosses nodes (docs/cluster.md).
#![allow(dead_code)]

#[cfg(feature = "cluster")]
#[path = "../etcd/mod.rs"]
mod etcd;

use std::time::Duration;

use telemetron::server::{ServerConfig, ServerHandle, serve};
use telemetron::storage::{Durability, StorageOptions};
use telemetron::{Client, ConnectOptions, Engine, Options};

/// How long a test waits for something that should happen at once.
pub const SECOND: Duration = Duration::from_secs(5);

/// The code of the error `r` must be.
pub fn code<T: std::fmt::Debug>(r: telemetron::Result<T>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// Options for tests: no fsync, no background reclaim.
pub fn test_options() -> Options {
    Options {
        storage: StorageOptions { durability: Durability::None, reclaim_interval: Duration::from_secs(3600), ..StorageOptions::default() },
        ..Options::default()
    }
}

/// A client and what keeps it alive.
pub struct Backend {
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub server: Option<ServerHandle>,
    name: &'static str,
    /// Cluster backend: etcd and the storing node, kept alive with the client.
    _cluster: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Backend {
    /// `embedded`, `remote` or `cluster`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// An embedded client.
    pub async fn embedded() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = telemetron::open_with(dir.path(), test_options()).expect("open");
        Backend { client, dir, server: None, name: "embedded", _cluster: None }
    }

    /// A remote client of a cluster's gateway node: etcd, a node `store` and a node
    /// `gateway` (`--place store`), both in-process; the client connects to the gateway, so
    /// every channel it creates is stored on `store` and every call on it is routed there.
    #[cfg(feature = "cluster")]
    pub async fn cluster() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let etcd = etcd::Etcd::start(&dir.path().join("etcd"));
        let store = cluster_node(&etcd.url, &dir.path().join("store"), "store", None).await;
        let gateway = cluster_node(&etcd.url, &dir.path().join("gateway"), "gateway", Some("store")).await;
        let client = telemetron::connect(&gateway.url(), ConnectOptions::default()).await.expect("connect");
        Backend { client, dir, server: Some(gateway), name: "cluster", _cluster: Some(Box::new((store, etcd))) }
    }

    /// A remote client against a fresh in-process node.
    pub async fn remote() -> Backend {
        Backend::remote_with(ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() }).await
    }

    /// A remote client against a node with `config`.
    pub async fn remote_with(config: ServerConfig) -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open_with(dir.path(), test_options()).expect("open");
        let server = serve(engine, config).await.expect("serve");
        let client = telemetron::connect(&server.url(), ConnectOptions::default()).await.expect("connect");
        Backend { client, dir, server: Some(server), name: "remote", _cluster: None }
    }

    /// Assert that `cond` holds once a writer has been told of a control change another
    /// stream caused. One node tells every writer before it answers the request that caused
    /// the change, so on `embedded` and `remote` it must hold at once. Through a gateway
    /// the notice and that answer come back on separate relayed connections and may cross
    /// (docs/cluster.md §10), so `cluster` allows [`SECOND`].
    pub async fn told(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + if self.name == "cluster" { SECOND } else { Duration::ZERO };
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{}: {what}", self.name);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Another client of the same backend (a second connection for remote).
    pub async fn another(&self) -> Client {
        match &self.server {
            Some(s) => telemetron::connect(&s.url(), ConnectOptions::default()).await.expect("connect"),
            None => self.client.clone(),
        }
    }
}

/// One in-process cluster node over `dir`, joined through etcd at `etcd`, placing the
/// channels created through it on node `place` if given.
#[cfg(feature = "cluster")]
async fn cluster_node(etcd: &str, dir: &std::path::Path, name: &str, place: Option<&str>) -> ServerHandle {
    use telemetron::cluster::{Cluster, ClusterConfig, identify, node_keys};
    let port = etcd::free_port();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut config = ClusterConfig::new(vec![etcd.to_string()], name, format!("http://{listen}"));
    config.lease_ttl = Duration::from_secs(2);
    config.place = place.map(str::to_string);
    let identity = identify(&config, dir).await.expect("identify");
    let options = Options { channel_keys: Some(node_keys(identity.node)), ..test_options() };
    let engine = Engine::open_with(dir, options).expect("open");
    let cluster = Cluster::start(config, identity, engine.clone()).await.expect("join");
    serve(engine, ServerConfig { listen, cluster: Some(cluster), ..ServerConfig::default() }).await.expect("serve")
}

/// Run `$scenario(&Backend)` as tests `embedded`, `remote` and (feature `cluster`) `cluster`:
/// the same assertions on every backend.
#[macro_export]
macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    super::$scenario(&$crate::backends::Backend::embedded().await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn remote() {
                    super::$scenario(&$crate::backends::Backend::remote().await).await
                }
                #[cfg(feature = "cluster")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cluster() {
                    super::$scenario(&$crate::backends::Backend::cluster().await).await
                }
            }
        )*
    };
}

/// A TCP proxy to `upstream` on loopback that counts the bytes `upstream` sends back (on
/// every connection through it).
pub async fn counting_proxy(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(node) = tokio::net::TcpStream::connect(upstream).await else { continue };
            let (mut cr, mut cw) = client.into_split();
            let (mut nr, mut nw) = node.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut cr, &mut nw).await });
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n @ 1..) = nr.read(&mut buf).await {
                    counted.fetch_add(n as u64, Ordering::Relaxed);
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, count)
}

/// A raw WebSocket to a node's stream (`writer`, `streamer`, `iterator`), speaking the
/// protocol by hand: for feeding it garbage.
pub mod raw {
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    pub type Ws = WebSocketStream<TcpStream>;

    /// Open `/api/v1/stream/{kind}` with the right version header.
    pub async fn open(addr: std::net::SocketAddr, kind: &str) -> Ws {
        let mut req = format!("ws://{addr}/api/v1/stream/{kind}").into_client_request().unwrap();
        req.headers_mut().insert("telemetron-protocol", "1".parse().unwrap());
        let tcp = TcpStream::connect(addr).await.unwrap();
        tokio_tungstenite::client_async(req, tcp).await.expect("upgrade").0
    }

    pub async fn send_text(ws: &mut Ws, s: &str) {
        ws.send(Message::text(s.to_string())).await.unwrap();
    }

    /// Send a binary message; false if the node already closed the connection.
    pub async fn send_binary(ws: &mut Ws, b: Vec<u8>) -> bool {
        ws.send(Message::binary(b)).await.is_ok()
    }

    /// The next JSON message (skipping pings), or `None` once the socket closed.
    pub async fn json(ws: &mut Ws) -> Option<serde_json::Value> {
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("a message in time");
            match m {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Binary(b))) => panic!("unexpected frame of {} bytes", b.len()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// A raw HTTP/1.1 POST; returns (status, body).
    pub async fn post(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let (status, body) = post_bytes(addr, path, headers, body).await;
        (status, String::from_utf8_lossy(&body).to_string())
    }

    /// A raw HTTP/1.1 POST; returns (status, body bytes).
    pub async fn post_bytes(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut req = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        // A node that refuses the body (413) may answer and close before it has all been
        // sent: the write then fails with a broken pipe or reset, and the answer is still
        // there to read.
        let _ = tcp.write_all(body).await;
        let mut out = Vec::new();
        let _ = tcp.read_to_end(&mut out).await;
        let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |i| i + 4);
        let head = String::from_utf8_lossy(&out[..head_end]).to_string();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, out[head_end..].to_vec())
    }
}
