//! The `telemetron serve` and `telemetron stream` programs, run as real processes: the
//! demo stand streams live values, and SIGTERM / SIGINT shut the node down gracefully
//! (open writers committed, exit status 0, data there on reopen).

mod backends;
mod node_proc;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{ConnectOptions, Engine};

use node_proc::{BIN, free_port, reserved_port, spawn_serve};

/// Start `telemetron serve` and wait for its "serving" line.
fn serve(args: &[&str]) -> (Child, String) {
    serve_on(free_port(), args)
}

/// Start `telemetron serve` on loopback port `port` and wait for its "serving" line.
fn serve_on(port: u16, args: &[&str]) -> (Child, String) {
    let listen = format!("127.0.0.1:{port}");
    let child = spawn_serve(&listen, args, Stdio::null());
    (child, format!("http://{listen}"))
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to a child process we started.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0);
}

fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node did not stop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_commits_open_writers_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let (child, url) = serve(&["--data", data.to_str().unwrap()]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (t, v, status) = rt.block_on(async {
        let c = telemetron::connect(&url, ConnectOptions::default()).await.unwrap();
        let ch = c.create_channels(vec![NewChannel::index("t"), NewChannel::data("v", DataType::F32, "t")], false).await.unwrap();
        let (t, v) = (ch[0].key, ch[1].key);
        let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![v]).auto_commit(false)).await.unwrap();
        w.write(&Frame::new().with(t, Series::timestamps(vec![1, 2])).with(v, Series::from_vec(vec![1.0f32, 2.0]))).await.unwrap();
        w.commit().await.unwrap();
        w.write(&Frame::new().with(t, Series::timestamps(vec![3])).with(v, Series::from_vec(vec![3.0f32]))).await.unwrap();
        // A round trip on the same node so the uncommitted write has arrived.
        c.channel(v).await.unwrap();
        signal(&child, libc::SIGTERM);
        // The writer stays open (not committed, not dropped) until the node has exited: the
        // node must commit it while shutting down.
        let status = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
        drop(w);
        (t, v, status)
    });
    assert!(status.success(), "{status:?}");
    let engine = Engine::open(&data).unwrap();
    let back = engine.read(TimeRange::MAX, &[t, v]).unwrap();
    assert_eq!(back.concat(t).unwrap().unwrap().as_timestamps().unwrap(), &[1, 2, 3]);
}

#[test]
fn demo_streams_live_values_and_sigint_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let (child, url) = serve(&["--demo", "--data", data.to_str().unwrap()]);
    let out =
        Command::new(BIN).args(["stream", "pressure_1", "valve_state", "--count", "5", "--rate", "20", "--url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("pressure_1=")).collect();
    assert_eq!(lines.len(), 5, "{text}");
    signal(&child, libc::SIGINT);
    assert!(wait_exit(child).success());
    let engine = Engine::open(&data).unwrap();
    let p = engine.channels().by_name("pressure_1").unwrap().key;
    assert!(engine.read(TimeRange::MAX, &[p]).unwrap().samples(p) > 0, "the demo's data was committed");
}

/// Peak resident memory (KiB) of a child that ran to completion, and its exit status.
fn wait_rusage(child: Child) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for a child we spawned and have not waited for.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32);
    (status, usage.ru_maxrss)
}

#[test]
fn export_streams_a_range_larger_than_its_memory_from_a_node() {
    const ROWS: usize = 1 << 20;
    const FRAMES: usize = 5; // 5 Mi rows x (8-byte time + 8-byte value) = 80 MiB of samples
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("big");
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let client = telemetron::open(&data).unwrap();
        let ch = client.create_channels(vec![NewChannel::index("t"), NewChannel::data("p", DataType::F64, "t")], false).await.unwrap();
        for f in 0..FRAMES {
            let base = (f * ROWS) as i64;
            let frame = Frame::new()
                .with(ch[0].key, Series::timestamps((0..ROWS as i64).map(|i| 1 + base + i).collect()))
                .with(ch[1].key, Series::from_vec((0..ROWS).map(|i| ((base as usize + i) as f64 * 0.37).sin()).collect::<Vec<_>>()));
            client.write(TimeStamp(1 + base), frame).await.unwrap();
        }
        client.close().await.unwrap();
    });
    let (node, url) = serve(&["--data", data.to_str().unwrap()]);
    let out = dir.path().join("big.parquet");
    let child = Command::new(BIN)
        .args(["export", "--url", &url, "--channels", "p", "--memory-mb", "8", "--quiet", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, peak_kib) = wait_rusage(child);
    signal(&node, libc::SIGTERM);
    assert!(wait_exit(node).success());
    assert_eq!(status, 0, "export failed");
    let samples_mib = (FRAMES * ROWS * 16) >> 20;
    eprintln!("export of {samples_mib} MiB of samples with an 8 MiB budget: peak RSS {} MiB", peak_kib >> 10);
    assert!(peak_kib < 48 << 10, "peak RSS {peak_kib} KiB for an 8 MiB budget ({samples_mib} MiB exported)");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), (FRAMES * ROWS) as i64);
    assert!(reader.metadata().num_row_groups() > 1, "flushed in several row groups");
}

