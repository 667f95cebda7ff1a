//! Instrumentation of a real node (`telemetron serve` as a process): `GET /metrics` moves
//! when data is written, self-telemetry lands in `_telemetron/` channels and reads back
//! through the client, levels change at runtime (metrics and logs) through the protocol
//! and the CLI, and no secret or sample value appears in anything the node emits.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::observe::{Level, LevelsUpdate, Observe};
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Client, ConnectOptions, Credentials};

mod node_proc;

use node_proc::BIN;

struct Node {
    child: Child,
    url: String,
    addr: String,
}

impl Node {
    /// Start `telemetron serve` on a free loopback port with `args`; its stderr goes to
    /// `stderr` (a file) when given.
    fn start(args: &[&str], stderr: Option<std::fs::File>) -> Node {
        let addr = format!("127.0.0.1:{}", node_proc::free_port());
        let child = node_proc::spawn_serve(&addr, args, stderr.map_or_else(Stdio::null, Stdio::from));
        Node { child, url: format!("http://{addr}"), addr }
    }

    /// `GET path` with an optional bearer token: (status, body).
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}\r\n", self.addr).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP reply");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    /// `POST /api/v1/<call>` with a JSON body: (status, body).
    fn post(&self, call: &str, json: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "POST /api/v1/{call} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{}: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            self.addr,
            telemetron::protocol::VERSION_HEADER,
            telemetron::protocol::PROTOCOL_VERSION,
            json.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP reply");
        (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
    }

    fn stop(mut self) {
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the node did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the Prometheus sample `name{labels}` (labels matched as a substring).
fn prom(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        (n == name && rest.contains(labels)).then(|| value.parse().ok())?
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Write `n` samples of `v` (and its index `t`) in one commit.
async fn write_samples(c: &Client, name: &str, n: usize, value: f64) {
    let index = format!("{name}_time");
    let ch = c.create_channels(vec![NewChannel::index(index.clone()), NewChannel::data(name, DataType::F64, index)], true).await.unwrap();
    let (t, v) = (ch[0].key, ch[1].key);
    let now = TimeStamp::now().0;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(now), vec![v])).await.unwrap();
    let ts: Vec<i64> = (0..n as i64).map(|i| now + i * 1_000).collect();
    w.write(&Frame::new().with(t, Series::timestamps(ts)).with(v, Series::from_vec(vec![value; n]))).await.unwrap();
    w.close().await.unwrap();
}

#[test]
fn metrics_move_with_writes_and_self_telemetry_reads_back_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let node = Node::start(&["--data", data.to_str().unwrap(), "--self-telemetry", "100ms", "--name", "daq-1"], None);
    let (_, before) = node.get("/metrics", None);
    let samples_before = prom(&before, "telemetron_storage_samples_total", "key=\"storage\"").unwrap();
    assert!(before.contains("service_instance_id=\"daq-1\""), "{before}");
    rt().block_on(async {
        let c = telemetron::connect(&node.url, ConnectOptions::default()).await.unwrap();
        write_samples(&c, "pressure", 5_000, 1.5).await;
        let (status, after) = node.get("/metrics", None);
        assert_eq!(status, 200);
        let samples_after = prom(&after, "telemetron_storage_samples_total", "key=\"storage\"").unwrap();
        // 5,000 data samples and their 5,000 timestamps (self-telemetry adds more).
        assert!(samples_after - samples_before >= 10_000.0, "{samples_before} -> {samples_after}");
        assert!(prom(&after, "telemetron_storage_commits_total", "").unwrap() >= 1.0);
        assert!(prom(&after, "telemetron_storage_written_bytes_total", "").unwrap() >= 80_000.0);
        assert!(
            prom(&after, "telemetron_server_request_duration_seconds_count", "route=\"/api/v1/channels/create\",status=\"200\"").unwrap()
                >= 1.0,
            "{after}"
        );
        assert!(prom(&after, "telemetron_control_transfers_total", "").unwrap() >= 2.0);

        // The same counters, as channels of the node, through the client.
        let samples = c.channel("_telemetron/storage/samples").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let values = loop {
            let f = c.read(TimeRange::MAX, &[samples.key]).await.unwrap();
            let v = f.concat(samples.key).unwrap().map(|s| s.as_slice::<f64>().unwrap().to_vec()).unwrap_or_default();
            if v.last().is_some_and(|&x| x >= samples_after) {
                break v;
            }
            assert!(Instant::now() < deadline, "self-telemetry never reached {samples_after}: {v:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "a counter never goes down: {values:?}");
        let m = Observe::new(&c).metrics().await.unwrap();
        assert!(m.get("_telemetron/storage/samples").unwrap() >= samples_after);
        // The interval syncer runs within a second of the write.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Observe::new(&c).metrics().await.unwrap().get("_telemetron/storage/sync.duration/count").unwrap_or(0.0) < 1.0 {
            assert!(Instant::now() < deadline, "no fdatasync was timed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Histograms are stored with their cumulative buckets, for quantiles over a window.
        assert!(m.get("_telemetron/storage/sync.duration/bucket/+Inf").is_some(), "{:?}", m.samples);
        assert!(m.get("_telemetron/storage/sync.duration/bucket/0.001").is_some(), "{:?}", m.samples);

        // Analytics: the node summarizes its own history and sends only the summary.
        let req = telemetron::observe::SummaryRequest::parse(Some("10m"), None, None).unwrap();
        let sum = Observe::new(&c).summary(&req).await.unwrap();
        let stored = sum.get("_telemetron/storage/samples").unwrap();
        assert_eq!(stored.kind, telemetron::observe::MetricKind::Counter);
        assert!(stored.increase.unwrap() >= 10_000.0, "{stored:?}");
        assert!(stored.rate.unwrap() > 0.0 && stored.points >= 2, "{stored:?}");
        let sync = sum.get("_telemetron/storage/sync.duration").unwrap();
        assert_eq!((sync.kind, sync.unit.as_str()), (telemetron::observe::MetricKind::Histogram, "s"));
        assert_eq!(sum.get("_telemetron/relay/streamers").unwrap().kind, telemetron::observe::MetricKind::Gauge);
        let bad = Observe::new(&c).summary(&telemetron::observe::SummaryRequest { window: Some(-1.0), ..Default::default() }).await;
        assert_eq!(bad.unwrap_err().code(), "invalid_argument");
        c.close().await.unwrap();
    });
    // The CLI prints the same metrics.
    let out = Command::new(BIN).args(["observe", "--url", &node.url, "--values", "--filter", "storage/commits"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("metrics  basic") && text.contains("_telemetron/storage/commits"), "{text}");
    let out = Command::new(BIN).args(["observe", "--url", &node.url, "--summary", "10m", "--filter", "storage/"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = text.lines().find(|l| l.starts_with("_telemetron/storage/samples ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("counter") && line.contains("/s"), "{line}");
    assert!(text.contains("_telemetron/storage/sync.duration") && text.contains("p99"), "{text}");
    assert!(!text.contains("_telemetron/relay/"), "the filter applies: {text}");
    let out = Command::new(BIN).args(["observe", "--url", &node.url, "--summary", "soon"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a window"), "{}", String::from_utf8_lossy(&out.stderr));
    node.stop();
}

#[test]
fn levels_change_at_runtime_through_the_protocol_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let log = dir.path().join("stderr.log");
    let node = Node::start(
        &["--data", data.to_str().unwrap(), "--self-telemetry", "50ms", "--log-level", "off"],
        Some(std::fs::File::create(&log).unwrap()),
    );
    rt().block_on(async {
        let c = telemetron::connect(&node.url, ConnectOptions::default()).await.unwrap();
        let observe = Observe::new(&c);
        let l = observe.levels().await.unwrap();
        assert_eq!((l.logs, l.metrics), (Level::Off, Level::Basic));
        write_samples(&c, "v", 10, 2.0).await;
        // Level off: nothing logged so far, nothing measured, nothing written.
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "", "log level off logs nothing");
        observe.set_levels(LevelsUpdate { metrics: Some(Level::Off), ..Default::default() }).await.unwrap();
        assert_eq!(node.get("/metrics", None).1, "");
        assert!(observe.metrics().await.unwrap().samples.is_empty());
        let commits = c.channel("_telemetron/storage/commits").await.unwrap().key;
        let count = |f: Frame| f.concat(commits).unwrap().map_or(0, |s| s.len());
        // A tick that collected before the switch may still write: wait until the count
        // holds still over several intervals.
        let mut stopped = count(c.read(TimeRange::MAX, &[commits]).await.unwrap());
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = count(c.read(TimeRange::MAX, &[commits]).await.unwrap());
            if now == stopped {
                break;
            }
            stopped = now;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(c.read(TimeRange::MAX, &[commits]).await.unwrap()), stopped, "no self-telemetry at level off");

        // Detailed: one series per open streamer.
        let v = c.channel("v").await.unwrap().key;
        let streamer = c.open_streamer(StreamerConfig::new(vec![v])).await.unwrap();
        observe.set_levels(LevelsUpdate { metrics: Some(Level::Detailed), ..Default::default() }).await.unwrap();
        let text = node.get("/metrics", None).1;
        assert!(prom(&text, "telemetron_relay_streamer_queued", "key=\"relay/streamer/").is_some(), "{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(count(c.read(TimeRange::MAX, &[commits]).await.unwrap()) > stopped, "self-telemetry resumed");
        observe.set_levels(LevelsUpdate { metrics: Some(Level::Basic), ..Default::default() }).await.unwrap();
        let text = node.get("/metrics", None).1;
        assert!(prom(&text, "telemetron_relay_streamer_queued", "").is_none(), "per-streamer series only at detailed");
        assert!(prom(&text, "telemetron_relay_streamers", "").unwrap() >= 1.0);
        drop(streamer);

        // A wrong level is refused and changes nothing.
        let (status, body) = node.post("observe/levels", r#"{"metrics": "loud"}"#);
        assert!(status == 400 && body.contains("protocol.violation") && body.contains("`detailed`"), "{status} {body}");
        let (status, body) = node.post("observe/levels", r#"{"metric": "off"}"#);
        assert_eq!(status, 400, "a misspelt field is refused, not ignored: {body}");
        assert_eq!(observe.levels().await.unwrap().metrics, Level::Basic);
        c.close().await.unwrap();
    });
    // Logs: the CLI turns them on; the next request is logged at debug.
    let out = Command::new(BIN).args(["observe", "--url", &node.url, "--logs", "detailed"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("logs     detailed"));
    rt().block_on(async {
        let c = telemetron::connect(&node.url, ConnectOptions::default()).await.unwrap();
        write_samples(&c, "w", 10, 3.0).await;
        c.close().await.unwrap();
    });
    node.stop();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("DEBUG") && logged.contains("writer opened"), "{logged}");
}

#[test]
fn secrets_and_sample_values_never_appear_in_logs_or_metrics() {
    const PASSWORD: &str = "S3cret-Pw-7f1d";
    const TOKEN: &str = "tok-9a8b7c6d5e4f";
    const VALUE: f64 = 98765.4321;
    // Everything the node exports over OTLP (metrics, log events, spans at trace level
    // detailed) is captured too, as the raw request bodies.
    let (otlp, exported) = otlp_http_sink();
    let endpoint = format!("http://{otlp}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let log = dir.path().join("stderr.log");
    let node = Node::start(
        &[
            "--data",
            data.to_str().unwrap(),
            "--user",
            "operator",
            "--password",
            PASSWORD,
            "--token",
            TOKEN,
            "--log-level",
            "detailed",
            "--metrics-level",
            "detailed",
            "--self-telemetry",
            "50ms",
            "--trace-level",
            "detailed",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-protocol",
            "http",
            "--otlp-interval",
            "50ms",
        ],
        Some(std::fs::File::create(&log).unwrap()),
    );
    let mut emitted = String::new();
    rt().block_on(async {
        let creds = Credentials::Password { username: "operator".into(), password: PASSWORD.into() };
        let c = telemetron::connect(&node.url, ConnectOptions { credentials: creds, ..ConnectOptions::default() }).await.unwrap();
        write_samples(&c, "secret_pressure", 100, VALUE).await;
        let key = c.channel("secret_pressure").await.unwrap().key;
        let mut s = c.open_streamer(StreamerConfig::new(vec![key])).await.unwrap();
        let back = c.read(TimeRange::MAX, &[key]).await.unwrap();
        assert_eq!(back.concat(key).unwrap().unwrap().as_slice::<f64>().unwrap()[0], VALUE);
        s.close().await;
        // A failed login is counted, not logged with its password.
        let wrong = telemetron::connect(
            &node.url,
            ConnectOptions {
                credentials: Credentials::Password { username: "operator".into(), password: "wrong-pw-123".into() },
                ..Default::default()
            },
        )
        .await;
        assert!(wrong.is_err());
        emitted.push_str(&format!("{:?}", Observe::new(&c).metrics().await.unwrap()));
        c.close().await.unwrap();
    });
    let (status, _) = node.get("/metrics", None);
    assert_eq!(status, 401, "/metrics needs credentials when the node does");
    let (status, text) = node.get("/metrics", Some(TOKEN));
    assert_eq!(status, 200);
    assert!(prom(&text, "telemetron_server_auth_failures_total", "").unwrap() >= 2.0, "{text}");
    emitted.push_str(&text);
    std::thread::sleep(Duration::from_millis(200));
    node.stop();
    emitted.push_str(&std::fs::read_to_string(&log).unwrap());
    // The node's own log files hold the same lines.
    let kept = std::fs::read_to_string(data.join("logs").join("telemetron.log")).unwrap();
    assert!(kept.contains("writer opened"), "{kept}");
    // Every line Telemetron logged carries its key in the experiment tree
    // (docs/observability.md §2), down to the writer and the connection.
    let ours: Vec<&str> = kept.lines().filter(|l| l.contains(" telemetron::")).collect();
    assert!(ours.len() > 10, "{kept}");
    for line in &ours {
        assert!(line.contains(" key=\""), "a log line without a key: {line}");
    }
    for key in ["key=\"framer/writer/", "key=\"storage/writer/", "key=\"server/conn/", "key=\"channels\"", "key=\"server\""] {
        assert!(kept.contains(key), "no {key} in the log:\n{kept}");
    }
    emitted.push_str(&kept);
    let bodies = exported.lock().unwrap().concat();
    emitted.push_str(&String::from_utf8_lossy(&bodies));
    // The capture is not trivially empty: the session was logged in detail, and its spans,
    // metrics and log events were exported.
    assert!(emitted.contains("DEBUG") && emitted.contains("writer opened") && emitted.contains("telemetron_storage_samples_total"));
    assert!(emitted.contains("storage.commit") && emitted.contains("telemetron.request"), "spans were exported");
    assert!(emitted.contains("telemetron.storage.samples"), "metrics were exported");
    for secret in [PASSWORD, TOKEN, "wrong-pw-123", "98765.4321", "98765.432"] {
        assert!(!emitted.contains(secret), "{secret:?} appears in what the node emitted");
    }
    // Nor the value as the 8 bytes of a protobuf double.
    assert!(!bodies.windows(8).any(|w| w == VALUE.to_le_bytes()), "the sample value appears in an OTLP export");
}

/// A minimal OTLP/HTTP collector: answers 200 to every request and keeps each body (raw
/// protobuf bytes). Returns its address and the bodies.
fn otlp_http_sink() -> (std::net::SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    keep.lock().unwrap().push(body);
                    if out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, bodies)
}

#[test]
fn the_log_rolls_over_in_the_data_directory_and_telemetron_logs_prints_and_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let node = Node::start(&["--data", data.to_str().unwrap(), "--log-file-bytes", "4096", "--log-files", "3"], None);
    let logs = data.join("logs");
    // The first lines, logged while the engine opened, are in the file too.
    let first = std::fs::read_to_string(logs.join("telemetron.log")).unwrap();
    assert!(first.contains("storage recovered") && first.contains("serving"), "{first}");

    /// Kills the follower however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut follower = Killed(
        Command::new(BIN)
            .args(["logs", "--data", data.to_str().unwrap(), "-n", "100000", "--follow"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = follower.0.stdout.take().unwrap();
    let followed = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(out).lines().map_while(Result::ok).filter(|l| l.contains("writer opened")).take(20).count()
    });
    // (`-n 100000` prints the whole log, then follows from exactly where it stopped: every
    // line is seen once, whenever the follower starts.)
    rt().block_on(async {
        let c = telemetron::connect(&node.url, ConnectOptions::default()).await.unwrap();
        for i in 0..20 {
            write_samples(&c, &format!("roll_{i}"), 10, 1.0).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.close().await.unwrap();
    });
    // Every "writer opened" line reached the follower, across the rollovers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !followed.is_finished() {
        let all: String = ["telemetron.log.2", "telemetron.log.1", "telemetron.log"]
            .iter()
            .map(|f| std::fs::read_to_string(logs.join(f)).unwrap_or_default())
            .collect();
        assert!(Instant::now() < deadline, "the follower did not see 20 writers opened; the log:\n{all}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(followed.join().unwrap(), 20);
    drop(follower);

    for name in ["telemetron.log", "telemetron.log.1", "telemetron.log.2"] {
        let len = std::fs::metadata(logs.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")).len();
        assert!(len <= 4096, "{name} holds {len} bytes");
    }
    assert!(!logs.join("telemetron.log.3").exists(), "at most 3 files");
    let out = Command::new(BIN).args(["logs", "--data", data.to_str().unwrap(), "-n", "4"]).output().unwrap();
    assert!(out.status.success());
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    let current = std::fs::read_to_string(logs.join("telemetron.log")).unwrap();
    let last: Vec<&str> = current.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    assert_eq!(printed, last, "the last lines, oldest first");
    let bad = Command::new(BIN).args(["logs", "--data", dir.path().to_str().unwrap()]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("no log in"));
    node.stop();
}

/// The engine holds its sync histogram, whose meter holds the metric callbacks: those hold
/// the engine (and the flow manager) weakly, or a closed engine, its index and its mapped
/// segments would live as long as the process.
#[test]
fn observers_do_not_keep_a_closed_engine_alive() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let engine = telemetron::Engine::open(dir.path().join("embedded")).unwrap();
        let weak = engine.downgrade();
        let client = Client::embedded(engine);
        let observe = Observe::new(&client);
        write_samples(&client, "v", 10, 1.0).await;
        assert!(observe.metrics().await.unwrap().get("_telemetron/storage/samples").unwrap() >= 20.0);
        client.close().await.unwrap();
        drop(client);
        assert!(weak.upgrade().is_none(), "an embedded client's observer keeps its engine alive");
        let after = observe.metrics().await.unwrap();
        assert!(after.get("_telemetron/storage/samples").is_none(), "a gone engine's counters stop, not drop to zero: {after:?}");

        let engine = telemetron::Engine::open(dir.path().join("node")).unwrap();
        let weak = engine.downgrade();
        let config = telemetron::server::ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            observe: telemetron::server::ObserveConfig { self_telemetry: Some(Duration::from_millis(20)), ..Default::default() },
            ..Default::default()
        };
        let server = telemetron::server::serve(engine, config).await.unwrap();
        let c = telemetron::connect(&server.url(), ConnectOptions::default()).await.unwrap();
        write_samples(&c, "v", 10, 1.0).await;
        c.close().await.unwrap();
        server.shutdown().await.unwrap();
        assert!(weak.upgrade().is_none(), "a stopped node's observer keeps its engine alive");
    });
}

/// A user channel that takes one of the self-telemetry names with another type costs only
/// that value: the others are written, and the user's channel is left alone.
#[test]
fn self_telemetry_skips_a_name_taken_by_another_kind_of_channel() {
    use telemetron::observe::{Levels, Observer};
    let dir = tempfile::tempdir().unwrap();
    let engine = telemetron::Engine::open(dir.path()).unwrap();
    let theirs = engine
        .create_channels(vec![
            NewChannel::index("their_time"),
            NewChannel::data("_telemetron/storage/commits", DataType::I64, "their_time"),
        ])
        .unwrap();
    let obs = Observer::new("test", Levels::default());
    obs.watch_engine(&engine);
    obs.start_channels(engine.clone(), Duration::from_millis(20)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    obs.shutdown();
    let samples = engine.channels().by_name("_telemetron/storage/samples").unwrap().key;
    let written = engine.read(TimeRange::MAX, &[samples]).unwrap();
    assert!(written.concat(samples).unwrap().unwrap().len() >= 2, "the other values are written");
    let commits = engine.read(TimeRange::MAX, &[theirs[1].key]).unwrap();
    assert!(commits.concat(theirs[1].key).unwrap().is_none(), "their channel is untouched");
    engine.close().unwrap();
}

/// Write `values` (one per second from `t0`) into self-telemetry channels named `names`,
/// as a node's self-telemetry would have, and return nothing: the history to summarize.
fn history(engine: &telemetron::Engine, t0: i64, rows: &[(&str, &[f64])]) {
    let time = engine.create_channels_with(vec![NewChannel::index("_telemetron/time")], true).unwrap()[0].key;
    let made = engine
        .create_channels_with(rows.iter().map(|(n, _)| NewChannel::data(*n, DataType::F64, "_telemetron/time")).collect(), true)
        .unwrap();
    let n = rows[0].1.len();
    let mut keys: Vec<_> = made.iter().map(|c| c.key).collect();
    keys.push(time);
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(t0), keys)).unwrap();
    let mut f = Frame::new().with(time, Series::timestamps((0..n as i64).map(|i| t0 + i * 1_000_000_000).collect()));
    for (ch, (_, v)) in made.iter().zip(rows) {
        f = f.with(ch.key, Series::from_vec(v.to_vec()));
    }
    w.write(&f).unwrap();
    w.close().unwrap();
}

/// Analytics: a window of self-telemetry history, summarized where it is stored. Counters
/// give their increase across a restart, gauges their range, histograms their quantiles.
#[test]
fn a_summary_answers_rates_ranges_and_percentiles_over_a_window() {
    use telemetron::observe::{Levels, MetricKind, Observer, SummaryRequest};
    let dir = tempfile::tempdir().unwrap();
    let engine = telemetron::Engine::open(dir.path()).unwrap();
    let obs = Observer::new("test", Levels::default());
    obs.watch_engine(&engine);
    let e = obs.summary(&SummaryRequest::default()).unwrap_err();
    assert!(e.to_string().contains("--self-telemetry"), "no history says how to get one: {e}");

    let t0 = 1_700_000_000_000_000_000;
    let sd = "_telemetron/storage/sync.duration";
    let (count, sum, b1, b2, inf) = (
        format!("{sd}/count"),
        format!("{sd}/sum"),
        format!("{sd}/bucket/0.001"),
        format!("{sd}/bucket/0.002"),
        format!("{sd}/bucket/+Inf"),
    );
    history(
        &engine,
        t0,
        &[
            // A counter with a restart between the 3rd and 4th reading: 10 + 20 + 5 + 10.
            ("_telemetron/storage/commits", &[0.0, 10.0, 30.0, 5.0, 15.0]),
            ("_telemetron/relay/streamers", &[1.0, 3.0, 2.0, 2.0, 2.0]),
            // 100 fdatasyncs in the window: 50 ≤ 1 ms, 40 in (1, 2] ms, 10 above.
            (&count, &[0.0, 0.0, 0.0, 50.0, 100.0]),
            (&sum, &[0.0, 0.0, 0.0, 0.05, 0.2]),
            (&b1, &[0.0, 0.0, 0.0, 30.0, 50.0]),
            (&b2, &[0.0, 0.0, 0.0, 45.0, 90.0]),
            (&inf, &[0.0, 0.0, 0.0, 50.0, 100.0]),
            // No instrument names this any more (a flow since removed).
            ("_telemetron/flow/gone/src/emitted", &[4.0, 6.0, 6.0, 9.0, 9.0]),
        ],
    );
    let rt = rt();
    // Through the client API too: an embedded client's observe summarizes its engine.
    let all = obs.summary(&SummaryRequest::parse(Some("1h"), None, None).unwrap()).unwrap();
    assert_eq!(all.end, t0 + 4_000_000_000, "the window ends at the last sample");
    let commits = all.get("_telemetron/storage/commits").unwrap();
    assert_eq!(commits.kind, MetricKind::Counter);
    assert_eq!((commits.points, commits.first_time, commits.last_time), (5, t0, t0 + 4_000_000_000));
    assert_eq!(commits.increase, Some(45.0));
    assert_eq!(commits.rate, Some(45.0 / 4.0));
    assert_eq!((commits.min, commits.p50), (None, None), "a counter has no range or quantiles");
    let streamers = all.get("_telemetron/relay/streamers").unwrap();
    assert_eq!(streamers.kind, MetricKind::Gauge);
    assert_eq!((streamers.min, streamers.mean, streamers.max, streamers.last), (Some(1.0), Some(2.0), Some(3.0), 2.0));
    assert_eq!(streamers.rate, None, "a gauge has no rate");
    let sync = all.get(sd).unwrap();
    assert_eq!((sync.kind, sync.unit.as_str()), (MetricKind::Histogram, "s"));
    assert_eq!(sync.increase, Some(100.0));
    assert_eq!(sync.rate, Some(25.0));
    assert!((sync.mean.unwrap() - 0.002).abs() < 1e-12, "{:?}", sync.mean);
    assert_eq!(sync.p50, Some(0.001));
    assert!((sync.p90.unwrap() - 0.002).abs() < 1e-12, "{:?}", sync.p90);
    assert_eq!(sync.p99, Some(0.002), "in the +Inf bucket: the highest finite bound");
    assert!(all.get(&count).is_none() && all.get(&b1).is_none(), "a histogram's parts are not series of their own");
    let gone = all.get("_telemetron/flow/gone/src/emitted").unwrap();
    assert_eq!(gone.kind, MetricKind::Unknown);
    assert_eq!((gone.increase, gone.min, gone.max), (Some(5.0), Some(4.0), Some(9.0)));

    // A window of the last 1.5 s holds the last two readings only.
    let last =
        rt.block_on(Observe::new(&Client::embedded(engine.clone())).summary(&SummaryRequest::parse(Some("1.5s"), None, None).unwrap()));
    let last = last.unwrap();
    let commits = last.get("_telemetron/storage/commits").unwrap();
    assert_eq!((commits.points, commits.increase), (2, Some(10.0)));
    // 50 more, 20 of them ≤ 1 ms and 25 more ≤ 2 ms: the 25th is 5/25 into (1, 2] ms.
    let p50 = last.get(sd).unwrap().p50.unwrap();
    assert!((p50 - 0.0012).abs() < 1e-12, "{p50}");
    // An explicit end and a filter.
    let early =
        obs.summary(&SummaryRequest { window: Some(10.0), end: Some(t0 + 2_000_000_000), filter: Some("storage/commits".into()) }).unwrap();
    assert_eq!(early.series.len(), 1);
    assert_eq!(early.series[0].increase, Some(30.0));
    let none = obs.summary(&SummaryRequest { window: Some(1.0), end: Some(t0 - 10_000_000_000), filter: None }).unwrap();
    assert!(none.series.is_empty(), "nothing before the history");
    engine.close().unwrap();
}

/// An exporter logs under its own node's key, which the runtime hands its task.
#[test]
fn a_flow_exporter_logs_under_its_node_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let flow = dir.path().join("f.yaml");
    std::fs::write(&flow, "flow: keyed\nnodes:\n  gen: {type: generator, count: 3, to: [shown]}\n  shown: {type: debug}\n").unwrap();
    let node = Node::start(&["--data", data.to_str().unwrap(), "--flow", flow.to_str().unwrap()], None);
    let log = data.join("logs").join("telemetron.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let shown: Vec<&str> = text.lines().filter(|l| l.contains("telemetron::flow::debug")).collect();
        if shown.len() >= 3 {
            assert!(shown.iter().all(|l| l.contains("key=\"flow/keyed/shown\"")), "{shown:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the debug exporter never logged: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    node.stop();
}
