//! Running a compiled flow: one tokio task per stage (a fused chain of processors, an
//! exporter, or a receiver), bounded queues between stages (backpressure), and an unbounded
//! control inbox per stage through which ACK/NACK/CAN/REB/TMR/ERR/CFG/KIL arrive.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::compile::{CompiledFlow, StageKind};
use super::message::{Hop, JoinPolicy, JoinState, Message, MessageId};
use super::signal::{Budget, Control, Interests, Nack, SignalKind};
use super::{Exporter, FlowError, Processor, Receiver};
use crate::telem::TimeStamp;

/// The sending side of a stage's control inbox: `(member of the fused chain, signal)`.
#[derive(Clone)]
pub(crate) struct ControlInbox(mpsc::UnboundedSender<(usize, Control)>);

impl ControlInbox {
    /// Deliver, or give the signal back when the stage is gone.
    pub(crate) fn send(&self, member: usize, c: Control) -> Result<(), Control> {
        self.0.send((member, c)).map_err(|e| e.0.1)
    }
}

/// The receiving side of a stage's control inbox.
type ControlRx = mpsc::UnboundedReceiver<(usize, Control)>;

/// Counters of one node, readable while the flow runs ([`FlowHandle::counters`]).
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Messages given to the node.
    pub received: AtomicU64,
    /// Rows of those messages.
    pub rows: AtomicU64,
    /// Messages it emitted (or, for an exporter, exported).
    pub emitted: AtomicU64,
    /// ACKs it received for messages it subscribed to (receivers: acknowledged messages).
    pub acked: AtomicU64,
    /// NACKs it received for messages it subscribed to.
    pub nacked: AtomicU64,
    /// Messages NACKed in front of it because their deadline had passed.
    pub expired: AtomicU64,
    /// Messages dropped in front of it because they were cancelled.
    pub cancelled: AtomicU64,
    /// Errors it returned.
    pub errors: AtomicU64,
}

/// A snapshot of [`NodeCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// See [`NodeCounters::received`].
    pub received: u64,
    /// See [`NodeCounters::rows`].
    pub rows: u64,
    /// See [`NodeCounters::emitted`].
    pub emitted: u64,
    /// See [`NodeCounters::acked`].
    pub acked: u64,
    /// See [`NodeCounters::nacked`].
    pub nacked: u64,
    /// See [`NodeCounters::expired`].
    pub expired: u64,
    /// See [`NodeCounters::cancelled`].
    pub cancelled: u64,
    /// See [`NodeCounters::errors`].
    pub errors: u64,
}

impl NodeCounters {
    fn snapshot(&self) -> Counts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            received: l(&self.received),
            rows: l(&self.rows),
            emitted: l(&self.emitted),
            acked: l(&self.acked),
            nacked: l(&self.nacked),
            expired: l(&self.expired),
            cancelled: l(&self.cancelled),
            errors: l(&self.errors),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Cancelled message ids, checked wherever a message is dequeued. The check costs one
/// atomic load while nothing is cancelled.
#[derive(Default)]
pub(crate) struct Cancels {
    count: AtomicUsize,
    ids: Mutex<HashSet<MessageId>>,
}

impl Cancels {
    pub(crate) fn contains(&self, id: MessageId) -> bool {
        self.count.load(Ordering::Acquire) != 0 && self.ids.lock().contains(&id)
    }
    fn insert(&self, id: MessageId) {
        let mut ids = self.ids.lock();
        if ids.insert(id) {
            self.count.store(ids.len(), Ordering::Release);
        }
    }
}

/// Where a stage's output ports lead: per port, the queues of the stages it feeds.
#[derive(Clone, Default)]
pub(crate) struct Outputs {
    pub(crate) ports: Vec<Vec<mpsc::Sender<Message>>>,
    /// The sender ended its output: nothing more is delivered.
    closed: bool,
}

impl Outputs {
    /// Send `msg` out of `port`: to its one destination, or to each of several with a join
    /// on the reverse path. A port with no destination (an unconnected router branch) drops
    /// the message and ACKs it: nothing was asked of it.
    async fn route(&self, port: usize, mut msg: Message, join: JoinPolicy) {
        if self.closed {
            msg.take_receipt().nack(Nack::shutdown("sent after the receiver ended its output"));
            return;
        }
        let Some(dests) = self.ports.get(port).filter(|d| !d.is_empty()) else {
            msg.take_receipt().ack();
            return;
        };
        if dests.len() > 1 && msg.path.is_some() {
            let state = JoinState::new(join, dests.len());
            msg.path = Some(Arc::new(Hop::Join { state, next: msg.path.take() }));
        }
        let (last, rest) = dests.split_last().expect("non-empty");
        for d in rest {
            // A closed queue drops the message; its receipt NACKs as `shutdown`.
            let _ = d.send(msg.branch()).await;
        }
        let _ = last.send(msg).await;
    }
}

/// What a processor sees while it handles a message or a signal.
pub struct Cx<'a> {
    member: usize,
    inbox: &'a ControlInbox,
    emitted: &'a mut Vec<(usize, Message)>,
    timer: &'a mut Option<Instant>,
    join: &'a mut JoinPolicy,
    outstanding: &'a AtomicUsize,
    upstream: &'a [ControlInbox],
    now: TimeStamp,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx").field("member", &self.member).field("emitted", &self.emitted.len()).finish()
    }
}

