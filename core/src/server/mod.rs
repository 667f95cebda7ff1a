//! The server: an engine exposed over the network (`telemetron serve`).
//!
//! Unary calls (channels, ranges, reads, deletes, control state, health, version) are
//! HTTP requests with JSON bodies; writers, streamers and iterators are WebSocket streams
//! whose frames travel in the binary [`crate::protocol::codec`] format. The remote client
//! ([`crate::connect`]) speaks this protocol; `docs/protocol.md` describes it in full.
//!
//! ## Handshake
//! Every request carries the protocol version header; a node refuses another version with
//! `protocol.version_mismatch`, naming both versions, before anything else happens.
//!
//! ## Authentication
//! With tokens or users configured, every request except `health`, `version` and
//! `auth/login` needs `Authorization: Bearer <token>` (a configured token, or one returned
//! by `auth/login`). A server bound to a non-loopback address refuses to start without
//! authentication unless [`ServerConfig::allow_unauthenticated`] is set.
//!
//! ## Keep-alive and control authority
//! Each stream pings its client every [`ServerConfig::keepalive`] and the client pings
//! back. A stream that receives nothing (no message, ping or pong) for
//! [`ServerConfig::control_timeout`] is closed; a writer closed that way, or whose
//! connection drops, is **aborted**: what it did not commit is discarded (as when an
//! embedded writer is dropped) and its control passes to the next writer at once. A dead
//! client therefore cannot hold a valve longer than the control timeout.
//!
//! ## Bad input
//! Malformed JSON, undecodable frames, oversized messages, wrong types, unknown channels
//! and out-of-order messages get an error naming the problem, sent to that client only.
//! An undecodable frame on a writer stream is a rejected write (reported like any other);
//! a malformed control message ends that stream (the writer is aborted). No input can
//! crash the server, stall another client or lose committed data.
//!
//! ## Shutdown
//! [`ServerHandle::shutdown`] (SIGINT/SIGTERM for `telemetron serve`) stops accepting
//! connections, **commits and closes** every open writer, closes every streamer and
//! iterator (clients receive `server.shutdown`), then closes the engine, which syncs to
//! disk. Nothing committed is lost.

mod auth;
mod dashboard;
#[cfg(feature = "flow")]
mod flows;
mod http;
mod listener;
mod observe;
mod registry;
mod shutdown;
mod tls;
mod ws_iterator;
mod ws_open;
mod ws_pipeline;
#[cfg(feature = "cluster")]
mod ws_relay;
mod ws_session;
#[cfg(feature = "cluster")]
mod ws_span;
mod ws_streamer;
mod ws_writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Engine;
use crate::error::Result;

tokio::task_local! {
    /// The number of the connection a task serves (counted from 1 as connections are
    /// accepted): its key in the experiment tree is `server/conn/<n>`.
    static CONN: u64;
}

/// The connection the current task serves, if any.
pub(crate) fn conn_id() -> Option<u64> {
    CONN.try_with(|n| *n).ok()
}

/// Run `f` as serving connection `conn` (for [`conn_key`]).
pub(crate) async fn in_conn<F: std::future::Future>(conn: Option<u64>, f: F) -> F::Output {
    match conn {
        Some(n) => CONN.scope(n, f).await,
        None => f.await,
    }
}

/// The experiment key of the connection the current task serves, `server/conn/<n>`
/// (`server` outside one).
pub(crate) fn conn_key() -> String {
    conn_key_of(conn_id(), "")
}

/// `server/conn/<n>/<leaf>` (`server/conn/<n>` for an empty leaf; `server` with no
/// connection).
pub(crate) fn conn_key_of(conn: Option<u64>, leaf: &str) -> String {
    match (conn, leaf) {
        (None, _) => "server".into(),
        (Some(n), "") => format!("server/conn/{n}"),
        (Some(n), leaf) => format!("server/conn/{n}/{leaf}"),
    }
}

