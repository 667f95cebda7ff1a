//! The dataflow runtime: flows of receivers, processors and exporters that carry channel
//! frames and OpenTelemetry signals as Arrow record batches, with acknowledgements,
//! deadlines, cancellation and backpressure (seed 004; `docs/dataflow.md` is the reference).
//!
//! - A flow is a DAG written in YAML ([`FlowConfig`]), compiled ([`compile`]) into tasks
//!   after dead-path elimination and chain fusion, and run on the current tokio runtime
//!   ([`CompiledFlow::start`] gives a [`FlowHandle`]).
//! - A [`Message`] is `{id, envelope, data}`; the data is an Arrow [`RecordBatch`] whose
//!   buffers are shared, never copied, as it moves (frames convert through
//!   [`crate::telem::arrow`] without copying samples).
//! - Whoever consumes a message settles its [`Receipt`] (ACK or NACK); the signal travels
//!   back along the path the message took and visits only the components that subscribed
//!   ([`Cx::subscribe`]). Control signals are [`Control`].
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use telemetron::flow::{self, BuildEnv, FlowConfig};
//!
//! let yaml = "
//! flow: demo
//! nodes:
//!   gen: {type: generator, signal: logs, count: 100, rows: 10, to: [batch]}
//!   batch: {type: batch, max_rows: 250, timeout: 5ms, to: [out]}
//!   out: {type: discard}
//! ";
//! let compiled = flow::compile(FlowConfig::parse(yaml).unwrap(), &BuildEnv::default()).unwrap();
//! let report = compiled.start().unwrap().finish(Duration::from_secs(5)).await;
//! assert_eq!(report.node("gen").unwrap().acked, 100);
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use arrow_array::RecordBatch;

mod compile;
pub mod components;
mod config;
mod flows;
mod manager;
mod message;
mod runtime;
pub mod schema;
mod signal;

/// A flow's key in the experiment tree (`docs/observability.md` §2): `flow/<flow>`, or
/// `flow/<flow>/<node>` for one of its nodes.
pub(crate) fn key(flow: &str, node: Option<&str>) -> String {
    match node {
        Some(n) => format!("flow/{flow}/{n}"),
        None => format!("flow/{flow}"),
    }
}

tokio::task_local! {
    /// The key of the flow node whose exporter or processor this task runs, set by the
    /// runtime around each stage (a fused chain of processors: its first node).
    static NODE_KEY: std::sync::Arc<str>;
}

/// The experiment key of the exporter or processor running this task (`flow/<flow>/<node>`),
/// for its log events; `flow` outside one. Receivers have [`ReceiverCx::key`].
pub(crate) fn node_key() -> std::sync::Arc<str> {
    NODE_KEY.try_with(std::sync::Arc::clone).unwrap_or_else(|_| std::sync::Arc::from("flow"))
}

