//! Running a compiled flow: one tokio task per stage (a fused chain of processors, an
//! exporter, or a receiver), bounded queues between stages (backpressure), and an unbounded
//! control inbox per stage through which ACK/NACK/CAN/REB/TMR/ERR/CFG/KIL arrive.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::compile::{CompiledFlow, StageKind};
use super::config::Overflow;
use super::message::{Hop, JoinPolicy, JoinState, Message, MessageId};
use super::signal::{Budget, Control, Interests, Nack, SignalKind};
use super::{Exporter, FlowError, Processor, Receiver};
use crate::telem::TimeStamp;

mod handle;
mod receiver;

pub use handle::{FlowHandle, FlowReport};
pub use receiver::ReceiverCx;

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
    /// Messages NACKed in front of it because its input queue was full (`overflow: nack`).
    pub dropped: AtomicU64,
    /// Errors it returned.
    pub errors: AtomicU64,
    /// Its input queue (a receiver has none), read for [`Counts::queued`]; weak, so a
    /// snapshot never keeps a stopped flow's queue open.
    queue: std::sync::OnceLock<mpsc::WeakSender<Message>>,
}

/// A snapshot of [`NodeCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// See [`NodeCounters::dropped`].
    #[serde(default)]
    pub dropped: u64,
    /// See [`NodeCounters::errors`].
    pub errors: u64,
    /// Messages waiting in its input queue now (a fused chain's queue counts for its first
    /// node; receivers have none).
    #[serde(default)]
    pub queued: u64,
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
            dropped: l(&self.dropped),
            errors: l(&self.errors),
            queued: self.queue.get().and_then(mpsc::WeakSender::upgrade).map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as u64),
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
    pub(crate) ports: Vec<Vec<Dest>>,
    /// The sender ended its output: nothing more is delivered.
    closed: bool,
}

/// The queue in front of a stage, as a sender sees it.
#[derive(Clone)]
pub(crate) struct Dest {
    tx: mpsc::Sender<Message>,
    /// `overflow: nack`: the stage's first node and its counters (a full queue NACKs).
    nack_when_full: Option<(Arc<str>, Arc<NodeCounters>)>,
}

impl Dest {
    /// Queue `msg`: wait for room, or with `overflow: nack` NACK it when the queue is full.
    /// A closed queue drops the message; its receipt NACKs as `shutdown`.
    async fn send(&self, msg: Message) {
        match &self.nack_when_full {
            None => {
                let _ = self.tx.send(msg).await;
            }
            Some((name, counters)) => {
                if let Err(mpsc::error::TrySendError::Full(mut msg)) = self.tx.try_send(msg) {
                    bump(&counters.dropped);
                    msg.take_receipt().nack(Nack::unavailable(format!("the input queue of `{name}` is full (overflow: nack)")));
                }
            }
        }
    }
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
            d.send(msg.branch()).await;
        }
        last.send(msg).await;
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
            if !admit(&mut msg, now, &self.shared, &m.counters, &m.name) {
                continue;
            }
            call(m, i, &self.inbox, &self.outstanding, &self.errors, &mut emitted, now, |p, cx| p.process(msg, cx));
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
        call(m, member, &self.inbox, &self.outstanding, &self.errors, &mut emitted, TimeStamp::now(), |p, cx| p.control(c, cx));
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

