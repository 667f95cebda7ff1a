//! The dataflow runtime (`telemetron::flow`): compilation errors, dead-path elimination,
//! fusion, acknowledgements, deadlines, cancellation, budgets, retries, failover and the
//! durable queue, on real flows (tokio tasks, real engines in temp directories).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use telemetron::flow::{
    self, BoxFuture, BuildEnv, Built, Component, Exporter, FlowConfig, FlowError, Message, MessageId, Nack, NackReason, PortType, Receipt,
    ReceiverCx, Role, SignalType, Signals, Signature,
};

fn compile(yaml: &str) -> Result<flow::CompiledFlow, FlowError> {
    compile_with(yaml, &BuildEnv::default())
}

fn compile_with(yaml: &str, env: &BuildEnv) -> Result<flow::CompiledFlow, FlowError> {
    flow::compile(FlowConfig::parse(yaml)?, env)
}

fn config_err(yaml: &str) -> String {
    match compile(yaml) {
        Ok(f) => panic!("compiled, expected an error:\n{f}"),
        Err(e) => {
            assert_eq!(e.code(), "flow.config", "{e}");
            e.to_string()
        }
    }
}

// ---- compilation ----

#[test]
fn a_cycle_is_rejected_naming_the_nodes_and_the_line() {
    let e = config_err(
        "flow: c\nnodes:\n  gen:\n    type: generator\n    to: [a]\n  a:\n    type: filter\n    where: {column: severity_number, op: '>', value: 1}\n    to: [b]\n  b:\n    type: sample\n    every: 2\n    to: [a, out]\n  out:\n    type: discard\n",
    );
    assert!(e.contains("cycle"), "{e}");
    assert!(e.contains("a -> b -> a") || e.contains("b -> a -> b"), "{e}");
    assert!(e.contains("line 6") || e.contains("line 10"), "{e}");
}

#[test]
fn unknown_components_destinations_ports_and_options_are_named() {
    let e = config_err("flow: u\nnodes:\n  gen: {type: generator, to: [x]}\n  x:\n    type: fliter\n");
    assert!(e.contains("line 4") && e.contains("node `x`") && e.contains("unknown component type `fliter`") && e.contains("filter"), "{e}");

    let e = config_err("flow: u\nnodes:\n  gen:\n    type: generator\n    to: [nowhere]\n");
    assert!(e.contains("line 3") && e.contains("`nowhere`, which is not a node"), "{e}");

    let e = config_err("flow: u\nnodes:\n  gen: {type: generator, to: {logs: [out]}}\n  out: {type: discard}\n");
    assert!(e.contains("no output port `logs`"), "{e}");

    let e = config_err("flow: u\nnodes:\n  gen: {type: generator, rows: 0, to: [out]}\n  out: {type: discard}\n");
    assert!(e.contains("`rows` must be at least 1"), "{e}");

    let e = config_err("flow: u\nnodes:\n  gen: {type: generator, rate_hz: 5, to: [out]}\n  out: {type: discard}\n");
    assert!(e.contains("unknown field `rate_hz`"), "{e}");

    let e = config_err("flow: u\nnodes:\n  gen: {type: generator, to: [out]}\n  out: {type: discard, to: [gen]}\n");
    assert!(e.contains("exporter") && e.contains("remove `to:`"), "{e}");
}

#[test]
fn malformed_yaml_reports_its_line() {
    let e = FlowConfig::parse("flow: m\nnodes:\n  gen: {type: generator\n  out: {type: discard}\n").unwrap_err();
    assert_eq!(e.code(), "flow.config");
    assert!(e.to_string().starts_with("line "), "{e}");
}

