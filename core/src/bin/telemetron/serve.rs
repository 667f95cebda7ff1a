//! `telemetron serve`: run a node (optionally with the live demo test stand).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use telemetron::observe::{Level, Levels};
use telemetron::server::{AuthConfig, ObserveConfig, ServerConfig, serve};
use telemetron::storage::{Durability, StorageOptions};
use telemetron::{Engine, Error, Options};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (created if missing).
    #[arg(long, default_value = "telemetron-data")]
    pub data: PathBuf,
    /// Address to listen on. A non-loopback address needs --token or --user/--password.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Accept this bearer token (repeatable; also TELEMETRON_TOKEN, which keeps it out of
    /// the process list).
    #[arg(long)]
    pub token: Vec<String>,
    /// A user who may log in (with --password).
    #[arg(long)]
    pub user: Option<String>,
    /// The password of --user (or TELEMETRON_PASSWORD).
    #[arg(long)]
    pub password: Option<String>,
    /// Hours a login session may stay unused before it expires (clients that logged in
    /// with a password log in again by themselves).
    #[arg(long, default_value_t = 12.0)]
    pub session_idle_hours: f64,
    /// TLS certificate chain (PEM); needs --key.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Seconds of silence after which a client's streams close and its writers lose control.
    #[arg(long, default_value_t = 3.0)]
    pub control_timeout: f64,
    /// Most connections served at once (each stream is one); past it a client gets a
    /// `server.busy` error. Keep it under the process's open-file limit (`ulimit -n`).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Largest message or request body accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_message_bytes: usize,
    /// Allow a non-loopback address without authentication (trusted networks only).
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// Default durability: none | interval | commit.
    #[arg(long, default_value = "interval")]
    pub durability: Durability,
    /// How often the node merges small committed records into large ones (docs/architecture.md
    /// §9): `30s`, `5m`, or `off` (never: open time and index memory then grow with the
    /// number of commits).
    #[arg(long, default_value = "30s", value_name = "INTERVAL|off", value_parser = parse_optional_interval)]
    pub compaction_interval: OptionalInterval,
    /// How often the node writes its index checkpoint while it runs, if anything was
    /// committed since (docs/architecture.md §7): after a crash the next start reads only
    /// what was committed since the last one. `5m`, `30s`, or `off` (only at a clean stop).
    #[arg(long, default_value = "5m", value_name = "INTERVAL|off", value_parser = parse_optional_interval)]
    pub checkpoint_interval: OptionalInterval,
    /// Compress what compaction writes: Pcodec for numeric data channels (index channels
    /// and other types stay raw). Reads of compressed data decompress it.
    #[arg(long)]
    pub compress: bool,
    /// A live frame for at most this many streamers is queued to them by the writer
    /// itself; a frame for more is handed to the relay's dispatcher thread, so a crowd of
    /// dashboards costs the writer one hand-off per frame.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub relay_inline_targets: usize,
    /// Run the simulated test stand (pressures, temperatures at 1 kHz, valve_cmd).
    #[arg(long)]
    pub demo: bool,
    /// Run this flow file inside the node, on its engine (repeatable; docs/dataflow.md).
    /// Flows are compiled at start-up: a bad file stops the node from starting.
    #[arg(long = "flow", value_name = "FILE")]
    pub flows: Vec<PathBuf>,
    /// Network worker threads (0 = one per core). 1 runs every connection on one thread:
    /// no wake-ups between threads on the live path, but one core for all the network
    /// work, and blocking engine work on a stream (commits, opening and closing writers)
    /// runs on that thread too, pausing the others meanwhile (large frames are still
    /// stored on their own threads).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The node's name: in its metrics (the `service.instance.id` resource attribute) and,
    /// with --cluster, in the cluster (unique there; letters, digits, '-', '_', '.').
    #[arg(long, default_value = "telemetron")]
    pub name: String,
    /// Join a cluster coordinated by etcd at these client URLs (comma-separated, e.g.
    /// http://127.0.0.1:2379): channels created here are stored here and seen by every
    /// node; other nodes' channels are read and streamed through this node
    /// (docs/cluster.md).
    #[arg(long, value_delimiter = ',')]
    pub cluster: Vec<String>,
    /// With --cluster: the URL peers and clients reach this node at (default: http(s)://
    /// the --listen address).
    #[arg(long)]
    pub advertise: Option<String>,
    /// With --cluster: seconds the node's lease lives without a keep-alive; a node that
    /// dies or is cut off leaves the cluster this long after its last keep-alive.
    #[arg(long, default_value_t = 5.0)]
    pub lease_ttl: f64,
    /// With --cluster: the root of this cluster's keys in etcd (clusters sharing an etcd
    /// use different prefixes).
    #[arg(long, default_value = "/telemetron")]
    pub cluster_prefix: String,
    /// With --cluster: store the channels created through this node on node PLACE (its
    /// name) unless a create names another node; data channels always go with their
    /// index. For a gateway or control-room node that stores nothing itself.
    #[arg(long, value_name = "PLACE")]
    pub place: Option<String>,
    /// With --cluster: what stops being commanded when this node's lease may have expired
    /// while cut off from etcd: `commands` (virtual channels; recordings go on) or `all`
    /// (every writer loses control) (docs/cluster.md §6).
    #[arg(long, value_enum, default_value_t = Fence::Commands)]
    pub fence: Fence,
    /// What the node logs: off, basic (warnings and lifecycle events) or detailed (also
    /// each writer, streamer and request). `--log` or TELEMETRON_LOG, if given, stands
    /// until the level is changed at runtime (`telemetron observe --logs`).
    #[arg(long, default_value = "basic")]
    pub log_level: Level,
    /// What the node measures: off, basic (per layer, flow node and route) or detailed
    /// (also per streamer). Served at GET /metrics; changed at runtime with
    /// `telemetron observe --metrics`.
    #[arg(long, default_value = "basic")]
    pub metrics_level: Level,
    /// What the node traces: off, basic (each request, engine write and storage commit,
    /// joined to the caller's W3C `traceparent`) or detailed. Spans go out through
    /// --otlp-endpoint; changed at runtime with `telemetron observe --traces`.
    #[arg(long, default_value = "off")]
    pub trace_level: Level,
    /// Write the node's own metrics into its channels `_telemetron/...` this often (`1s`,
    /// `500ms`); off unless given (`--demo` writes them every second).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub self_telemetry: Option<Duration>,
    /// Where the node keeps its log files (default `<data>/logs`; `telemetron logs` reads
    /// them). What goes in follows --log-level.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Size at which a log file rolls over to `telemetron.log.1` (bytes).
    #[arg(long, default_value_t = telemetron::observe::logfile::DEFAULT_MAX_BYTES)]
    pub log_file_bytes: u64,
    /// Log files kept, the current one included (the oldest is deleted).
    #[arg(long, default_value_t = telemetron::observe::logfile::DEFAULT_MAX_FILES)]
    pub log_files: usize,
    /// Send the node's metrics, log events and spans to this OTLP endpoint (a collector:
    /// `http://127.0.0.1:4317` for gRPC, `http://127.0.0.1:4318` for HTTP; `https://` for
    /// TLS, with --otlp-ca for a collector's own CA). It runs as the
    /// flow `node-telemetry` (node_telemetry -> otlp_exporter; `telemetron flows` lists it).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The OTLP protocol of --otlp-endpoint: grpc or http (HTTP/protobuf).
    #[arg(long, default_value = "grpc", value_parser = ["grpc", "http"])]
    pub otlp_protocol: String,
    /// How often metrics are collected and log events sent to --otlp-endpoint.
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub otlp_interval: Duration,
    /// For an https --otlp-endpoint: a PEM file of the certificate authorities to trust
    /// (the collector's own CA); the web's public roots when absent.
    #[arg(long, value_name = "FILE", requires = "otlp_endpoint")]
    pub otlp_ca: Option<PathBuf>,
}