/// Call member `i`'s processor with its context; an error is counted and reported (ERR).
#[allow(clippy::too_many_arguments)]
fn call(
    m: &mut Member,
    i: usize,
    inbox: &ControlInbox,
    outstanding: &AtomicUsize,
    errors: &mpsc::UnboundedSender<(String, String)>,
    emitted: &mut Vec<(usize, Message)>,
    now: TimeStamp,
    f: impl FnOnce(&mut dyn Processor, &mut Cx<'_>) -> Result<(), FlowError>,
) {
    let mut cx = Cx { member: i, inbox, emitted, timer: &mut m.timer, join: &mut m.join, outstanding, upstream: &m.upstream, now };
    if let Err(e) = f(m.processor.as_mut(), &mut cx) {
        bump(&m.counters.errors);
        let _ = errors.send((m.name.to_string(), e.to_string()));
    }
}

/// The check every task makes as a message enters a component: past its deadline, or
/// cancelled, it is NACKed and counted (`false`); otherwise it is counted as received.
fn admit(msg: &mut Message, now: TimeStamp, shared: &Shared, counters: &NodeCounters, node: &str) -> bool {
    if msg.expired(now) {
        bump(&counters.expired);
        msg.take_receipt().nack(Nack::deadline(format!("deadline passed before `{node}`")));
        return false;
    }
    if shared.cancels.contains(msg.id) {
        bump(&counters.cancelled);
        msg.take_receipt().nack(Nack::cancelled(format!("cancelled before `{node}`")));
        return false;
    }
    bump(&counters.received);
    counters.rows.fetch_add(msg.rows() as u64, Ordering::Relaxed);
    true
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
            if !admit(&mut msg, TimeStamp::now(), &self.shared, &self.counters, &self.name) {
                continue;
            }
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

/// Start a compiled flow on the current tokio runtime.
pub(crate) fn start(flow: CompiledFlow) -> FlowHandle {
    let shared = Arc::new(Shared { cancels: Cancels::default(), kill_deadline: Mutex::new(None) });
    let (stop, stop_rx) = watch::channel(false);
    let (err_tx, mut err_rx) = mpsc::unbounded_channel::<(String, String)>();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let flow_name = flow.name.clone();
    {
        let errors = errors.clone();
        let flow_name = flow_name.clone();
        tokio::spawn(async move {
            while let Some((node, e)) = err_rx.recv().await {
                tracing::warn!(key = super::key(&flow_name, Some(&node)).as_str(), error = %e, "flow component failed");
                // The latest 1,000: in a long run the recent errors are the ones to act on.
                let mut errors = errors.lock();
                if errors.len() >= 1000 {
                    errors.remove(0);
                }
                errors.push((node, e));
            }
        });
    }
    let queue = flow.queue;
    // Each stage's first node's counters, made first: senders count what `overflow: nack`
    // drops in front of it.
    let first_counters: Vec<Arc<NodeCounters>> = flow.stages.iter().map(|_| Arc::new(NodeCounters::default())).collect();
    let nack_when_full: Vec<Option<(Arc<str>, Arc<NodeCounters>)>> = flow
        .stages
        .iter()
        .zip(&first_counters)
        .map(|(s, c)| (s.overflow == Overflow::Nack).then(|| (s.names[0].clone(), c.clone())))
        .collect();
    // Queues first: every stage that has an input gets one; outputs refer to them.
    let mut senders: Vec<Option<mpsc::Sender<Message>>> = Vec::new();
    let mut receivers_rx: Vec<Option<mpsc::Receiver<Message>>> = Vec::new();
    for (s, counters) in flow.stages.iter().zip(&first_counters) {
        if matches!(s.kind, StageKind::Receiver(_)) {
            senders.push(None);
            receivers_rx.push(None);
        } else {
            let (tx, rx) = mpsc::channel(queue);
            let _ = counters.queue.set(tx.downgrade());
            senders.push(Some(tx));
            receivers_rx.push(Some(rx));
        }
    }
    let mut nodes = Vec::new();
    let mut handle_tasks = Vec::new();
    let mut receiver_tasks = Vec::new();
    let mut inboxes = Vec::new();
    let mut receiver_inboxes = Vec::new();
    let mut configurable = Vec::new();
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
                .map(|dests| {
                    dests
                        .iter()
                        .map(|&d| Dest {
                            tx: senders[d].clone().expect("destinations have queues"),
                            nack_when_full: nack_when_full[d].clone(),
                        })
                        .collect()
                })
                .collect(),
        };
        let inbox = inbox_of[i].clone();
        let ctrl_rx = ctrl_rxs[i].take().expect("one receiver per stage");
        match stage.kind {
            StageKind::Receiver(r) => {
                let counters = first_counters[i].clone();
                nodes.push((stage.names[0].to_string(), counters.clone()));
                receiver_inboxes.push(inbox.clone());
                if r.interests().contains(SignalKind::Config) {
                    configurable.push((stage.names[0].to_string(), inbox.clone(), 0));
                }
                let cx = ReceiverCx {
                    key: super::key(&flow_name, Some(&stage.names[0])).into(),
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
                    errors: err_tx.clone(),
                };
                receiver_tasks.push(tokio::spawn(run_receiver(r, cx)));
            }
            StageKind::Processors(ps) => {
                let members: Vec<Member> = ps
                    .into_iter()
                    .zip(&stage.names)
                    .zip(upstream)
                    .enumerate()
                    .map(|(m, ((p, name), upstream))| {
                        let counters = if m == 0 { first_counters[i].clone() } else { Arc::new(NodeCounters::default()) };
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
                for (i, m) in members.iter().enumerate() {
                    if m.interests.contains(SignalKind::Config) {
                        configurable.push((m.name.to_string(), inbox.clone(), i));
                    }
                }
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
                handle_tasks.push(tokio::spawn(super::in_node(&flow.name, &stage.names[0], st.run())));
            }
            StageKind::Exporter(e) => {
                let counters = first_counters[i].clone();
                nodes.push((stage.names[0].to_string(), counters.clone()));
                let st = ExporterStage {
                    name: stage.names[0].clone(),
                    exporter: e,
                    data_rx: receivers_rx[i].take().expect("exporters have a queue"),
                    counters,
                    shared: shared.clone(),
                    errors: err_tx.clone(),
                };
                handle_tasks.push(tokio::spawn(super::in_node(&flow.name, &stage.names[0], st.run())));
            }
        }
    }
    drop(senders);
    FlowHandle {
        name: flow.name,
        nodes,
        shared,
        stop,
        tasks: handle_tasks,
        receivers: receiver_tasks,
        inboxes,
        receiver_inboxes,
        errors,
        configurable,
    }
}

async fn run_receiver(r: Box<dyn Receiver>, cx: ReceiverCx) -> Result<(), FlowError> {
    r.run(cx).await
}