#[test]
fn a_type_mismatch_names_the_node_and_both_types() {
    let mut env = BuildEnv::default();
    env.register("frames_only", |_, _| Ok(sink(Signals::of(SignalType::Frames), Arc::new(Sink::default()))));
    let e = compile_with("flow: t\nnodes:\n  gen: {type: generator, signal: metrics, to: [out]}\n  out: {type: frames_only}\n", &env)
        .unwrap_err();
    let e = e.to_string();
    assert!(e.contains("line 4") && e.contains("node `out`") && e.contains("accepts frames but receives metrics (from gen)"), "{e}");
}

#[test]
fn dead_paths_are_removed_and_reported() {
    let f = compile(
        "flow: d
nodes:
  gen: {type: generator, signal: logs, to: [route]}
  route:
    type: type_router
    to: {logs: [keep], metrics: [metric_sink], fallback: [other]}
  keep: {type: sample, every: 1, to: [out, dangling]}
  metric_sink: {type: discard}
  other: {type: discard}
  orphan: {type: sample, every: 2, to: [out]}
  dangling: {type: batch, to: [nothing_after]}
  nothing_after: {type: deadline, after: 1s}
  out: {type: discard}
",
    )
    .unwrap();
    let removed: BTreeSet<_> = f.removed().iter().map(|r| (r.node.as_str(), r.reason)).collect();
    assert!(removed.contains(&("orphan", "no receiver feeds it")), "{removed:?}");
    assert!(removed.contains(&("dangling", "it reaches no exporter")), "{removed:?}");
    assert!(removed.contains(&("nothing_after", "it reaches no exporter")), "{removed:?}");
    // A logs-only stream makes the router's metrics and fallback branches dead.
    assert!(removed.contains(&("metric_sink", "no receiver feeds it")), "{removed:?}");
    assert!(removed.contains(&("other", "no receiver feeds it")), "{removed:?}");
    let shown = f.to_string();
    assert!(shown.contains("removed: edge route.metrics -> metric_sink"), "{shown}");
    assert!(shown.contains("removed: orphan (line 10): no receiver feeds it"), "{shown}");
}

#[test]
fn branchless_chains_are_fused_and_fusion_can_be_turned_off() {
    let yaml = "flow: f
fuse: FUSE
nodes:
  gen: {type: generator, count: 50, rows: 4, to: [a]}
  a: {type: sample, every: 1, to: [b]}
  b: {type: filter, where: {column: severity_number, op: '>=', value: 9}, to: [c]}
  c: {type: deadline, after: 10s, to: [out]}
  out: {type: discard}
";
    let fused = compile(&yaml.replace("FUSE", "true")).unwrap();
    assert_eq!(fused.fused(), vec![vec!["a", "b", "c"]]);
    assert_eq!(fused.tasks().len(), 3);
    assert!(fused.to_string().contains("fused: a + b + c"), "{fused}");
    let unfused = compile(&yaml.replace("FUSE", "false")).unwrap();
    assert!(unfused.fused().is_empty());
    assert_eq!(unfused.tasks().len(), 5);
}

// ---- test components: a source of known messages and a sink that can fail ----

/// What the sink saw and how it behaves.
#[derive(Default)]
struct Sink {
    down: AtomicBool,
    /// Fail this many more messages (then work), unless `down`.
    fail_next: AtomicU64,
    exported: Mutex<Vec<MessageId>>,
    rows: AtomicU64,
    /// Hold each message this long before acknowledging.
    delay_ms: AtomicU64,
}

struct SinkExporter(Arc<Sink>);