/// The flow behind --otlp-endpoint: the node's telemetry to an OTLP exporter, with
/// retries (a collector restarting loses nothing younger than the retries' reach).
fn otlp_flow(endpoint: &str, protocol: &str, interval: Duration, ca: Option<&std::path::Path>) -> String {
    let endpoint = serde_json::to_string(endpoint).unwrap_or_default();
    let ca = ca.map(|p| format!(", ca: {}", serde_json::to_string(&p.to_string_lossy()).unwrap_or_default())).unwrap_or_default();
    format!(
        "flow: node-telemetry\nnodes:\n  telemetry: {{type: node_telemetry, interval: {}ms, to: [retry]}}\n  retry: {{type: retry, to: [otlp]}}\n  otlp: {{type: otlp_exporter, protocol: {protocol}, endpoint: {endpoint}{ca}}}\n",
        interval.as_millis().max(1)
    )
}

/// An interval, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct OptionalInterval(pub Option<Duration>);

fn parse_optional_interval(s: &str) -> Result<OptionalInterval, String> {
    if s == "off" {
        return Ok(OptionalInterval(None));
    }
    parse_interval(s).map(|d| OptionalInterval(Some(d)))
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = telemetron::flow::parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration: write e.g. 1s, 500ms or 2m"))?;
    if d.is_zero() {
        return Err("the interval must be above zero".into());
    }
    Ok(d)
}