impl Cx<'_> {
    /// Emit on the default port.
    pub fn emit(&mut self, msg: Message) {
        self.emitted.push((0, msg));
    }
    /// Emit on port `port` (the index in the component's signature).
    pub fn emit_to(&mut self, port: usize, msg: Message) {
        self.emitted.push((port, msg));
    }
    /// Be sent ACK/NACK for `msg` (with `token`) before it goes upstream.
    pub fn subscribe(&self, msg: &mut Message, token: u64) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        let next = msg.path.take();
        msg.path = Some(Arc::new(Hop::Node { inbox: self.inbox.clone(), member: self.member, token, next }));
    }
    /// Be sent TMR after `after` (replaces a timer already set).
    pub fn set_timer(&mut self, after: Duration) {
        *self.timer = Some(Instant::now() + after);
    }
    /// Cancel the timer.
    pub fn clear_timer(&mut self) {
        *self.timer = None;
    }
    /// How messages emitted to several destinations count as acknowledged (default: all).
    pub fn set_join(&mut self, policy: JoinPolicy) {
        *self.join = policy;
    }
    /// The wall-clock time the runtime handed the component this call.
    pub fn now(&self) -> TimeStamp {
        self.now
    }
    /// REB: send a budget to every receiver upstream of this component.
    pub fn send_budget(&self, budget: Budget) {
        for inbox in self.upstream {
            let _ = inbox.send(0, Control::Budget(budget));
        }
    }
}

/// A fused chain's member.
struct Member {
    name: Arc<str>,
    processor: Box<dyn Processor>,
    interests: Interests,
    timer: Option<Instant>,
    join: JoinPolicy,
    counters: Arc<NodeCounters>,
    /// The control inboxes of the receivers upstream (REB).
    upstream: Vec<ControlInbox>,
}

/// Shared state of a running flow.
pub(crate) struct Shared {
    pub(crate) cancels: Cancels,
    pub(crate) kill_deadline: Mutex<Option<Instant>>,
}

struct ProcessorStage {
    members: Vec<Member>,
    inbox: ControlInbox,
    ctrl_rx: mpsc::UnboundedReceiver<(usize, Control)>,
    data_rx: mpsc::Receiver<Message>,
    outputs: Outputs,
    outstanding: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    errors: mpsc::UnboundedSender<(String, String)>,
    /// Reused per message: the chain's pending work and a member's emitted messages.
    work: VecDeque<(usize, Message)>,
    emitted: Vec<(usize, Message)>,
}