/// The lines of a file, as numbers (the generator's `ack_log`); empty if it does not exist.
fn acked_seqs(path: &std::path::Path) -> std::collections::BTreeSet<u64> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// examples/flows/ack-on-ingress.yaml as a real process: the source is acknowledged once a
/// message is in the durable queue, while the node it delivers to is down; the flow process
/// is SIGKILLed mid-stream, the node comes up, the flow is restarted. Every message the
/// source saw acknowledged must arrive in the node's channels, once.
#[test]
fn ack_on_ingress_survives_an_exporter_outage_and_a_sigkill_of_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue-data");
    let ack_log = dir.path().join("acked.log");
    // The node stays down for a while: its port must not go to another test's node.
    let port = reserved_port();
    let node = format!("http://127.0.0.1:{port}");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/flows/ack-on-ingress.yaml");
    const COUNT: u64 = 300;
    const ROWS: u64 = 50;
    let start_flow = || {
        Command::new(BIN)
            .args(["flow", "run", file, "--data", queue.to_str().unwrap(), "--quiet", "--drain", "2s"])
            .env("TELEMETRON_NODE", &node)
            .env("ACK_LOG", &ack_log)
            .env("COUNT", COUNT.to_string())
            .env("RATE", "200")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_for = |what: &str, secs: u64, mut done: Box<dyn FnMut() -> bool + '_>| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // 1. The node is down: the source is still acknowledged (the queue has the messages).
    let mut flow = start_flow();
    wait_for("100 acknowledgements with the node down", 60, Box::new(|| acked_seqs(&ack_log).len() >= 100));
    // 2. SIGKILL mid-stream.
    flow.kill().unwrap();
    flow.wait().unwrap();
    let acked_at_kill = acked_seqs(&ack_log);
    assert!((acked_at_kill.len() as u64) < COUNT, "killed mid-stream");

    // 3. The node comes up; the flow restarts: the source continues after what was
    //    acknowledged, the queue replays from its watermark.
    let node_data = dir.path().join("node-data");
    let (node_proc, url) = serve_on(port, &["--data", node_data.to_str().unwrap()]);
    let node_proc = KillOnDrop(node_proc);
    let flow = start_flow();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(telemetron::connect(&url, ConnectOptions::default())).unwrap();
    let stored = || -> Vec<i64> {
        rt.block_on(async {
            let Ok(index) = client.channel("stand.time").await else { return Vec::new() };
            let f = client.read(TimeRange::MAX, &[index.key]).await.unwrap();
            f.concat(index.key).unwrap().map(|s| s.as_timestamps().unwrap().to_vec()).unwrap_or_default()
        })
    };
    wait_for("every message in the node", 120, Box::new(|| stored().len() as u64 >= COUNT * ROWS));
    signal(&flow, libc::SIGINT);
    assert!(wait_exit(flow).success());

    // 4. Count: every acknowledged message is there, exactly once.
    let acked = acked_seqs(&ack_log);
    assert_eq!(acked.len() as u64, COUNT, "after the restart every message was acknowledged");
    assert!(acked_at_kill.is_subset(&acked));
    let ts = stored();
    assert_eq!(ts.len() as u64, COUNT * ROWS, "no message stored twice, none missing");
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "timestamps strictly increase");
    let seqs: std::collections::BTreeSet<u64> = ts.iter().map(|t| (*t / 1_000_000) as u64 / ROWS).collect();
    assert_eq!(seqs, acked, "the stored messages are the acknowledged ones");
    // The data channels are complete too.
    let ch0 = rt.block_on(async {
        let c = client.channel("stand.ch_0").await.unwrap();
        client.read(TimeRange::MAX, &[c.key]).await.unwrap().samples(c.key)
    });
    assert_eq!(ch0 as u64, COUNT * ROWS);
    rt.block_on(client.close()).unwrap();
    signal(&node_proc.0, libc::SIGTERM);
}

