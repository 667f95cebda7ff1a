//! `generator`: a synthetic receiver for tests and benchmarks.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampNanosecondArray};
use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::config::duration;
use super::super::message::{Message, SignalType, Signals};
use super::super::runtime::ReceiverCx;
use super::super::signal::{Control, Interests, SignalKind};
use super::super::{BoxFuture, FlowError, Receiver, schema};
use super::{Built, Component, options};
use crate::telem::{self, DataType, Series, TimeStamp};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// `logs`, `metrics` or `frames`.
    #[serde(default = "logs")]
    signal: String,
    /// Messages to send; none: until the flow stops.
    count: Option<u64>,
    /// Rows per message.
    #[serde(default = "one")]
    rows: usize,
    /// Approximate bytes of a log record (its body is padded to it).
    #[serde(default = "record_bytes")]
    record_bytes: usize,
    /// Messages per second; none: as fast as the flow takes them.
    rate: Option<f64>,
    /// A deadline header this far after each message is made.
    #[serde(default, with = "duration::option")]
    deadline: Option<Duration>,
    /// Subscribe to each message's ACK/NACK (and wait for them before finishing).
    #[serde(default = "yes")]
    ack: bool,
    /// Frames: number of f64 data channels (`ch_0`, ...) besides the index `time`.
    #[serde(default = "channels")]
    channels: usize,
    /// Append the sequence number of each acknowledged message to this file, and on start
    /// continue after the highest one in it: a restarted generator sends again what was
    /// not acknowledged, as a real producer does (message `seq` always has the same data).
    ack_log: Option<std::path::PathBuf>,
}

fn logs() -> String {
    "logs".into()
}
fn one() -> usize {
    1
}
fn record_bytes() -> usize {
    300
}
fn yes() -> bool {
    true
}
fn channels() -> usize {
    4
}

pub(super) fn build(v: &serde_json::Value) -> Result<Built, String> {
    let g = Generator::new(v)?;
    Ok(Built {
        signature: Signature { role: Role::Receiver, accepts: Signals::NONE, ports: vec![("out", PortType::Fixed(Signals::of(g.signal)))] },
        component: Component::Receiver(Box::new(g)),
    })
}

struct Generator {
    o: Options,
    signal: SignalType,
}

impl Generator {
    fn new(v: &serde_json::Value) -> Result<Generator, String> {
        let o: Options = options(v)?;
        let signal = match SignalType::parse(&o.signal) {
            Some(s @ (SignalType::Logs | SignalType::Metrics | SignalType::Frames)) => s,
            _ => return Err(format!("`signal: {}`: the generator makes logs, metrics or frames", o.signal)),
        };
        if o.rows == 0 {
            return Err("`rows` must be at least 1".into());
        }
        if o.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err("`rate` must be a positive number of messages per second".into());
        }
        Ok(Generator { o, signal })
    }

    /// CFG: `rate`, `count`, `rows`, `record_bytes` and `deadline` change while running;
    /// what changes the messages' schema or the acknowledgement bookkeeping does not.
    fn reconfigure(&mut self, v: &serde_json::Value) -> Result<(), String> {
        let new = Generator::new(v)?;
        if new.signal != self.signal || new.o.ack != self.o.ack || new.o.ack_log != self.o.ack_log || new.o.channels != self.o.channels {
            return Err("a running generator changes `rate`, `count`, `rows`, `record_bytes` and `deadline`; `signal`, `ack`, `ack_log` and `channels` need the flow restarted".into());
        }
        *self = new;
        Ok(())
    }

    fn interval(&self) -> Option<tokio::time::Interval> {
        self.o.rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)))
    }

    /// The columns that do not change between messages (built once, shared by every
    /// message: the generator measures the flow, not itself).
    fn fixed_columns(&self) -> Vec<ArrayRef> {
        let rows = self.o.rows;
        match self.signal {
            SignalType::Logs => {
                let sev: Int32Array = (0..rows).map(|i| [9, 13, 17, 5][i % 4]).collect();
                let text: StringArray = (0..rows).map(|i| Some(["INFO", "WARN", "ERROR", "DEBUG"][i % 4])).collect();
                let pad = self.o.record_bytes.saturating_sub(80).max(8);
                let body: StringArray =
                    (0..rows).map(|i| Some(format!("valve {i} moved to position {}; {}", i * 7 % 100, "x".repeat(pad)))).collect();
                let attrs: StringArray = (0..rows).map(|i| Some(format!("{{\"stand\":\"A\",\"seq\":{i}}}"))).collect();
                vec![Arc::new(sev), Arc::new(text), Arc::new(body), Arc::new(attrs)]
            }
            SignalType::Metrics => {
                let name: StringArray = (0..rows).map(|i| Some(format!("pt_{}", i % 8))).collect();
                let unit: StringArray = (0..rows).map(|_| Some("bar")).collect();
                let attrs: StringArray = (0..rows).map(|_| Some("{}")).collect();
                let kind: StringArray = (0..rows).map(|_| Some("gauge")).collect();
                vec![Arc::new(name), Arc::new(unit), Arc::new(attrs), Arc::new(kind)]
            }
            _ => Vec::new(),
        }
    }

    fn message(&self, seq: u64, fixed: &[ArrayRef]) -> Result<Message, FlowError> {
        let rows = self.o.rows as i64;
        let t0 = TimeStamp::now().0;
        let times: Vec<i64> = (0..rows).map(|i| t0 + i).collect();
        let err = |e: arrow_schema::ArrowError| FlowError::Component(format!("generator: {e}"));
        let data = match self.signal {
            SignalType::Logs => {
                let t = Arc::new(TimestampNanosecondArray::from(times).with_timezone(schema::utc()));
                let mut cols: Vec<ArrayRef> = vec![t];
                cols.extend(fixed.iter().cloned());
                RecordBatch::try_new(schema::logs(), cols).map_err(err)?
            }
            SignalType::Metrics => {
                let t = Arc::new(TimestampNanosecondArray::from(times).with_timezone(schema::utc()));
                let values: Float64Array = (0..rows).map(|i| ((seq as i64 * rows + i) as f64 * 0.01).sin()).collect();
                let cols: Vec<ArrayRef> = vec![t, fixed[0].clone(), fixed[1].clone(), Arc::new(values), fixed[2].clone(), fixed[3].clone()];
                RecordBatch::try_new(schema::metrics(), cols).map_err(err)?
            }
            _ => {
                // Frames: an index `time` and f64 channels, as the engine's series.
                let base = seq as i64 * rows;
                let idx = Series::timestamps((0..rows).map(|i| (base + i) * 1_000_000).collect());
                let mut cols = vec![(
                    "time".to_string(),
                    DataType::Timestamp,
                    telem::arrow::series_array(&idx).map_err(|e| FlowError::Component(e.to_string()))?,
                )];
                for c in 0..self.o.channels {
                    let s = Series::from_vec((0..rows).map(|i| ((base + i) as f64 * 0.001 + c as f64).sin()).collect::<Vec<f64>>());
                    cols.push((
                        format!("ch_{c}"),
                        DataType::F64,
                        telem::arrow::series_array(&s).map_err(|e| FlowError::Component(e.to_string()))?,
                    ));
                }
                telem::arrow::batch(cols).map_err(|e| FlowError::Component(e.to_string()))?
            }
        };
        let mut msg = Message::new(self.signal, data);
        if let Some(d) = self.o.deadline {
            msg.envelope.deadline = Some(TimeStamp(t0 + d.as_nanos() as i64));
        }
        Ok(msg)
    }
}