impl ProcessorStage {
    async fn run(mut self) {
        let mut input_open = true;
        loop {
            let timer = self.members.iter().filter_map(|m| m.timer).min();
            let kill = *self.shared.kill_deadline.lock();
            tokio::select! {
                biased;
                Some((member, c)) = self.ctrl_rx.recv() => self.control(member, c).await,
                _ = sleep_until(timer), if timer.is_some() => self.fire_timers().await,
                m = self.data_rx.recv(), if input_open => match m {
                    Some(m) => self.message(0, m).await,
                    None => input_open = false,
                },
                _ = sleep_until(kill), if kill.is_some() => break,
            }
            let held: usize = self.members.iter().map(|m| m.processor.held()).sum();
            if !input_open && held == 0 && self.outstanding.load(Ordering::Relaxed) == 0 {
                break;
            }
        }
    }

    /// Run `msg` through the chain from member `first`, then route what the last emits.
    async fn message(&mut self, first: usize, msg: Message) {
        // One clock read per message entering the stage: a fused chain runs in microseconds.
        let now = TimeStamp::now();
        let mut work = std::mem::take(&mut self.work);
        let mut emitted = std::mem::take(&mut self.emitted);
        work.push_back((first, msg));
        while let Some((i, mut msg)) = work.pop_front() {
            let m = &mut self.members[i];
            if msg.expired(now) {
                bump(&m.counters.expired);
                msg.take_receipt().nack(Nack::deadline(format!("deadline passed before `{}`", m.name)));
                continue;
            }
            if self.shared.cancels.contains(msg.id) {
                bump(&m.counters.cancelled);
                msg.take_receipt().nack(Nack::cancelled(format!("cancelled before `{}`", m.name)));
                continue;
            }
            bump(&m.counters.received);
            m.counters.rows.fetch_add(msg.rows() as u64, Ordering::Relaxed);
            let result = {
                let mut cx = Cx {
                    member: i,
                    inbox: &self.inbox,
                    emitted: &mut emitted,
                    timer: &mut m.timer,
                    join: &mut m.join,
                    outstanding: &self.outstanding,
                    upstream: &m.upstream,
                    now,
                };
                m.processor.process(msg, &mut cx)
            };
            if let Err(e) = result {
                bump(&m.counters.errors);
                let _ = self.errors.send((m.name.to_string(), e.to_string()));
            }
            self.forward(i, &mut emitted, &mut work).await;
        }
        self.work = work;
        self.emitted = emitted;
    }

    /// Hand what member `i` emitted to the next member, or out of the stage.
    async fn forward(&mut self, i: usize, emitted: &mut Vec<(usize, Message)>, work: &mut VecDeque<(usize, Message)>) {
        let m = &self.members[i];
        m.counters.emitted.fetch_add(emitted.len() as u64, Ordering::Relaxed);
        let join = m.join;
        if i + 1 < self.members.len() {
            // Inside a fused chain every member has the one port `out` to the next.
            work.extend(emitted.drain(..).map(|(_, msg)| (i + 1, msg)));
        } else {
            for (port, msg) in emitted.drain(..) {
                self.outputs.route(port, msg, join).await;
            }
        }
    }

