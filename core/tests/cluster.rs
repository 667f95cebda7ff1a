//! Cluster mode with real parts: an etcd server (Debian's `etcd-server`, installed by
//! `scripts/ensure-deps.sh`) and three `telemetron serve --cluster` processes on loopback,
//! driven through the ordinary remote client. Nodes are killed with SIGKILL and stopped
//! with SIGSTOP, as a crash or a cut-off would.

mod etcd;
mod node_proc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Client, ConnectOptions};

use etcd::Etcd;
use node_proc::{BIN, free_port, spawn_serve};

/// One `telemetron serve --cluster` process.
struct Node {
    name: String,
    dir: PathBuf,
    port: u16,
    /// Arguments of `serve` beyond the cluster's own.
    extra: Vec<String>,
    child: Option<Child>,
}

impl Node {
    fn start(etcd: &Etcd, root: &Path, name: &str) -> Node {
        Node::start_with(etcd, root, name, &[])
    }

    fn start_with(etcd: &Etcd, root: &Path, name: &str, extra: &[&str]) -> Node {
        let extra = extra.iter().map(|a| a.to_string()).collect();
        let mut n = Node { name: name.to_string(), dir: root.join(name), port: free_port(), extra, child: None };
        n.restart(etcd);
        n
    }

    fn restart(&mut self, etcd: &Etcd) {
        let mut args: Vec<&str> =
            vec!["--data", self.dir.to_str().unwrap(), "--cluster", &etcd.url, "--name", &self.name, "--lease-ttl", "2"];
        args.extend(self.extra.iter().map(String::as_str));
        self.child = Some(spawn_serve(&format!("127.0.0.1:{}", self.port), &args, Stdio::null()));
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("running").id() as i32;
        // SAFETY: signalling a child process this test started.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A stopped node must be continued to die.
            // SAFETY: signalling a child process this test started.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
        self.kill();
    }
}

struct Cluster {
    _dir: tempfile::TempDir,
    etcd: Etcd,
    nodes: Vec<Node>,
}

fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let nodes = ["daq-1", "daq-2", "daq-3"].iter().map(|n| Node::start(&etcd, dir.path(), n)).collect();
    Cluster { _dir: dir, etcd, nodes }
}

async fn client(node: &Node) -> Client {
    telemetron::connect(&node.url(), ConnectOptions::default()).await.unwrap()
}

