//! What travels on a flow's streams: [`Message`] = `{id, envelope, data}`, and the path its
//! acknowledgement takes back.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arrow_array::RecordBatch;

use super::signal::{Control, Nack};
use crate::telem::TimeStamp;

/// The kind of data a stream carries. A stream's type is a set of these ([`Signals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalType {
    /// Channel frames: one column per channel, the index included (`docs/dataflow.md` §2).
    Frames,
    /// OpenTelemetry metrics (one row per data point).
    Metrics,
    /// OpenTelemetry log records.
    Logs,
    /// OpenTelemetry spans.
    Traces,
    /// OpenTelemetry events (named, timestamped records with attributes).
    Events,
}

impl SignalType {
    /// Every signal type, in bit order.
    pub const ALL: [SignalType; 5] = [Self::Frames, Self::Metrics, Self::Logs, Self::Traces, Self::Events];

    /// The configuration name: `frames`, `metrics`, `logs`, `traces`, `events`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Frames => "frames",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Traces => "traces",
            Self::Events => "events",
        }
    }

    /// Parse a configuration name.
    pub fn parse(s: &str) -> Option<SignalType> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of signal types: the type of a stream, or what a component accepts or produces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Signals(u8);

impl Signals {
    /// No signal.
    pub const NONE: Signals = Signals(0);
    /// Any signal (`A` in the design document).
    pub const ANY: Signals = Signals(0b1_1111);

    /// The set holding one type.
    pub const fn of(t: SignalType) -> Signals {
        Signals(t.bit())
    }
    /// This set plus `t`.
    pub const fn with(self, t: SignalType) -> Signals {
        Signals(self.0 | t.bit())
    }
    /// Whether `t` is in the set.
    pub const fn contains(self, t: SignalType) -> bool {
        self.0 & t.bit() != 0
    }
    /// Whether every type of `self` is in `other`.
    pub const fn is_subset(self, other: Signals) -> bool {
        self.0 & !other.0 == 0
    }
    /// The types in both.
    pub const fn intersect(self, other: Signals) -> Signals {
        Signals(self.0 & other.0)
    }
    /// The types in either.
    pub const fn union(self, other: Signals) -> Signals {
        Signals(self.0 | other.0)
    }
    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The raw bits (bit `t as u8` for each type `t`).
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// The set from raw bits (bits above the last type are ignored).
    pub const fn from_bits(bits: u8) -> Signals {
        Signals(bits & Self::ANY.0)
    }
    /// The types in the set.
    pub fn iter(self) -> impl Iterator<Item = SignalType> {
        SignalType::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Signals {
    /// `any`, `none`, or the names joined by `|` (`metrics|logs`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::ANY {
            return f.write_str("any");
        }
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<_> = self.iter().map(SignalType::name).collect();
        f.write_str(&names.join("|"))
    }
}

/// A message's identity within a flow process. Receivers assign it; a processor that builds
/// a new message from others (a batch) assigns a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

impl MessageId {
    /// A fresh id, unique within this process.
    pub fn next() -> MessageId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        MessageId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The headers of a message: they describe it without interpreting its data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// After this wall-clock instant the message is NACKed (`deadline_exceeded`) by the next
    /// component that sees it and is never exported.
    pub deadline: Option<TimeStamp>,
    /// W3C trace context (`traceparent` header value), carried unchanged.
    pub traceparent: Option<String>,
    /// The tenant or principal the data belongs to.
    pub tenant: Option<String>,
    /// Free key-values.
    pub headers: BTreeMap<String, String>,
}

/// One message: `{id, envelope, data}`, plus the path its acknowledgement will take.
///
/// A message that is dropped while someone waits for its acknowledgement NACKs itself as
/// `shutdown` (retryable), so no source waits for ever for a message that was lost. Copies
/// for a new purpose are made with [`Message::detached`], which carries no receipt.
#[derive(Debug)]
pub struct Message {
    /// Identity within the flow.
    pub id: MessageId,
    /// Headers.
    pub envelope: Envelope,
    /// What the data is (the columns follow that signal's schema, `flow::schema`).
    pub signal: SignalType,
    /// The data: an Arrow record batch whose buffers are shared, never copied, between the
    /// components it passes through.
    pub data: RecordBatch,
    pub(crate) path: Path,
}

impl Message {
    /// A new message with a fresh id, no headers and no one waiting for its acknowledgement.
    pub fn new(signal: SignalType, data: RecordBatch) -> Message {
        Message { id: MessageId::next(), envelope: Envelope::default(), signal, data, path: None }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.num_rows()
    }

    /// Bytes held by the data's buffers.
    pub fn byte_size(&self) -> usize {
        self.data.get_array_memory_size()
    }

    /// Whether the deadline header has passed at `now`.
    pub fn expired(&self, now: TimeStamp) -> bool {
        self.envelope.deadline.is_some_and(|d| now >= d)
    }

    /// The receipt that acknowledges this message upstream. Taking it leaves the message
    /// with no one waiting (a component that forwards the message forwards the receipt with
    /// it; one that consumes the message acknowledges the receipt).
    pub fn take_receipt(&mut self) -> Receipt {
        Receipt { id: self.id, path: self.path.take() }
    }