pub use auth::AuthConfig;

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Tokens and users; empty means no authentication.
    pub auth: AuthConfig,
    /// Certificate chain and private key PEM files for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// A stream silent for this long is closed and its writer aborted (default 3 s).
    pub control_timeout: Duration,
    /// Largest message or request body accepted (default 64 MiB).
    pub max_message_bytes: usize,
    /// Allow a non-loopback address without authentication (not recommended).
    pub allow_unauthenticated: bool,
    /// How long shutdown waits for streams to finish (default 10 s).
    pub shutdown_grace: Duration,
    /// Most connections served at once (default 10,000; every stream is one). Past it, a
    /// new connection gets one `server.busy` reply and is closed. The process's open-file
    /// limit (`ulimit -n`) must be higher.
    pub max_connections: usize,
    /// A connection whose peer reads nothing for this long while the node has data to
    /// send is closed (default 5 min): a stuck client cannot hold a reply, or a read's
    /// mapped segments, forever. A slow reader that makes progress is never cut.
    pub write_stall_timeout: Duration,
    /// Instrumentation: the node's name, levels, and self-telemetry channels
    /// (`docs/observability.md`).
    pub observe: ObserveConfig,
    /// The cluster this node belongs to (feature `cluster`): channel operations, reads and
    /// deletes of other nodes' channels are routed to them, and creates register names
    /// cluster-wide (docs/cluster.md).
    #[cfg(feature = "cluster")]
    pub cluster: Option<crate::cluster::Cluster>,
}

/// How a node observes itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveConfig {
    /// The node's name in its metrics (`service.instance.id`).
    pub node: String,
    /// Log and metrics levels at start (changed at runtime by `observe/levels`).
    pub levels: crate::observe::Levels,
    /// Write the node's metrics into its own `_telemetron/` channels this often (`None`:
    /// not at all, the default).
    pub self_telemetry: Option<Duration>,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig { node: "telemetron".into(), levels: crate::observe::Levels::default(), self_telemetry: None }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            auth: AuthConfig::default(),
            tls: None,
            control_timeout: Duration::from_secs(3),
            max_message_bytes: 64 << 20,
            allow_unauthenticated: false,
            shutdown_grace: Duration::from_secs(10),
            max_connections: 10_000,
            write_stall_timeout: Duration::from_secs(300),
            observe: ObserveConfig::default(),
            #[cfg(feature = "cluster")]
            cluster: None,
        }
    }
}

impl ServerConfig {
    /// Ping interval on streams: a quarter of the control timeout.
    pub fn keepalive(&self) -> Duration {
        (self.control_timeout / 4).max(Duration::from_millis(5))
    }
}

/// What every handler and session shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub engine: Engine,
    pub auth: auth::Auth,
    pub config: ServerConfig,
    pub writers: registry::Registry,
    pub shutdown: shutdown::Shutdown,
    /// The node's flows (`flows/*` calls, `--flow` files).
    #[cfg(feature = "flow")]
    pub flows: Arc<crate::flow::FlowManager>,
    /// The node's instrumentation.
    pub observer: crate::observe::Observer,
    /// The server's own instruments.
    pub metrics: observe::ServerMetrics,
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    tls: bool,
    state: Arc<AppState>,
    accept: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
}