pub fn run(a: ServeArgs) -> Result<(), Error> {
    if a.max_connections == 0 {
        return Err(Error::InvalidArgument { reason: "--max-connections must be at least 1".into() });
    }
    if !(a.session_idle_hours > 0.0 && a.session_idle_hours <= 24.0 * 366.0) {
        return Err(Error::InvalidArgument { reason: "--session-idle-hours must be in (0, 8784] (a year)".into() });
    }
    if !(a.control_timeout > 0.0 && a.control_timeout <= 3600.0) {
        return Err(Error::InvalidArgument { reason: "--control-timeout must be in (0, 3600] seconds".into() });
    }
    let mut b = match a.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 1 {
                b.worker_threads(n);
            }
            b
        }
    };
    let rt = b
        .enable_all()
        .thread_name("telemetron-server")
        .build()
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })?;
    rt.block_on(serve_until_signal(a))
}

async fn serve_until_signal(mut a: ServeArgs) -> Result<(), Error> {
    if let Ok(t) = std::env::var("TELEMETRON_TOKEN") {
        a.token.extend(t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from));
    }
    if a.password.is_none() {
        a.password = std::env::var("TELEMETRON_PASSWORD").ok();
    }
    if a.user.is_some() != a.password.is_some() {
        return Err(Error::InvalidArgument {
            reason: "--user needs a password (--password or TELEMETRON_PASSWORD), and a password needs --user".into(),
        });
    }
    if !crate::EXPLICIT_LOG.load(std::sync::atomic::Ordering::Relaxed)
        && let Some(hook) = crate::log_hook()
    {
        hook(a.log_level);
    }
    if a.log_file_bytes < 4096 || a.log_files == 0 {
        return Err(Error::InvalidArgument { reason: "--log-file-bytes must be at least 4096 and --log-files at least 1".into() });
    }
    let logs = telemetron::observe::logfile::LogFiles {
        dir: a.log_dir.clone().unwrap_or_else(|| a.data.join("logs")),
        max_bytes: a.log_file_bytes,
        max_files: a.log_files,
    };
    crate::buffer_early_logs();
    let cluster_config = cluster_config(&a)?;
    let identity = match &cluster_config {
        Some(c) => Some(telemetron::cluster::identify(c, &a.data).await?),
        None => None,
    };
    let options = Options {
        storage: StorageOptions {
            durability: a.durability,
            compaction_interval: a.compaction_interval.0,
            checkpoint_interval: a.checkpoint_interval.0,
            compress: a.compress,
            ..StorageOptions::default()
        },
        channel_keys: identity.as_ref().map(|i| telemetron::cluster::node_keys(i.node)),
        relay_inline_targets: Some(a.relay_inline_targets),
    };
    let engine = Engine::open_with(&a.data, options)?;
    // Only now: the engine holds the directory's lock, so no other node writes these files.
    match logs.open() {
        Ok(files) => crate::open_log_files(files),
        Err(e) => {
            let _ = engine.close();
            return Err(e);
        }
    }
    let config = ServerConfig {
        listen: a.listen,
        auth: AuthConfig {
            tokens: a.token.clone(),
            users: a.user.clone().zip(a.password.clone()).into_iter().collect(),
            session_idle: Duration::from_secs_f64(a.session_idle_hours * 3600.0),
            ..AuthConfig::default()
        },
        tls: a.cert.clone().zip(a.key.clone()),
        control_timeout: Duration::from_secs_f64(a.control_timeout),
        max_message_bytes: a.max_message_bytes,
        allow_unauthenticated: a.allow_unauthenticated,
        max_connections: a.max_connections,
        observe: ObserveConfig {
            node: a.name.clone(),
            levels: Levels { logs: a.log_level, metrics: a.metrics_level, traces: a.trace_level },
            self_telemetry: a.self_telemetry.or(a.demo.then_some(telemetron::observe::DEFAULT_CHANNEL_INTERVAL)),
        },
        ..ServerConfig::default()
    };
    let cluster = match (cluster_config, identity) {
        (Some(c), Some(id)) => match telemetron::cluster::Cluster::start(c, id, engine.clone()).await {
            Ok(cluster) => Some(cluster),
            Err(e) => {
                let _ = engine.close();
                return Err(e);
            }
        },
        _ => None,
    };
    let config = ServerConfig { cluster: cluster.clone(), ..config };

    // Leaving revokes the lease, so peers stop routing to a node that failed to start.
    let leave = |cluster: Option<telemetron::cluster::Cluster>| async move {
        if let Some(c) = cluster {
            c.leave().await;
        }
    };
    let server = match serve(engine.clone(), config).await {
        Ok(s) => s,
        Err(e) => {
            leave(cluster.clone()).await;
            let _ = engine.close();
            return Err(e);
        }
    };
    if let Some(hook) = crate::log_hook() {
        server.observer().set_log_hook(hook);
    }
    // On a cluster node the stand's channels carry the node's name, as self-telemetry does:
    // every node of a cluster may run its own stand.
    let demo_prefix = cluster.as_ref().map_or(String::new(), |c| format!("{}/", c.name()));
    let sim = if a.demo {
        match crate::sim::start(engine.clone(), &demo_prefix) {
            Ok(sim) => Some(sim),
            Err(e) => {
                leave(cluster.clone()).await;
                server.shutdown().await?;
                return Err(e);
            }
        }
    } else {
        None
    };
    let mut flows = Vec::new();
    for file in &a.flows {
        match deploy_flow(file, &server).await {
            Ok(name) => flows.push(name),
            Err(e) => {
                leave(cluster.clone()).await;
                server.shutdown().await?;
                return Err(e);
            }
        }
    }
    println!("telemetron serving {} at {}", a.data.display(), server.url());
    if let Some(c) = &cluster {
        println!("cluster node {:?} (number {}), etcd {}", c.name(), c.node(), a.cluster.join(","));
    }
    if a.demo {
        let [_, p1, p2, t1, t2, valve, cmd] = crate::sim::channel_names(&demo_prefix);
        println!("demo test stand running: {p1}, {p2}, {t1}, {t2}, {valve} at 1 kHz; {cmd}");
        println!("watch it live:  telemetron stream {p1} {valve} --url {}", server.url());
    }
    if let Some(endpoint) = &a.otlp_endpoint {
        let src = otlp_flow(endpoint, &a.otlp_protocol, a.otlp_interval, a.otlp_ca.as_deref());
        match server.flows().deploy(&src).await {
            Ok(info) => flows.push(info.name),
            Err(e) => {
                leave(cluster.clone()).await;
                server.shutdown().await?;
                return Err(Error::InvalidArgument { reason: format!("--otlp-endpoint {endpoint}: {e}") });
            }
        }
    }
    for f in &flows {
        println!("flow `{f}` running");
    }
    println!("stop with Ctrl-C");
    wait_for_signal().await;
    eprintln!("shutting down: draining flows, committing writers, closing streams");
    if let Some(s) = sim {
        tokio::task::spawn_blocking(move || s.stop()).await.map_err(|e| Error::InvalidArgument { reason: e.to_string() })??;
    }
    // Leave first (the lease is revoked, so peers stop routing here at once), then close.
    leave(cluster.clone()).await;
    server.shutdown().await?;
    eprintln!("stopped; data is in {}", a.data.display());
    Ok(())
}

