//! The built-in components, by the `type:` that names them in a flow file
//! (`docs/dataflow.md` §4 describes each and its options).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::compile::Signature;
use super::message::{Message, Receipt};
use super::runtime::Cx;
use super::signal::{Control, Interests, SignalKind};
use super::{Exporter, FlowError, Processor, Receiver};
use crate::client::Client;

mod admission;
mod basic;
mod batch;
mod channels;
mod data;
mod generator;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
#[cfg(feature = "export")]
mod parquet_out;
mod predicate;
mod queue;
mod retry;
mod router;

/// Builds a component from its options and the output ports the flow connects.
pub type Factory = Arc<dyn Fn(&serde_json::Value, &[String]) -> Result<Built, String> + Send + Sync>;

/// What components may reach outside the flow, and components added to the built-in ones.
#[derive(Clone, Default)]
pub struct BuildEnv {
    /// The engine or node that `channels` receivers and exporters use when their options
    /// name none (inside `telemetron serve`: the node's own engine).
    pub client: Option<Client>,
    /// Compiling only (`flow check`): components do not require what only running needs
    /// (an engine to reach).
    pub checking: bool,
    custom: BTreeMap<String, Factory>,
}

impl std::fmt::Debug for BuildEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildEnv").field("client", &self.client.is_some()).field("custom", &self.custom.keys().collect::<Vec<_>>()).finish()
    }
}

impl BuildEnv {
    /// An environment whose channel components use `client`.
    pub fn with_client(client: Client) -> BuildEnv {
        BuildEnv { client: Some(client), ..BuildEnv::default() }
    }

    /// An environment whose channel components use `engine` (a node's own).
    pub fn on_engine(engine: crate::Engine) -> BuildEnv {
        BuildEnv::with_client(Client::embedded(engine))
    }

    /// An environment for compiling only (`flow check`): nothing to reach.
    pub fn for_check() -> BuildEnv {
        BuildEnv { checking: true, ..BuildEnv::default() }
    }

    /// Add a component type (it takes precedence over a built-in one of the same name).
    /// This is how components defined outside this module (OTLP, a test's fault injector)
    /// enter a flow file.
    pub fn register(
        &mut self,
        kind: impl Into<String>,
        factory: impl Fn(&serde_json::Value, &[String]) -> Result<Built, String> + Send + Sync + 'static,
    ) {
        self.custom.insert(kind.into(), Arc::new(factory));
    }
}

/// A built component.
pub enum Component {
    /// A receiver.
    Receiver(Box<dyn Receiver>),
    /// A processor.
    Processor(Box<dyn Processor>),
    /// An exporter.
    Exporter(Box<dyn Exporter>),
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Component::Receiver(_) => "Receiver",
            Component::Processor(_) => "Processor",
            Component::Exporter(_) => "Exporter",
        })
    }
}

/// A component and its signature.
#[derive(Debug)]
pub struct Built {
    /// Role, accepted types, ports.
    pub signature: Signature,
    /// The component.
    pub component: Component,
}

/// Every component type with a one-line description (what `flow check --list` prints).
pub const TYPES: &[(&str, &str)] = &[
    ("generator", "receiver: synthetic logs, metrics or frames (tests, benchmarks)"),
    ("filter", "FP: keeps the rows that match a condition"),
    ("sample", "SP: keeps every n-th message, or each with a probability"),
    ("convert", "CP: frames into metrics (one data point per sample of each numeric channel)"),
    ("aggregate", "AP: count, sum, min, max, mean per time window and key, as metrics"),
    ("batch", "BP: merges messages into batches of at most max_rows, emitted at least every timeout"),
    ("deadline", "DC: sets the deadline header"),
    ("admission", "AC: sends REB (closed / open with a rate) to the receivers upstream from messages and bytes in flight"),
    ("ack", "AK: where messages are acknowledged (ingress, pre_export, downstream; all or any branch)"),
    ("retry", "RY: resends NACKed messages with exponential backoff and jitter"),
    ("type_router", "TR: one output port per signal type, plus fallback"),
    ("content_router", "CR: routes rows by conditions to named ports, plus fallback"),
    ("failover", "FO: primary port, and fallback for what the primary NACKs or is too slow for"),
    ("channels_receiver", "receiver: frames streamed live from channels of an engine or a node"),
    ("channels_exporter", "exporter: frames written to channels of an engine or a node (created as needed), ACK after the commit"),
    ("queue_exporter", "exporter: appends to a durable queue on the engine, ACK after the commit"),
    ("queue_receiver", "receiver: replays a durable queue from its last acknowledged message (at least once)"),
    (
        "otlp_receiver",
        "receiver: OTLP metrics, logs and traces over gRPC (4317) and HTTP/protobuf (4318), answered after the ACK (feature `otlp`)",
    ),
    (
        "otlp_exporter",
        "exporter: metrics, logs and traces to an OTLP endpoint over gRPC or HTTP/protobuf, ACK on its answer (feature `otlp`)",
    ),
    ("parquet_exporter", "exporter: rolling Parquet files, ACK after the file is fsynced (feature `export`)"),
    ("debug", "exporter: logs a line per message"),
    ("discard", "exporter: acknowledges and drops every message (benchmarks, tests)"),
];

