//! A running flow seen from outside: [`FlowHandle`] and, when it ends, [`FlowReport`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ControlInbox, Counts, NodeCounters, Shared};
use crate::flow::FlowError;
use crate::flow::message::MessageId;
use crate::flow::signal::{Budget, Control, Interests, SignalKind};

/// A running flow.
pub struct FlowHandle {
    pub(super) name: String,
    pub(super) nodes: Vec<(String, Arc<NodeCounters>)>,
    pub(super) shared: Arc<Shared>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) tasks: Vec<JoinHandle<()>>,
    pub(super) receivers: Vec<JoinHandle<Result<(), FlowError>>>,
    pub(super) inboxes: Vec<(ControlInbox, Vec<(usize, Interests)>)>,
    pub(super) receiver_inboxes: Vec<ControlInbox>,
    pub(super) errors: Arc<Mutex<Vec<(String, String)>>>,
    /// The nodes whose component takes CFG, and where to send it.
    pub(super) configurable: Vec<(String, ControlInbox, usize)>,
}

impl std::fmt::Debug for FlowHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowHandle").field("name", &self.name).field("nodes", &self.nodes.len()).finish()
    }
}

/// How a flow ended.
#[derive(Debug, Clone, Default)]
pub struct FlowReport {
    /// Counters per node, in the compiled graph's order.
    pub counts: Vec<(String, Counts)>,
    /// Errors components returned, `(node, error)`: the latest 1,000, oldest first.
    pub errors: Vec<(String, String)>,
    /// Whether every task finished before the drain deadline (false: some were stopped and
    /// what they held was NACKed as `shutdown`).
    pub drained: bool,
}

impl FlowReport {
    /// The counters of node `name`.
    pub fn node(&self, name: &str) -> Option<Counts> {
        self.counts.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
    }
}

impl FlowHandle {
    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters of every node.
    pub fn counters(&self) -> Vec<(String, Counts)> {
        self.nodes.iter().map(|(n, c)| (n.clone(), c.snapshot())).collect()
    }

    /// Errors returned by components so far.
    pub fn errors(&self) -> Vec<(String, String)> {
        self.errors.lock().clone()
    }

    /// CAN: cancel message `id` wherever it is. It is dropped at the next queue it leaves
    /// and from every batch and retry buffer that holds it, and NACKed as `cancelled`.
    pub fn cancel(&self, id: MessageId) {
        self.shared.cancels.insert(id);
        self.broadcast(SignalKind::Cancel, || Control::Cancel(id));
    }

    /// REB: send a budget to every receiver.
    pub fn set_budget(&self, budget: Budget) {
        for inbox in &self.receiver_inboxes {
            let _ = inbox.send(0, Control::Budget(budget));
        }
    }

    fn broadcast(&self, kind: SignalKind, make: impl Fn() -> Control) {
        for (inbox, members) in &self.inboxes {
            for &(member, interests) in members {
                if interests.contains(kind) {
                    let _ = inbox.send(member, make());
                }
            }
        }
    }

    /// Whether node `name` takes CFG while it runs (its component asked for
    /// [`SignalKind::Config`]).
    pub fn accepts_config(&self, name: &str) -> bool {
        self.configurable.iter().any(|(n, ..)| n == name)
    }

    /// CFG: give node `name` new options (the YAML node's keys other than `type` and `to`,
    /// as JSON). The component applies them to the messages that follow; a component that
    /// refuses them reports an ERR and keeps its old options. Validate options first by
    /// compiling the new flow file (`FlowManager::reconfigure` does).
    ///
    /// # Errors
    /// [`FlowError::Config`] when there is no such node or its component does not take CFG.
    pub fn configure(&self, name: &str, options: serde_json::Value) -> Result<(), FlowError> {
        let Some((_, inbox, member)) = self.configurable.iter().find(|(n, ..)| n == name) else {
            let why = if self.nodes.iter().any(|(n, _)| n == name) {
                "its component does not take CFG while running"
            } else {
                "no such node runs"
            };
            return Err(FlowError::Config { line: 0, node: Some(name.to_string()), message: format!("cannot reconfigure it: {why}") });
        };
        inbox.send(*member, Control::Config(options)).map_err(|_| FlowError::Config {
            line: 0,
            node: Some(name.to_string()),
            message: "cannot reconfigure it: it has stopped".into(),
        })
    }

    /// Whether every receiver has finished (a bounded source ran out).
    pub fn receivers_done(&self) -> bool {
        self.receivers.iter().all(JoinHandle::is_finished)
    }

    /// Wait until every receiver has finished by itself, then shut down with `drain`.
    pub async fn finish(self, drain: Duration) -> FlowReport {
        while !self.receivers_done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.shutdown(drain).await
    }

    /// KIL: stop the receivers, let everything in flight drain through the flow, and wait
    /// at most `drain`. What is still held after it is NACKed as `shutdown` (retryable), so a
    /// source that waits for acknowledgements keeps it and nothing acknowledged is lost.
    pub async fn shutdown(mut self, drain: Duration) -> FlowReport {
        let deadline = Instant::now() + drain;
        let _ = self.stop.send(true);
        for inbox in &self.receiver_inboxes {
            let _ = inbox.send(0, Control::Kill { deadline });
        }
        self.broadcast(SignalKind::Kill, || Control::Kill { deadline });
        let mut drained = true;
        for r in std::mem::take(&mut self.receivers) {
            match tokio::time::timeout_at(deadline.into(), r).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => self.errors.lock().push(("receiver".into(), e.to_string())),
                Ok(Err(e)) => self.errors.lock().push(("receiver".into(), format!("receiver task failed: {e}"))),
                Err(_) => drained = false,
            }
        }
        *self.shared.kill_deadline.lock() = Some(deadline);
        // Wake the stages so they see the deadline.
        self.broadcast(SignalKind::Kill, || Control::Kill { deadline });
        for t in std::mem::take(&mut self.tasks) {
            let abort = t.abort_handle();
            match tokio::time::timeout_at((deadline + Duration::from_millis(50)).into(), t).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_panic() => self.errors.lock().push(("stage".into(), "a component panicked".into())),
                Ok(Err(_)) => {}
                Err(_) => {
                    abort.abort();
                    drained = false;
                }
            }
        }
        FlowReport { counts: self.counters(), errors: self.errors(), drained }
    }
}

impl Drop for FlowHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
        for r in &self.receivers {
            r.abort();
        }
    }
}