    async fn control(&mut self, member: usize, c: Control) {
        if matches!(c, Control::Ack { .. } | Control::Nack { .. }) {
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
            let counters = &self.members[member].counters;
            bump(if matches!(c, Control::Ack { .. }) { &counters.acked } else { &counters.nacked });
        } else if !self.members[member].interests.contains(c.kind()) {
            return;
        }
        let mut emitted = Vec::new();
        let m = &mut self.members[member];
        let result = {
            let mut cx = Cx {
                member,
                inbox: &self.inbox,
                emitted: &mut emitted,
                timer: &mut m.timer,
                join: &mut m.join,
                outstanding: &self.outstanding,
                upstream: &m.upstream,
                now: TimeStamp::now(),
            };
            m.processor.control(c, &mut cx)
        };
        if let Err(e) = result {
            bump(&m.counters.errors);
            let _ = self.errors.send((m.name.to_string(), e.to_string()));
        }
        let mut work = VecDeque::new();
        self.forward(member, &mut emitted, &mut work).await;
        while let Some((i, msg)) = work.pop_front() {
            self.message(i, msg).await;
        }
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        for i in 0..self.members.len() {
            if self.members[i].timer.is_some_and(|t| t <= now) {
                self.members[i].timer = None;
                self.control(i, Control::Timer).await;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

struct ExporterStage {
    name: Arc<str>,
    exporter: Box<dyn Exporter>,
    data_rx: mpsc::Receiver<Message>,
    counters: Arc<NodeCounters>,
    shared: Arc<Shared>,
    errors: mpsc::UnboundedSender<(String, String)>,
}

impl ExporterStage {
    async fn run(mut self) {
        let every = self.exporter.tick_every();
        let mut next_tick = every.map(|e| Instant::now() + e);
        loop {
            let kill = *self.shared.kill_deadline.lock();
            let msg = tokio::select! {
                m = self.data_rx.recv() => m,
                _ = sleep_until(next_tick), if next_tick.is_some() => {
                    if let Err(e) = self.exporter.tick().await {
                        bump(&self.counters.errors);
                        let _ = self.errors.send((self.name.to_string(), e.to_string()));
                    }
                    next_tick = every.map(|e| Instant::now() + e);
                    continue;
                }
                _ = sleep_until(kill), if kill.is_some() => None,
            };
            let Some(mut msg) = msg else { break };
            if msg.expired(TimeStamp::now()) {
                bump(&self.counters.expired);
                msg.take_receipt().nack(Nack::deadline(format!("deadline passed before exporter `{}`", self.name)));
                continue;
            }
            if self.shared.cancels.contains(msg.id) {
                bump(&self.counters.cancelled);
                msg.take_receipt().nack(Nack::cancelled(format!("cancelled before exporter `{}`", self.name)));
                continue;
            }
            bump(&self.counters.received);
            self.counters.rows.fetch_add(msg.rows() as u64, Ordering::Relaxed);
            let receipt = msg.take_receipt();
            match self.exporter.export(msg, receipt).await {
                Ok(()) => bump(&self.counters.emitted),
                Err(e) => {
                    bump(&self.counters.errors);
                    let _ = self.errors.send((self.name.to_string(), e.to_string()));
                }
            }
        }
        if let Err(e) = self.exporter.flush().await {
            bump(&self.counters.errors);
            let _ = self.errors.send((self.name.to_string(), e.to_string()));
        }
    }
}

/// What a receiver uses to send messages into the flow and to hear its control signals.
pub struct ReceiverCx {
    name: Arc<str>,
    outputs: Outputs,
    inbox: ControlInbox,
    ctrl_rx: mpsc::UnboundedReceiver<(usize, Control)>,
    pending: VecDeque<Control>,
    budget: Budget,
    last_send: Option<Instant>,
    stop: watch::Receiver<bool>,
    outstanding: Arc<AtomicUsize>,
    counters: Arc<NodeCounters>,
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

/// A running flow.
pub struct FlowHandle {
    name: String,
    nodes: Vec<(String, Arc<NodeCounters>)>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    receivers: Vec<JoinHandle<Result<(), FlowError>>>,
    inboxes: Vec<(ControlInbox, Vec<(usize, Interests)>)>,
    receiver_inboxes: Vec<ControlInbox>,
    errors: Arc<Mutex<Vec<(String, String)>>>,
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
    /// Errors components returned, `(node, error)`, oldest first (at most 1,000 kept).
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

/// Start a compiled flow on the current tokio runtime.
pub(crate) fn start(flow: CompiledFlow) -> FlowHandle {
    let shared = Arc::new(Shared { cancels: Cancels::default(), kill_deadline: Mutex::new(None) });
    let (stop, stop_rx) = watch::channel(false);
    let (err_tx, mut err_rx) = mpsc::unbounded_channel::<(String, String)>();
    let errors = Arc::new(Mutex::new(Vec::new()));
    {
        let errors = errors.clone();
        tokio::spawn(async move {
            while let Some((node, e)) = err_rx.recv().await {
                tracing::warn!(flow.node = %node, error = %e, "flow component failed");
                let mut errors = errors.lock();
                if errors.len() < 1000 {
                    errors.push((node, e));
                }
            }
        });
    }
    let queue = flow.queue;
    // Queues first: every stage that has an input gets one; outputs refer to them.
    let mut senders: Vec<Option<mpsc::Sender<Message>>> = Vec::new();
    let mut receivers_rx: Vec<Option<mpsc::Receiver<Message>>> = Vec::new();
    for s in &flow.stages {
        if matches!(s.kind, StageKind::Receiver(_)) {
            senders.push(None);
            receivers_rx.push(None);
        } else {
            let (tx, rx) = mpsc::channel(queue);
            senders.push(Some(tx));
            receivers_rx.push(Some(rx));
        }
    }
    let mut nodes = Vec::new();
    let mut handle_tasks = Vec::new();
    let mut receiver_tasks = Vec::new();
    let mut inboxes = Vec::new();
    let mut receiver_inboxes = Vec::new();
    // Control inboxes first: a member's REB goes to the receivers upstream of it.
    let (inbox_of, mut ctrl_rxs): (Vec<ControlInbox>, Vec<Option<ControlRx>>) = flow
        .stages
        .iter()
        .map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            (ControlInbox(tx), Some(rx))
        })
        .unzip();
    for (i, stage) in flow.stages.into_iter().enumerate() {
        let upstream: Vec<Vec<ControlInbox>> = stage.upstream.iter().map(|rs| rs.iter().map(|&r| inbox_of[r].clone()).collect()).collect();
        let outputs = Outputs {
            closed: false,
            ports: stage
                .ports
                .iter()
                .map(|dests| dests.iter().map(|&d| senders[d].clone().expect("destinations have queues")).collect())
                .collect(),
        };
        let inbox = inbox_of[i].clone();
        let ctrl_rx = ctrl_rxs[i].take().expect("one receiver per stage");
        match stage.kind {
            StageKind::Receiver(r) => {
                let counters = Arc::new(NodeCounters::default());
                nodes.push((stage.names[0].to_string(), counters.clone()));
                receiver_inboxes.push(inbox.clone());
                let cx = ReceiverCx {
                    name: stage.names[0].clone(),
                    outputs,
                    inbox,
                    ctrl_rx,
                    pending: VecDeque::new(),
                    budget: Budget::OPEN,
                    last_send: None,
                    stop: stop_rx.clone(),
                    outstanding: Arc::new(AtomicUsize::new(0)),
                    counters,
                };
                receiver_tasks.push(tokio::spawn(run_receiver(r, cx)));
            }
            StageKind::Processors(ps) => {
                let members: Vec<Member> = ps
                    .into_iter()
                    .zip(&stage.names)
                    .zip(upstream)
                    .map(|((p, name), upstream)| {
                        let counters = Arc::new(NodeCounters::default());
                        nodes.push((name.to_string(), counters.clone()));
                        Member {
                            name: name.clone(),
                            interests: p.interests(),
                            processor: p,
                            timer: None,
                            join: JoinPolicy::All,
                            counters,
                            upstream,
                        }
                    })
                    .collect();
                inboxes.push((inbox.clone(), members.iter().enumerate().map(|(i, m)| (i, m.interests)).collect()));
                let st = ProcessorStage {
                    members,
                    inbox,
                    ctrl_rx,
                    data_rx: receivers_rx[i].take().expect("processor stages have a queue"),
                    outputs,
                    outstanding: Arc::new(AtomicUsize::new(0)),
                    shared: shared.clone(),
                    errors: err_tx.clone(),
                    work: VecDeque::new(),
                    emitted: Vec::new(),
                };
                handle_tasks.push(tokio::spawn(st.run()));
            }
            StageKind::Exporter(e) => {
                let counters = Arc::new(NodeCounters::default());
                nodes.push((stage.names[0].to_string(), counters.clone()));
                let st = ExporterStage {
                    name: stage.names[0].clone(),
                    exporter: e,
                    data_rx: receivers_rx[i].take().expect("exporters have a queue"),
                    counters,
                    shared: shared.clone(),
                    errors: err_tx.clone(),
                };
                handle_tasks.push(tokio::spawn(st.run()));
            }
        }
    }
    drop(senders);
    FlowHandle { name: flow.name, nodes, shared, stop, tasks: handle_tasks, receivers: receiver_tasks, inboxes, receiver_inboxes, errors }
}

async fn run_receiver(r: Box<dyn Receiver>, cx: ReceiverCx) -> Result<(), FlowError> {
    r.run(cx).await
}