/// Run `fut` as the stage of node `node` of flow `flow` (see [`node_key`]).
pub(crate) fn in_node<F: std::future::Future>(
    flow: &str,
    node: &str,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<std::sync::Arc<str>, F> {
    NODE_KEY.scope(std::sync::Arc::from(key(flow, Some(node))), fut)
}

pub use compile::{CompiledFlow, PortType, Removed, Role, Signature, compile};
pub use components::{BuildEnv, Built, Component, Factory};
pub(crate) use config::duration;
pub use config::{FlowConfig, NodeConfig, Overflow, parse_duration};
pub use flows::{DeployRequest, FlowList, Flows, NameRequest, ReconfigureRequest, StopRequest, drain_seconds};
pub use manager::{Applied, DEFAULT_DRAIN, FlowInfo, FlowManager, FlowNodeError, FlowNodeInfo, FlowState, Reconfigured};
pub use message::{Envelope, JoinPolicy, Message, MessageId, Receipt, SignalType, Signals};
pub use runtime::{Counts, Cx, FlowHandle, FlowReport, NodeCounters, ReceiverCx};
pub use signal::{Budget, Control, Interests, Nack, NackReason, SignalKind};

pub use crate::error::FlowFailure;

/// A boxed future, as components return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What can fail when a flow is configured or run.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The configuration is wrong: YAML, an unknown component, a bad option, a cycle, a type
    /// mismatch. `line` is 1-based in the flow file (0: not from a file).
    #[error("{}{}{message}", if *.line > 0 { format!("line {}: ", line) } else { String::new() }, node.as_ref().map(|n| format!("node `{n}`: ")).unwrap_or_default())]
    Config {
        /// The line in the flow file.
        line: usize,
        /// The node, when the error is about one.
        node: Option<String>,
        /// What is wrong and what to do.
        message: String,
    },
    /// A component failed at runtime (the flow keeps running; the error is counted and
    /// reported).
    #[error("{0}")]
    Component(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An engine or client call failed.
    #[error(transparent)]
    Engine(#[from] crate::Error),
}

impl From<crate::telem::SeriesError> for FlowError {
    fn from(e: crate::telem::SeriesError) -> Self {
        FlowError::Engine(e.into())
    }
}

impl From<FlowError> for crate::Error {
    /// Configuration, component and file errors become [`crate::Error::Flow`] (codes
    /// `flow.*`) with the same message; an engine error stays itself.
    fn from(e: FlowError) -> crate::Error {
        let message = e.to_string();
        match e {
            FlowError::Config { .. } => FlowFailure::Config { message }.into(),
            FlowError::Component(_) => FlowFailure::Component { message }.into(),
            FlowError::Io { .. } => FlowFailure::Io { message }.into(),
            FlowError::Engine(e) => e,
        }
    }
}

impl FlowError {
    /// The stable error code (`flow.config`, `flow.component`, `flow.io`, or the engine's).
    pub fn code(&self) -> &'static str {
        match self {
            FlowError::Config { .. } => "flow.config",
            FlowError::Component(_) => "flow.component",
            FlowError::Io { .. } => "flow.io",
            FlowError::Engine(e) => e.code(),
        }
    }
}

/// A processor: takes messages from its input, emits messages on its output ports, and
/// handles the control signals it asked for. Called from one task; never concurrently.
pub trait Processor: Send + 'static {
    /// Handle one message. Forwarding it ([`Cx::emit`]) forwards its receipt; consuming it
    /// means settling the receipt ([`Message::take_receipt`]).
    fn process(&mut self, msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError>;

    /// Handle a control signal: ACK/NACK of messages this processor subscribed to, and the
    /// kinds in [`Processor::interests`]. The default passes ACK and NACK on upstream.
    fn control(&mut self, signal: Control, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let _ = cx;
        match signal {
            Control::Ack { receipt, .. } => receipt.ack(),
            Control::Nack { receipt, nack, .. } => receipt.nack(nack),
            _ => {}
        }
        Ok(())
    }

    /// The control signals (other than ACK/NACK) this processor wants.
    fn interests(&self) -> Interests {
        Interests::NONE
    }

    /// Messages it holds (a batch being filled, messages waiting for a retry). A flow that
    /// shuts down waits for this to reach zero, up to its drain deadline.
    fn held(&self) -> usize {
        0
    }
}

/// An exporter: sends messages out of the flow and settles each receipt when the
/// destination has them (or could not take them).
pub trait Exporter: Send + 'static {
    /// Export one message; settle `receipt` now or later (after a commit, an fsync).
    fn export(&mut self, msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>>;

    /// Called once when the input has ended: make everything exported durable and settle
    /// every receipt still held.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), FlowError>> {
        Box::pin(async { Ok(()) })
    }

    /// TMR for exporters: how often [`Exporter::tick`] is called (`None`: never). An
    /// exporter that settles receipts later than in `export` (after a file is rolled and
    /// fsynced) must settle them from `tick` within a bounded time: the flow waits for
    /// every ACK before it ends.
    fn tick_every(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Exporter::tick_every`].
    fn tick(&mut self) -> BoxFuture<'_, Result<(), FlowError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A receiver: brings messages into the flow from a source until the source ends or the
/// flow stops ([`ReceiverCx::stopping`]).
pub trait Receiver: Send + 'static {
    /// Run until done.
    fn run(self: Box<Self>, cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>>;

    /// Receivers get every signal sent to them; this says which of the optional ones they
    /// act on. Only [`SignalKind::Config`] matters: a receiver without it cannot be
    /// reconfigured while it runs (a reconfiguration restarts the flow instead).
    fn interests(&self) -> Interests {
        Interests::NONE
    }
}

impl CompiledFlow {
    /// Start the flow on the current tokio runtime, which must be a multi-thread runtime
    /// (components that call the engine's synchronous API, such as the durable queue, use
    /// `block_in_place`).
    pub fn start(self) -> Result<FlowHandle, FlowError> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => Ok(runtime::start(self)),
            Ok(_) => Err(FlowError::Config {
                line: 0,
                node: None,
                message: "flows run on a multi-thread tokio runtime (`#[tokio::main]` or `flavor = \"multi_thread\"`)".into(),
            }),
            Err(_) => Err(FlowError::Config { line: 0, node: None, message: "start a flow from within a tokio runtime".into() }),
        }
    }
}
