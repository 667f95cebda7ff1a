//! `queue_exporter` and `queue_receiver`: a durable queue on the engine itself (the role
//! the design document gives Kafka).
//!
//! A queue `name` in an engine directory is four channels:
//!
//! | channel | type | holds |
//! |---|---|---|
//! | `<name>.seq` | index | the message's sequence number (as nanoseconds: 1, 2, 3 ...) |
//! | `<name>.msg` | bytes | the record batch, Arrow IPC stream format |
//! | `<name>.meta` | json | `{"signal": ..., "deadline": ..., "traceparent": ..., "tenant": ..., "headers": {...}}` |
//! | `<name>.acked` (index `<name>.acked.seq`) | u64 | the receiver's low watermark: every sequence below it is settled |
//!
//! The exporter appends and commits, then ACKs (with `durability: commit`, after the
//! fdatasync; with `interval`, the engine syncs within a second or 32 MB). The receiver
//! reads from the watermark, sends each message into its flow subscribed to its ACK/NACK,
//! records the watermark as acknowledgements arrive, and after a crash or a restart replays
//! everything from the last recorded watermark: delivery is **at least once** (a message
//! acknowledged downstream after the last recorded watermark is sent again). Permanent NACKs
//! are counted and skipped; retryable ones are sent again after `redeliver`. Settled
//! messages are deleted from the queue as the watermark advances.
//!
//! Reading copies nothing: each message's bytes are a slice of the engine's mapping of its
//! segment, and the record batch decoded from them shares those bytes (a buffer whose
//! address is not aligned for its type is copied). The engine reclaims the space of a
//! deleted message once the batches read from its segment have been dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::super::compile::{PortType, Role, Signature};
use super::super::config::duration;
use super::super::message::{Envelope, Message, Receipt, SignalType, Signals};
use super::super::runtime::ReceiverCx;
use super::super::signal::{Control, Nack};
use super::super::{BoxFuture, Exporter, FlowError, Receiver};
use super::{BuildEnv, Built, Component, options};
use crate::Engine;
use crate::channel::{Channel, NewChannel};
use crate::client::Client;
use crate::framer::{Writer, WriterConfig};
use crate::storage::Durability;
use crate::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

/// One open queue store: the engine and the wake-up of its receivers. Shared by every
/// queue node of the process that names the same directory.
struct Store {
    engine: Engine,
    appended: Notify,
}

fn stores() -> &'static Mutex<HashMap<PathBuf, Weak<Store>>> {
    static STORES: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<Store>>>> = std::sync::OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// The store of `path` (opened on first use), or the flow's embedded engine.
fn store(path: Option<&Path>, env: &BuildEnv) -> Result<Arc<Store>, FlowError> {
    let engine = match path {
        None => {
            let engine = env.client.as_ref().and_then(|c| c.engine().cloned()).ok_or_else(|| FlowError::Component(
                "a queue needs `path:` (a directory of its own) unless the flow runs on an embedded engine (--data DIR or inside `telemetron serve`)".into(),
            ))?;
            let key = engine.dir().to_path_buf();
            return open_store(key, || Ok(engine));
        }
        Some(p) => p.to_path_buf(),
    };
    std::fs::create_dir_all(&engine)
        .map_err(|source| FlowError::Io { context: format!("creating queue directory {}", engine.display()), source })?;
    let key = engine.canonicalize().unwrap_or(engine);
    let dir = key.clone();
    open_store(key, move || Ok(Engine::open(&dir)?))
}

fn open_store(key: PathBuf, open: impl FnOnce() -> Result<Engine, FlowError>) -> Result<Arc<Store>, FlowError> {
    let mut stores = stores().lock();
    if let Some(s) = stores.get(&key).and_then(Weak::upgrade) {
        return Ok(s);
    }
    let s = Arc::new(Store { engine: open()?, appended: Notify::new() });
    stores.insert(key, Arc::downgrade(&s));
    Ok(s)
}

struct Queue {
    store: Arc<Store>,
    seq: Channel,
    msg: Channel,
    meta: Channel,
    acked_seq: Channel,
    acked: Channel,
}

