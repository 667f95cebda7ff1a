//! `retry` (RY): keeps a copy of each message until it is acknowledged, and resends it
//! after a retryable NACK, up to `attempts` sends in all, waiting `initial * multiplier^k`
//! (at most `max`) with +/- `jitter` between them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::config::duration;
use super::super::message::{Message, Receipt, Signals};
use super::super::runtime::Cx;
use super::super::signal::{Control, Interests, Nack, SignalKind};
use super::super::{FlowError, Processor};
use super::{Built, Component, options};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Sends in all, the first included.
    #[serde(default = "attempts")]
    attempts: u32,
    /// Wait before the first resend.
    #[serde(default = "initial", with = "duration")]
    initial: Duration,
    /// Longest wait.
    #[serde(default = "max", with = "duration")]
    max: Duration,
    /// Growth of the wait per attempt.
    #[serde(default = "multiplier")]
    multiplier: f64,
    /// Random spread of each wait, as a fraction (0.2: +/- 20 %).
    #[serde(default = "jitter")]
    jitter: f64,
}

fn attempts() -> u32 {
    5
}
fn initial() -> Duration {
    Duration::from_millis(10)
}
fn max() -> Duration {
    Duration::from_secs(5)
}
fn multiplier() -> f64 {
    2.0
}
fn jitter() -> f64 {
    0.2
}

pub(super) fn build(v: &serde_json::Value) -> Result<Built, String> {
    let o: Options = options(v)?;
    if o.attempts == 0 {
        return Err("`attempts` counts the first send too: at least 1".into());
    }
    if !(o.multiplier >= 1.0 && o.multiplier.is_finite()) {
        return Err("`multiplier` must be at least 1".into());
    }
    if !(0.0..1.0).contains(&o.jitter) {
        return Err("`jitter` is a fraction from 0 up to (not including) 1".into());
    }
    Ok(Built {
        signature: Signature { role: Role::Processor, accepts: Signals::ANY, ports: vec![("out", PortType::Same)] },
        component: Component::Processor(Box::new(Retry {
            o,
            entries: HashMap::new(),
            next_token: 0,
            rng: 0x2545_F491_4F6C_DD1D,
            stopping: false,
        })),
    })
}

struct Entry {
    copy: Message,
    receipt: Receipt,
    sends: u32,
    /// When the next resend is due (None: a send is in flight).
    due: Option<Instant>,
}

struct Retry {
    o: Options,
    entries: HashMap<u64, Entry>,
    next_token: u64,
    rng: u64,
    stopping: bool,
}

impl Retry {
    fn backoff(&mut self, sends: u32) -> Duration {
        let base = self.o.initial.as_secs_f64() * self.o.multiplier.powi(sends.saturating_sub(1) as i32);
        let base = base.min(self.o.max.as_secs_f64());
        // xorshift64*: jitter needs spread, not cryptography.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let u = (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(base * (1.0 + self.o.jitter * (2.0 * u - 1.0)))
    }

    fn rearm(&self, cx: &mut Cx<'_>) {
        match self.entries.values().filter_map(|e| e.due).min() {
            Some(at) => cx.set_timer(at.saturating_duration_since(Instant::now())),
            None => cx.clear_timer(),
        }
    }

    fn send(&mut self, token: u64, cx: &mut Cx<'_>) {
        let e = self.entries.get_mut(&token).expect("entry exists");
        e.sends += 1;
        e.due = None;
        let mut msg = e.copy.detached();
        cx.subscribe(&mut msg, token);
        cx.emit(msg);
    }
}

impl Processor for Retry {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let receipt = msg.take_receipt();
        let token = self.next_token;
        self.next_token += 1;
        self.entries.insert(token, Entry { copy: msg, receipt, sends: 0, due: None });
        self.send(token, cx);
        Ok(())
    }

    fn control(&mut self, signal: Control, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        match signal {
            Control::Ack { token, .. } => {
                if let Some(e) = self.entries.remove(&token) {
                    e.receipt.ack();
                }
            }
            Control::Nack { token, nack, .. } => {
                let Some(e) = self.entries.get(&token) else { return Ok(()) };
                if e.due.is_some() {
                    return Ok(()); // a late outcome of a send already given up on
                }
                let (sends, deadline) = (e.sends, e.copy.envelope.deadline);
                let retry = nack.retryable && sends < self.o.attempts && !self.stopping;
                let wait = if retry { Some(self.backoff(sends)) } else { None };
                let now = cx.now();
                let in_time = |wait: Duration| deadline.is_none_or(|d| now.0.saturating_add(wait.as_nanos() as i64) < d.0);
                match wait {
                    Some(w) if in_time(w) => {
                        self.entries.get_mut(&token).expect("present").due = Some(Instant::now() + w);
                        self.rearm(cx);
                    }
                    Some(_) => {
                        let e = self.entries.remove(&token).expect("present");
                        e.receipt.nack(Nack::deadline(format!("the next retry would pass the deadline (last: {nack})")));
                    }
                    None => {
                        let e = self.entries.remove(&token).expect("present");
                        let mut nack = nack;
                        if nack.retryable && e.sends >= self.o.attempts {
                            nack.message = format!("gave up after {} sends: {}", e.sends, nack.message);
                        }
                        e.receipt.nack(nack);
                    }
                }
            }
            Control::Timer => {
                let now = Instant::now();
                let due: Vec<u64> = self.entries.iter().filter(|(_, e)| e.due.is_some_and(|d| d <= now)).map(|(t, _)| *t).collect();
                for token in due {
                    if self.entries[&token].copy.expired(cx.now()) {
                        let e = self.entries.remove(&token).expect("present");
                        e.receipt.nack(Nack::deadline("deadline passed while waiting to retry"));
                    } else {
                        self.send(token, cx);
                    }
                }
                self.rearm(cx);
            }
            Control::Cancel(id) => {
                let gone: Vec<u64> = self.entries.iter().filter(|(_, e)| e.copy.id == id).map(|(t, _)| *t).collect();
                for token in gone {
                    let e = self.entries.remove(&token).expect("present");
                    e.receipt.nack(Nack::cancelled("cancelled while held for retry"));
                }
                self.rearm(cx);
            }
            Control::Kill { .. } => {
                // No new attempts; what waits for one goes back upstream now (retryable).
                self.stopping = true;
                let waiting: Vec<u64> = self.entries.iter().filter(|(_, e)| e.due.is_some()).map(|(t, _)| *t).collect();
                for token in waiting {
                    let e = self.entries.remove(&token).expect("present");
                    e.receipt.nack(Nack::shutdown("the flow stopped while the message waited to be retried"));
                }
                cx.clear_timer();
            }
            _ => {}
        }
        Ok(())
    }

    fn interests(&self) -> Interests {
        Interests::NONE.with(SignalKind::Timer).with(SignalKind::Cancel).with(SignalKind::Kill)
    }

    fn held(&self) -> usize {
        self.entries.values().filter(|e| e.due.is_some()).count()
    }
}
