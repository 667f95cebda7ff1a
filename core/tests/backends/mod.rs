//! Run the same scenario on both client backends: an embedded engine, and a node served
//! in-process on 127.0.0.1:0 reached through `telemetron::connect`.
#![allow(dead_code)]

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
}

impl Backend {
    pub fn name(&self) -> &'static str {
        if self.client.is_remote() { "remote" } else { "embedded" }
    }

    /// An embedded client.
    pub async fn embedded() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = telemetron::open_with(dir.path(), test_options()).expect("open");
        Backend { client, dir, server: None }
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
        Backend { client, dir, server: Some(server) }
    }

    /// Another client of the same backend (a second connection for remote).
    pub async fn another(&self) -> Client {
        match &self.server {
            Some(s) => telemetron::connect(&s.url(), ConnectOptions::default()).await.expect("connect"),
            None => self.client.clone(),
        }
    }
}

/// Run `$scenario(&Backend)` as two tests, `embedded` and `remote`.
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
            }
        )*
    };
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
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (status, body)
    }
}