impl Queue {
    fn open(store: Arc<Store>, name: &str) -> Result<Queue, FlowError> {
        let e = &store.engine;
        let ch = e.create_channels_with(
            vec![
                NewChannel::index(format!("{name}.seq")),
                NewChannel::data(format!("{name}.msg"), DataType::Bytes, format!("{name}.seq")),
                NewChannel::data(format!("{name}.meta"), DataType::Json, format!("{name}.seq")),
                NewChannel::index(format!("{name}.acked.seq")),
                NewChannel::data(format!("{name}.acked"), DataType::U64, format!("{name}.acked.seq")),
            ],
            true,
        )?;
        let [seq, msg, meta, acked_seq, acked] = <[Channel; 5]>::try_from(ch).map_err(|_| FlowError::Component("queue channels".into()))?;
        Ok(Queue { store, seq, msg, meta, acked_seq, acked })
    }

    /// The next sequence number to append (1 for an empty queue).
    fn next_seq(&self) -> Result<u64, FlowError> {
        Ok(self.store.engine.time_range(self.seq.key)?.map_or(1, |r| r.end.0 as u64))
    }

    /// The recorded watermark: every sequence below it is settled (1: nothing is).
    fn watermark(&self) -> Result<u64, FlowError> {
        let Some(r) = self.store.engine.time_range(self.acked.key)? else { return Ok(1) };
        let f = self.store.engine.read(TimeRange::from_nanos(r.end.0 - 1, r.end.0), &[self.acked.key])?;
        Ok(f.concat(self.acked.key)?.and_then(|s| s.as_slice::<u64>().ok().and_then(|v| v.last().copied())).unwrap_or(1))
    }
}

#[derive(Serialize, Deserialize)]
struct Meta {
    signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

fn encode(batch: &RecordBatch) -> Result<Vec<u8>, FlowError> {
    let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::with_capacity(batch.get_array_memory_size() + 1024), &batch.schema())
        .map_err(|e| FlowError::Component(format!("queue: encoding: {e}")))?;
    w.write(batch).map_err(|e| FlowError::Component(format!("queue: encoding: {e}")))?;
    w.into_inner().map_err(|e| FlowError::Component(format!("queue: encoding: {e}")))
}

/// A `bytes` series of one value that takes `value` without copying it.
fn one_value(value: Vec<u8>) -> Result<Series, FlowError> {
    let offsets = Series::from_vec(vec![0u64, value.len() as u64]).data().clone();
    Ok(Series::from_variable(DataType::Bytes, Bytes::from(value), offsets)?)
}

/// Decode the record batch of one message. The Arrow buffers of the batch share `bytes`
/// (the engine's mapping of the segment) instead of copying them; a buffer whose address is
/// not aligned for its type is copied. The arrays are validated as the IPC reader does.
fn decode(bytes: Bytes) -> Result<RecordBatch, String> {
    let mut buf = arrow_buffer::Buffer::from(bytes);
    let mut d = arrow_ipc::reader::StreamDecoder::new();
    d.decode(&mut buf).map_err(|e| e.to_string())?.ok_or_else(|| "empty message".to_string())
}

/// The values of a variable-length channel across the series of a read, in order, each
/// shared with the series' buffer.
fn values(f: &Frame, key: crate::telem::ChannelKey) -> Vec<Bytes> {
    let mut out = Vec::new();
    for s in f.get(key) {
        for i in 0..s.len() {
            out.push(s.value_bytes(i).map_or_else(Bytes::new, |v| s.data().slice_ref(v)));
        }
    }
    out
}

// ---- exporter ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExporterOptions {
    /// The queue's name (its channels are `<name>.*`).
    name: String,
    /// A directory of its own; default: the engine the flow runs on.
    path: Option<PathBuf>,
    /// `commit` (ACK after fdatasync, the default), `interval` (group commit), `none`.
    #[serde(default = "commit")]
    durability: String,
}

fn commit() -> String {
    "commit".into()
}

fn check_place(name: &str, path: Option<&Path>, env: &BuildEnv) -> Result<(), String> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("`name: {name:?}`: a queue name is a non-empty word (its channels are `<name>.seq`, ...)"));
    }
    if path.is_none() && !env.checking && env.client.as_ref().and_then(Client::engine).is_none() {
        return Err("a queue needs `path:` (a directory of its own) unless the flow runs on an embedded engine (--data DIR or inside `telemetron serve`)".into());
    }
    Ok(())
}