impl Receiver for Generator {
    fn interests(&self) -> Interests {
        Interests::NONE.with(SignalKind::Config)
    }

    fn run(self: Box<Self>, mut cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        let mut g = *self;
        Box::pin(async move {
            let mut fixed = g.fixed_columns();
            let mut interval = g.interval();
            let mut log = AckLog::open(g.o.ack_log.as_deref())?;
            let mut seq = log.as_ref().map_or(0, |l| l.next);
            while g.o.count.is_none_or(|c| seq < c) && !cx.stopping() {
                while let Some(c) = cx.try_control() {
                    if let Control::Config(v) = &c {
                        match g.reconfigure(v) {
                            Ok(()) => (fixed, interval) = (g.fixed_columns(), g.interval()),
                            Err(e) => cx.report_error(format!("CFG refused: {e}")),
                        }
                    }
                    AckLog::record(&mut log, &c)?;
                }
                if let Some(i) = &mut interval {
                    i.tick().await;
                }
                let mut msg = g.message(seq, &fixed)?;
                if g.o.ack {
                    cx.subscribe(&mut msg, seq);
                }
                seq += 1;
                // A refusal (over budget) is counted as a NACK; the generator goes on.
                let _ = cx.send(msg).await;
            }
            // Nothing more to send: let what follows drain and finish, and wait for the
            // outcome of everything sent (the flow's drain deadline bounds it).
            cx.end_of_input();
            while cx.outstanding() > 0 {
                match cx.next_control().await {
                    None => break,
                    Some(Control::Kill { deadline }) if std::time::Instant::now() >= deadline => break,
                    Some(c) => AckLog::record(&mut log, &c)?,
                }
            }
            Ok(())
        })
    }
}

/// The generator's record of acknowledged sequence numbers (`ack_log`).
struct AckLog {
    file: std::fs::File,
    /// One past the highest sequence recorded.
    next: u64,
}

impl AckLog {
    fn open(path: Option<&std::path::Path>) -> Result<Option<AckLog>, FlowError> {
        let Some(path) = path else { return Ok(None) };
        let io = |source| FlowError::Io { context: format!("generator ack_log {}", path.display()), source };
        let next = match std::fs::read_to_string(path) {
            Ok(text) => text.lines().filter_map(|l| l.trim().parse::<u64>().ok()).max().map_or(0, |m| m + 1),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(e)),
        };
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        Ok(Some(AckLog { file, next }))
    }

    fn record(log: &mut Option<AckLog>, c: &Control) -> Result<(), FlowError> {
        use std::io::Write;
        if let (Some(l), Control::Ack { token, .. }) = (log, c) {
            writeln!(l.file, "{token}").map_err(|source| FlowError::Io { context: "generator ack_log".into(), source })?;
        }
        Ok(())
    }
}
