//! `batch` (BP): merges messages into batches of at most `max_rows` rows, emitted when full,
//! when `timeout` has passed since the first message of the batch (TMR), or at shutdown
//! (KIL). The batch is a new message; its ACK/NACK settles every message in it.

use std::time::Duration;

use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::config::duration;
use super::super::message::{Message, Receipt, Signals};
use super::super::runtime::Cx;
use super::super::signal::{Control, Interests, Nack, SignalKind};
use super::super::{FlowError, Processor};
use super::{Built, Component, Merged, options};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Emit when the batch holds at least this many rows.
    #[serde(default = "max_rows")]
    max_rows: usize,
    /// Emit at the latest this long after the batch's first message arrived.
    #[serde(default = "timeout", with = "duration")]
    timeout: Duration,
}

fn max_rows() -> usize {
    8192
}
fn timeout() -> Duration {
    Duration::from_millis(100)
}

pub(super) fn build(v: &serde_json::Value) -> Result<Built, String> {
    let o: Options = options(v)?;
    if o.max_rows == 0 {
        return Err("`max_rows` must be at least 1".into());
    }
    Ok(Built {
        signature: Signature { role: Role::Processor, accepts: Signals::ANY, ports: vec![("out", PortType::Same)] },
        component: Component::Processor(Box::new(Batch { o, pending: Vec::new(), rows: 0, merged: Merged::default() })),
    })
}

struct Batch {
    o: Options,
    /// The messages of the batch being filled, each with its upstream receipt.
    pending: Vec<(Message, Receipt)>,
    rows: usize,
    /// Emitted batches waiting for their ACK/NACK, with the receipts of their messages.
    merged: Merged,
}

impl Batch {
    fn flush(&mut self, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        cx.clear_timer();
        self.rows = 0;
        let mut pending = std::mem::take(&mut self.pending);
        if pending.len() == 1 {
            let (msg, receipt) = pending.pop().expect("one");
            cx.emit(msg.with_receipt(receipt));
            return Ok(());
        }
        let Some((first, _)) = pending.first() else { return Ok(()) };
        let schema = first.data.schema();
        let data = match arrow_select::concat::concat_batches(&schema, pending.iter().map(|(m, _)| &m.data)) {
            Ok(d) => d,
            Err(e) => {
                for (_, r) in pending {
                    r.nack(Nack::rejected(format!("batch: {e}")));
                }
                return Err(FlowError::Component(format!("batch: {e}")));
            }
        };
        let mut msg = Message::new(first.signal, data);
        msg.envelope = first.envelope.clone();
        msg.envelope.deadline = pending.iter().filter_map(|(m, _)| m.envelope.deadline).min();
        self.merged.attach(&mut msg, pending.into_iter().map(|(_, r)| r), cx);
        cx.emit(msg);
        Ok(())
    }
}

impl Processor for Batch {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        if let Some((first, _)) = self.pending.first()
            && (first.signal != msg.signal || first.data.schema() != msg.data.schema())
        {
            self.flush(cx)?;
        }
        if self.pending.is_empty() {
            cx.set_timer(self.o.timeout);
        }
        self.rows += msg.rows();
        let receipt = msg.take_receipt();
        self.pending.push((msg, receipt));
        if self.rows >= self.o.max_rows {
            self.flush(cx)?;
        }
        Ok(())
    }

    fn control(&mut self, signal: Control, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        if self.merged.settle(&signal) {
            return Ok(());
        }
        match signal {
            Control::Timer | Control::Kill { .. } => self.flush(cx)?,
            Control::Cancel(id) => {
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending).into_iter().partition(|(m, _)| m.id == id);
                self.pending = kept;
                self.rows = self.pending.iter().map(|(m, _)| m.rows()).sum();
                for (_, r) in gone {
                    r.nack(Nack::cancelled("cancelled while waiting in a batch"));
                }
                if self.pending.is_empty() {
                    cx.clear_timer();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn interests(&self) -> Interests {
        Interests::NONE.with(SignalKind::Timer).with(SignalKind::Kill).with(SignalKind::Cancel)
    }

    fn held(&self) -> usize {
        self.pending.len()
    }
}
