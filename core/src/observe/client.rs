//! [`Observe`]: the levels and metrics of the engine or node a [`Client`] reaches, on either
//! backend, and the messages of the protocol's `observe/*` calls (`docs/protocol.md` §4,
//! "Instrumentation"). The Python and Node SDKs' `client.observe` wrap this.

use serde::{Deserialize, Serialize};

use super::{Levels, LevelsUpdate, Observer, Summary, SummaryRequest};
use crate::client::Client;
use crate::error::Result;

/// The reply to `observe/metrics`: every scalar metric now, by its self-telemetry channel
/// name (`_telemetron/storage/commits`), sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSamples {
    /// `(name, value)` pairs.
    pub samples: Vec<(String, f64)>,
}

impl MetricSamples {
    /// The value of `name`, if measured.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// The instrumentation of the engine or node a client reaches.
///
/// - On a **remote** client, the node's: its levels and its metrics, one request each.
/// - On an **embedded** client, an [`Observer`] of the client's engine in this process
///   (metrics of storage, relay and control; the log level reaches no log filter, since
///   the embedding program owns its logging).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use telemetron::observe::{Level, LevelsUpdate, Observe};
///
/// let dir = tempfile::tempdir().unwrap();
/// let client = telemetron::open(dir.path()).unwrap();
/// let observe = Observe::new(&client);
/// let m = observe.metrics().await.unwrap();
/// assert_eq!(m.get("_telemetron/storage/commits"), Some(0.0));
/// let now = observe.set_levels(LevelsUpdate { metrics: Some(Level::Off), ..Default::default() }).await.unwrap();
/// assert_eq!(now.metrics, Level::Off);
/// assert!(observe.metrics().await.unwrap().samples.is_empty());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Observe {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Local(Observer),
    #[cfg(feature = "remote")]
    Remote(Client),
}

impl Observe {
    /// The instrumentation of `client`'s engine or node (see the type's docs).
    pub fn new(client: &Client) -> Observe {
        #[cfg(feature = "remote")]
        if client.is_remote() {
            return Observe { inner: Inner::Remote(client.clone()) };
        }
        let obs = Observer::new("embedded", Levels::default());
        if let Some(engine) = client.engine() {
            obs.watch_engine(engine);
        }
        Observe::local(obs)
    }

    /// The instrumentation held by `observer` (a node's own).
    pub fn local(observer: Observer) -> Observe {
        Observe { inner: Inner::Local(observer) }
    }

    /// The levels in force.
    pub async fn levels(&self) -> Result<Levels> {
        match &self.inner {
            Inner::Local(o) => Ok(o.levels()),
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote("observe/levels", &LevelsUpdate::default()).await,
        }
    }

    /// Change some levels; returns the levels now in force.
    pub async fn set_levels(&self, update: LevelsUpdate) -> Result<Levels> {
        match &self.inner {
            Inner::Local(o) => Ok(o.set_levels(update)),
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote("observe/levels", &update).await,
        }
    }

    /// Every scalar metric now (empty at metrics level `off`).
    pub async fn metrics(&self) -> Result<MetricSamples> {
        match &self.inner {
            Inner::Local(o) => Ok(MetricSamples { samples: o.samples() }),
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote("observe/metrics", &serde_json::json!({})).await,
        }
    }

    /// Summarize the self-telemetry history over a window ([`Summary`],
    /// `docs/observability.md` §7): on a remote client the node computes it next to its
    /// data and sends only the summary; on an embedded client the engine's own channels
    /// (a data directory a node wrote, opened afterwards) are summarized here.
    pub async fn summary(&self, req: &SummaryRequest) -> Result<Summary> {
        match &self.inner {
            Inner::Local(o) => {
                let (o, req) = (o.clone(), req.clone());
                tokio::task::spawn_blocking(move || o.summary(&req))
                    .await
                    .map_err(|e| crate::Error::InvalidArgument { reason: format!("the summary task failed: {e}") })?
            }
            #[cfg(feature = "remote")]
            Inner::Remote(c) => c.call_remote("observe/summary", req).await,
        }
    }
}
