//! Flows deployed on an engine or a node, by name: [`FlowManager`] runs them; [`FlowInfo`]
//! and [`Reconfigured`] are what it reports (and what crosses the wire, `docs/protocol.md`
//! §4, "Flows").
//!
//! `telemetron serve` holds one manager for the node (its `--flow` files are deployed
//! into it, and the protocol's `flows/*` calls reach it); an embedded client gets one
//! through [`super::Flows`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BuildEnv, Counts, FlowConfig, FlowError, FlowHandle, compile};
use crate::error::{FlowFailure, Result};
use crate::telem::TimeStamp;

/// How long [`FlowManager::stop`] and a restarting reconfiguration wait for a flow to drain
/// when the caller does not say.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// A flow's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Its receivers are taking messages in.
    Running,
    /// Its receivers have finished (bounded sources ran out); it stays listed, with its
    /// counters, until it is stopped.
    Finished,
    /// It was stopped ([`FlowManager::stop`]); only in the reply to that call.
    Stopped,
}

impl std::fmt::Display for FlowState {
    /// `running`, `finished`, `stopped` (as on the wire).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlowState::Running => "running",
            FlowState::Finished => "finished",
            FlowState::Stopped => "stopped",
        })
    }
}

/// One node of a running flow and its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowNodeInfo {
    /// The node's name in the flow file.
    pub name: String,
    /// Its component type (`generator`, `filter`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it takes new options while it runs (CFG).
    pub reconfigurable: bool,
    /// Its counters.
    #[serde(flatten)]
    pub counts: Counts,
}

/// An error a component returned, as [`FlowInfo::errors`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowNodeError {
    /// The node.
    pub node: String,
    /// What failed.
    pub error: String,
}

/// A flow on a node: its configuration, state and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInfo {
    /// The flow's name (`flow:` in its file).
    pub name: String,
    /// Running, finished, or (in a stop's reply) stopped.
    pub state: FlowState,
    /// When it was deployed (or last restarted by a reconfiguration).
    pub started: TimeStamp,
    /// The flow file as deployed.
    pub config: String,
    /// The nodes that run (dead-path elimination removed the others), with counters.
    pub nodes: Vec<FlowNodeInfo>,
    /// The most recent component errors, oldest first (at most [`FlowInfo::MAX_ERRORS`]).
    pub errors: Vec<FlowNodeError>,
    /// In a stop's reply: whether everything drained before the deadline (false: what was
    /// still held was NACKed as `shutdown`, so sources that wait for ACKs keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drained: Option<bool>,
}

impl FlowInfo {
    /// Most errors listed.
    pub const MAX_ERRORS: usize = 20;

    /// The node `name`.
    pub fn node(&self, name: &str) -> Option<&FlowNodeInfo> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// How [`FlowManager::reconfigure`] applied a new flow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Nothing changed.
    Unchanged,
    /// The changed options were sent to the running nodes (CFG); nothing was stopped and
    /// nothing in flight was touched.
    Live,
    /// The graph changed, or a changed node does not take CFG: the old flow was drained
    /// and stopped, then the new one started.
    Restarted,
}

impl std::fmt::Display for Applied {
    /// `unchanged`, `live`, `restarted` (as on the wire).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Applied::Unchanged => "unchanged",
            Applied::Live => "live",
            Applied::Restarted => "restarted",
        })
    }
}

/// The reply to a reconfiguration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconfigured {
    /// How it was applied.
    pub applied: Applied,
    /// The nodes whose options changed.
    pub nodes: Vec<String>,
    /// Why it restarted (`None` unless `applied` is `restarted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The flow after the change.
    pub flow: FlowInfo,
}

struct Deployed {
    handle: FlowHandle,
    config: FlowConfig,
    source: String,
    started: TimeStamp,
}

impl Deployed {
    /// Its view while it runs.
    fn info(&self) -> FlowInfo {
        let state = if self.handle.receivers_done() { FlowState::Finished } else { FlowState::Running };
        let reconfigurable = |n: &str| self.handle.accepts_config(n);
        info(&self.config, &self.source, self.started, state, self.handle.counters(), &self.handle.errors(), reconfigurable, None)
    }
}

