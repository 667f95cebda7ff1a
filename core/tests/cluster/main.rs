//! Cluster mode with real parts: an etcd server (Debian's `etcd-server`, installed by
//! `scripts/ensure-deps.sh`) and three `telemetron serve --cluster` processes on loopback,
//! driven through the ordinary remote client. Nodes are killed with SIGKILL and stopped
//! with SIGSTOP, as a crash or a cut-off would.

#[path = "../etcd/mod.rs"]
mod etcd;
#[path = "../node_proc/mod.rs"]
mod node_proc;

mod catalog;
mod control;
mod data;
mod failures;
mod metadata;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Client, ConnectOptions};

use etcd::Etcd;
use node_proc::{BIN, free_port, reserved_port, spawn_serve};

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

    /// The node keeps its port across restarts: one below the ephemeral range, which no
    /// client connection of a test running beside it can take meanwhile.
    fn start_with(etcd: &Etcd, root: &Path, name: &str, extra: &[&str]) -> Node {
        let extra = extra.iter().map(|a| a.to_string()).collect();
        let mut n = Node { name: name.to_string(), dir: root.join(name), port: reserved_port(), extra, child: None };
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
