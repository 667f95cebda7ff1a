//! `admission` (AC): watches what it has let through and not yet seen settled (messages and
//! bytes in flight: the queues, batches and exporters after it) and sends REB to the
//! receivers upstream: a closed budget above its limits, the open budget (with `max_rate`)
//! once in-flight work falls under `resume_at` of them.

use std::collections::HashMap;

use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::message::{Message, Receipt, Signals};
use super::super::runtime::Cx;
use super::super::signal::{Budget, Control, Interests, SignalKind};
use super::super::{FlowError, Processor};
use super::{Built, Component, options};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Messages let through and not yet settled, at most.
    max_in_flight: Option<u64>,
    /// Bytes of Arrow buffers let through and not yet settled, at most (memory).
    max_bytes: Option<u64>,
    /// Messages per second the receivers may send while the budget is open.
    max_rate: Option<f64>,
    /// Reopen when in-flight work is under this fraction of the limits (default 0.5).
    #[serde(default = "half")]
    resume_at: f64,
}

fn half() -> f64 {
    0.5
}

/// The options, checked (at build and at CFG).
fn parse(v: &serde_json::Value) -> Result<Options, String> {
    let o: Options = options(v)?;
    if o.max_in_flight.is_none() && o.max_bytes.is_none() && o.max_rate.is_none() {
        return Err("give at least one of `max_in_flight`, `max_bytes`, `max_rate`".into());
    }
    if o.max_in_flight == Some(0) || o.max_bytes == Some(0) {
        return Err("limits must be at least 1 (a closed budget for ever lets nothing in)".into());
    }
    if o.max_rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err("`max_rate` must be a positive number of messages per second".into());
    }
    if !(o.resume_at > 0.0 && o.resume_at <= 1.0) {
        return Err("`resume_at` is a fraction in (0, 1]".into());
    }
    Ok(o)
}

pub(super) fn build(v: &serde_json::Value) -> Result<Built, String> {
    let o = parse(v)?;
    Ok(Built {
        signature: Signature { role: Role::Processor, accepts: Signals::ANY, ports: vec![("out", PortType::Same)] },
        component: Component::Processor(Box::new(Admission {
            o,
            in_flight: HashMap::new(),
            bytes: 0,
            closed: false,
            announced: false,
            next: 0,
        })),
    })
}

struct Admission {
    o: Options,
    /// token -> (bytes, upstream receipt)
    in_flight: HashMap<u64, (u64, Receipt)>,
    bytes: u64,
    closed: bool,
    /// Whether the open budget (with `max_rate`) has been sent once.
    announced: bool,
    next: u64,
}

impl Admission {
    fn over(&self, fraction: f64) -> bool {
        let n = self.in_flight.len() as f64;
        self.o.max_in_flight.is_some_and(|m| n >= m as f64 * fraction)
            || self.o.max_bytes.is_some_and(|m| self.bytes as f64 >= m as f64 * fraction)
    }

    fn open_budget(&self) -> Budget {
        Budget::Limited { max_message_bytes: self.o.max_bytes, max_rate: self.o.max_rate }
    }

    fn update(&mut self, cx: &mut Cx<'_>) {
        if !self.announced {
            self.announced = true;
            if self.o.max_rate.is_some() || self.o.max_bytes.is_some() {
                cx.send_budget(self.open_budget());
            }
        }
        if !self.closed && self.over(1.0) {
            self.closed = true;
            cx.send_budget(Budget::Closed);
        } else if self.closed && !self.over(self.o.resume_at) {
            self.closed = false;
            cx.send_budget(self.open_budget());
        }
    }
}

impl Processor for Admission {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let bytes = msg.byte_size() as u64;
        let receipt = msg.take_receipt();
        let token = self.next;
        self.next += 1;
        cx.subscribe(&mut msg, token);
        self.in_flight.insert(token, (bytes, receipt));
        self.bytes += bytes;
        cx.emit(msg);
        self.update(cx);
        Ok(())
    }

    fn control(&mut self, signal: Control, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let settled = match signal {
            Control::Ack { token, .. } => self.in_flight.remove(&token).map(|(b, r)| {
                r.ack();
                b
            }),
            Control::Nack { token, nack, .. } => self.in_flight.remove(&token).map(|(b, r)| {
                r.nack(nack);
                b
            }),
            // New limits apply at once: over them the budget closes; under them the open
            // budget, with the new rate, is announced again.
            Control::Config(v) => {
                self.o = parse(&v).map_err(|m| FlowError::Config { line: 0, node: None, message: format!("CFG refused: {m}") })?;
                self.announced = true;
                if self.over(1.0) {
                    if !self.closed {
                        self.closed = true;
                        cx.send_budget(Budget::Closed);
                    }
                } else {
                    self.closed = false;
                    cx.send_budget(self.open_budget());
                }
                None
            }
            _ => None,
        };
        if let Some(b) = settled {
            self.bytes -= b;
            self.update(cx);
        }
        Ok(())
    }

    fn interests(&self) -> Interests {
        Interests::NONE.with(SignalKind::Config)
    }
}