/// Start serving `engine` per `config`. Returns once the socket is bound.
///
/// # Errors
/// [`crate::Error::InvalidArgument`] for a non-loopback address without authentication
/// or unusable TLS files; an I/O error if the address cannot be bound.
pub async fn serve(engine: Engine, config: ServerConfig) -> Result<ServerHandle> {
    let auth = auth::Auth::new(&config.auth);
    auth.check_names(engine.users()).map_err(|reason| crate::Error::InvalidArgument { reason })?;
    if !config.listen.ip().is_loopback() && !auth.required(engine.users()) && !config.allow_unauthenticated {
        return Err(crate::Error::InvalidArgument {
            reason: format!(
                "refusing to listen on {} without authentication: pass --token or --user/--password, add users with `telemetron users add` (or --allow-unauthenticated on a trusted network)",
                config.listen
            ),
        });
    }
    let acceptor = match &config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| crate::Error::InvalidArgument {
        reason: format!("cannot listen on {}: {e}; pick another address or port", config.listen),
    })?;
    let addr = listener.local_addr().map_err(|e| crate::Error::InvalidArgument { reason: e.to_string() })?;
    let observer = crate::observe::Observer::new(config.observe.node.clone(), config.observe.levels);
    #[cfg(feature = "flow")]
    let flows = {
        #[allow(unused_mut)]
        let mut env = crate::flow::BuildEnv::on_engine(engine.clone());
        // The node's own telemetry as a receiver (`node_telemetry`, for --otlp-endpoint).
        #[cfg(feature = "otlp")]
        crate::observe::register_components(&mut env, &observer);
        Arc::new(crate::flow::FlowManager::new(env))
    };
    observer.watch_engine(&engine);
    #[cfg(feature = "flow")]
    observer.watch_flows(flows.clone());
    // Channel names are cluster-wide: each node writes its own self-telemetry channels.
    #[cfg(feature = "cluster")]
    if let Some(c) = &config.cluster {
        observer.set_channel_prefix(format!("{}{}/", crate::observe::CHANNEL_PREFIX, c.name()))?;
    }
    if let Some(every) = config.observe.self_telemetry {
        observer.start_channels(engine.clone(), every)?;
    }
    let metrics = observe::ServerMetrics::new(&observer);
    let state = Arc::new(AppState {
        engine,
        auth,
        config,
        writers: registry::Registry::default(),
        shutdown: shutdown::Shutdown::new(),
        #[cfg(feature = "flow")]
        flows,
        observer,
        metrics,
    });
    let watcher = registry::spawn_watcher(state.clone())?;
    let router = http::router(state.clone());
    let tls = acceptor.is_some();
    let limits = listener::Limits {
        connections: state.config.max_connections.max(1),
        write_stall: state.config.write_stall_timeout.max(Duration::from_millis(1)),
        stats: state.metrics.conns.clone(),
    };
    let accept = tokio::spawn(listener::run(listener, acceptor, router, state.shutdown.clone(), limits));
    tracing::info!(key = "server", %addr, tls, auth = state.auth.required(state.engine.users()), "serving");
    Ok(ServerHandle { addr, tls, state, accept, watcher })
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect to (`http://...` or `https://...`).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// The engine being served.
    pub fn engine(&self) -> &Engine {
        &self.state.engine
    }

    /// The node's flows: deploy `--flow` files into it, or hand it to [`crate::flow::Flows::local`].
    #[cfg(feature = "flow")]
    pub fn flows(&self) -> &Arc<crate::flow::FlowManager> {
        &self.state.flows
    }

    /// The node's instrumentation: its levels, metrics and self-telemetry.
    pub fn observer(&self) -> &crate::observe::Observer {
        &self.state.observer
    }

    /// Stop: drain and stop the node's flows, refuse new connections, commit and close
    /// writers, close streams, close the engine (which syncs). See the module docs.
    ///
    /// # Errors
    /// An I/O error from closing the engine.
    pub async fn shutdown(self) -> Result<()> {
        tracing::info!(key = "server", "shutting down");
        #[cfg(feature = "flow")]
        for f in self.state.flows.stop_all(crate::flow::DEFAULT_DRAIN).await {
            if f.drained == Some(false) {
                tracing::warn!(key = crate::flow::key(&f.name, None).as_str(), "the drain deadline passed; what the flow held was NACKed");
            }
        }
        self.state.shutdown.trigger();
        let _ = self.accept.await;
        if !self.state.shutdown.drained(self.state.config.shutdown_grace).await {
            tracing::warn!(key = "server", "some streams did not finish within the shutdown grace period");
        }
        self.watcher.abort();
        self.state.observer.shutdown();
        let engine = self.state.engine.clone();
        tokio::task::spawn_blocking(move || engine.close())
            .await
            .map_err(|e| crate::Error::InvalidArgument { reason: format!("engine close failed: {e}") })?
    }
}