    /// Attach a receipt: whoever settles this message settles `receipt`.
    pub fn with_receipt(mut self, mut receipt: Receipt) -> Message {
        self.path = receipt.path.take();
        self
    }

    /// Split into one message per batch in `parts`, with this id and headers, all settling
    /// this message's receipt together: ACK when every part is acknowledged, NACK at the
    /// first part NACKed.
    pub fn split(mut self, parts: Vec<RecordBatch>) -> Vec<Message> {
        if parts.len() > 1 && self.path.is_some() {
            let state = JoinState::new(JoinPolicy::All, parts.len());
            self.path = Some(Arc::new(Hop::Join { state, next: self.path.take() }));
        }
        let path = self.path.take();
        parts
            .into_iter()
            .map(|data| Message { id: self.id, envelope: self.envelope.clone(), signal: self.signal, data, path: path.clone() })
            .collect()
    }

    /// A copy that settles the same path (one branch of a fan-out whose join is on it).
    pub(crate) fn branch(&self) -> Message {
        Message { id: self.id, envelope: self.envelope.clone(), signal: self.signal, data: self.data.clone(), path: self.path.clone() }
    }

    /// A copy of this message for a new purpose: same id, headers and data, no receipt.
    pub fn detached(&self) -> Message {
        Message { id: self.id, envelope: self.envelope.clone(), signal: self.signal, data: self.data.clone(), path: None }
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            settle(self.id, Some(path), Some(Nack::shutdown("the message was dropped before it was delivered")));
        }
    }
}

/// A link of the reverse path: the components to notify, nearest first.
pub(crate) type Path = Option<Arc<Hop>>;

pub(crate) enum Hop {
    /// A component that subscribed to this message's ACK/NACK.
    Node { inbox: super::runtime::ControlInbox, member: usize, token: u64, next: Path },
    /// A fan-out: the message went to `n` branches; settle upstream once, per `policy`.
    Join { state: Arc<JoinState>, next: Path },
}

impl fmt::Debug for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Node { member, token, .. } => write!(f, "Node({member}, {token})"),
            Hop::Join { state, .. } => write!(f, "Join({:?}, {})", state.policy, state.remaining.load(Ordering::Relaxed)),
        }
    }
}

/// When a fanned-out message counts as acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinPolicy {
    /// Every branch must ACK; the first NACK settles it as NACKed.
    #[default]
    All,
    /// The first ACK settles it (at-least-one); NACKed when every branch NACKed.
    Any,
}

pub(crate) struct JoinState {
    policy: JoinPolicy,
    remaining: AtomicUsize,
    settled: AtomicBool,
}

impl JoinState {
    pub(crate) fn new(policy: JoinPolicy, branches: usize) -> Arc<JoinState> {
        Arc::new(JoinState { policy, remaining: AtomicUsize::new(branches), settled: AtomicBool::new(false) })
    }

    /// Record one branch's outcome; `Some(outcome)` when the join is settled by it.
    fn arrive(&self, ack: bool) -> Option<bool> {
        let last = self.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        let decisive = match self.policy {
            JoinPolicy::All => !ack || last,
            JoinPolicy::Any => ack || last,
        };
        (decisive && !self.settled.swap(true, Ordering::AcqRel)).then_some(ack)
    }
}

/// The right, and the duty, to settle a message upstream: ACK it or NACK it exactly once.
/// Settling walks the reverse path: fan-out joins are resolved in place, and the first
/// component that subscribed is sent the signal (it may stop it or pass it on). Components
/// that did not subscribe are never visited. A receipt dropped unsettled NACKs as
/// `shutdown` (retryable), so a lost task never leaves a source waiting for ever.
#[derive(Debug)]
pub struct Receipt {
    /// The message it settles (as the component that subscribed knew it).
    pub id: MessageId,
    path: Path,
}

impl Receipt {
    /// A receipt that no one waits for (settling it does nothing).
    pub fn none(id: MessageId) -> Receipt {
        Receipt { id, path: None }
    }

    /// Whether anyone is waiting for this receipt.
    pub fn is_awaited(&self) -> bool {
        self.path.is_some()
    }

    /// Acknowledge.
    pub fn ack(mut self) {
        let path = self.path.take();
        settle(self.id, path, None);
    }

    /// Negative acknowledgement.
    pub fn nack(mut self, nack: Nack) {
        let path = self.path.take();
        settle(self.id, path, Some(nack));
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            settle(self.id, Some(path), Some(Nack::shutdown("the message was dropped before it was settled")));
        }
    }
}

fn settle(id: MessageId, mut path: Path, nack: Option<Nack>) {
    while let Some(hop) = path {
        match &*hop {
            Hop::Join { state, next } => match state.arrive(nack.is_none()) {
                Some(_) => path = next.clone(),
                None => return,
            },
            Hop::Node { inbox, member, token, next } => {
                let receipt = Receipt { id, path: next.clone() };
                let signal = match &nack {
                    None => Control::Ack { token: *token, receipt },
                    Some(nack) => Control::Nack { token: *token, receipt, nack: nack.clone() },
                };
                match inbox.send(*member, signal) {
                    Ok(()) => return,
                    // The component's task has ended: the signal passes through it.
                    Err(Control::Ack { mut receipt, .. } | Control::Nack { mut receipt, .. }) => path = receipt.path.take(),
                    Err(_) => return,
                }
            }
        }
    }
}
