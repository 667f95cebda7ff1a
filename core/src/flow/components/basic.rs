//! Stateless processors (`filter`, `sample`, `deadline`, `ack`) and the simplest exporters
//! (`debug`, `discard`).

use std::time::Duration;

use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::config::duration;
use super::super::message::{JoinPolicy, Message, Receipt, Signals};
use super::super::runtime::Cx;
use super::super::signal::Nack;
use super::super::{BoxFuture, Exporter, FlowError, Processor};
use super::predicate::Predicate;
use super::{Built, Component, Reconfigurable, options};
use crate::telem::TimeStamp;

fn processor(p: impl Processor) -> Built {
    Built {
        signature: Signature { role: Role::Processor, accepts: Signals::ANY, ports: vec![("out", PortType::Same)] },
        component: Component::Processor(Box::new(p)),
    }
}

fn exporter(e: impl Exporter) -> Built {
    Built {
        signature: Signature { role: Role::Exporter, accepts: Signals::ANY, ports: vec![] },
        component: Component::Exporter(Box::new(e)),
    }
}

// ---- filter (FP) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterOptions {
    /// Keep the rows where this holds.
    #[serde(rename = "where")]
    condition: Predicate,
}

struct Filter {
    condition: Predicate,
}

pub(super) fn filter(v: &serde_json::Value) -> Result<Built, String> {
    Ok(processor(Reconfigurable::build(v, |v| Ok(Filter { condition: options::<FilterOptions>(v)?.condition }))?))
}

impl Processor for Filter {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let mask = match self.condition.mask(&msg.data) {
            Ok(m) => m,
            Err(e) => {
                msg.take_receipt().nack(Nack::rejected(e.clone()));
                return Err(FlowError::Component(e));
            }
        };
        let kept = mask.true_count();
        if kept == msg.rows() {
            cx.emit(msg);
        } else if kept == 0 {
            // Filtered out on purpose: delivered, as far as the source is concerned.
            msg.take_receipt().ack();
        } else {
            msg.data = arrow_select::filter::filter_record_batch(&msg.data, &mask).map_err(|e| FlowError::Component(e.to_string()))?;
            cx.emit(msg);
        }
        Ok(())
    }
}

// ---- sample (SP) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleOptions {
    /// Keep every n-th message.
    every: Option<u64>,
    /// Keep each message with this probability.
    probability: Option<f64>,
    /// Seed of the probabilistic sampler (runs repeat exactly).
    #[serde(default)]
    seed: u64,
}

enum Sample {
    Every { n: u64, seen: u64 },
    Probability { p: f64, state: u64 },
}

pub(super) fn sample(v: &serde_json::Value) -> Result<Built, String> {
    Ok(processor(Reconfigurable::build(v, Sample::new)?))
}

impl Sample {
    /// A sampler from its options; a reconfigured one starts counting afresh.
    fn new(v: &serde_json::Value) -> Result<Sample, String> {
        let o: SampleOptions = options(v)?;
        Ok(match (o.every, o.probability) {
            (Some(0), _) => return Err("`every` must be at least 1".into()),
            (Some(n), None) => Sample::Every { n, seen: 0 },
            (None, Some(p)) if (0.0..=1.0).contains(&p) => Sample::Probability { p, state: o.seed ^ 0x9E37_79B9_7F4A_7C15 },
            (None, Some(p)) => return Err(format!("`probability: {p}` must be between 0 and 1")),
            _ => return Err("give one of `every: N` or `probability: P`".into()),
        })
    }
}

impl Processor for Sample {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let keep = match self {
            Sample::Every { n, seen } => {
                *seen += 1;
                (*seen - 1).is_multiple_of(*n)
            }
            Sample::Probability { p, state } => {
                // splitmix64: fast, seedable, good enough to sample with.
                *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                ((z >> 11) as f64 / (1u64 << 53) as f64) < *p
            }
        };
        if keep {
            cx.emit(msg);
        } else {
            msg.take_receipt().ack();
        }
        Ok(())
    }
}

// ---- deadline (DC) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadlineOptions {
    /// The deadline is this long after the message passes.
    #[serde(with = "duration")]
    after: Duration,
    /// Replace a deadline the message already has (default: keep the earlier one).
    #[serde(default)]
    replace: bool,
}

struct Deadline(DeadlineOptions);

pub(super) fn deadline(v: &serde_json::Value) -> Result<Built, String> {
    Ok(processor(Reconfigurable::build(v, |v| Ok(Deadline(options(v)?)))?))
}

impl Processor for Deadline {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        let d = TimeStamp(cx.now().0.saturating_add(self.0.after.as_nanos().min(i64::MAX as u128) as i64));
        msg.envelope.deadline = match msg.envelope.deadline {
            Some(old) if !self.0.replace => Some(old.min(d)),
            _ => Some(d),
        };
        cx.emit(msg);
        Ok(())
    }
}

// ---- ack (AK) ----

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum AckMode {
    Ingress,
    PreExport,
    Downstream,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Branches {
    All,
    Any,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckOptions {
    /// `ingress` / `pre_export`: acknowledge upstream as the message passes (where the
    /// component sits decides which); `downstream`: when what follows acknowledges.
    mode: AckMode,
    /// With `downstream` and several destinations: acknowledge when `all` branches did
    /// (default) or when `any` did (at-least-one).
    #[serde(default = "all")]
    branches: Branches,
}

fn all() -> Branches {
    Branches::All
}

struct Ack(AckOptions);

pub(super) fn ack(v: &serde_json::Value) -> Result<Built, String> {
    let o: AckOptions = options(v)?;
    if o.mode != AckMode::Downstream && matches!(o.branches, Branches::Any) {
        return Err("`branches: any` only applies to `mode: downstream`".into());
    }
    Ok(processor(Ack(o)))
}

impl Processor for Ack {
    fn process(&mut self, mut msg: Message, cx: &mut Cx<'_>) -> Result<(), FlowError> {
        match self.0.mode {
            AckMode::Ingress | AckMode::PreExport => msg.take_receipt().ack(),
            AckMode::Downstream => cx.set_join(match self.0.branches {
                Branches::All => JoinPolicy::All,
                Branches::Any => JoinPolicy::Any,
            }),
        }
        cx.emit(msg);
        Ok(())
    }
}

// ---- debug and discard exporters ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DebugOptions {
    /// Also print the line on standard output (default: the log only).
    #[serde(default)]
    stdout: bool,
}

struct Debug(DebugOptions);

pub(super) fn debug(v: &serde_json::Value) -> Result<Built, String> {
    Ok(exporter(Debug(options(v)?)))
}

impl Exporter for Debug {
    fn export(&mut self, msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>> {
        let cols: Vec<String> = msg.data.schema().fields().iter().map(|f| f.name().clone()).collect();
        let line = format!("{} {}: {} rows, {} bytes, columns {}", msg.id, msg.signal, msg.rows(), msg.byte_size(), cols.join(","));
        tracing::info!(target: "telemetron::flow::debug", key = &*crate::flow::node_key(), "{line}");
        if self.0.stdout {
            println!("{line}");
        }
        receipt.ack();
        Box::pin(async { Ok(()) })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NullOptions {}

struct Null;

pub(super) fn discard(v: &serde_json::Value) -> Result<Built, String> {
    let _: NullOptions = options(v)?;
    Ok(exporter(Null))
}

impl Exporter for Null {
    fn export(&mut self, _msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>> {
        receipt.ack();
        Box::pin(async { Ok(()) })
    }
}
