//! [`Flows`]: list, deploy, reconfigure and stop flows through a [`Client`], on either
//! backend, and the JSON messages of the protocol's `flows/*` calls (`docs/protocol.md`
//! §4, "Flows"). The Python and Node SDKs' `client.flows` wrap this.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::BuildEnv;
use super::manager::{DEFAULT_DRAIN, FlowInfo, FlowManager, Reconfigured};
use crate::client::Client;
use crate::error::Result;

/// `flows/deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployRequest {
    /// The flow file's text (YAML).
    pub config: String,
}

/// `flows/get`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NameRequest {
    /// The flow's name.
    pub name: String,
}

/// `flows/reconfigure`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconfigureRequest {
    /// The flow's name.
    pub name: String,
    /// The new flow file's text.
    pub config: String,
    /// How long a restart waits for the old flow to drain, in milliseconds (default
    /// 10,000).
    #[serde(default)]
    pub drain_ms: Option<u64>,
}

/// `flows/stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopRequest {
    /// The flow's name.
    pub name: String,
    /// How long to wait for it to drain, in milliseconds (default 10,000).
    #[serde(default)]
    pub drain_ms: Option<u64>,
}

/// The reply to `flows/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowList {
    /// Every flow on the node, by name.
    pub flows: Vec<FlowInfo>,
}

impl ReconfigureRequest {
    /// The drain it asks for.
    pub fn drain(&self) -> Duration {
        self.drain_ms.map_or(DEFAULT_DRAIN, Duration::from_millis)
    }
}

impl StopRequest {
    /// The drain it asks for.
    pub fn drain(&self) -> Duration {
        self.drain_ms.map_or(DEFAULT_DRAIN, Duration::from_millis)
    }
}

/// A drain given in seconds by an SDK (`None`: [`DEFAULT_DRAIN`]), checked here once for
/// every language.
pub fn drain_seconds(seconds: Option<f64>) -> Result<Duration> {
    match seconds {
        None => Ok(DEFAULT_DRAIN),
        Some(s) => Duration::try_from_secs_f64(s)
            .map_err(|_| crate::Error::InvalidArgument { reason: format!("drain must be a non-negative number of seconds, not {s}") }),
    }
}

#[cfg(feature = "remote")]
fn millis(d: Duration) -> Option<u64> {
    Some(d.as_millis().min(u64::MAX as u128) as u64)
}

/// The flows of the engine or node a client reaches.
///
/// - On a **remote** client, the node's flows: those its `--flow` files started and those
///   deployed by any client. Every call is one request.
/// - On an **embedded** client, flows that run in this process on the client's engine,
///   held by this value (and its clones): dropping the last one stops them. Stop them
///   with [`Flows::stop`] first to drain them.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use telemetron::flow::{Flows, FlowState};
///
/// let dir = tempfile::tempdir().unwrap();
/// let flows = Flows::new(&telemetron::open(dir.path()).unwrap());
/// let yaml = "flow: demo\nnodes:\n  gen: {type: generator, count: 10, to: [out]}\n  out: {type: discard}\n";
/// let info = flows.deploy(yaml).await.unwrap();
/// assert_eq!(info.name, "demo");
/// // A bounded source finishes; the flow stays listed, with its counters, until stopped.
/// while flows.get("demo").await.unwrap().state != FlowState::Finished {
///     tokio::time::sleep(std::time::Duration::from_millis(5)).await;
/// }
/// let last = flows.stop("demo", std::time::Duration::from_secs(5)).await.unwrap();
/// assert_eq!(last.node("out").unwrap().counts.received, 10);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Flows {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Local(Arc<FlowManager>),
    #[cfg(feature = "remote")]
    Remote(Client),
}

impl Flows {
    /// The flows of `client`'s engine or node (see the type's docs for the difference).
    pub fn new(client: &Client) -> Flows {
        #[cfg(feature = "remote")]
        if client.is_remote() {
            return Flows { inner: Inner::Remote(client.clone()) };
        }
        Flows::local(Arc::new(FlowManager::new(BuildEnv::with_client(client.clone()))))
    }

    /// Flows run by `manager` (a node's own manager, or one built with a custom
    /// [`BuildEnv`]).
    pub fn local(manager: Arc<FlowManager>) -> Flows {
        Flows { inner: Inner::Local(manager) }
    }

    /// Every flow with its counters.
    pub async fn list(&self) -> Result<Vec<FlowInfo>> {
        match &self.inner {
            Inner::Local(m) => Ok(m.list().await),
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote::<_, FlowList>("flows/list", &serde_json::json!({})).await.map(|l| l.flows),
        }
    }

    /// Flow `name` with its counters (`flow.not_found` when there is none).
    pub async fn get(&self, name: &str) -> Result<FlowInfo> {
        match &self.inner {
            Inner::Local(m) => m.get(name).await,
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote("flows/get", &NameRequest { name: name.into() }).await,
        }
    }

    /// Compile and start the flow file `config` (YAML text) under its `flow:` name.
    /// `flow.config` names the node and line of a mistake; `flow.name_taken` when a flow of
    /// that name runs.
    pub async fn deploy(&self, config: &str) -> Result<FlowInfo> {
        match &self.inner {
            Inner::Local(m) => m.deploy(config).await,
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote("flows/deploy", &DeployRequest { config: config.into() }).await,
        }
    }

    /// Apply a new version of flow `name`'s file: live (CFG to the changed nodes) when the
    /// graph is the same and they take it, else by draining (at most `drain`) and
    /// restarting. A wrong file fails and leaves the running flow alone. See
    /// [`FlowManager::reconfigure`].
    pub async fn reconfigure(&self, name: &str, config: &str, drain: Duration) -> Result<Reconfigured> {
        match &self.inner {
            Inner::Local(m) => m.reconfigure(name, config, drain).await,
            #[cfg(feature = "remote")]
            Inner::Remote(c) => {
                c.call_remote(
                    "flows/reconfigure",
                    &ReconfigureRequest { name: name.into(), config: config.into(), drain_ms: millis(drain) },
                )
                .await
            }
        }
    }

    /// Embedded: stop every flow this value runs, each drained for at most `drain` (call it
    /// before closing the engine; the SDKs' `close()` do). Remote: nothing, the node's
    /// flows outlive its clients.
    pub async fn shutdown(&self, drain: Duration) -> Vec<FlowInfo> {
        match &self.inner {
            Inner::Local(m) => m.stop_all(drain).await,
            #[cfg(feature = "remote")]
            Inner::Remote(_) => Vec::new(),
        }
    }

    /// Stop flow `name`, draining it for at most `drain`; returns its final counters.
    pub async fn stop(&self, name: &str, drain: Duration) -> Result<FlowInfo> {
        match &self.inner {
            Inner::Local(m) => m.stop(name, drain).await,
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote("flows/stop", &StopRequest { name: name.into(), drain_ms: millis(drain) }).await,
        }
    }
}
