//! Managing flows through the client (`telemetron::flow::Flows`), on both backends with the
//! same assertions: deploy, list, live reconfiguration (CFG), reconfiguration by restart,
//! typed errors that leave running flows alone, stop with final counters. The remote runs
//! go through the protocol's `flows/*` calls to a node on loopback.

use crate::backends;

use std::time::{Duration, Instant};

use backends::{Backend, SECOND, code};
use telemetron::flow::{Applied, FlowFailure, FlowInfo, FlowState, Flows};

const DRAIN: Duration = Duration::from_secs(5);

/// A generator of 4-row log messages (severities 9, 13, 17, 5) at `rate` per second, a
/// filter keeping `severity_number >= min`, and a discarding exporter.
fn pipeline(rate: u32, min: u32) -> String {
    format!(
        "flow: pipe\nqueue: 4\nnodes:\n  gen: {{type: generator, rows: 4, rate: {rate}, to: [keep]}}\n  keep: {{type: filter, where: {{column: severity_number, op: '>=', value: {min}}}, to: [out]}}\n  out: {{type: discard}}\n"
    )
}

/// Poll flow `name` until `done` holds for its info (at most `within`).
async fn wait_until(flows: &Flows, name: &str, within: Duration, what: &str, done: impl Fn(&FlowInfo) -> bool) -> FlowInfo {
    let deadline = Instant::now() + within;
    loop {
        let info = flows.get(name).await.unwrap();
        if done(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {info:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn received(info: &FlowInfo, node: &str) -> u64 {
    info.node(node).unwrap_or_else(|| panic!("no node {node} in {info:#?}")).counts.received
}

async fn deploy_reconfigure_stop(b: &Backend) {
    let flows = Flows::new(&b.client);
    assert!(flows.list().await.unwrap().is_empty());

    let info = flows.deploy(&pipeline(1000, 13)).await.unwrap();
    assert_eq!((info.name.as_str(), info.state), ("pipe", FlowState::Running));
    let kinds: Vec<(&str, &str, bool)> = info.nodes.iter().map(|n| (n.name.as_str(), n.kind.as_str(), n.reconfigurable)).collect();
    assert_eq!(kinds, [("gen", "generator", true), ("keep", "filter", true), ("out", "discard", false)]);
    assert_eq!(flows.list().await.unwrap().iter().map(|f| f.name.clone()).collect::<Vec<_>>(), ["pipe"]);
    // Severity >= 13 keeps 2 of every 4 rows: messages reach the exporter.
    wait_until(&flows, "pipe", SECOND, "messages at the exporter", |i| received(i, "out") >= 20).await;

    // A name that runs already, and a wrong file: typed errors, the flow goes on.
    assert_eq!(code(flows.deploy(&pipeline(10, 1)).await), "flow.name_taken");
    let bad = pipeline(1000, 13).replace("type: discard", "type: dicard");
    let err = flows.reconfigure("pipe", &bad, DRAIN).await.unwrap_err();
    assert_eq!(err.code(), "flow.config");
    assert!(matches!(err, telemetron::Error::Flow(FlowFailure::Config { .. })), "{err:?}");
    assert!(err.to_string().contains("dicard") && err.to_string().contains("line 6"), "{err}");
    assert_eq!(code(flows.reconfigure("nope", &pipeline(1, 1), DRAIN).await), "flow.not_found");
    assert_eq!(code(flows.get("nope").await), "flow.not_found");
    assert_eq!(code(flows.stop("nope", DRAIN).await), "flow.not_found");
    let cycle = "flow: pipe\nnodes:\n  a: {type: generator, to: [b]}\n  b: {type: filter, where: {column: x, op: '>', value: 1}, to: [c]}\n  c: {type: sample, every: 2, to: [b]}\n";
    assert_eq!(code(flows.reconfigure("pipe", cycle, DRAIN).await), "flow.config");
    let before = flows.get("pipe").await.unwrap();
    assert_eq!(before.state, FlowState::Running);
    assert_eq!(before.started, info.started, "a refused reconfiguration restarted the flow");

    // CFG: only the filter's condition changes; it is applied live, nothing restarts, and
    // from then on no row passes (severity >= 100).
    let r = flows.reconfigure("pipe", &pipeline(1000, 100), DRAIN).await.unwrap();
    assert_eq!((r.applied, r.nodes.as_slice(), r.reason.as_deref()), (Applied::Live, &["keep".to_string()][..], None));
    assert_eq!(r.flow.started, info.started);
    assert!(r.flow.config.contains("value: 100"));
    // Within a few seconds there is a window in which the filter takes 50 more messages and
    // not one reaches the exporter.
    let deadline = Instant::now() + SECOND;
    loop {
        let a = flows.get("pipe").await.unwrap();
        let b2 = wait_until(&flows, "pipe", SECOND, "50 more messages", |i| received(i, "keep") >= received(&a, "keep") + 50).await;
        if received(&b2, "out") == received(&a, "out") {
            break;
        }
        assert!(Instant::now() < deadline, "the new filter condition never took effect: {b2:#?}");
    }
    let same = flows.reconfigure("pipe", &pipeline(1000, 100), DRAIN).await.unwrap();
    assert_eq!((same.applied, same.nodes.len()), (Applied::Unchanged, 0));

    // The generator's rate is live too; a new node is a restart, which drains the old flow.
    let r = flows.reconfigure("pipe", &pipeline(2000, 100), DRAIN).await.unwrap();
    assert_eq!((r.applied, r.nodes.as_slice()), (Applied::Live, &["gen".to_string()][..]));
    let sampled = pipeline(2000, 1).replace("to: [keep]}", "to: [thin]}\n  thin: {type: sample, every: 2, to: [keep]}");
    let r = flows.reconfigure("pipe", &sampled, DRAIN).await.unwrap();
    assert_eq!(r.applied, Applied::Restarted);
    assert_eq!(r.reason.as_deref(), Some("nodes were added or removed"));
    assert!(r.flow.started > info.started);
    assert!(r.flow.node("thin").is_some());
    wait_until(&flows, "pipe", SECOND, "the restarted flow to deliver", |i| received(i, "out") >= 10).await;

    // Stop: the final counters; every message the exporter took was acknowledged back.
    let last = flows.stop("pipe", DRAIN).await.unwrap();
    assert_eq!((last.state, last.drained), (FlowState::Stopped, Some(true)));
    let source = last.node("gen").unwrap().counts;
    assert!(source.acked >= received(&last, "out") && source.nacked == 0, "{last:#?}");
    assert!(last.errors.is_empty(), "{:?}", last.errors);
    assert!(flows.list().await.unwrap().is_empty());
}

async fn bounded_flows_finish_and_report_errors(b: &Backend) {
    let flows = Flows::new(&b.client);
    // A bounded source finishes; the flow stays listed as finished with its counters.
    let done = "flow: done\nnodes:\n  gen: {type: generator, count: 25, to: [out]}\n  out: {type: discard}\n";
    flows.deploy(done).await.unwrap();
    let info = wait_until(&flows, "done", SECOND, "the bounded flow to finish", |i| i.state == FlowState::Finished).await;
    assert_eq!(info.node("gen").unwrap().counts.acked + info.node("gen").unwrap().counts.nacked, 25);
    // A component error at runtime is counted and listed; the flow and the node go on.
    let failing = "flow: failing\nnodes:\n  gen: {type: generator, rate: 500, to: [f]}\n  f: {type: filter, where: {column: body, op: '>', value: 3}, to: [out]}\n  out: {type: discard}\n";
    flows.deploy(failing).await.unwrap();
    let info = wait_until(&flows, "failing", SECOND, "the filter's errors", |i| i.errors.len() >= 3).await;
    assert_eq!(info.state, FlowState::Running);
    assert!(info.errors.iter().all(|e| e.node == "f"), "{:?}", info.errors);
    assert!(info.node("f").unwrap().counts.errors >= 3);
    // A refused CFG (a generator cannot change its signal while running) is an error of
    // that node; the old options stay.
    let r = flows.reconfigure("failing", &failing.replace("rate: 500,", "rate: 500, signal: metrics,"), DRAIN).await.unwrap();
    assert_eq!(r.applied, Applied::Live);
    let info = wait_until(&flows, "failing", SECOND, "the refused CFG", |i| i.errors.iter().any(|e| e.node == "gen")).await;
    assert!(info.errors.iter().any(|e| e.error.contains("need the flow restarted")), "{:?}", info.errors);
    for name in ["done", "failing"] {
        flows.stop(name, DRAIN).await.unwrap();
    }
}

/// REB through CFG: lowering the admission controller's rate while the flow runs slows
/// the receiver down at once (an upper bound, so load on the machine cannot fake it).
async fn admission_rate_changes_live(b: &Backend) {
    let flows = Flows::new(&b.client);
    let yaml = |rate: u32| {
        format!(
            "flow: gate\nnodes:\n  gen: {{type: generator, to: [ac]}}\n  ac: {{type: admission, max_rate: {rate}, to: [out]}}\n  out: {{type: discard}}\n"
        )
    };
    flows.deploy(&yaml(5000)).await.unwrap();
    wait_until(&flows, "gate", SECOND, "traffic", |i| received(i, "out") > 50).await;
    let r = flows.reconfigure("gate", &yaml(20), DRAIN).await.unwrap();
    assert_eq!((r.applied, r.nodes.as_slice()), (Applied::Live, &["ac".to_string()][..]));
    // Let the new budget arrive, then count what the source sends in one second.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = flows.get("gate").await.unwrap().node("gen").unwrap().counts.emitted;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = flows.get("gate").await.unwrap().node("gen").unwrap().counts.emitted;
    let per_second = (after - before) as f64 / t0.elapsed().as_secs_f64();
    assert!(per_second <= 30.0, "the source still sends {per_second:.0} messages/s under a 20/s budget");
    assert!(after > before, "the source stopped instead of slowing down");
    flows.stop("gate", DRAIN).await.unwrap();
}

on_both!(deploy_reconfigure_stop, bounded_flows_finish_and_report_errors, admission_rate_changes_live);

/// A node's `--flow` files and client deployments share one list; a node shutting down
/// drains its flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_flows_are_shared_and_drained_on_shutdown() {
    let b = Backend::remote().await;
    let server = b.server.as_ref().unwrap();
    // Deployed in-process, as `serve --flow` does; visible to a remote client.
    Flows::local(server.flows().clone()).deploy(&pipeline(200, 1)).await.unwrap();
    let remote = Flows::new(&b.client);
    let other = Flows::new(&b.another().await);
    assert_eq!(remote.list().await.unwrap().len(), 1);
    wait_until(&other, "pipe", SECOND, "traffic", |i| received(i, "out") > 5).await;
    let Backend { server, .. } = b;
    let server = server.unwrap();
    let manager = server.flows().clone();
    server.shutdown().await.unwrap();
    assert!(manager.list().await.is_empty(), "the node's flows outlived it");
}