/// With `durability: interval`, the exporter asks the engine's group-commit thread to sync
/// once this many bytes are unsynced in its segment (the engine's default is a segment's
/// worth, 256 MB). The sync then runs in the background while the exporter keeps
/// appending, instead of all at once inside the commit that fills the segment (which syncs
/// before sealing it): `bench flow`'s queue write goes from about 1.1 to 1.7 GB/s. It also
/// lowers what a machine crash can lose (acknowledged, not yet synced) from up to 256 MB
/// to about 32 MB per segment; the one-second interval is unchanged.
const SYNC_BYTES: u64 = 32 << 20;

pub(super) fn exporter(v: &serde_json::Value, env: &BuildEnv) -> Result<Built, String> {
    let o: ExporterOptions = options(v)?;
    let mut durability: Durability =
        o.durability.parse().map_err(|_| format!("`durability: {}`: write commit, interval or none", o.durability))?;
    if let Durability::Interval { bytes, .. } = &mut durability {
        *bytes = (*bytes).min(SYNC_BYTES);
    }
    check_place(&o.name, o.path.as_deref(), env)?;
    Ok(Built {
        signature: Signature { role: Role::Exporter, accepts: Signals::ANY, ports: vec![] },
        component: Component::Exporter(Box::new(QueueExporter { o, env: env.clone(), queue: None, durability, writer: None })),
    })
}

struct QueueExporter {
    o: ExporterOptions,
    env: BuildEnv,
    /// Opened at the first message (compiling a flow opens nothing).
    queue: Option<Queue>,
    durability: Durability,
    /// The open writer, the next sequence, and when it was opened.
    writer: Option<(Writer, u64, Instant)>,
}

/// How long the exporter keeps one writer open: the receiver deletes settled messages
/// between two writers.
const ROLL: Duration = Duration::from_secs(1);

impl QueueExporter {
    fn append(&mut self, msg: &Message) -> Result<(), FlowError> {
        if self.queue.is_none() {
            self.queue = Some(Queue::open(store(self.o.path.as_deref(), &self.env)?, &self.o.name)?);
        }
        let q = self.queue.as_ref().expect("open");
        if self.writer.as_ref().is_some_and(|(_, _, opened)| opened.elapsed() >= ROLL) {
            let (w, _, _) = self.writer.take().expect("open");
            w.close()?;
        }
        if self.writer.is_none() {
            let next = q.next_seq()?;
            let cfg = WriterConfig::new(TimeStamp(next as i64), vec![q.msg.key, q.meta.key]).durability(self.durability);
            self.writer = Some((q.store.engine.open_writer(cfg)?, next, Instant::now()));
        }
        let (w, next, _) = self.writer.as_mut().expect("open");
        let meta = Meta {
            signal: msg.signal.name().into(),
            deadline: msg.envelope.deadline.map(|d| d.0),
            traceparent: msg.envelope.traceparent.clone(),
            tenant: msg.envelope.tenant.clone(),
            headers: msg.envelope.headers.clone(),
        };
        let meta = serde_json::to_string(&meta).map_err(|e| FlowError::Component(e.to_string()))?;
        let frame = Frame::new()
            .with(q.seq.key, Series::timestamps(vec![*next as i64]))
            .with(q.msg.key, one_value(encode(&msg.data)?)?)
            .with(q.meta.key, Series::json(&[meta])?);
        w.write(&frame)?;
        w.commit()?;
        *next += 1;
        Ok(())
    }
}

