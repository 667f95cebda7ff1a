//! Run the same scenario on both client backends: an embedded engine, and a node served
//! in-process on 127.0.0.1:0 reached through `telemetron::connect`.
#![allow(dead_code)]

use std::time::Duration;

use telemetron::server::{ServerConfig, ServerHandle, serve};
use telemetron::storage::{Durability, StorageOptions};
use telemetron::{Client, ConnectOptions, Engine, Options};

/// Options for tests: no fsync, no background reclaim.
pub fn test_options() -> Options {
    Options {
        storage: StorageOptions { durability: Durability::None, reclaim_interval: Duration::from_secs(3600), ..StorageOptions::default() },
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