/// A [`FlowInfo`] from its parts.
#[allow(clippy::too_many_arguments)]
fn info(
    config: &FlowConfig,
    source: &str,
    started: TimeStamp,
    state: FlowState,
    counts: Vec<(String, Counts)>,
    errors: &[(String, String)],
    reconfigurable: impl Fn(&str) -> bool,
    drained: Option<bool>,
) -> FlowInfo {
    let kind = |name: &str| config.nodes.iter().find(|n| n.name == name).map(|n| n.kind.clone()).unwrap_or_default();
    FlowInfo {
        name: config.name.clone(),
        state,
        started,
        config: source.to_string(),
        nodes: counts
            .into_iter()
            .map(|(name, counts)| FlowNodeInfo { kind: kind(&name), reconfigurable: reconfigurable(&name), name, counts })
            .collect(),
        errors: errors[errors.len().saturating_sub(FlowInfo::MAX_ERRORS)..]
            .iter()
            .map(|(node, error)| FlowNodeError { node: node.clone(), error: error.clone() })
            .collect(),
        drained,
    }
}

/// The flows running on one engine or node, by name.
///
/// Every call takes one lock for its whole duration, so a deploy, a reconfiguration and a
/// stop of the same name never interleave.
pub struct FlowManager {
    env: BuildEnv,
    flows: tokio::sync::Mutex<BTreeMap<String, Deployed>>,
}

impl std::fmt::Debug for FlowManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowManager").field("env", &self.env).finish()
    }
}

fn not_found(name: &str) -> crate::Error {
    FlowFailure::NotFound { name: name.to_string() }.into()
}

impl FlowManager {
    /// A manager whose flows are built with `env` (its client is the engine or node that
    /// channel components use by default).
    pub fn new(env: BuildEnv) -> FlowManager {
        FlowManager { env, flows: tokio::sync::Mutex::new(BTreeMap::new()) }
    }

    /// A manager whose channel components use `engine` by default (a node's own).
    pub fn on_engine(engine: crate::Engine) -> FlowManager {
        FlowManager::new(BuildEnv::on_engine(engine))
    }

    fn compile(&self, source: &str) -> Result<(FlowConfig, super::CompiledFlow)> {
        let config = FlowConfig::parse(source)?;
        let compiled = compile(config.clone(), &self.env)?;
        Ok((config, compiled))
    }

    /// Compile and start the flow in `source` (a flow file's text) under its `flow:` name.
    /// Must be called on a multi-thread tokio runtime.
    ///
    /// # Errors
    /// `flow.config` with the node and line for a wrong file; `flow.name_taken` when a flow
    /// of that name runs already.
    pub async fn deploy(&self, source: &str) -> Result<FlowInfo> {
        let (config, compiled) = self.compile(source)?;
        let mut flows = self.flows.lock().await;
        if flows.contains_key(&config.name) {
            return Err(FlowFailure::NameTaken { name: config.name }.into());
        }
        let handle = compiled.start()?;
        let d = Deployed { handle, config, source: source.to_string(), started: TimeStamp::now() };
        let info = d.info();
        tracing::info!(key = super::key(&info.name, None).as_str(), nodes = info.nodes.len(), "flow deployed");
        flows.insert(info.name.clone(), d);
        Ok(info)
    }

    /// Every flow, by name, with its counters.
    pub async fn list(&self) -> Vec<FlowInfo> {
        self.flows.lock().await.values().map(|d| d.info()).collect()
    }

    /// [`FlowManager::list`] without waiting: `None` while a deploy, reconfiguration or
    /// stop holds the list (metrics collection, which must not block, uses it).
    pub fn try_list(&self) -> Option<Vec<FlowInfo>> {
        self.flows.try_lock().ok().map(|f| f.values().map(|d| d.info()).collect())
    }

    /// The flow `name`, with its counters.
    ///
    /// # Errors
    /// `flow.not_found`.
    pub async fn get(&self, name: &str) -> Result<FlowInfo> {
        self.flows.lock().await.get(name).map(|d| d.info()).ok_or_else(|| not_found(name))
    }

