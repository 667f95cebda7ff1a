//! The receivers' side of a running flow: [`ReceiverCx`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::{ControlInbox, NodeCounters, Outputs, bump};
use crate::flow::message::{Hop, JoinPolicy, Message};
use crate::flow::signal::{Budget, Control, Nack};

/// What a receiver uses to send messages into the flow and to hear its control signals.
pub struct ReceiverCx {
    pub(super) name: Arc<str>,
    pub(super) outputs: Outputs,
    pub(super) inbox: ControlInbox,
    pub(super) ctrl_rx: mpsc::UnboundedReceiver<(usize, Control)>,
    pub(super) pending: VecDeque<Control>,
    pub(super) budget: Budget,
    pub(super) last_send: Option<Instant>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) outstanding: Arc<AtomicUsize>,
    pub(super) counters: Arc<NodeCounters>,
    pub(super) errors: mpsc::UnboundedSender<(String, String)>,
    /// `flow/<flow>/<node>`: its key in the experiment tree.
    pub(super) key: Box<str>,
}

impl std::fmt::Debug for ReceiverCx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverCx").field("name", &self.name).field("budget", &self.budget).finish()
    }
}

impl ReceiverCx {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's key in the experiment tree, `flow/<flow>/<node>`: give it to log events
    /// (`tracing::info!(key = cx.key(), ...)`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the flow asked receivers to stop accepting (KIL). A receiver then stops
    /// reading its source, waits for the outcome of what it sent ([`ReceiverCx::outstanding`])
    /// and returns.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Wait until the flow asks receivers to stop.
    pub async fn stopped(&mut self) {
        let _ = self.stop.wait_for(|s| *s).await;
    }

    /// ERR: report an error the receiver recovered from (a refused CFG, a source that
    /// failed once); it is counted and appears in the flow's errors.
    pub fn report_error(&self, error: impl std::fmt::Display) {
        bump(&self.counters.errors);
        let _ = self.errors.send((self.name.to_string(), error.to_string()));
    }

    /// Messages sent with [`ReceiverCx::subscribe`] whose ACK/NACK has not arrived yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// The budget last received from an admission controller (REB).
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The receiver will send nothing more: its output closes, so the components after it
    /// see the end of their input once it is drained (a batch emits, a file exporter rolls
    /// its file) while the receiver waits for the ACK/NACK of what it sent. A message sent
    /// after this is NACKed as `shutdown`.
    pub fn end_of_input(&mut self) {
        self.outputs.ports.iter_mut().for_each(Vec::clear);
        self.outputs.closed = true;
    }

    /// Be sent ACK/NACK for `msg` (with `token`).
    pub fn subscribe(&self, msg: &mut Message, token: u64) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        let next = msg.path.take();
        msg.path = Some(Arc::new(Hop::Node { inbox: self.inbox.clone(), member: 0, token, next }));
    }

    /// Send a message into the flow. Waits while the queue is full (backpressure) and while
    /// the budget is closed, paces to the budget's rate, and refuses a message larger than
    /// the budget allows (it is NACKed as `rejected` and `Err` says why). Signals that arrive
    /// meanwhile are kept for [`ReceiverCx::next_control`].
    pub async fn send(&mut self, mut msg: Message) -> Result<(), Nack> {
        loop {
            match self.budget {
                Budget::Closed => {
                    let c = self.recv().await;
                    match c {
                        Some(c) => self.keep(c),
                        None => return Err(Nack::shutdown("the flow stopped")),
                    }
                }
                Budget::Limited { max_message_bytes, max_rate } => {
                    if let Some(max) = max_message_bytes
                        && msg.byte_size() as u64 > max
                    {
                        let nack = Nack::rejected(format!("{} bytes is over the admission budget of {max}", msg.byte_size()));
                        msg.take_receipt().nack(nack.clone());
                        return Err(nack);
                    }
                    if let (Some(rate), Some(last)) = (max_rate, self.last_send)
                        && rate > 0.0
                    {
                        let next = last + Duration::from_secs_f64(1.0 / rate);
                        if next > Instant::now() {
                            tokio::time::sleep_until(next.into()).await;
                            self.drain_ready();
                            continue;
                        }
                    }
                    break;
                }
            }
        }
        self.last_send = Some(Instant::now());
        bump(&self.counters.emitted);
        self.outputs.route(0, msg, JoinPolicy::All).await;
        Ok(())
    }

    /// The next control signal for this receiver (ACK/NACK of what it subscribed to, REB,
    /// KIL, CFG), without waiting. REB also updates [`ReceiverCx::budget`].
    pub fn try_control(&mut self) -> Option<Control> {
        self.drain_ready();
        self.hand_out()
    }

    /// Wait for the next control signal; `None` when the flow is gone.
    pub async fn next_control(&mut self) -> Option<Control> {
        if let Some(c) = self.try_control() {
            return Some(c);
        }
        let c = self.recv().await?;
        self.keep(c);
        self.hand_out()
    }

    /// The oldest kept signal; an ACK/NACK stops counting as outstanding only now, when the
    /// receiver sees it.
    fn hand_out(&mut self) -> Option<Control> {
        let c = self.pending.pop_front()?;
        match &c {
            Control::Ack { .. } => {
                self.outstanding.fetch_sub(1, Ordering::Relaxed);
                bump(&self.counters.acked);
            }
            Control::Nack { .. } => {
                self.outstanding.fetch_sub(1, Ordering::Relaxed);
                bump(&self.counters.nacked);
            }
            _ => {}
        }
        Some(c)
    }

    async fn recv(&mut self) -> Option<Control> {
        self.ctrl_rx.recv().await.map(|(_, c)| c)
    }

    fn drain_ready(&mut self) {
        while let Ok((_, c)) = self.ctrl_rx.try_recv() {
            self.keep(c);
        }
    }

    fn keep(&mut self, c: Control) {
        if let Control::Budget(b) = &c {
            self.budget = *b;
        }
        self.pending.push_back(c);
    }
}