impl Exporter for QueueExporter {
    fn export(&mut self, msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>> {
        // The engine's write and commit are synchronous and short (an fdatasync at most);
        // the exporter's task is its own, so blocking it delays no other component.
        let result = tokio::task::block_in_place(|| self.append(&msg));
        Box::pin(async move {
            match result {
                Ok(()) => {
                    receipt.ack();
                    if let Some(q) = &self.queue {
                        q.store.appended.notify_waiters();
                    }
                    Ok(())
                }
                Err(e) => {
                    self.writer = None;
                    receipt.nack(Nack::unavailable(format!("queue: {e}")));
                    Err(e)
                }
            }
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), FlowError>> {
        let r = self.writer.take().map(|(w, _, _)| w.close());
        Box::pin(async move {
            r.transpose()?;
            Ok(())
        })
    }
}

// ---- receiver ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverOptions {
    /// The queue's name.
    name: String,
    /// A directory of its own; default: the engine the flow runs on.
    path: Option<PathBuf>,
    /// Messages sent and not yet settled, at most.
    #[serde(default = "window")]
    window: usize,
    /// Wait before sending again a message NACKed as retryable.
    #[serde(default = "redeliver", with = "duration")]
    redeliver: Duration,
    /// Stop when the queue is empty and everything sent is settled (tests, batch jobs);
    /// default: wait for more.
    #[serde(default)]
    until_empty: bool,
    /// The signal type the queue holds (`frames`, `logs`, ...): what the receiver's output
    /// is declared as, so the flow's types check. Default: any. A message of another type
    /// is skipped with an error.
    signal: Option<String>,
}

fn window() -> usize {
    256
}
fn redeliver() -> Duration {
    Duration::from_secs(1)
}

pub(super) fn receiver(v: &serde_json::Value, env: &BuildEnv) -> Result<Built, String> {
    let o: ReceiverOptions = options(v)?;
    if o.window == 0 {
        return Err("`window` must be at least 1".into());
    }
    check_place(&o.name, o.path.as_deref(), env)?;
    let out = match &o.signal {
        None => Signals::ANY,
        Some(s) => Signals::of(SignalType::parse(s).ok_or_else(|| format!("`signal: {s}`: one of frames, metrics, logs, traces, events"))?),
    };
    Ok(Built {
        signature: Signature { role: Role::Receiver, accepts: Signals::NONE, ports: vec![("out", PortType::Fixed(out))] },
        component: Component::Receiver(Box::new(QueueStarter { o, env: env.clone() })),
    })
}

/// The receiver before its queue is opened (at run, not at compile time).
struct QueueStarter {
    o: ReceiverOptions,
    env: BuildEnv,
}

impl Receiver for QueueStarter {
    fn run(self: Box<Self>, cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        Box::pin(async move {
            let queue = Queue::open(store(self.o.path.as_deref(), &self.env)?, &self.o.name)?;
            Box::new(QueueReceiver { o: self.o, queue }).run(cx).await
        })
    }
}

struct QueueReceiver {
    o: ReceiverOptions,
    queue: Queue,
}

/// A message read back from the queue (or why it cannot be decoded) and its sequence.
type Queued = (u64, Result<Message, String>);

/// Sequences sent and not settled, and settled ones above the watermark.
struct Window {
    watermark: u64,
    next: u64,
    settled: std::collections::BTreeSet<u64>,
    retry: BTreeMap<u64, Instant>,
}

impl Window {
    fn settle(&mut self, seq: u64) {
        self.settled.insert(seq);
        while self.settled.remove(&self.watermark) {
            self.watermark += 1;
        }
    }
    fn in_flight(&self) -> usize {
        (self.next - self.watermark) as usize - self.settled.len()
    }
}

impl QueueReceiver {
    /// Read messages `[from, to)`: each sequence with its message, or why it cannot be
    /// decoded.
    fn read(&self, from: u64, to: u64) -> Result<Vec<Queued>, FlowError> {
        let q = &self.queue;
        let f = q.store.engine.read(TimeRange::from_nanos(from as i64, to as i64), &[q.seq.key, q.msg.key, q.meta.key])?;
        // One series per chunk (each message is its own commit): walk them in order rather
        // than concatenating (copying) them; the message bytes stay in the engine's mapping.
        if !(f.contains(q.seq.key) && f.contains(q.msg.key) && f.contains(q.meta.key)) {
            return Ok(Vec::new());
        }
        let mut seqs = Vec::new();
        for s in f.get(q.seq.key) {
            seqs.extend_from_slice(s.as_timestamps()?);
        }
        let msgs = values(&f, q.msg.key);
        let metas = values(&f, q.meta.key);
        Ok(seqs
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let m = (|| {
                    let data = decode(msgs.get(i).cloned().ok_or("missing bytes")?)?;
                    let meta = metas.get(i).and_then(|m| std::str::from_utf8(m).ok()).ok_or("missing meta")?;
                    let meta: Meta = serde_json::from_str(meta).map_err(|e| e.to_string())?;
                    let signal = SignalType::parse(&meta.signal).ok_or("unknown signal")?;
                    let mut m = Message::new(signal, data);
                    m.envelope = Envelope {
                        deadline: meta.deadline.map(TimeStamp),
                        traceparent: meta.traceparent,
                        tenant: meta.tenant,
                        headers: meta.headers,
                    };
                    Ok(m)
                })();
                (s as u64, m)
            })
            .collect())
    }