impl Exporter for SinkExporter {
    fn export(&mut self, msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>> {
        let s = self.0.clone();
        Box::pin(async move {
            let delay = s.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let fail = s.down.load(Ordering::Relaxed)
                || s.fail_next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
            if fail {
                receipt.nack(Nack::unavailable("sink is down"));
            } else {
                s.exported.lock().push(msg.id);
                s.rows.fetch_add(msg.rows() as u64, Ordering::Relaxed);
                receipt.ack();
            }
            Ok(())
        })
    }
}

fn sink(accepts: Signals, s: Arc<Sink>) -> Built {
    Built {
        signature: Signature { role: Role::Exporter, accepts, ports: vec![] },
        component: Component::Exporter(Box::new(SinkExporter(s))),
    }
}

/// Outcomes the source saw, by message id.
#[derive(Default)]
struct Outcomes {
    sent: Mutex<Vec<MessageId>>,
    acked: Mutex<Vec<MessageId>>,
    nacked: Mutex<Vec<(MessageId, NackReason)>>,
}

struct Source {
    count: usize,
    deadline: Option<Duration>,
    out: Arc<Outcomes>,
}

impl flow::Receiver for Source {
    fn run(self: Box<Self>, mut cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        Box::pin(async move {
            let schema = flow::schema::logs();
            for i in 0..self.count {
                let batch = arrow_batch(&schema, i);
                let mut m = Message::new(SignalType::Logs, batch);
                if let Some(d) = self.deadline {
                    m.envelope.deadline = Some(telemetron::telem::TimeStamp(telemetron::telem::TimeStamp::now().0 + d.as_nanos() as i64));
                }
                self.out.sent.lock().push(m.id);
                let token = m.id.0;
                cx.subscribe(&mut m, token);
                let _ = cx.send(m).await;
            }
            while cx.outstanding() > 0 {
                match cx.next_control().await {
                    None => break,
                    Some(flow::Control::Ack { token, .. }) => self.out.acked.lock().push(MessageId(token)),
                    Some(flow::Control::Nack { token, nack, .. }) => self.out.nacked.lock().push((MessageId(token), nack.reason)),
                    Some(_) => {}
                }
            }
            Ok(())
        })
    }
}

fn arrow_batch(schema: &arrow_schema::SchemaRef, i: usize) -> flow::RecordBatch {
    use arrow_array::{Int32Array, StringArray, TimestampNanosecondArray};
    flow::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(TimestampNanosecondArray::from(vec![i as i64]).with_timezone("UTC")),
            Arc::new(Int32Array::from(vec![9])),
            Arc::new(StringArray::from(vec!["INFO"])),
            Arc::new(StringArray::from(vec![format!("record {i}")])),
            Arc::new(StringArray::from(vec!["{}"])),
        ],
    )
    .unwrap()
}

fn env_with(count: usize, deadline: Option<Duration>, sinks: &[(&str, Arc<Sink>)]) -> (BuildEnv, Arc<Outcomes>) {
    let out = Arc::new(Outcomes::default());
    let mut env = BuildEnv::default();
    let o = out.clone();
    env.register("source", move |_, _| {
        Ok(Built {
            signature: Signature {
                role: Role::Receiver,
                accepts: Signals::NONE,
                ports: vec![("out", PortType::Fixed(Signals::of(SignalType::Logs)))],
            },
            component: Component::Receiver(Box::new(Source { count, deadline, out: o.clone() })),
        })
    });
    for (name, s) in sinks {
        let s = s.clone();
        env.register(*name, move |_, _| Ok(sink(Signals::ANY, s.clone())));
    }
    (env, out)
}

async fn run(yaml: &str, env: &BuildEnv) -> flow::FlowReport {
    compile_with(yaml, env).unwrap().start().unwrap().finish(Duration::from_secs(10)).await
}

