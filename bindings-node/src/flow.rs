//! `client.flows`: the core's [`telemetron::flow::Flows`] as JS objects.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::flow::{FlowInfo, Reconfigured};

use crate::telem::big;

/// One running node of a flow and its counters.
#[napi(object)]
pub struct FlowNodeJs {
    /// The node's name in the flow file.
    pub name: String,
    /// Its component type (`generator`, `filter`, ...).
    #[napi(js_name = "type")]
    pub kind: String,
    /// Whether it takes new options while running (CFG).
    pub reconfigurable: bool,
    /// Messages given to it.
    pub received: f64,
    /// Rows of those messages.
    pub rows: f64,
    /// Messages it emitted (an exporter: exported).
    pub emitted: f64,
    /// ACKs it received for messages it subscribed to.
    pub acked: f64,
    /// NACKs it received for messages it subscribed to.
    pub nacked: f64,
    /// Messages NACKed in front of it because their deadline had passed.
    pub expired: f64,
    /// Messages dropped in front of it because they were cancelled.
    pub cancelled: f64,
    /// Messages NACKed in front of it because its input queue was full (`overflow: nack`).
    pub dropped: f64,
    /// Errors it returned.
    pub errors: f64,
    /// Messages waiting in its input queue now.
    pub queued: f64,
}

/// An error a component returned.
#[napi(object)]
pub struct FlowNodeErrorJs {
    /// The node.
    pub node: String,
    /// What failed.
    pub error: String,
}

/// A flow: state, configuration, counters.
#[napi(object)]
pub struct FlowInfoJs {
    /// The `flow:` name.
    pub name: String,
    /// `running`, `finished` or (in `stop`'s reply) `stopped`.
    pub state: String,
    /// When it was deployed or last restarted (ns since the epoch).
    pub started: BigInt,
    /// The flow file as deployed.
    pub config: String,
    /// The nodes that run.
    pub nodes: Vec<FlowNodeJs>,
    /// The most recent component errors, oldest first.
    pub errors: Vec<FlowNodeErrorJs>,
    /// In `stop`'s reply: whether everything drained in time.
    pub drained: Option<bool>,
}

/// How `reconfigure` applied a new file.
#[napi(object)]
pub struct ReconfiguredJs {
    /// `live`, `restarted` or `unchanged`.
    pub applied: String,
    /// The nodes whose options changed.
    pub nodes: Vec<String>,
    /// Why it restarted.
    pub reason: Option<String>,
    /// The flow afterwards.
    pub flow: FlowInfoJs,
}

impl FlowInfoJs {
    pub(crate) fn from_core(f: FlowInfo) -> FlowInfoJs {
        FlowInfoJs {
            name: f.name,
            state: f.state.to_string(),
            started: big(f.started.0),
            config: f.config,
            nodes: f
                .nodes
                .into_iter()
                .map(|n| FlowNodeJs {
                    name: n.name,
                    kind: n.kind,
                    reconfigurable: n.reconfigurable,
                    received: n.counts.received as f64,
                    rows: n.counts.rows as f64,
                    emitted: n.counts.emitted as f64,
                    acked: n.counts.acked as f64,
                    nacked: n.counts.nacked as f64,
                    expired: n.counts.expired as f64,
                    cancelled: n.counts.cancelled as f64,
                    dropped: n.counts.dropped as f64,
                    errors: n.counts.errors as f64,
                    queued: n.counts.queued as f64,
                })
                .collect(),
            errors: f.errors.into_iter().map(|e| FlowNodeErrorJs { node: e.node, error: e.error }).collect(),
            drained: f.drained,
        }
    }
}

impl ReconfiguredJs {
    pub(crate) fn from_core(r: Reconfigured) -> ReconfiguredJs {
        ReconfiguredJs { applied: r.applied.to_string(), nodes: r.nodes, reason: r.reason, flow: FlowInfoJs::from_core(r.flow) }
    }
}