    fn record(&self, w: &mut Option<Writer>, watermark: u64, key: &str) -> Result<(), FlowError> {
        let q = &self.queue;
        let now = TimeStamp::now();
        if w.is_none() {
            *w = Some(q.store.engine.open_writer(WriterConfig::new(now, vec![q.acked.key]).durability(Durability::Commit))?);
        }
        let writer = w.as_mut().expect("open");
        let last = q.store.engine.time_range(q.acked_seq.key)?.map_or(now.0, |r| r.end.0.max(now.0));
        writer.write(
            &Frame::new().with(q.acked_seq.key, Series::timestamps(vec![last])).with(q.acked.key, Series::from_vec(vec![watermark])),
        )?;
        writer.commit()?;
        // What is settled is no longer needed. The exporter's open writer holds the channels
        // (deletes wait for it to roll over, at most a second); the next watermark retries.
        if let Err(e) = q.store.engine.delete(TimeRange::from_nanos(0, watermark as i64), &[q.seq.key, q.msg.key, q.meta.key]) {
            tracing::debug!(key = key, queue = %self.o.name, error = %e, "settled messages not deleted yet");
        }
        Ok(())
    }
}

impl Receiver for QueueReceiver {
    fn run(self: Box<Self>, mut cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        Box::pin(async move {
            let start = self.queue.watermark()?;
            let key = cx.key().to_owned();
            let mut win = Window { watermark: start, next: start, settled: Default::default(), retry: BTreeMap::new() };
            let mut recorded = start;
            let mut last_record = Instant::now();
            let mut writer: Option<Writer> = None;
            loop {
                // Outcomes first.
                while let Some(c) = cx.try_control() {
                    outcome(&cx, &mut win, c, &self.o);
                }
                if win.watermark > recorded && (last_record.elapsed() >= Duration::from_millis(20) || cx.stopping()) {
                    tokio::task::block_in_place(|| self.record(&mut writer, win.watermark, &key))?;
                    recorded = win.watermark;
                    last_record = Instant::now();
                }
                if cx.stopping() {
                    // Stop reading; let what was sent drain, and record its outcome.
                    cx.end_of_input();
                    if win.in_flight() == 0 || win.in_flight() == win.retry.len() {
                        break;
                    }
                    match cx.next_control().await {
                        None => break,
                        Some(c) => outcome(&cx, &mut win, c, &self.o),
                    }
                    continue;
                }
                // Redeliveries that are due.
                let now = Instant::now();
                let due: Vec<u64> = win.retry.iter().filter(|(_, t)| **t <= now).map(|(s, _)| *s).collect();
                for s in due {
                    win.retry.remove(&s);
                    for (seq, m) in tokio::task::block_in_place(|| self.read(s, s + 1))? {
                        self.send(&mut cx, &mut win, seq, m).await;
                    }
                }
                // New messages, within the window.
                let room = self.o.window.saturating_sub(win.in_flight());
                let mut sent = 0;
                if room > 0 {
                    let tail = self.queue.next_seq()?;
                    if win.next < tail {
                        let to = tail.min(win.next + room as u64);
                        for (seq, m) in tokio::task::block_in_place(|| self.read(win.next, to))? {
                            win.next = seq + 1;
                            self.send(&mut cx, &mut win, seq, m).await;
                            sent += 1;
                        }
                    }
                }
                if sent == 0 {
                    if self.o.until_empty && win.in_flight() == 0 && win.next >= self.queue.next_seq()? {
                        break;
                    }
                    let wake = self.queue.store.appended.notified();
                    tokio::select! {
                        _ = wake => {}
                        c = cx.next_control() => if let Some(c) = c { outcome(&cx, &mut win, c, &self.o) },
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
            }
            if win.watermark > recorded {
                tokio::task::block_in_place(|| self.record(&mut writer, win.watermark, &key))?;
            }
            if let Some(w) = writer {
                w.close()?;
            }
            Ok(())
        })
    }
}

/// Record the outcome of a message sent from the queue: ACK settles it, a retryable NACK
/// schedules it again after `redeliver`, a permanent NACK skips it, reported as an error of
/// the receiver (counted, and listed with the flow's errors) so the loss is never silent.
fn outcome(cx: &ReceiverCx, win: &mut Window, c: Control, o: &ReceiverOptions) {
    match c {
        Control::Ack { token, .. } => win.settle(token),
        Control::Nack { token, nack, .. } if nack.retryable => {
            win.retry.insert(token, Instant::now() + o.redeliver);
        }
        Control::Nack { token, nack, .. } => {
            tracing::warn!(key = cx.key(), queue = %o.name, seq = token, %nack, "queued message NACKed permanently; skipped");
            cx.report_error(format!("queue `{}`: message {token} refused for good and skipped: {nack}", o.name));
            win.settle(token);
        }
        _ => {}
    }
}

impl QueueReceiver {
    async fn send(&self, cx: &mut ReceiverCx, win: &mut Window, seq: u64, m: Result<Message, String>) {
        let wanted = self.o.signal.as_deref().and_then(SignalType::parse);
        let m = m.and_then(|m| match wanted {
            Some(w) if w != m.signal => Err(format!("holds {} where the receiver declares {w}", m.signal)),
            _ => Ok(m),
        });
        match m {
            Ok(mut m) => {
                cx.subscribe(&mut m, seq);
                let _ = cx.send(m).await;
            }
            Err(e) => {
                tracing::error!(key = cx.key(), queue = %self.o.name, seq, error = %e, "queued message cannot be decoded; skipped");
                win.settle(seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int32Array, RecordBatch, StringArray, TimestampNanosecondArray};

    use super::*;

    fn logs(rows: usize, tag: &str) -> RecordBatch {
        let n = rows as i64;
        RecordBatch::try_new(
            super::super::super::schema::logs(),
            vec![
                Arc::new(TimestampNanosecondArray::from((0..n).collect::<Vec<_>>()).with_timezone("UTC")),
                Arc::new(Int32Array::from((0..rows as i32).collect::<Vec<_>>())),
                Arc::new(StringArray::from(vec!["INFO"; rows])),
                Arc::new(StringArray::from((0..rows).map(|i| format!("{tag} record {i}")).collect::<Vec<_>>())),
                Arc::new(StringArray::from(vec!["{}"; rows])),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn decode_shares_the_message_bytes() {
        let batch = logs(100, "a");
        let bytes = Bytes::from(encode(&batch).expect("encode"));
        let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
        let back = decode(bytes.clone()).expect("decode");
        assert_eq!(back, batch);
        let body = back.column(3).to_data().buffers()[1].as_ptr() as usize;
        assert!(range.contains(&body), "the values buffer points into the message bytes");
        assert!(decode(Bytes::from_static(b"not arrow")).is_err());
        assert!(decode(Bytes::new()).is_err());
    }

    #[test]
    fn messages_read_back_across_writers_and_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = BuildEnv::default();
        let mut exp = QueueExporter {
            o: ExporterOptions { name: "q".into(), path: Some(dir.path().to_path_buf()), durability: "none".into() },
            env: env.clone(),
            queue: None,
            durability: Durability::None,
            writer: None,
        };
        let mut sent = Vec::new();
        for i in 0..7 {
            let mut m = Message::new(SignalType::Logs, logs(10 + i, &format!("m{i}")));
            m.envelope.tenant = Some(format!("t{i}"));
            m.envelope.headers.insert("k".into(), i.to_string());
            exp.append(&m).expect("append");
            if i == 3 {
                // A second writer: the read below spans chunks of both.
                let (w, _, _) = exp.writer.take().expect("open");
                w.close().expect("close");
            }
            sent.push(m);
        }
        let (w, _, _) = exp.writer.take().expect("open");
        w.close().expect("close");
        let rx = QueueReceiver {
            o: ReceiverOptions {
                name: "q".into(),
                path: Some(dir.path().to_path_buf()),
                window: 256,
                redeliver: Duration::from_secs(1),
                until_empty: true,
                signal: None,
            },
            queue: Queue::open(store(Some(dir.path()), &env).expect("store"), "q").expect("queue"),
        };
        let got = rx.read(1, 100).expect("read");
        assert_eq!(got.len(), sent.len());
        for ((seq, m), (i, want)) in got.into_iter().zip(sent.iter().enumerate()) {
            assert_eq!(seq, i as u64 + 1);
            let m = m.expect("decoded");
            assert_eq!(m.signal, SignalType::Logs);
            assert_eq!(m.data, want.data);
            assert_eq!(m.envelope.tenant, want.envelope.tenant);
            assert_eq!(m.envelope.headers, want.envelope.headers);
        }
        let some = rx.read(3, 5).expect("read");
        assert_eq!(some.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![3, 4]);
        assert!(rx.read(100, 200).expect("read").is_empty());
    }
}