/// The cluster settings of `serve`, when --cluster is given.
fn cluster_config(a: &ServeArgs) -> Result<Option<telemetron::cluster::ClusterConfig>, Error> {
    if a.cluster.is_empty() {
        return match &a.place {
            Some(_) => Err(Error::InvalidArgument { reason: "--place names a cluster node: it needs --cluster".into() }),
            None => Ok(None),
        };
    }
    if !(a.lease_ttl >= 1.0 && a.lease_ttl <= 600.0) {
        return Err(Error::InvalidArgument {
            reason: format!("--lease-ttl {} must be between 1 and 600 seconds (etcd counts whole seconds)", a.lease_ttl),
        });
    }
    if a.listen.port() == 0 && a.advertise.is_none() {
        return Err(Error::InvalidArgument {
            reason: "--cluster needs a fixed --listen port (peers must find this node) or an explicit --advertise URL".into(),
        });
    }
    if a.token.is_empty() && a.user.is_some() {
        return Err(Error::InvalidArgument {
            reason: "--cluster with --user needs a --token that every node accepts: nodes reach each other with it".into(),
        });
    }
    let scheme = if a.cert.is_some() { "https" } else { "http" };
    let advertise = a.advertise.clone().unwrap_or_else(|| format!("{scheme}://{}", a.listen));
    let mut c = telemetron::cluster::ClusterConfig::new(a.cluster.clone(), a.name.clone(), advertise);
    c.lease_ttl = Duration::from_secs_f64(a.lease_ttl);
    c.prefix = a.cluster_prefix.clone();
    c.token = a.token.first().cloned();
    c.place = a.place.clone();
    c.fence = match a.fence {
        Fence::Commands => telemetron::control::FenceScope::Commands,
        Fence::All => telemetron::control::FenceScope::All,
    };
    Ok(Some(c))
}

/// Deploy one `--flow` file into the node's flows (it runs on the node's own engine).
async fn deploy_flow(file: &std::path::Path, server: &telemetron::server::ServerHandle) -> Result<String, Error> {
    let invalid = |e: String| Error::InvalidArgument { reason: format!("--flow {}: {e}", file.display()) };
    let src = std::fs::read_to_string(file).map_err(|e| invalid(format!("cannot read it: {e}")))?;
    Ok(server.flows().deploy(&src).await.map_err(|e| invalid(e.to_string()))?.name)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `serve --fence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fence {
    /// Virtual channels (commands); recordings go on.
    Commands,
    /// Every channel.
    All,
}