    /// Apply a new version of flow `name`'s file.
    ///
    /// - When the graph is the same (the same nodes with the same types and connections,
    ///   the same `fuse` and `queue`) and every node whose options changed takes CFG, the
    ///   new options go to those nodes while the flow runs ([`Applied::Live`]): nothing
    ///   stops, nothing in flight is touched.
    /// - Otherwise the old flow drains (at most `drain`) and stops, and the new one starts
    ///   ([`Applied::Restarted`]). Sources that wait for ACKs (a durable queue, an
    ///   `ack_log`) lose nothing: what was not acknowledged is sent again.
    ///
    /// The new file is compiled first: when it is wrong the call fails and the old flow
    /// keeps running untouched.
    ///
    /// # Errors
    /// `flow.not_found`; `flow.config` (the old flow keeps running), also when the new file
    /// names another flow.
    pub async fn reconfigure(&self, name: &str, source: &str, drain: Duration) -> Result<Reconfigured> {
        let mut flows = self.flows.lock().await;
        let Some(old) = flows.get(name) else { return Err(not_found(name)) };
        let (config, compiled) = self.compile(source)?;
        if config.name != name {
            return Err(FlowError::Config {
                line: 0,
                node: None,
                message: format!("the new file is flow `{}`, not `{name}`; deploy it as a flow of its own", config.name),
            }
            .into());
        }
        let changed = changed_nodes(&old.config, &config);
        let restart = match &changed {
            Err(why) => Some(why.clone()),
            Ok(nodes) => nodes
                .iter()
                .find(|(n, _)| !old.handle.accepts_config(n))
                .map(|(n, _)| format!("node `{n}` changed and its component does not take CFG while running")),
        };
        let nodes: Vec<String> = match &changed {
            Ok(nodes) => nodes.iter().map(|(n, _)| n.clone()).collect(),
            Err(_) => Vec::new(),
        };
        if let (None, Ok(changes)) = (&restart, changed) {
            drop(compiled);
            for (node, options) in changes {
                old.handle.configure(&node, options)?;
            }
            let old = flows.get_mut(name).expect("checked above");
            old.config = config;
            old.source = source.to_string();
            let applied = if nodes.is_empty() { Applied::Unchanged } else { Applied::Live };
            tracing::info!(key = super::key(name, None).as_str(), ?applied, ?nodes, "flow reconfigured");
            return Ok(Reconfigured { applied, nodes, reason: None, flow: old.info() });
        }
        let old = flows.remove(name).expect("checked above");
        let report = old.handle.shutdown(drain).await;
        if !report.drained {
            tracing::warn!(
                key = super::key(name, None).as_str(),
                "the old flow did not drain before the deadline; what it held was NACKed"
            );
        }
        let handle = compiled.start()?;
        let d = Deployed { handle, config, source: source.to_string(), started: TimeStamp::now() };
        let flow = d.info();
        flows.insert(name.to_string(), d);
        tracing::info!(key = super::key(name, None).as_str(), reason = ?restart, "flow restarted with a new configuration");
        Ok(Reconfigured { applied: Applied::Restarted, nodes, reason: restart, flow })
    }

    /// KIL flow `name`: stop its receivers, drain what is in flight (at most `drain`),
    /// and return its final counters.
    ///
    /// # Errors
    /// `flow.not_found`.
    pub async fn stop(&self, name: &str, drain: Duration) -> Result<FlowInfo> {
        let mut flows = self.flows.lock().await;
        let d = flows.remove(name).ok_or_else(|| not_found(name))?;
        let report = d.handle.shutdown(drain).await;
        tracing::info!(key = super::key(name, None).as_str(), drained = report.drained, "flow stopped");
        Ok(info(&d.config, &d.source, d.started, FlowState::Stopped, report.counts, &report.errors, |_| false, Some(report.drained)))
    }

    /// Stop every flow (a node shutting down), each with `drain`; returns their final state.
    pub async fn stop_all(&self, drain: Duration) -> Vec<FlowInfo> {
        let names: Vec<String> = self.flows.lock().await.keys().cloned().collect();
        let mut out = Vec::new();
        for n in names {
            if let Ok(info) = self.stop(&n, drain).await {
                out.push(info);
            }
        }
        out
    }
}

/// The nodes whose options differ between `old` and `new`, with their new options; `Err`
/// with the reason when the graph itself differs (then only a restart applies it).
fn changed_nodes(old: &FlowConfig, new: &FlowConfig) -> std::result::Result<Vec<(String, serde_json::Value)>, String> {
    if old.fuse != new.fuse || old.queue != new.queue {
        return Err("`fuse` or `queue` changed".into());
    }
    if old.nodes.len() != new.nodes.len() {
        return Err("nodes were added or removed".into());
    }
    let mut changed = Vec::new();
    for n in &new.nodes {
        let Some(o) = old.nodes.iter().find(|o| o.name == n.name) else {
            return Err(format!("node `{}` is new", n.name));
        };
        if o.kind != n.kind {
            return Err(format!("node `{}` changed its type", n.name));
        }
        if o.to != n.to {
            return Err(format!("node `{}` changed its destinations", n.name));
        }
        if o.options != n.options {
            changed.push((n.name.clone(), n.options.clone()));
        }
    }
    Ok(changed)
}
