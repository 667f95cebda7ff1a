//! Control signals: the eight of the design document and their exact payloads
//! (`docs/dataflow.md` §3 gives each one's semantics).

use std::fmt;
use std::time::Instant;

use super::message::{MessageId, Receipt};

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NackReason {
    /// Its deadline passed before it could be exported.
    DeadlineExceeded,
    /// The destination could not be reached or did not answer.
    Unavailable,
    /// The destination or a component refused it (bad data, over budget, filtered by policy).
    Rejected,
    /// The flow shut down before it was delivered.
    Shutdown,
    /// It was cancelled (CAN).
    Cancelled,
}

impl NackReason {
    /// The reason's name in logs, counters and the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Unavailable => "unavailable",
            Self::Rejected => "rejected",
            Self::Shutdown => "shutdown",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A negative acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// Why.
    pub reason: NackReason,
    /// Whether sending the same message again may succeed (a retry processor retries only
    /// these). Deadline, cancellation and rejection are permanent.
    pub retryable: bool,
    /// For people.
    pub message: String,
}

impl Nack {
    /// The deadline passed (permanent).
    pub fn deadline(message: impl Into<String>) -> Nack {
        Nack { reason: NackReason::DeadlineExceeded, retryable: false, message: message.into() }
    }
    /// The destination is unavailable (retryable).
    pub fn unavailable(message: impl Into<String>) -> Nack {
        Nack { reason: NackReason::Unavailable, retryable: true, message: message.into() }
    }
    /// Refused (permanent).
    pub fn rejected(message: impl Into<String>) -> Nack {
        Nack { reason: NackReason::Rejected, retryable: false, message: message.into() }
    }
    /// The flow is shutting down (retryable: a restarted flow or another route may deliver it).
    pub fn shutdown(message: impl Into<String>) -> Nack {
        Nack { reason: NackReason::Shutdown, retryable: true, message: message.into() }
    }
    /// Cancelled (permanent).
    pub fn cancelled(message: impl Into<String>) -> Nack {
        Nack { reason: NackReason::Cancelled, retryable: false, message: message.into() }
    }
}

impl fmt::Display for Nack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retryable { "retryable" } else { "permanent" };
        write!(f, "{} ({kind}): {}", self.reason.name(), self.message)
    }
}

/// A resource budget (REB): how much a receiver may accept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Zero: accept nothing until a new budget arrives.
    Closed,
    /// Accept within these limits (`None`: no limit of that kind).
    Limited {
        /// Largest message, in bytes of Arrow buffers.
        max_message_bytes: Option<u64>,
        /// Messages per second.
        max_rate: Option<f64>,
    },
}

impl Budget {
    /// No limit.
    pub const OPEN: Budget = Budget::Limited { max_message_bytes: None, max_rate: None };
}

/// A control signal, as a component receives it.
#[derive(Debug)]
pub enum Control {
    /// ACK: a message this component subscribed to (with `token`) was delivered. Settle
    /// `receipt` to pass it on upstream, or keep it to stop it here.
    Ack {
        /// What the component passed when it subscribed.
        token: u64,
        /// The upstream receipt of the message.
        receipt: Receipt,
    },
    /// NACK: a message this component subscribed to was not delivered.
    Nack {
        /// What the component passed when it subscribed.
        token: u64,
        /// The upstream receipt of the message.
        receipt: Receipt,
        /// Why.
        nack: Nack,
    },
    /// CAN: the message is cancelled; drop it from every queue, batch and retry buffer and
    /// NACK it as `cancelled`.
    Cancel(MessageId),
    /// REB: the admission controller's budget for the receivers upstream of it.
    Budget(Budget),
    /// TMR: a timer the component set has expired.
    Timer,
    /// ERR: a component downstream failed (its name and the error).
    Error {
        /// The component.
        node: String,
        /// What failed.
        error: String,
    },
    /// CFG: new options for the component (the YAML node's options, as JSON).
    Config(serde_json::Value),
    /// KIL: shut down; emit what is held and finish before `deadline`.
    Kill {
        /// When the flow stops waiting.
        deadline: Instant,
    },
}

impl Control {
    /// Which kind of signal this is.
    pub fn kind(&self) -> SignalKind {
        match self {
            Control::Ack { .. } => SignalKind::Ack,
            Control::Nack { .. } => SignalKind::Nack,
            Control::Cancel(_) => SignalKind::Cancel,
            Control::Budget(_) => SignalKind::Budget,
            Control::Timer => SignalKind::Timer,
            Control::Error { .. } => SignalKind::Error,
            Control::Config(_) => SignalKind::Config,
            Control::Kill { .. } => SignalKind::Kill,
        }
    }
}

/// The eight control signals, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// ACK.
    Ack,
    /// NACK.
    Nack,
    /// CAN.
    Cancel,
    /// REB.
    Budget,
    /// TMR.
    Timer,
    /// ERR.
    Error,
    /// CFG.
    Config,
    /// KIL.
    Kill,
}

/// The control signals a component wants delivered. ACK/NACK are delivered only for
/// messages the component subscribed to; the others only when in this set, so a component
/// with no interest is never visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interests(u8);

impl Interests {
    /// Nothing.
    pub const NONE: Interests = Interests(0);

    /// This set plus `k`.
    pub const fn with(self, k: SignalKind) -> Interests {
        Interests(self.0 | 1 << k as u8)
    }
    /// Whether `k` is in the set.
    pub const fn contains(self, k: SignalKind) -> bool {
        self.0 & 1 << k as u8 != 0
    }
}