/// A child process killed (and reaped) when the test ends, even by a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `telemetron serve --flow FILE` runs a flow inside the node on its own engine: here the
/// demo stand's live pressure is streamed by a `channels_receiver` and written back under
/// another name by a `channels_exporter`, and the node shuts the flow down on SIGTERM.
#[test]
fn serve_runs_a_flow_on_its_own_engine() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mirror.yaml");
    std::fs::write(
        &file,
        "flow: mirror\nnodes:\n  live: {type: channels_receiver, channels: [pressure_1], to: [out]}\n  out: {type: channels_exporter, prefix: mirror.}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (node, url) = serve(&["--data", data.to_str().unwrap(), "--demo", "--flow", file.to_str().unwrap()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(telemetron::connect(&url, ConnectOptions::default())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mirrored = loop {
        let n = rt.block_on(async {
            let Ok(c) = client.channel("mirror.pressure_1").await else { return 0 };
            client.read(TimeRange::MAX, &[c.key]).await.map(|f| f.samples(c.key)).unwrap_or(0)
        });
        if n >= 500 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(mirrored >= 500, "the flow copied {mirrored} samples of the live pressure");
    // The copy holds the same values as the original at the same times.
    rt.block_on(async {
        let orig = client.channel("pressure_1").await.unwrap();
        let copy = client.channel("mirror.pressure_1").await.unwrap();
        let c = client.read(TimeRange::MAX, &[copy.key]).await.unwrap();
        let copy_values = c.concat(copy.key).unwrap().unwrap();
        let copy_index = client.channel(copy.index_key().unwrap()).await.unwrap();
        let ci = client.read(TimeRange::MAX, &[copy_index.key]).await.unwrap().concat(copy_index.key).unwrap().unwrap();
        let times = ci.as_timestamps().unwrap();
        let (first, last) = (times[0], *times.last().unwrap());
        let o = client.read(TimeRange::from_nanos(first, last + 1), &[orig.key]).await.unwrap().concat(orig.key).unwrap().unwrap();
        let n = copy_values.len().min(o.len());
        assert!(n > 100);
        assert_eq!(copy_values.as_slice::<f64>().unwrap()[..n], o.as_slice::<f64>().unwrap()[..n]);
        client.close().await.unwrap();
    });
    signal(&node, libc::SIGTERM);
    assert!(wait_exit(node).success());
}

/// Run `telemetron flow <args>`: (success, stdout, stderr).
fn flow_cmd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).arg("flow").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn flow_commands_manage_a_nodes_flows() {
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("boot.yaml");
    std::fs::write(&boot, "flow: boot\nnodes:\n  gen: {type: generator, rate: 100, to: [out]}\n  out: {type: discard}\n").unwrap();
    let extra = dir.path().join("extra.yaml");
    let yaml = |min: u32| {
        format!(
            "flow: extra\nnodes:\n  gen: {{type: generator, rows: 4, rate: 200, to: [keep]}}\n  keep: {{type: filter, where: {{column: severity_number, op: '>=', value: {min}}}, to: [out]}}\n  out: {{type: discard}}\n"
        )
    };
    std::fs::write(&extra, yaml(13)).unwrap();
    let data = dir.path().join("data");
    let (node, url) = serve(&["--data", data.to_str().unwrap(), "--flow", boot.to_str().unwrap()]);
    let url = url.as_str();
    let extra_s = extra.to_str().unwrap();

    // The node's --flow file is listed; a deployed one joins it.
    let (ok, out, err) = flow_cmd(&["deploy", extra_s, "--url", url]);
    assert!(ok, "{err}");
    assert!(out.contains("flow `extra` deployed") && out.contains("3 nodes running"), "{out}");
    let (ok, out, _) = flow_cmd(&["list", "--url", url]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() == 2 && lines[0].starts_with("boot ") && lines[1].starts_with("extra "), "{out}");
    assert!(lines.iter().all(|l| l.contains("running")), "{out}");

    // Errors: the name is taken; a wrong file names its line; nothing changes.
    let (ok, _, err) = flow_cmd(&["deploy", extra_s, "--url", url]);
    assert!(!ok && err.contains("a flow named `extra` runs already"), "{err}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, yaml(13).replace("discard", "dicard")).unwrap();
    let (ok, _, err) = flow_cmd(&["reconfigure", "extra", bad.to_str().unwrap(), "--url", url]);
    assert!(!ok && err.contains("line 5: node `out`: unknown component type `dicard`"), "{err}");
    let (ok, _, err) = flow_cmd(&["status", "nope", "--url", url]);
    assert!(!ok && err.contains("no flow named `nope`"), "{err}");

    // Live CFG from the command line, then status and a stop with the final counters.
    std::fs::write(&extra, yaml(100)).unwrap();
    let (ok, out, err) = flow_cmd(&["reconfigure", "extra", extra_s, "--url", url]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "flow `extra`: live (changed: keep)");
    let (ok, out, _) = flow_cmd(&["status", "extra", "--url", url]);
    assert!(ok && out.starts_with("flow `extra`: running") && out.contains("keep"), "{out}");
    let (ok, out, err) = flow_cmd(&["stop", "extra", "--drain", "5s", "--url", url]);
    assert!(ok, "{err}");
    assert!(out.starts_with("flow `extra`: stopped") && !out.contains("drain deadline passed"), "{out}");
    let (ok, out, _) = flow_cmd(&["list", "--url", url]);
    assert!(ok && out.lines().count() == 1 && out.starts_with("boot "), "{out}");

    signal(&node, libc::SIGTERM);
    assert!(wait_exit(node).success());
}

/// A printing command whose reader goes away (`telemetron bench codecs | head -1`) ends as
/// Unix tools do, killed by SIGPIPE, not with a panic on the failed write.
#[test]
fn a_printing_command_ends_quietly_when_its_reader_closes() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(BIN)
        .args(["bench", "codecs", "--samples", "200000", "--runs", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("\"bench\":\"codecs\""), "{first}");
    // The reader is dropped here, closing the pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}