// ---- acknowledgements ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_acknowledged_back_to_its_source_through_a_chain() {
    let s = Arc::new(Sink::default());
    let (env, out) = env_with(200, None, &[("sink", s.clone())]);
    let report = run(
        "flow: a\nnodes:\n  src: {type: source, to: [b]}\n  b: {type: batch, max_rows: 16, timeout: 5ms, to: [r]}\n  r: {type: retry, to: [snk]}\n  snk: {type: sink}\n",
        &env,
    )
    .await;
    assert!(report.drained, "{report:?}");
    let sent: BTreeSet<_> = out.sent.lock().iter().copied().collect();
    let acked: BTreeSet<_> = out.acked.lock().iter().copied().collect();
    assert_eq!(sent.len(), 200);
    assert_eq!(acked, sent, "every message sent is acknowledged, once (NACKs: {:?})", out.nacked.lock());
    assert_eq!(out.acked.lock().len(), 200, "no message is acknowledged twice");
    assert_eq!(s.rows.load(Ordering::Relaxed), 200);
    // Batching: fewer, larger messages reached the sink.
    assert!(s.exported.lock().len() < 200, "batches of up to 16: {}", s.exported.lock().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_exporter_nacks_to_the_source_and_retry_recovers_it() {
    // Without retry: the NACK reaches the source with its reason.
    let s = Arc::new(Sink::default());
    s.down.store(true, Ordering::Relaxed);
    let (env, out) = env_with(10, None, &[("sink", s.clone())]);
    run("flow: n\nnodes:\n  src: {type: source, to: [snk]}\n  snk: {type: sink}\n", &env).await;
    let nacked = out.nacked.lock().clone();
    assert_eq!(nacked.len(), 10);
    assert!(nacked.iter().all(|(_, r)| *r == NackReason::Unavailable));

    // With retry: two failures per... the first 15 sends fail, all 10 messages get through.
    let s = Arc::new(Sink::default());
    s.fail_next.store(15, Ordering::Relaxed);
    let (env, out) = env_with(10, None, &[("sink", s.clone())]);
    run(
        "flow: r\nnodes:\n  src: {type: source, to: [r]}\n  r: {type: retry, attempts: 10, initial: 1ms, max: 5ms}\n  snk: {type: sink}\n"
            .replace("5ms}", "5ms, to: [snk]}")
            .as_str(),
        &env,
    )
    .await;
    assert_eq!(out.acked.lock().len(), 10, "nacked: {:?}", out.nacked.lock());
    assert_eq!(s.exported.lock().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_gives_up_after_its_attempts_and_says_so() {
    let s = Arc::new(Sink::default());
    s.down.store(true, Ordering::Relaxed);
    let (env, out) = env_with(3, None, &[("sink", s.clone())]);
    let report = run(
        "flow: g\nnodes:\n  src: {type: source, to: [r]}\n  r: {type: retry, attempts: 3, initial: 1ms, to: [snk]}\n  snk: {type: sink}\n",
        &env,
    )
    .await;
    assert_eq!(out.nacked.lock().len(), 3);
    assert_eq!(report.node("snk").unwrap().received, 9, "3 messages x 3 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_one_of_two_exporters_is_enough_with_branches_any() {
    let good = Arc::new(Sink::default());
    let bad = Arc::new(Sink::default());
    bad.down.store(true, Ordering::Relaxed);
    let yaml = "flow: any\nnodes:\n  src: {type: source, to: [ak]}\n  ak: {type: ack, mode: downstream, branches: BR, to: [g, b]}\n  g: {type: good}\n  b: {type: bad}\n";
    let (env, out) = env_with(20, None, &[("good", good.clone()), ("bad", bad.clone())]);
    run(&yaml.replace("BR", "any"), &env).await;
    assert_eq!(out.acked.lock().len(), 20, "one branch acknowledging is enough");
    assert_eq!(good.exported.lock().len(), 20);

    let (env, out) = env_with(20, None, &[("good", good.clone()), ("bad", bad.clone())]);
    run(&yaml.replace("BR", "all"), &env).await;
    assert_eq!(out.nacked.lock().len(), 20, "every branch must acknowledge");
    assert!(out.acked.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_on_ingress_acknowledges_before_the_exporter_fails() {
    let bad = Arc::new(Sink::default());
    bad.down.store(true, Ordering::Relaxed);
    let (env, out) = env_with(20, None, &[("bad", bad.clone())]);
    run("flow: be\nnodes:\n  src: {type: source, to: [ak]}\n  ak: {type: ack, mode: ingress, to: [b]}\n  b: {type: bad}\n", &env).await;
    assert_eq!(out.acked.lock().len(), 20, "best effort: acknowledged at ingress");
    assert!(out.nacked.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_sends_what_the_primary_refuses_to_the_fallback() {
    let primary = Arc::new(Sink::default());
    primary.fail_next.store(5, Ordering::Relaxed);
    let backup = Arc::new(Sink::default());
    let (env, out) = env_with(20, None, &[("primary_sink", primary.clone()), ("backup_sink", backup.clone())]);
    run(
        "flow: fo\nnodes:\n  src: {type: source, to: [fo]}\n  fo: {type: failover, to: {primary: [p], fallback: [q]}}\n  p: {type: primary_sink}\n  q: {type: backup_sink}\n",
        &env,
    )
    .await;
    assert_eq!(out.acked.lock().len(), 20);
    assert_eq!(primary.exported.lock().len(), 15);
    assert_eq!(backup.exported.lock().len(), 5);

    // Too slow: after `timeout` the fallback gets it too, and the first ACK wins.
    let slow = Arc::new(Sink::default());
    slow.delay_ms.store(200, Ordering::Relaxed);
    let backup = Arc::new(Sink::default());
    let (env, out) = env_with(3, None, &[("primary_sink", slow.clone()), ("backup_sink", backup.clone())]);
    run(
        "flow: fo\nnodes:\n  src: {type: source, to: [fo]}\n  fo: {type: failover, timeout: 20ms, to: {primary: [p], fallback: [q]}}\n  p: {type: primary_sink}\n  q: {type: backup_sink}\n",
        &env,
    )
    .await;
    assert_eq!(out.acked.lock().len(), 3);
    assert_eq!(backup.exported.lock().len(), 3, "the slow primary was failed over");
}

// ---- deadlines, cancellation, budgets ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_past_its_deadline_reaches_an_exporter() {
    let s = Arc::new(Sink::default());
    let (env, out) = env_with(30, Some(Duration::from_millis(5)), &[("sink", s.clone())]);
    // The batch holds messages for 50 ms: longer than their 5 ms deadline.
    let report = run("flow: dl\nnodes:\n  src: {type: source, to: [b]}\n  b: {type: batch, max_rows: 1000, timeout: 50ms, to: [snk]}\n  snk: {type: sink}\n", &env).await;
    assert!(s.exported.lock().is_empty(), "nothing exported late");
    let nacked = out.nacked.lock().clone();
    assert_eq!(nacked.len(), 30);
    assert!(nacked.iter().all(|(_, r)| *r == NackReason::DeadlineExceeded), "{nacked:?}");
    assert!(report.node("snk").unwrap().expired >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_message_leaves_the_batch_and_is_never_exported() {
    let s = Arc::new(Sink::default());
    let (env, out) = env_with(10, None, &[("sink", s.clone())]);
    let handle = compile_with("flow: can\nnodes:\n  src: {type: source, to: [b]}\n  b: {type: batch, max_rows: 1000, timeout: 300ms, to: [snk]}\n  snk: {type: sink}\n", &env)
        .unwrap()
        .start()
        .unwrap();
    // Wait until the ten messages sit in the batch, then cancel two of them.
    while out.sent.lock().len() < 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sent = out.sent.lock().clone();
    handle.cancel(sent[3]);
    handle.cancel(sent[7]);
    handle.finish(Duration::from_secs(5)).await;
    let nacked = out.nacked.lock().clone();
    assert_eq!(
        nacked,
        vec![(sent[3], NackReason::Cancelled), (sent[7], NackReason::Cancelled)]
            .into_iter()
            .filter(|n| nacked.contains(n))
            .collect::<Vec<_>>()
    );
    assert_eq!(nacked.len(), 2, "{nacked:?}");
    assert_eq!(out.acked.lock().len(), 8);
    assert_eq!(s.rows.load(Ordering::Relaxed), 8, "the cancelled rows were not exported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_budget_stops_the_receivers_and_reopening_it_resumes_them() {
    let handle =
        compile("flow: reb\nnodes:\n  gen: {type: generator, rows: 1, to: [out]}\n  out: {type: discard}\n").unwrap().start().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    handle.set_budget(flow::Budget::Closed);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = handle.counters()[0].1.emitted;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = handle.counters()[0].1.emitted;
    assert!(during - before <= 1, "a closed budget lets nothing in ({before} -> {during})");
    handle.set_budget(flow::Budget::Limited { max_message_bytes: None, max_rate: Some(100.0) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = handle.counters()[0].1.emitted;
    assert!((5..=40).contains(&(after - during)), "100 messages/s for 0.2 s: {}", after - during);
    let report = handle.shutdown(Duration::from_secs(5)).await;
    let generator = report.node("gen").unwrap();
    assert_eq!(generator.acked, generator.emitted, "what was sent before the shutdown was delivered: {generator:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_exporter_makes_the_receiver_wait_with_bounded_queues() {
    // Backpressure: the sink takes 20 ms per message; queues hold 4 messages; the
    // generator cannot run ahead by more than the queues and the task in hand.
    let s = Arc::new(Sink::default());
    s.delay_ms.store(20, Ordering::Relaxed);
    let mut env = BuildEnv::default();
    let s2 = s.clone();
    env.register("sink", move |_, _| Ok(sink(Signals::ANY, s2.clone())));
    let handle = compile_with("flow: bp\nqueue: 4\nnodes:\n  gen: {type: generator, rows: 100, to: [f]}\n  f: {type: sample, every: 1, to: [snk]}\n  snk: {type: sink}\n", &env)
        .unwrap()
        .start()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = handle.counters()[0].1.emitted;
    let exported = s.exported.lock().len() as u64;
    assert!(sent <= exported + 4 + 4 + 3, "generator ran ahead: sent {sent}, exported {exported}");
    // The queues in front of the stalled sink are full, and say so (`Counts::queued`).
    let counts = handle.counters();
    let queued: Vec<(String, u64)> = counts.iter().map(|(n, c)| (n.clone(), c.queued)).collect();
    assert!(queued.iter().any(|(_, q)| *q >= 2), "{queued:?}");
    assert!(queued.iter().all(|(_, q)| *q <= 4), "no queue holds more than its size: {queued:?}");
    assert_eq!(queued.iter().find(|(n, _)| n == "gen").unwrap().1, 0, "a receiver has no input queue");
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_error_is_reported_and_the_flow_goes_on() {
    let s = Arc::new(Sink::default());
    let (env, out) = env_with(5, None, &[("sink", s.clone())]);
    // Comparing a string column with a number fails for every message.
    let report = run("flow: e\nnodes:\n  src: {type: source, to: [f]}\n  f: {type: filter, where: {column: body, op: '==', value: 3}, to: [snk]}\n  snk: {type: sink}\n", &env).await;
    assert_eq!(report.node("f").unwrap().errors, 5);
    assert!(report.errors.iter().any(|(n, e)| n == "f" && e.contains("column `body`")), "{:?}", report.errors);
    assert_eq!(out.nacked.lock().len(), 5, "each failed message is NACKed, not lost");
    assert!(out.nacked.lock().iter().all(|(_, r)| *r == NackReason::Rejected));
}

// ---- fusion does not change results ----

mod fusion_property {
    use proptest::prelude::*;

    use super::*;

    /// A random layered DAG: a generator, layers of processors (each fed by one or more of
    /// the previous layer), exporters at the end.
    fn flow_yaml(layers: &[Vec<(u8, Vec<usize>)>], fuse: bool) -> String {
        let mut y = format!("flow: p\nfuse: {fuse}\nnodes:\n");
        let name = |l: usize, i: usize| format!("n{l}_{i}");
        // gen feeds every node of layer 0.
        let first: Vec<String> = (0..layers[0].len()).map(|i| name(0, i)).collect();
        y += &format!("  gen: {{type: generator, count: 40, rows: 8, to: [{}]}}\n", first.join(", "));
        for (l, layer) in layers.iter().enumerate() {
            for (i, (kind, _)) in layer.iter().enumerate() {
                let to: Vec<String> = if l + 1 < layers.len() {
                    layers[l + 1].iter().enumerate().filter(|(_, (_, from))| from.contains(&i)).map(|(j, _)| name(l + 1, j)).collect()
                } else {
                    vec![format!("out{i}")]
                };
                let to = if to.is_empty() { format!("[out{l}x{i}]") } else { format!("[{}]", to.join(", ")) };
                // Processors whose output does not depend on the order messages arrive in
                // (a node fed by two branches sees them interleaved differently each run).
                let body = match kind % 4 {
                    0 => "type: filter, where: {column: severity_number, op: '>=', value: 13}".to_string(),
                    1 => "type: filter, where: {column: severity_number, op: '!=', value: 17}".to_string(),
                    2 => "type: deadline, after: 60s".to_string(),
                    _ => "type: ack, mode: downstream".to_string(),
                };
                y += &format!("  {}: {{{body}, to: {to}}}\n", name(l, i));
                if to.starts_with("[out") {
                    for t in to.trim_matches(['[', ']']).split(", ") {
                        y += &format!("  {t}: {{type: discard}}\n");
                    }
                }
            }
        }
        y
    }

    fn layers() -> impl Strategy<Value = Vec<Vec<(u8, Vec<usize>)>>> {
        prop::collection::vec(1usize..4, 1..5).prop_flat_map(|widths| {
            let n = widths.len();
            let mut strategies = Vec::new();
            for l in 0..n {
                let prev = if l == 0 { 1 } else { widths[l - 1] };
                strategies.push(prop::collection::vec(
                    (any::<u8>(), prop::collection::btree_set(0..prev, 1..=prev).prop_map(|s| s.into_iter().collect::<Vec<_>>())),
                    widths[l],
                ));
            }
            strategies
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
        #[test]
        fn random_dags_give_the_same_outputs_with_and_without_fusion(layers in layers()) {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let outputs = |fuse: bool| {
                rt.block_on(async {
                    let yaml = flow_yaml(&layers, fuse);
                    let report = compile(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}")).start().unwrap().finish(Duration::from_secs(10)).await;
                    let exporters: Vec<(String, u64, u64)> = report.counts.iter().filter(|(n, _)| n.starts_with("out")).map(|(n, c)| (n.clone(), c.received, c.rows)).collect();
                    let generator = report.node("gen").unwrap();
                    (exporters.into_iter().collect::<BTreeSet<_>>(), generator.acked, generator.nacked)
                })
            };
            prop_assert_eq!(outputs(true), outputs(false));
        }
    }
}

// ---- data processors and admission ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_turns_frames_into_metrics_and_aggregate_summarises_windows() {
    let s = Arc::new(Sink::default());
    let mut env = BuildEnv::default();
    let s2 = s.clone();
    env.register("metrics_sink", move |_, _| Ok(sink(Signals::of(SignalType::Metrics), s2.clone())));
    // 20 messages x 50 rows of frames at 1 ms: 1 s of data on 2 channels.
    let report = run(
        "flow: cp
nodes:
  gen: {type: generator, signal: frames, rows: 50, channels: 2, count: 20, to: [cp]}
  cp: {type: convert, into: metrics, to: [ap]}
  ap: {type: aggregate, window: 100ms, value: value, key: name, to: [snk]}
  snk: {type: metrics_sink}
",
        &env,
    )
    .await;
    let generator = report.node("gen").unwrap();
    assert_eq!(generator.acked, 20, "every frame is settled once its windows are emitted: {report:?}");
    assert_eq!(report.node("cp").unwrap().rows, 1000);
    // 1 s in 100 ms windows, 2 channels, 5 statistics: 10 x 2 x 5 rows.
    assert_eq!(s.rows.load(Ordering::Relaxed), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_closes_the_budget_when_the_exporter_falls_behind() {
    let s = Arc::new(Sink::default());
    s.delay_ms.store(5, Ordering::Relaxed);
    let mut env = BuildEnv::default();
    let s2 = s.clone();
    env.register("sink", move |_, _| Ok(sink(Signals::ANY, s2.clone())));
    let handle = compile_with(
        "flow: ac\nqueue: 1000\nnodes:\n  gen: {type: generator, rows: 10, to: [ac]}\n  ac: {type: admission, max_in_flight: 20, to: [snk]}\n  snk: {type: sink}\n",
        &env,
    )
    .unwrap()
    .start()
    .unwrap();
    // The queues hold 2 x 1,000 messages: without admission the generator runs ~2,000
    // ahead of the slow exporter (5 ms per message). With it, the gap is the 20 in flight
    // plus what reached the admission node's queue before it closed the budget (REB is
    // reactive), and it does not grow.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let c = handle.counters();
        let sent = c[0].1.emitted;
        let exported = s.exported.lock().len() as u64;
        assert!(sent <= exported + 300, "admission let {sent} through with {exported} exported");
    }
    let report = handle.shutdown(Duration::from_secs(5)).await;
    let generator = report.node("gen").unwrap();
    assert!(generator.emitted > 20, "the budget reopened as the exporter caught up: {generator:?}");
    assert_eq!(generator.acked, generator.emitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_files_roll_and_messages_are_acknowledged_only_once_the_file_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("parquet");
    // 20 rows per message, files of 400 rows: a file holds exactly 20 messages.
    let yaml = format!(
        "flow: pq\nnodes:\n  gen: {{type: generator, signal: logs, rows: 20, rate: 2000, to: [pq]}}\n  pq: {{type: parquet_exporter, dir: '{}', roll: 10s, max_rows: 400}}\n",
        out.display()
    );
    let handle = compile(&yaml).unwrap().start().unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Only messages in whole files (rolled, fsynced, renamed) are ever acknowledged: every
        // acknowledged message is in a finished file by the time the count is read. (The
        // generator counts a file's 20 acknowledgements one by one, so the count itself need
        // not be a multiple of 20.)
        let acked = handle.counters()[0].1.acked;
        let finished = std::fs::read_dir(&out)
            .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".parquet"))).count() as u64)
            .unwrap_or(0);
        assert!(acked <= finished * 20, "{acked} acknowledged with {finished} finished files of 20 messages: part of an open file");
        seen.insert(acked);
    }
    assert!(seen.iter().any(|&a| a >= 40), "files rolled while running: {seen:?}");
    let report = handle.shutdown(Duration::from_secs(10)).await;
    let generator = report.node("gen").unwrap();
    assert_eq!(generator.acked, generator.emitted, "the last, partial file is rolled when the flow ends");
    let mut rows = 0;
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.ends_with(".parquet") && !name.starts_with('.'), "no partial file is left: {name}");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
            .unwrap()
            .build()
            .unwrap();
        rows += reader.map(|b| b.unwrap().num_rows() as u64).sum::<u64>();
    }
    assert_eq!(rows, generator.emitted * 20, "every acknowledged row is in a readable file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_parquet_exporter_rolls_on_its_timer() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "flow: pq\nnodes:\n  gen: {{type: generator, signal: metrics, rows: 5, count: 3, to: [pq]}}\n  pq: {{type: parquet_exporter, dir: '{}', roll: 50ms}}\n",
        dir.path().display()
    );
    let handle = compile(&yaml).unwrap().start().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(handle.counters()[0].1.acked, 3, "rolled by the timer, not by the end of the flow");
    handle.shutdown(Duration::from_secs(5)).await;
}