/// Retry `f` until it returns Some, for at most `secs` seconds.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(secs: u64, what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status(etcd: &Etcd) -> serde_json::Value {
    let out = Command::new(BIN).args(["cluster", "status", "--json", "--channels", "--etcd", &etcd.url]).output().unwrap();
    assert!(out.status.success(), "cluster status failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An index and one f64 channel named `<prefix>_time` / `<prefix>_value`, created through `c`.
async fn sensor(c: &Client, prefix: &str) -> (ChannelKey, ChannelKey) {
    let ch = c
        .create_channels(
            vec![
                NewChannel::index(format!("{prefix}_time")),
                NewChannel::data(format!("{prefix}_value"), DataType::F64, format!("{prefix}_time")),
            ],
            false,
        )
        .await
        .unwrap();
    (ch[0].key, ch[1].key)
}

fn samples(time: ChannelKey, value: ChannelKey, from: i64, n: usize) -> Frame {
    let ts: Vec<i64> = (0..n as i64).map(|i| from + i * 1_000).collect();
    let vs: Vec<f64> = (0..n).map(|i| from as f64 + i as f64).collect();
    Frame::new().with(time, Series::timestamps(ts)).with(value, Series::from_vec(vs))
}

fn values(f: &Frame, key: ChannelKey) -> Vec<f64> {
    f.concat(key).unwrap().map(|s| s.as_slice::<f64>().unwrap().to_vec()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_created_on_any_node_are_seen_by_every_node_with_one_owner() {
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (time, value) = sensor(&c2, "chamber").await;

    // The key's top byte names the node that stores it: daq-2's number.
    let st = status(&cl.etcd);
    let number = st["nodes"]["daq-2"].as_u64().unwrap() as u32;
    assert_eq!(time >> 24, number);
    assert_eq!(value >> 24, number);
    assert_eq!(st["members"].as_array().unwrap().len(), 3, "{st}");
    let placed: Vec<u64> = st["placement"].as_array().unwrap().iter().map(|p| p["key"].as_u64().unwrap()).collect();
    assert!(placed.contains(&u64::from(value)), "{st}");

    // Every node retrieves, lists and searches it, by name and by key.
    for c in [&c1, &c3] {
        let got = eventually(10, "the mirror", || async { c.channel("chamber_value").await.ok() }).await;
        assert_eq!((got.key, got.data_type), (value, DataType::F64));
        assert!(c.search_channels("chamber").await.unwrap().iter().any(|ch| ch.key == time));
    }

    // Names are unique cluster-wide: another node cannot take it, and nothing is left behind.
    let err = c3.create_channels(vec![NewChannel::index("chamber_time")], false).await.unwrap_err();
    assert_eq!(err.code(), "channel.name_taken", "{err}");
    let err = c1.create_channels(vec![NewChannel::virtual_("chamber_value", DataType::U8)], false).await.unwrap_err();
    assert_eq!(err.code(), "channel.name_taken", "{err}");
    // retrieve_if_name_exists returns the existing channel from any node.
    let again = c1.create_channels(vec![NewChannel::index("chamber_time")], true).await.unwrap();
    assert_eq!(again[0].key, time);

    // A batch larger than one etcd transaction (128 operations) is created whole, and one
    // whose last name is taken leaves nothing behind, on the node or in the cluster.
    let many: Vec<NewChannel> = (0..150).map(|i| NewChannel::virtual_(format!("bulk_{i}"), DataType::U8)).collect();
    assert_eq!(c1.create_channels(many, false).await.unwrap().len(), 150);
    let mut clash: Vec<NewChannel> = (0..150).map(|i| NewChannel::virtual_(format!("clash_{i}"), DataType::U8)).collect();
    clash.push(NewChannel::virtual_("bulk_7", DataType::U8));
    let err = c3.create_channels(clash, false).await.unwrap_err();
    assert_eq!(err.code(), "channel.name_taken", "{err}");
    assert!(c3.search_channels("clash_").await.unwrap().is_empty());
    assert!(status(&cl.etcd)["placement"].as_array().unwrap().iter().all(|p| !p["name"].as_str().unwrap().starts_with("clash_")));
    let bulk: Vec<ChannelKey> = c1.search_channels("bulk_").await.unwrap().iter().map(|c| c.key).collect();
    assert_eq!(bulk.len(), 150);
    c2.delete_channels(&bulk).await.unwrap();
    assert!(status(&cl.etcd)["placement"].as_array().unwrap().iter().all(|p| !p["name"].as_str().unwrap().starts_with("bulk_")));

    // A data channel created on daq-1 against daq-2's index is stored with its index.
    let extra = c1.create_channels(vec![NewChannel::data_with_key("chamber_extra", DataType::F32, time)], false).await.unwrap();
    assert_eq!(extra[0].key >> 24, number);

    // Explicit placement: created through daq-1, stored on daq-3; a data channel goes with
    // its index, so placing it elsewhere is refused; an unknown node is named as such.
    let placed = c1.create_channels_on("daq-3", vec![NewChannel::index("placed_time")], false).await.unwrap();
    assert_eq!(u64::from(placed[0].key >> 24), st["nodes"]["daq-3"].as_u64().unwrap());
    let err =
        c1.create_channels_on("daq-1", vec![NewChannel::data("placed_value", DataType::F64, "placed_time")], false).await.unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    assert!(err.to_string().contains("daq-3"), "{err}");
    let err = c1.create_channels_on("daq-9", vec![NewChannel::index("nowhere")], false).await.unwrap_err();
    assert!(err.code() == "invalid_argument" && err.to_string().contains("daq-9"), "{err}");

    // Renames and deletes through any node reach the owner and every mirror.
    c3.rename_channel(extra[0].key, "chamber_aux").await.unwrap();
    eventually(10, "the rename on daq-1", || async { c1.channel("chamber_aux").await.ok() }).await;
    c1.delete_channels(&[extra[0].key]).await.unwrap();
    eventually(10, "the delete on daq-3", || async { c3.channel(extra[0].key).await.is_err().then_some(()) }).await;
    assert_eq!(c2.channel(extra[0].key).await.unwrap_err().code(), "channel.not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_a_node_creates_for_itself_are_named_per_node_and_in_the_catalog_at_once() {
    // Self-telemetry and the demo stand create channels on each node's engine, not through
    // a client: the node registers them in etcd as its engine creates them, under its own
    // name.
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let nodes: Vec<Node> =
        ["daq-1", "daq-2"].iter().map(|n| Node::start_with(&etcd, dir.path(), n, &["--self-telemetry", "100ms", "--demo"])).collect();
    let (c1, c2) = (client(&nodes[0]).await, client(&nodes[1]).await);
    let numbers = status(&etcd)["nodes"].clone();
    for c in [&c1, &c2] {
        for node in ["daq-1", "daq-2"] {
            let name = format!("_telemetron/{node}/storage/commits");
            let ch = eventually(10, &name, || async { c.channel(name.as_str()).await.ok() }).await;
            assert_eq!(u64::from(ch.key >> 24), numbers[node].as_u64().unwrap(), "{name} is stored on {node}");
            // Written by its node, read through either.
            eventually(10, "self-telemetry samples", || async {
                let f = c.read(TimeRange::MAX, &[ch.key]).await.ok()?;
                (!values(&f, ch.key).is_empty()).then_some(())
            })
            .await;
        }
        // Each node runs its own demo stand, on channels named after it.
        for node in ["daq-1", "daq-2"] {
            for plain in ["pressure_1", "valve_cmd"] {
                let name = format!("{node}/{plain}");
                let ch = eventually(10, &name, || async { c.channel(name.as_str()).await.ok() }).await;
                assert_eq!(u64::from(ch.key >> 24), numbers[node].as_u64().unwrap(), "{name} is stored on {node}");
            }
        }
        // Nobody took the single-node names, which both nodes would have wanted.
        for plain in ["_telemetron/storage/commits", "_telemetron/time", "pressure_1", "stand_time"] {
            assert_eq!(c.channel(plain).await.unwrap_err().code(), "channel.not_found", "{plain}");
        }
    }
    let st = status(&etcd);
    let placed: Vec<&str> = st["placement"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(placed.contains(&"_telemetron/daq-1/time") && placed.contains(&"_telemetron/daq-2/time"), "{st}");
    // A node's summary reads its own channels and names them as a single node does.
    let req = telemetron::observe::SummaryRequest::parse(Some("10m"), None, None).unwrap();
    let sum = telemetron::observe::Observe::new(&c2).summary(&req).await.unwrap();
    assert_eq!(sum.get("_telemetron/storage/commits").unwrap().kind, telemetron::observe::MetricKind::Counter, "{sum:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fan_out_and_streamers_receive_every_nodes_frames_through_peer_taps() {
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (t2, v2) = sensor(&c2, "b").await;
    let (t3, v3) = sensor(&c3, "c").await;
    let (_, v1) = sensor(&c1, "a").await;
    eventually(10, "mirrors on daq-1", || async { (c1.channel(v2).await.is_ok() && c1.channel(v3).await.is_ok()).then_some(()) }).await;

    // A streamer on daq-1 of channels stored on daq-2 and daq-3.
    let mut s = c1.open_streamer(StreamerConfig::new(vec![v2, v3])).await.unwrap();
    // The peer taps open asynchronously: write until the first frame of each arrives.
    let (mut got2, mut got3) = (Vec::new(), Vec::new());
    let mut start = 1_000_000;
    let deadline = Instant::now() + Duration::from_secs(15);
    while got2.is_empty() || got3.is_empty() {
        assert!(Instant::now() < deadline, "frames of daq-2 ({}) and daq-3 ({}) did not both arrive", got2.len(), got3.len());
        c2.write(TimeStamp(start), samples(t2, v2, start, 10)).await.unwrap();
        c3.write(TimeStamp(start), samples(t3, v3, start, 10)).await.unwrap();
        start += 100_000;
        while let Some(f) = s.next_timeout(Duration::from_millis(100)).await.unwrap() {
            got2.extend(values(&f, v2));
            got3.extend(values(&f, v3));
            assert!(f.unique_keys().iter().all(|k| [v2, v3].contains(k)), "only the asked channels arrive");
        }
    }

    // Dynamic delta: drop daq-3's channel, add daq-1's own; daq-3's frames stop coming.
    s.update_channels(vec![v2, v1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    while s.next_timeout(Duration::from_millis(50)).await.unwrap().is_some() {}
    let t1 = c1.channel("a_time").await.unwrap().key;
    c3.write(TimeStamp(start), samples(t3, v3, start, 5)).await.unwrap();
    c2.write(TimeStamp(start), samples(t2, v2, start, 5)).await.unwrap();
    c1.write(TimeStamp(start), samples(t1, v1, start, 5)).await.unwrap();
    let (mut n1, mut n2) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (n1 < 5 || n2 < 5) && Instant::now() < deadline {
        if let Some(f) = s.next_timeout(Duration::from_millis(200)).await.unwrap() {
            assert!(f.get(v3).next().is_none(), "a channel dropped from the streamer still arrived");
            n1 += values(&f, v1).len();
            n2 += values(&f, v2).len();
        }
    }
    assert_eq!((n1, n2), (5, 5));
    s.close().await;

    // A read through daq-1 of all three nodes' channels returns each node's samples.
    let f = c1.read(TimeRange::MAX, &[v1, v2, v3]).await.unwrap();
    let direct = c2.read(TimeRange::MAX, &[v2]).await.unwrap();
    assert_eq!(values(&f, v2), values(&direct, v2));
    assert_eq!(values(&f, v3), values(&c3.read(TimeRange::MAX, &[v3]).await.unwrap(), v3));
    assert_eq!(values(&f, v1).len(), 5);
    assert_eq!(c1.time_range(v2).await.unwrap(), c2.time_range(v2).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_and_iterators_of_another_nodes_channels_run_at_their_leaseholder() {
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (t2, v2) = sensor(&c2, "pump").await;
    let (_, v3) = sensor(&c3, "valve").await;
    eventually(10, "mirrors on daq-1", || async { (c1.channel(v2).await.is_ok() && c1.channel(v3).await.is_ok()).then_some(()) }).await;

    // A one-shot write and a writer stream through daq-1 are stored on daq-2.
    c1.write(TimeStamp(1_000), samples(t2, v2, 1_000, 3)).await.unwrap();
    let mut w = c1.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(100_000), vec![t2, v2])).await.unwrap();
    for i in 0..4 {
        let at = 100_000 + i * 10_000;
        assert!(w.write(&samples(t2, v2, at, 2)).await.unwrap().unauthorized.is_empty());
    }
    let end = w.close().await.unwrap();
    assert_eq!(end, TimeStamp(131_001));
    let on_owner = c2.read(TimeRange::MAX, &[v2]).await.unwrap();
    assert_eq!(values(&on_owner, v2).len(), 3 + 8);

    // An iterator through daq-3 walks daq-2's data.
    let mut it = c3.open_iterator(telemetron::framer::IteratorConfig::new(TimeRange::MAX, vec![v2])).await.unwrap();
    assert!(it.seek_first().await.unwrap());
    let mut walked = Vec::new();
    while it.next(telemetron::framer::IterSpan::Samples(4)).await.unwrap() {
        walked.extend(values(it.value(), v2));
    }
    assert_eq!(walked, values(&on_owner, v2));

    // An iterator of channels on two nodes is refused, naming both (reads fan out instead).
    let err = c1.open_iterator(telemetron::framer::IteratorConfig::new(TimeRange::MAX, vec![v2, v3])).await.unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    assert!(err.to_string().contains("daq-2") && err.to_string().contains("daq-3"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_of_channels_on_several_nodes_is_split_and_committed_per_node() {
    let mut cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (t1, v1) = sensor(&c1, "a").await;
    let (t2, v2) = sensor(&c2, "b").await;
    let (t3, v3) = sensor(&c3, "c").await;
    eventually(10, "mirrors on daq-1", || async { (c1.channel(v2).await.is_ok() && c1.channel(v3).await.is_ok()).then_some(()) }).await;
    // Data already on daq-2 where the writer will later write: that node refuses the overlap.
    c2.write(TimeStamp(5_000_000), samples(t2, v2, 5_000_000, 3)).await.unwrap();

    // One writer through daq-1 of its own channel and of daq-2's and daq-3's, at 100.
    let config = telemetron::framer::WriterConfig {
        authorities: vec![100],
        auto_commit: false,
        ..telemetron::framer::WriterConfig::new(TimeStamp(1_000_000), vec![v1, v2, v3])
    };
    let mut w = c1.open_writer(config).await.unwrap();
    for k in [t1, v1, t2, v2, t3, v3] {
        assert!(w.has_control(k), "the writer controls {k} on its leaseholder");
    }
    let all = |at: i64, n: usize| {
        let mut f = samples(t1, v1, at, n);
        f.extend(samples(t2, v2, at, n));
        f.extend(samples(t3, v3, at, n));
        f
    };
    assert!(w.write(&all(1_000_000, 4)).await.unwrap().unauthorized.is_empty());
    // A frame of one node's channels goes to that node only.
    assert!(w.write(&samples(t3, v3, 2_000_000, 2)).await.unwrap().unauthorized.is_empty());
    let end = w.commit().await.unwrap();
    assert_eq!(end, TimeStamp(2_001_001), "the commit's end is the latest of the nodes'");
    for (c, v, n) in [(&c1, v1, 4), (&c2, v2, 3 + 4), (&c3, v3, 4 + 2)] {
        assert_eq!(values(&c.read(TimeRange::MAX, &[v]).await.unwrap(), v).len(), n, "each node stores its own share");
    }

    // An operator on daq-3 takes daq-3's channel: the spanning writer is told, keeps the
    // others, and its next frame is written without daq-3's share.
    let op_config =
        |a: u8| telemetron::framer::WriterConfig { authorities: vec![a], ..telemetron::framer::WriterConfig::new(TimeStamp(0), vec![v3]) };
    let op = c3.open_writer(op_config(200)).await.unwrap();
    eventually(10, "the authority notice", || async { (!w.has_control(v3)).then_some(()) }).await;
    assert!(w.has_control(v1) && w.has_control(v2));
    let report = w.write_confirmed(&all(3_000_000, 2)).await.unwrap();
    let mut lost = report.unauthorized.clone();
    lost.sort_unstable();
    assert_eq!(lost, {
        let mut l = vec![t3, v3];
        l.sort_unstable();
        l
    });
    op.close().await.unwrap();
    eventually(10, "control back", || async { w.has_control(v3).then_some(()) }).await;

    // A frame one node refuses (daq-2 already holds that time) is reported under the
    // client's write number on the next call; the other nodes' shares were written.
    w.write(&all(5_000_000, 2)).await.unwrap();
    let err = w.commit().await.unwrap_err();
    assert!(err.to_string().contains("b_time"), "the node's own error, naming its channel: {err}");
    let end = w.commit().await.unwrap();
    assert!(end >= TimeStamp(5_001_000), "{end:?}");
    assert_eq!(values(&c1.read(TimeRange::new(TimeStamp(5_000_000), TimeStamp(6_000_000)), &[v1]).await.unwrap(), v1).len(), 2);

    // Authorities change per node; a close commits on every node.
    w.set_authorities(&[(v2, 50), (v3, 60)]).await.unwrap();
    let states = c1.control_states(&[v2, v3]).await.unwrap();
    let authority = |k| states.iter().find(|s| s.resource == k).map(|s| s.authority);
    assert_eq!((authority(v2), authority(v3)), (Some(50), Some(60)), "{states:?}");
    assert!(w.write(&all(7_000_000, 1)).await.unwrap().unauthorized.is_empty());
    assert_eq!(w.close().await.unwrap(), TimeStamp(7_000_001));
    assert_eq!(values(&c3.read(TimeRange::new(TimeStamp(7_000_000), TimeStamp(8_000_000)), &[v3]).await.unwrap(), v3), vec![7_000_000.0]);

    // A leaseholder killed under a spanning writer ends it with `node.unavailable`; the
    // other nodes abort their uncommitted parts.
    let config = telemetron::framer::WriterConfig {
        auto_commit: false,
        ..telemetron::framer::WriterConfig::new(TimeStamp(9_000_000), vec![v1, v2, v3])
    };
    let mut w = c1.open_writer(config).await.unwrap();
    w.write(&all(9_000_000, 1)).await.unwrap();
    cl.nodes[2].kill();
    // The end of the stream is reported by the next call after it (no commit is sent, which
    // would commit daq-1's and daq-2's parts: commits are per node).
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(Instant::now() < deadline, "the writer did not end after its leaseholder died");
        match w.write(&samples(t1, v1, 9_500_000, 1)).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), "node.unavailable", "{err}");
    assert!(err.to_string().contains("daq-3"), "{err}");
    let after = c1.read(TimeRange::new(TimeStamp(9_000_000), TimeStamp(10_000_000)), &[v1, v2]).await.unwrap();
    assert_eq!((values(&after, v1).len(), values(&after, v2).len()), (0, 0), "nothing uncommitted was kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_of_a_channel_is_arbitrated_at_its_leaseholder_for_writers_on_every_node() {
    // RFC 14's handoff with the two writers on different nodes: a sequence on daq-1 holds a
    // valve stored on daq-2 at authority 100; an operator on daq-3 takes it at 200, and the
    // sequence gets it back when the operator lets go.
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let cmd = c2.create_channels(vec![NewChannel::virtual_("valve_cmd", DataType::U8)], false).await.unwrap()[0].key;
    for c in [&c1, &c3] {
        eventually(10, "the mirror", || async { c.channel(cmd).await.ok() }).await;
    }
    let config = |a: u8, name: &str| telemetron::framer::WriterConfig {
        authorities: vec![a],
        name: name.into(),
        ..telemetron::framer::WriterConfig::new(TimeStamp(0), vec![cmd])
    };
    // Every node's control channel shows the transfers, wherever they are decided.
    let mut watchers = Vec::new();
    for c in [&c1, &c3] {
        watchers.push(c.open_streamer(StreamerConfig::new(vec![c.control_channel().await.unwrap()])).await.unwrap());
    }
    let mut seq = c1.open_writer(config(100, "sequence")).await.unwrap();
    assert!(seq.has_control(cmd));
    let mut op = c3.open_writer(config(200, "operator")).await.unwrap();
    assert!(op.has_control(cmd));
    let one = Frame::new().with(cmd, Series::from_vec(vec![1u8]));
    // The sequence's command is now dropped, and it is told so.
    // (Dropped by daq-2, or refused at once if its notice crossed daq-1 first.)
    let report = seq.write_confirmed(&one).await.unwrap();
    assert_eq!(report.not_written(), vec![cmd]);
    assert!(!seq.has_control(cmd));
    assert!(op.write_confirmed(&one).await.unwrap().unauthorized.is_empty());
    // The leaseholder's control state names the operator, asked of any node.
    for c in [&c1, &c2, &c3] {
        let states = c.control_states(&[cmd]).await.unwrap();
        assert_eq!(states.iter().find(|s| s.resource == cmd).map(|s| s.authority), Some(200), "{states:?}");
    }
    op.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty() && seq.has_control(cmd)) {
        assert!(Instant::now() < deadline, "control did not come back to the sequence");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let who = |n: &str| Some(n.to_string());
    for w in &mut watchers {
        let seen = control_transfers_until(w, &[(who("sequence"), who("operator"), cmd), (who("operator"), who("sequence"), cmd)]).await;
        // The first acquisition may have come as part of daq-2's snapshot, as an acquire.
        assert!(seen.contains(&(None, who("sequence"), cmd)), "{seen:?}");
    }
    // A control channel opened now starts with a snapshot that includes daq-2's holder.
    let mut late = c3.open_streamer(StreamerConfig::new(vec![c3.control_channel().await.unwrap()])).await.unwrap();
    let snap = control_messages(&mut late, 1).await;
    assert_eq!(snap[0]["snapshot"], serde_json::Value::Bool(true), "{snap:?}");
    let holders: Vec<&str> = snap[0]["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["to"]["resource"] == cmd)
        .filter_map(|t| t["to"]["subject"]["name"].as_str())
        .collect();
    assert_eq!(holders, vec!["sequence"], "{snap:?}");
    seq.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_becomes_unavailable_after_its_ttl_and_serves_again_when_it_rejoins() {
    let mut cl = cluster();
    let (c1, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[2]).await);
    let (t3, v3) = sensor(&c3, "tank").await;
    c3.write(TimeStamp(1_000), samples(t3, v3, 1_000, 100)).await.unwrap();
    let (_, v1) = sensor(&c1, "local").await;
    eventually(10, "the mirror", || async { c1.channel(v3).await.ok() }).await;
    assert_eq!(values(&c1.read(TimeRange::MAX, &[v3]).await.unwrap(), v3).len(), 100);

    // A writer relayed through daq-1 to daq-3, open when daq-3 dies.
    let mut w = c1.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(1_000_000), vec![t3, v3])).await.unwrap();
    w.write_confirmed(&samples(t3, v3, 1_000_000, 5)).await.unwrap();
    w.commit().await.unwrap();

    cl.nodes[2].kill();
    // The writer learns it: its next write fails naming the node, and control of its
    // channels is gone with the node.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut at = 2_000_000;
    let err = loop {
        at += 1_000;
        if let Err(e) = w.write_confirmed(&samples(t3, v3, at, 1)).await {
            break e;
        }
        assert!(Instant::now() < deadline, "the relayed writer did not fail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(["node.unavailable", "net.connection_lost"].contains(&err.code()), "{err}");
    // Reads of its channels through daq-1 fail with node.unavailable, naming it: at once
    // (the connection is refused), and after the TTL (2 s, plus etcd's expiry sweep) also
    // because it left the member list.
    eventually(15, "daq-3 to leave the member list", || async {
        (status(&cl.etcd)["members"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    let err = eventually(15, "node.unavailable", || async {
        match c1.read(TimeRange::MAX, &[v3]).await {
            Err(e) if e.code() == "node.unavailable" => Some(e),
            _ => None,
        }
    })
    .await;
    assert!(err.to_string().contains("daq-3"), "{err}");
    // Its definitions stay (the channel still exists, its data is on daq-3's disk), and
    // daq-1 keeps serving its own channels.
    assert_eq!(c1.channel(v3).await.unwrap().name, "tank_value");
    c1.read(TimeRange::MAX, &[v1]).await.unwrap();

    // Restarted on the same directory, daq-3 rejoins under the same number and serves its
    // data again through daq-1.
    let etcd = &cl.etcd;
    cl.nodes[2].restart(etcd);
    let back = eventually(15, "daq-3's data through daq-1", || async { c1.read(TimeRange::MAX, &[v3]).await.ok() }).await;
    // Everything committed is there, the relayed writer's commit included.
    let committed: Vec<f64> = (0..100).map(|i| 1_000.0 + f64::from(i)).chain((0..5).map(|i| 1_000_000.0 + f64::from(i))).collect();
    assert_eq!(values(&back, v3), committed);
    assert_eq!(status(&cl.etcd)["nodes"]["daq-3"].as_u64().unwrap() as u32, v3 >> 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_loses_its_lease_and_gets_it_back_when_continued() {
    let cl = cluster();
    let c1 = client(&cl.nodes[0]).await;
    let c2 = client(&cl.nodes[1]).await;
    let (t2, v2) = sensor(&c2, "line").await;
    c2.write(TimeStamp(1_000), samples(t2, v2, 1_000, 10)).await.unwrap();
    eventually(10, "the mirror", || async { c1.channel(v2).await.ok() }).await;

    // SIGSTOP: the process keeps its sockets open but answers nothing, as a node cut off
    // the network would.
    cl.nodes[1].signal(libc::SIGSTOP);
    // A read sent now waits on a node that answers nothing, until the cluster gives up on
    // it (its lease expires, TTL 2 s): then it ends with node.unavailable, not later.
    let sent = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), c1.read(TimeRange::MAX, &[v2])).await.expect("the read ends").unwrap_err();
    assert_eq!(err.code(), "node.unavailable", "{err}");
    assert!(sent.elapsed() < Duration::from_secs(10), "ended after {:?}", sent.elapsed());
    eventually(15, "daq-2 to leave the member list", || async {
        (status(&cl.etcd)["members"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    // Once daq-1 has seen it go (its member watch), reads fail at once.
    eventually(15, "node.unavailable from daq-1", || async {
        match tokio::time::timeout(Duration::from_secs(2), c1.read(TimeRange::MAX, &[v2])).await {
            Ok(Err(e)) if e.code() == "node.unavailable" => Some(()),
            _ => None,
        }
    })
    .await;

    cl.nodes[1].signal(libc::SIGCONT);
    let back = eventually(20, "daq-2 to rejoin", || async { c1.read(TimeRange::MAX, &[v2]).await.ok() }).await;
    assert_eq!(values(&back, v2).len(), 10);
}

#[test]
fn a_data_directory_belongs_to_one_node_name() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let mut n = Node::start(&etcd, dir.path(), "rig-a");
    // A second process under a live node's name (on another directory) is refused: two
    // processes would hand out the same channel keys.
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--cluster", &etcd.url, "--name", "rig-a"])
        .args(["--data", dir.path().join("twin").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already served by another process"), "{err}");
    n.kill();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--cluster", &etcd.url, "--name", "rig-b"])
        .args(["--data", n.dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to cluster node \"rig-a\""), "{err}");

    // A bad etcd address fails fast with the coordination error, not a hang.
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--name", "rig-c", "--cluster"])
        .arg(format!("http://127.0.0.1:{}", free_port()))
        .args(["--data", dir.path().join("c").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster coordination failed"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_writes_go_on_while_etcd_restarts_and_the_catalog_resumes() {
    let mut cl = cluster();
    let (c1, c2) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await);
    let (t2, v2) = sensor(&c2, "feed").await;
    eventually(10, "the mirror", || async { c1.channel(v2).await.ok() }).await;
    let mut s = c1.open_streamer(StreamerConfig::new(vec![v2])).await.unwrap();
    let mut w = c2.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(0), vec![t2, v2])).await.unwrap();
    let mut at = 0;
    // Wait for the peer tap, then restart etcd under load: the stream and the writes do not
    // need etcd, so neither stops.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        at += 10_000;
        w.write(&samples(t2, v2, at, 1)).await.unwrap();
        if s.next_timeout(Duration::from_millis(50)).await.unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the peer tap did not open");
    }
    // Drain what the warm-up delivered, then write for the whole restart from a task while
    // etcd is killed and started again on a blocking thread.
    while s.next_timeout(Duration::from_millis(100)).await.unwrap().is_some() {}
    let writing = tokio::spawn(async move {
        let mut n = 0;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            at += 10_000;
            w.write(&samples(t2, v2, at, 1)).await.unwrap();
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.close().await.unwrap();
        n
    });
    let mut etcd = std::mem::replace(&mut cl.etcd, Etcd::placeholder());
    let restarting = tokio::task::spawn_blocking(move || {
        etcd.restart();
        etcd
    });
    let mut received = 0;
    while !writing.is_finished() {
        if let Some(f) = s.next_timeout(Duration::from_millis(50)).await.unwrap() {
            received += values(&f, v2).len();
        }
    }
    let written = writing.await.unwrap();
    while let Some(f) = s.next_timeout(Duration::from_millis(200)).await.unwrap() {
        received += values(&f, v2).len();
    }
    cl.etcd = restarting.await.unwrap();
    assert_eq!(received, written, "samples written during the etcd restart went missing from the stream");
    // With etcd back, the catalog works again: a new channel on daq-2 reaches daq-1, and
    // every member is still listed.
    let made = eventually(20, "a create after the restart", || async {
        c2.create_channels(vec![NewChannel::virtual_("after_restart", DataType::U8)], false).await.ok()
    })
    .await;
    eventually(20, "the new mirror", || async { c1.channel(made[0].key).await.ok() }).await;
    eventually(20, "three members", || async { (status(&cl.etcd)["members"].as_array().unwrap().len() == 3).then_some(()) }).await;
}

/// Messages of the control channel that `s` streams, until `want` of them arrived or 10 s
/// passed.
async fn control_messages(s: &mut telemetron::client::ClientStreamer, want: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < want && Instant::now() < deadline {
        let Some(f) = s.next_timeout(Duration::from_millis(100)).await.unwrap() else { continue };
        for series in f.series() {
            out.extend((0..series.len()).map(|i| serde_json::from_str::<serde_json::Value>(series.value_str(i).unwrap()).unwrap()));
        }
    }
    out
}

type Moved = (Option<String>, Option<String>, ChannelKey);

/// (from, to, channel) subject names of the transfers in control messages, snapshots left out.
fn moves(msgs: &[serde_json::Value]) -> Vec<Moved> {
    let name = |v: &serde_json::Value| v["subject"]["name"].as_str().map(str::to_string);
    msgs.iter()
        .filter(|m| m.get("snapshot").is_none())
        .flat_map(|m| m["transfers"].as_array().unwrap().clone())
        .map(|t| (name(&t["from"]), name(&t["to"]), t["from"]["resource"].as_u64().or(t["to"]["resource"].as_u64()).unwrap() as ChannelKey))
        .collect()
}

/// The transfers `s` streams, until `want` of them arrived or 10 s passed.
async fn control_transfers(s: &mut telemetron::client::ClientStreamer, want: usize) -> Vec<Moved> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < want && Instant::now() < deadline {
        out.extend(moves(&control_messages(s, 1).await));
    }
    out
}

/// The transfers `s` streams, until every one of `expected` was among them (10 s at most).
async fn control_transfers_until(s: &mut telemetron::client::ClientStreamer, expected: &[Moved]) -> Vec<Moved> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !expected.iter().all(|e| out.contains(e)) {
        assert!(Instant::now() < deadline, "transfers {expected:?} not all seen; got {out:?}");
        out.extend(moves(&control_messages(s, 1).await));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_etcd_keeps_control_while_its_lease_lasts_then_fails_safe() {
    let mut cl = cluster();
    let c2 = client(&cl.nodes[1]).await;
    let cmd = c2.create_channels(vec![NewChannel::virtual_("press_cmd", DataType::U8)], false).await.unwrap()[0].key;
    let config = |a: u8, name: &str| telemetron::framer::WriterConfig {
        authorities: vec![a],
        name: name.into(),
        ..telemetron::framer::WriterConfig::new(TimeStamp(0), vec![cmd])
    };
    let mut seq = c2.open_writer(config(100, "sequence")).await.unwrap();
    let one = Frame::new().with(cmd, Series::from_vec(vec![1u8]));
    assert!(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty());
    // A recording (a stored channel) on the same node: the default fence covers commands.
    let (rt, rv) = sensor(&c2, "chamber").await;
    let mut rec = c2.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(0), vec![rt, rv])).await.unwrap();
    let ctl = c2.control_channel().await.unwrap();
    let mut watch = c2.open_streamer(StreamerConfig::new(vec![ctl])).await.unwrap();

    // Cut off: while the lease surely lasts (TTL 2 s, renewed every 2/3 s), the node keeps
    // arbitrating and the sequence keeps commanding.
    let cut = Instant::now();
    cl.etcd.stop();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty(), "control holds while the lease lasts");
    // Then it fails safe: the sequence is told it lost control, its commands are dropped,
    // and the release is published on the node's control channel.
    eventually(10, "the fence", || async { (!seq.has_control(cmd)).then_some(()) }).await;
    assert!(cut.elapsed() >= Duration::from_secs(1), "fenced after {:?}, before the lease could expire", cut.elapsed());
    assert_eq!(seq.write_confirmed(&one).await.unwrap().unauthorized, vec![cmd]);
    assert!(c2.control_states(&[cmd]).await.unwrap().is_empty());
    assert!(rec.write_confirmed(&samples(rt, rv, 1_000, 5)).await.unwrap().not_written().is_empty(), "recording goes on");
    rec.commit().await.unwrap();
    assert_eq!(values(&c2.read(TimeRange::MAX, &[rv]).await.unwrap(), rv).len(), 5);
    assert_eq!(control_transfers(&mut watch, 1).await, vec![(Some("sequence".to_string()), None, cmd)]);
    // No one takes control while the fence stands.
    let late = c2.open_writer(config(250, "late")).await.unwrap();
    assert!(!late.has_control(cmd));
    late.close().await.unwrap();

    // etcd back: the node rejoins under a new lease. A writer from before the fence does
    // not command again until it asks (sets its authority); then it does.
    cl.etcd.restart();
    eventually(20, "daq-2 to rejoin", || async { (status(&cl.etcd)["members"].as_array().unwrap().len() == 3).then_some(()) }).await;
    eventually(10, "the fence to lift", || async {
        let probe = c2.open_writer(config(1, "probe")).await.ok()?;
        let got = probe.has_control(cmd);
        probe.close().await.ok()?;
        got.then_some(())
    })
    .await;
    assert!(!seq.has_control(cmd), "a writer from before the fence stays out until it asks");
    seq.set_authority(100).await.unwrap();
    assert!(seq.has_control(cmd));
    assert!(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty());
    seq.close().await.unwrap();
    rec.close().await.unwrap();
}