/// Build component `kind` from its options. `ports` are the output ports the flow file
/// connects (routers derive their signature from them).
pub(crate) fn build(kind: &str, options: &serde_json::Value, ports: &[String], env: &BuildEnv) -> Result<Built, String> {
    if let Some(f) = env.custom.get(kind) {
        return f(options, ports);
    }
    match kind {
        "channels_receiver" => channels::receiver(options, env),
        "channels_exporter" => channels::exporter(options, env),
        "queue_exporter" => queue::exporter(options, env),
        "queue_receiver" => queue::receiver(options, env),
        #[cfg(feature = "export")]
        "parquet_exporter" => parquet_out::build(options),
        #[cfg(feature = "otlp")]
        "otlp_receiver" => otlp::receiver(options),
        #[cfg(feature = "otlp")]
        "otlp_exporter" => otlp::exporter(options),
        "generator" => generator::build(options),
        "filter" => basic::filter(options),
        "sample" => basic::sample(options),
        "batch" => batch::build(options),
        "convert" => data::convert(options),
        "aggregate" => data::aggregate(options),
        "deadline" => basic::deadline(options),
        "admission" => admission::build(options),
        "ack" => basic::ack(options),
        "retry" => retry::build(options),
        "type_router" => router::type_router(options, ports),
        "content_router" => router::content_router(options, ports),
        "failover" => router::failover(options),
        "debug" => basic::debug(options),
        "discard" => basic::discard(options),
        _ => {
            let known: Vec<&str> = TYPES.iter().map(|t| t.0).chain(env.custom.keys().map(String::as_str)).collect();
            Err(format!("unknown component type `{kind}`; the types are {}", known.join(", ")))
        }
    }
}

/// The receipts of messages merged into one emitted message (a batch, an aggregate): the
/// emitted message's ACK/NACK settles all of them.
#[derive(Default)]
pub(crate) struct Merged {
    in_flight: HashMap<u64, Vec<Receipt>>,
    next: u64,
}

impl Merged {
    /// Make `msg` settle `receipts` (those someone waits for) when it is settled.
    pub(crate) fn attach(&mut self, msg: &mut Message, receipts: impl IntoIterator<Item = Receipt>, cx: &mut Cx<'_>) {
        let receipts: Vec<Receipt> = receipts.into_iter().filter(Receipt::is_awaited).collect();
        if !receipts.is_empty() {
            let token = self.next;
            self.next += 1;
            cx.subscribe(msg, token);
            self.in_flight.insert(token, receipts);
        }
    }

    /// Settle the receipts behind an ACK or NACK; `false` for any other signal.
    pub(crate) fn settle(&mut self, signal: &Control) -> bool {
        match signal {
            Control::Ack { token, .. } => self.in_flight.remove(token).into_iter().flatten().for_each(Receipt::ack),
            Control::Nack { token, nack, .. } => {
                for r in self.in_flight.remove(token).into_iter().flatten() {
                    r.nack(nack.clone());
                }
            }
            _ => return false,
        }
        true
    }
}

/// A processor whose whole state is its options (`filter`, `sample`, `deadline`): CFG
/// rebuilds it from the new options with the same function that built it, so the two
/// cannot disagree. Options that do not parse leave the old processor in place (ERR).
pub(crate) struct Reconfigurable<P> {
    make: fn(&serde_json::Value) -> Result<P, String>,
    inner: P,
}

impl<P: Processor> Reconfigurable<P> {
    /// Build from `options` with `make`.
    pub(crate) fn build(options: &serde_json::Value, make: fn(&serde_json::Value) -> Result<P, String>) -> Result<Self, String> {
        Ok(Reconfigurable { make, inner: make(options)? })
    }
}

impl<P: Processor> Processor for Reconfigurable<P> {
    fn process(&mut self, msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        self.inner.process(msg, cx)
    }

    fn control(&mut self, signal: Control, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        match signal {
            Control::Config(v) => {
                self.inner =
                    (self.make)(&v).map_err(|m| FlowError::Config { line: 0, node: None, message: format!("CFG refused: {m}") })?;
                Ok(())
            }
            other => self.inner.control(other, cx),
        }
    }

    fn interests(&self) -> Interests {
        self.inner.interests().with(SignalKind::Config)
    }

    fn held(&self) -> usize {
        self.inner.held()
    }
}

/// Parse a component's options (the node's keys other than `type` and `to`); with
/// `#[serde(deny_unknown_fields)]` on `T`, a misspelt option is an error.
pub fn options<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("options: {e}"))
}
