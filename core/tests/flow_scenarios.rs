//! The dataflow scenarios 2 to 4 of docs/dataflow.md §7 as real processes with real faults:
//! `telemetron serve` nodes are SIGKILLed, SIGSTOPped (slow: the sockets stay open, nothing
//! answers), SIGCONTed and restarted on the same data directory while `telemetron flow run
//! examples/flows/FILE` runs. Each test proves its scenario's promise by counting: the
//! generator's `ack_log` (every sequence number the source saw acknowledged), the counter
//! table `flow run` prints at the end, and the messages stored on the nodes (a generator
//! message `seq` of `ROWS` rows has the timestamps `(seq * ROWS + i)` ms, so every stored
//! row names its message).
//!
//! Scenario 1 (ack-on-ingress) is `server_cli.rs`,
//! `ack_on_ingress_survives_an_exporter_outage_and_a_sigkill_of_the_flow`.
//!
//! The tests run one at a time (`serial()`): they measure how the source reacts within
//! wall-clock deadlines, on machines with two cores.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use telemetron::telem::TimeRange;
use telemetron::{ConnectOptions, Engine};

mod node_proc;

use node_proc::BIN;

fn example(name: &str) -> String {
    format!("{}/../examples/flows/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// One scenario at a time: they time the source's reaction to a fault.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A free loopback port (bound and released; the node binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to a child process we started and have not reaped.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0);
}

/// Wait for `done` (polled every 20 ms) until `within` has passed; whether it came.
fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[track_caller]
fn wait_for(what: &str, within: Duration, done: impl FnMut() -> bool) {
    assert!(wait_until(within, done), "timed out after {within:?} waiting for {what}");
}

/// A `telemetron serve` node on a fixed loopback port and data directory, so that it can
/// be killed and started again as the same node. Killed when dropped.
struct Node {
    child: Option<Child>,
    port: u16,
    data: PathBuf,
    url: String,
}

impl Node {
    fn start(data: PathBuf) -> Node {
        let port = free_port();
        let mut n = Node { child: None, port, data, url: format!("http://127.0.0.1:{port}") };
        n.restart();
        n
    }

    /// Start the node (again) and wait for its "serving" line.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "the node runs already");
        let listen = format!("127.0.0.1:{}", self.port);
        let child = node_proc::spawn_serve(&listen, &[OsStr::new("--data"), self.data.as_os_str()], Stdio::null());
        self.child = Some(child);
    }

    fn running(&self) -> &Child {
        self.child.as_ref().expect("the node runs")
    }

    /// SIGKILL, and reap it: once this returns nothing more reaches its engine.
    fn kill(&mut self) {
        let mut c = self.child.take().expect("the node runs");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) {
        let mut c = self.child.take().expect("the node runs");
        signal(&c, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                assert!(s.success(), "the node exited with {s:?}");
                return;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the node did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The message sequences stored in the channels `index` (e.g. `a.time`), read from the
    /// running node: sequence -> rows stored.
    fn stored(&self, index: &str, rows: u64) -> BTreeMap<u64, u64> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ts = rt.block_on(async {
            let client = telemetron::connect(&self.url, ConnectOptions::default()).await.unwrap();
            let ts = match client.channel(index).await {
                Ok(c) => {
                    let f = client.read(TimeRange::MAX, &[c.key]).await.unwrap();
                    f.concat(c.key).unwrap().map(|s| s.as_timestamps().unwrap().to_vec()).unwrap_or_default()
                }
                Err(_) => Vec::new(),
            };
            client.close().await.unwrap();
            ts
        });
        by_seq(&ts, rows)
    }

    /// The same from the node's data directory, the node being down.
    fn stored_offline(&self, index: &str, rows: u64) -> BTreeMap<u64, u64> {
        assert!(self.child.is_none(), "the node is down");
        let engine = Engine::open(&self.data).unwrap();
        let ts = match engine.channels().by_name(index) {
            Ok(c) => {
                let f = engine.read(TimeRange::MAX, &[c.key]).unwrap();
                f.concat(c.key).unwrap().map(|s| s.as_timestamps().unwrap().to_vec()).unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        drop(engine);
        by_seq(&ts, rows)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Stored rows per message: the generator's message `seq` of `rows` rows has the
/// timestamps `(seq * rows + i)` ms.
fn by_seq(ts: &[i64], rows: u64) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    for t in ts {
        *m.entry((*t / 1_000_000) as u64 / rows).or_insert(0) += 1;
    }
    m
}

/// Merge per-message row counts (the same message stored under two prefixes counts twice).
fn merged(maps: &[&BTreeMap<u64, u64>]) -> BTreeMap<u64, u64> {
    let mut all = BTreeMap::new();
    for m in maps {
        for (seq, n) in *m {
            *all.entry(*seq).or_insert(0) += n;
        }
    }
    all
}

/// The generator's `ack_log`: the acknowledged sequence numbers, in order of their ACK.
fn ack_log(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn acked(path: &Path) -> usize {
    ack_log(path).len()
}

/// A `telemetron flow run` process. Its stdout (the final counter table) and stderr (the
/// errors it lists, the warnings it logs) go to files, read when it has exited.
struct Flow {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// How a flow process ended: its status and its final counter table.
#[derive(Debug)]
struct Report {
    status: ExitStatus,
    counts: HashMap<String, Counts>,
    stdout: String,
    /// Shown (with the rest) by `{report:?}` in failure messages.
    #[allow(dead_code)]
    stderr: String,
}

#[derive(Debug, Clone, Copy, Default)]
#[allow(dead_code)] // read through Debug in failure messages
struct Counts {
    received: u64,
    rows: u64,
    emitted: u64,
    acked: u64,
    nacked: u64,
    expired: u64,
    dropped: u64,
    errors: u64,
}

impl Report {
    fn node(&self, name: &str) -> Counts {
        *self.counts.get(name).unwrap_or_else(|| panic!("no counters for `{name}` in:\n{}", self.stdout))
    }
}

impl Flow {
    fn start(dir: &Path, file: &str, args: &[&str], env: &[(&str, String)]) -> Flow {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stdout = dir.join(format!("flow-{n}.out"));
        let stderr = dir.join(format!("flow-{n}.err"));
        let child = Command::new(BIN)
            .args(["flow", "run", file, "--quiet", "--drain", "2s"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .current_dir(dir)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Flow { child: Some(child), stdout, stderr }
    }

    fn running(&mut self) -> bool {
        self.child.as_mut().expect("not waited for").try_wait().unwrap().is_none()
    }

    /// Wait for the flow to end by itself (its receivers are done).
    fn wait(mut self, within: Duration) -> Report {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the flow did not end within {within:?}; stderr:\n{}", std::fs::read_to_string(&self.stderr).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let counts = stdout
            .lines()
            .skip_while(|l| !l.starts_with("node "))
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let n: Vec<u64> = f.get(1..9)?.iter().map(|x| x.parse().ok()).collect::<Option<_>>()?;
                Some((
                    f[0].to_string(),
                    Counts {
                        received: n[0],
                        rows: n[1],
                        emitted: n[2],
                        acked: n[3],
                        nacked: n[4],
                        expired: n[5],
                        dropped: n[6],
                        errors: n[7],
                    },
                ))
            })
            .collect();
        Report { status, counts, stdout, stderr }
    }

    /// Ctrl-C (SIGINT: the flow drains), then wait for it to end.
    fn interrupt(self, within: Duration) -> Report {
        signal(self.child.as_ref().unwrap(), libc::SIGINT);
        self.wait(within)
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A node SIGSTOPped for as long as this lives (SIGCONT when dropped, so that a failed
/// assertion does not leave a stopped process behind).
struct Stopped<'a>(&'a Node);

impl<'a> Stopped<'a> {
    fn new(node: &'a Node) -> Stopped<'a> {
        signal(node.running(), libc::SIGSTOP);
        Stopped(node)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if let Some(c) = &self.0.child {
            signal(c, libc::SIGCONT);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scenario 2: at-least-one acknowledgement (examples/flows/at-least-one.yaml, §7.2).
// ---------------------------------------------------------------------------------------

/// Two nodes A and B. A is SIGKILLed mid-stream: the source goes on being acknowledged,
/// because B commits every message. Then B is SIGKILLed too: from then on nothing is
/// acknowledged, every message is NACKed. Proof by counting: every acknowledged sequence
/// is stored on a node (those acknowledged after A's death on B), and the source's ACK and
/// NACK counts add up to what it sent.
#[test]
fn at_least_one_acknowledges_while_one_node_lives_and_nothing_once_both_are_killed() {
    let _serial = serial();
    const COUNT: u64 = 900;
    const ROWS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("acked.log");
    let mut a = Node::start(dir.path().join("node-a"));
    let mut b = Node::start(dir.path().join("node-b"));
    let started = Instant::now();
    let mut flow = Flow::start(
        dir.path(),
        &example("at-least-one.yaml"),
        &[],
        &[
            ("TELEMETRON_NODE_A", a.url.clone()),
            ("TELEMETRON_NODE_B", b.url.clone()),
            ("ACK_LOG", log.display().to_string()),
            ("COUNT", COUNT.to_string()),
            ("RATE", "200".into()),
        ],
    );

    // Both up.
    wait_for("150 acknowledgements with both nodes up", Duration::from_secs(10), || acked(&log) >= 150);
    a.kill();
    let at_a_kill = acked(&log);
    // A is gone, B takes everything: the source is still acknowledged.
    let b_alone = wait_until(Duration::from_secs(5), || acked(&log) >= at_a_kill + 300);
    let at_b_kill_before = acked(&log);
    b.kill();
    let at_b_kill = acked(&log);
    assert!(flow.running(), "the flow still runs when both nodes are down");

    // Both down: the rest is NACKed; the flow ends once the generator has its outcomes.
    let report = flow.wait(Duration::from_secs(15));
    let elapsed = started.elapsed();
    assert!(report.status.success(), "{report:?}");
    let log_seqs = ack_log(&log);
    let acked_set: BTreeSet<u64> = log_seqs.iter().copied().collect();
    assert_eq!(acked_set.len(), log_seqs.len(), "no sequence acknowledged twice");
    let source = report.node("source");
    let on_a = a.stored_offline("a.time", ROWS);
    let on_b = b.stored_offline("b.time", ROWS);
    eprintln!(
        "at-least-one: {} s; acked {} (A killed at {at_a_kill}, B killed at {at_b_kill}), nacked {}; stored on A {}, on B {}",
        elapsed.as_secs_f32(),
        acked_set.len(),
        source.nacked,
        on_a.len(),
        on_b.len()
    );
    assert!(b_alone, "with A killed, B alone acknowledged only {} messages in 5 s", at_b_kill_before - at_a_kill);
    assert_eq!(source.acked as usize, acked_set.len(), "the counter table and the ack log agree: {report:?}");
    assert_eq!(source.acked + source.nacked, COUNT, "every message settled once: {report:?}");
    assert!(source.nacked >= 100, "with both nodes down the rest was NACKed: {report:?}");
    assert!(on_a.values().chain(on_b.values()).all(|&n| n == ROWS), "every stored message whole and once per node");

    // What was acknowledged is on a node; what was acknowledged after A died is on B.
    let nowhere: Vec<u64> = acked_set.iter().copied().filter(|s| !on_a.contains_key(s) && !on_b.contains_key(s)).collect();
    assert!(nowhere.is_empty(), "{} acknowledged messages are on no node: {:?}...", nowhere.len(), &nowhere[..nowhere.len().min(10)]);
    let b_only = acked_set.iter().filter(|s| !on_a.contains_key(s)).count();
    assert!(b_only >= 250, "{b_only} acknowledged messages are on B only (A was dead)");
    // Nothing acknowledged once both were down: every sequence after the last one a node
    // stored was NACKed (the ack log may only have grown by the ACKs already in flight when
    // B died, which B had stored).
    let last_stored = on_a.keys().chain(on_b.keys()).max().copied().unwrap_or(0);
    assert!(acked_set.iter().all(|s| *s <= last_stored));
    assert!(COUNT - 1 - last_stored >= 100, "at least 100 messages were sent with both nodes down");
}

/// Neither node ever starts: nothing is acknowledged, everything is NACKed (after the
/// retries), and the flow ends.
#[test]
fn at_least_one_acknowledges_nothing_when_both_nodes_are_down() {
    let _serial = serial();
    const COUNT: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("acked.log");
    let flow = Flow::start(
        dir.path(),
        &example("at-least-one.yaml"),
        &[],
        &[
            ("TELEMETRON_NODE_A", format!("http://127.0.0.1:{}", free_port())),
            ("TELEMETRON_NODE_B", format!("http://127.0.0.1:{}", free_port())),
            ("ACK_LOG", log.display().to_string()),
            ("COUNT", COUNT.to_string()),
            ("RATE", "500".into()),
        ],
    );
    let report = flow.wait(Duration::from_secs(15));
    assert!(report.status.success(), "{report:?}");
    let source = report.node("source");
    eprintln!("at-least-one, both down: source {source:?}");
    assert_eq!(ack_log(&log), Vec::<u64>::new(), "nothing acknowledged");
    assert_eq!((source.acked, source.nacked), (0, COUNT), "{report:?}");
    // Each branch tried each message three times (retry attempts: 3) and failed.
    for exporter in ["node_a", "node_b"] {
        let c = report.node(exporter);
        assert_eq!(c.emitted, 0, "{exporter}: {c:?}");
        assert!(c.errors >= COUNT.div_ceil(10), "{exporter} failed every batch: {c:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Scenario 3: best effort (examples/flows/best-effort.yaml, §7.3).
// ---------------------------------------------------------------------------------------

/// The node is SIGKILLed mid-stream and started again on the same data directory. The
/// source is acknowledged at its own pace throughout; what the node could not take is
/// dropped and counted (the exporter's errors), each message tried once; once the node is
/// back, new messages arrive again. `EVERY=1`: no thinning, every message meets the fault.
#[test]
fn best_effort_drops_and_counts_while_the_node_is_killed_and_delivers_again_once_it_is_back() {
    let _serial = serial();
    const COUNT: u64 = 1000;
    const ROWS: u64 = 20;
    const RATE: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("acked.log");
    let mut node = Node::start(dir.path().join("node"));
    let started = Instant::now();
    let flow = Flow::start(
        dir.path(),
        &example("best-effort.yaml"),
        &[],
        &[
            ("TELEMETRON_NODE", node.url.clone()),
            ("ACK_LOG", log.display().to_string()),
            ("COUNT", COUNT.to_string()),
            ("RATE", RATE.to_string()),
            ("EVERY", "1".into()),
        ],
    );
    wait_for("50 messages on the node", Duration::from_secs(10), || node.stored("debug.time", ROWS).len() >= 50);
    node.kill();
    let down = Instant::now();
    let at_kill = acked(&log);
    // Down for 1.5 s: the source keeps its pace (200 messages/s; 150 is half of it).
    let kept_pace = wait_until(Duration::from_millis(1500), || acked(&log) >= at_kill + 150);
    let during_outage = acked(&log) - at_kill;
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(down.elapsed()));
    let acked_while_down = acked(&log) - at_kill;
    node.restart();
    let back_at = acked(&log) as u64;
    // New messages arrive again.
    wait_for("a message sent after the restart on the node", Duration::from_secs(10), || {
        node.stored("debug.time", ROWS).keys().next_back().is_some_and(|&s| s > back_at)
    });
    let report = flow.wait(Duration::from_secs(15));
    let elapsed = started.elapsed();
    assert!(report.status.success(), "{report:?}");
    let stored = node.stored("debug.time", ROWS);
    node.stop();

    let (source, store) = (report.node("source"), report.node("store"));
    eprintln!(
        "best-effort, node killed for {:.1} s: {} s; acked {} ({acked_while_down} while down); store {store:?}; stored {}",
        1.5,
        elapsed.as_secs_f32(),
        source.acked,
        stored.len()
    );
    assert!(kept_pace, "the source was acknowledged only {during_outage} times in 1.5 s with the node down");
    assert_eq!((source.acked, source.nacked), (COUNT, 0), "every message acknowledged at ingress: {report:?}");
    assert_eq!(acked(&log) as u64, COUNT);
    // Each message reaches the exporter once (no retry) and is stored or lost, counted:
    // refused at its full queue (`overflow: nack`, `dropped`: the exporter was still
    // waiting on the dead node) or failed by the node (`errors`).
    assert_eq!(store.received + store.dropped, COUNT, "every message taken or refused at the queue: {store:?}");
    assert_eq!(store.emitted + store.errors + store.dropped, COUNT, "every message stored or counted as lost once: {store:?}");
    assert!(store.errors + store.dropped >= 100, "the outage lost messages, counted: {store:?}");
    // What the exporter counted as stored is on the node. A write in flight when the node
    // was killed is in doubt: the node may have committed it without the reply arriving,
    // so it can be on the node although counted as dropped (at most one per kill).
    let on_node = stored.len() as u64;
    assert!(on_node >= store.emitted && on_node <= store.emitted + 1, "{on_node} on the node, {store:?}");
    assert!(stored.values().all(|&n| n == ROWS), "each stored message whole, once");
    assert!(stored.keys().any(|&s| s > back_at), "messages sent after the restart arrived");
}

/// The node is SIGSTOPped for 2 s: its sockets stay open and nothing answers (a slow
/// destination). The YAML promises that a slow destination "loses data, never blocks the
/// source for long": the source must keep being acknowledged near its pace. After SIGCONT
/// messages arrive again.
///
/// This failed (67 acknowledgements in the 2 s) while backpressure from the stalled
/// exporter's full queue reached the source; the exporter now has `overflow: nack`.
#[test]
fn best_effort_a_sigstopped_node_does_not_block_the_source() {
    let _serial = serial();
    const COUNT: u64 = 1000;
    const ROWS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("acked.log");
    let mut node = Node::start(dir.path().join("node"));
    let flow = Flow::start(
        dir.path(),
        &example("best-effort.yaml"),
        &[],
        &[
            ("TELEMETRON_NODE", node.url.clone()),
            ("ACK_LOG", log.display().to_string()),
            ("COUNT", COUNT.to_string()),
            ("RATE", "200".into()),
            ("EVERY", "1".into()),
        ],
    );
    wait_for("50 messages on the node", Duration::from_secs(10), || node.stored("debug.time", ROWS).len() >= 50);
    let (at_stop, during_stop) = {
        let _stopped = Stopped::new(&node);
        let at_stop = acked(&log);
        // 2 s stopped: at 200 messages/s, 300 is three quarters of the pace.
        wait_until(Duration::from_secs(2), || acked(&log) >= at_stop + 300);
        std::thread::sleep(Duration::from_millis(100));
        (at_stop, acked(&log) - at_stop)
    };
    let cont_at = acked(&log) as u64;
    wait_for("a message sent after SIGCONT on the node", Duration::from_secs(15), || {
        node.stored("debug.time", ROWS).keys().next_back().is_some_and(|&s| s > cont_at)
    });
    let report = flow.wait(Duration::from_secs(20));
    node.stop();
    let (source, store) = (report.node("source"), report.node("store"));
    eprintln!("best-effort, node stopped 2 s: acked {during_stop} while stopped (from {at_stop}); source {source:?}; store {store:?}");
    assert_eq!((source.acked, source.nacked), (COUNT, 0), "{report:?}");
    assert!(during_stop >= 300, "a SIGSTOPped node blocked the source: {during_stop} acknowledgements in 2 s at 200 messages/s");
}

// ---------------------------------------------------------------------------------------
// Scenario 4: failover to the durable queue, drained back (examples/flows/failover.yaml, §7.4).
// ---------------------------------------------------------------------------------------

/// What the failover tests count once the flow has stopped: every acknowledged message is
/// on the node, under `primary.` or `drained.`; the copies beyond one are duplicates
/// (at least once).
fn count_failover(acked: &BTreeSet<u64>, primary: &BTreeMap<u64, u64>, drained: &BTreeMap<u64, u64>, rows: u64) -> usize {
    let all = merged(&[primary, drained]);
    assert!(all.values().all(|n| n % rows == 0), "every stored message whole");
    assert!(primary.values().chain(drained.values()).all(|&n| n == rows), "at most one copy per channel (the engine refuses overlaps)");
    let missing: Vec<u64> = acked.iter().copied().filter(|s| !all.contains_key(s)).collect();
    assert!(missing.is_empty(), "{} acknowledged messages are not on the node: {:?}", missing.len(), &missing[..missing.len().min(20)]);
    all.values().filter(|&&n| n > rows).count()
}

/// The node is SIGKILLed mid-stream: the primary fails, the failover parks the messages in
/// the durable queue and the source is still acknowledged at its pace. The node is started
/// again on the same data directory. Every message is acknowledged, none NACKed, and each
/// is on the node's primary or was appended to the queue (counted by the flow).
#[test]
fn failover_parks_in_the_queue_while_the_node_is_killed() {
    failover_with_the_node_killed(false);
}

/// The same, then the promise of §7.4 in full: the queue drains back into the restarted
/// node, and every acknowledged message is on the node at least once (`primary.` or
/// `drained.`; duplicates counted).
///
/// The queue holds the messages in the order the primary failed them, and retries and
/// redeliveries reorder them further: the drain reaches the node out of time order. This
/// lost about 220 of 310 parked messages while the channels exporter kept one writer open
/// across messages (its stored domain bridged the gaps where the late messages belong, so
/// the engine refused them and the queue skipped them as `rejected`). The exporter now
/// writes each message as its own domain, and a message refused as overlapping is ACKed
/// only when the node holds exactly its timestamps.
#[test]
fn failover_drains_every_acknowledged_message_back_into_the_restarted_node() {
    failover_with_the_node_killed(true);
}

fn failover_with_the_node_killed(drained_back: bool) {
    let _serial = serial();
    const COUNT: u64 = 1000;
    const ROWS: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("acked.log");
    let queue = dir.path().join("queue");
    let mut node = Node::start(dir.path().join("node"));
    let started = Instant::now();
    let flow = Flow::start(
        dir.path(),
        &example("failover.yaml"),
        &["--data", queue.to_str().unwrap()],
        &[
            ("TELEMETRON_NODE", node.url.clone()),
            ("ACK_LOG", log.display().to_string()),
            ("COUNT", COUNT.to_string()),
            ("RATE", "200".into()),
        ],
    );
    wait_for("100 messages on the primary", Duration::from_secs(10), || node.stored("primary.time", ROWS).len() >= 100);
    node.kill();
    let at_kill = acked(&log);
    // Down: the queue takes them, the source is acknowledged at its pace (200/s).
    let parked = wait_until(Duration::from_secs(3), || acked(&log) >= at_kill + 300);
    let while_down = acked(&log) - at_kill;
    node.restart();
    wait_for("every message acknowledged", Duration::from_secs(15), || acked(&log) as u64 >= COUNT);
    // The queue drains back: everything (in full), or at least something.
    let drained_enough = |n: &Node| {
        let (p, d) = (n.stored("primary.time", ROWS), n.stored("drained.time", ROWS));
        if drained_back { merged(&[&p, &d]).len() as u64 >= COUNT } else { !d.is_empty() }
    };
    let all_there = wait_until(Duration::from_secs(10), || drained_enough(&node));
    let report = flow.interrupt(Duration::from_secs(10));
    let elapsed = started.elapsed();
    assert!(report.status.success(), "{report:?}");
    let (primary, drained) = (node.stored("primary.time", ROWS), node.stored("drained.time", ROWS));
    node.stop();

    let seqs = ack_log(&log);
    let acked_set: BTreeSet<u64> = seqs.iter().copied().collect();
    let (source, park, drain) = (report.node("source"), report.node("park"), report.node("drained"));
    let on_node = merged(&[&primary, &drained]);
    let missing: Vec<u64> = acked_set.iter().copied().filter(|s| !on_node.contains_key(s)).collect();
    eprintln!(
        "failover, node killed: {:.1} s; acked {} ({while_down} while down); primary {}, drained {}, acknowledged but not on the node {}; park {park:?}; drained {drain:?}",
        elapsed.as_secs_f32(),
        acked_set.len(),
        primary.len(),
        drained.len(),
        missing.len(),
    );
    assert!(parked, "with the primary killed the source was acknowledged only {while_down} times in 3 s");
    assert_eq!(acked_set.len(), seqs.len(), "no sequence acknowledged twice");
    assert_eq!((source.acked, source.nacked), (COUNT, 0), "{report:?}");
    assert_eq!(acked_set, (0..COUNT).collect(), "every message acknowledged");
    // Acknowledged when the primary or the queue has it: what the primary lacks was
    // appended to the queue (a message can be in both: the primary may commit it after the
    // failover gave up on it).
    let not_on_primary = acked_set.iter().filter(|s| !primary.contains_key(s)).count() as u64;
    assert!(park.emitted >= not_on_primary, "{not_on_primary} acknowledged messages not on the primary, {park:?} in the queue");
    assert!(park.emitted >= 300, "the outage went to the queue: {park:?}");
    assert!(
        all_there,
        "the queue did not drain back: {} of {COUNT} messages on the node, {} missing; the flow's errors:\n{}",
        on_node.len(),
        missing.len(),
        report
            .stderr
            .lines()
            .filter(|l| l.starts_with("error in") && !l.contains("Connection refused"))
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    if drained_back {
        let duplicates = count_failover(&acked_set, &primary, &drained, ROWS);
        eprintln!("failover, node killed: every acknowledged message on the node; {duplicates} stored twice");
    }
}

/// The node is SIGSTOPped mid-stream (a slow primary: the sockets stay open, nothing
/// answers): the failover's `timeout: 250ms` must send the messages to the queue and the
/// source must go on being acknowledged. After SIGCONT the queue drains back into the node.
/// Every acknowledged message is then on the node at least once; a message that timed out
/// and was still committed by the primary after SIGCONT is there twice (counted).
///
/// This failed (about 80 acknowledgements in the 3 s) while the failover waited for room in
/// the stalled primary's queue; the primary path now has `overflow: nack`, so a full queue
/// is a NACK and the message goes to the queue at once.
#[test]
fn failover_parks_in_the_queue_while_the_node_is_sigstopped_and_drains_back_after_sigcont() {
    let _serial = serial();
    const COUNT: u64 = 1000;
    const ROWS: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("acked.log");
    let queue = dir.path().join("queue");
    let mut node = Node::start(dir.path().join("node"));
    let flow = Flow::start(
        dir.path(),
        &example("failover.yaml"),
        &["--data", queue.to_str().unwrap()],
        &[
            ("TELEMETRON_NODE", node.url.clone()),
            ("ACK_LOG", log.display().to_string()),
            ("COUNT", COUNT.to_string()),
            ("RATE", "200".into()),
        ],
    );
    wait_for("100 messages on the primary", Duration::from_secs(10), || node.stored("primary.time", ROWS).len() >= 100);
    let (parked, while_stopped) = {
        let _stopped = Stopped::new(&node);
        let at_stop = acked(&log);
        let parked = wait_until(Duration::from_secs(3), || acked(&log) >= at_stop + 300);
        (parked, acked(&log) - at_stop)
    };
    wait_for("every message acknowledged", Duration::from_secs(15), || acked(&log) as u64 >= COUNT);
    wait_for("every message on the node", Duration::from_secs(15), || {
        merged(&[&node.stored("primary.time", ROWS), &node.stored("drained.time", ROWS)]).len() as u64 >= COUNT
    });
    let report = flow.interrupt(Duration::from_secs(10));
    assert!(report.status.success(), "{report:?}");
    let (primary, drained) = (node.stored("primary.time", ROWS), node.stored("drained.time", ROWS));
    node.stop();
    let acked_set: BTreeSet<u64> = ack_log(&log).into_iter().collect();
    let duplicates = count_failover(&acked_set, &primary, &drained, ROWS);
    eprintln!(
        "failover, node stopped: acked {} ({while_stopped} while stopped); primary {}, drained {}, duplicates {duplicates}",
        acked_set.len(),
        primary.len(),
        drained.len()
    );
    assert_eq!(report.node("source").acked, COUNT, "{report:?}");
    assert!(parked, "with the primary SIGSTOPped the source was acknowledged only {while_stopped} times in 3 s");
}
