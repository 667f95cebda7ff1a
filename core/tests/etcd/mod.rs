//! A real etcd server for the cluster tests (Debian's `etcd-server`, installed by
//! `scripts/ensure-deps.sh`): on free loopback ports, killed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An etcd server on free loopback ports, with its data in `dir`; killed on drop.
pub struct Etcd {
    child: Child,
    pub url: String,
    dir: PathBuf,
    ports: (u16, u16),
}

impl Etcd {
    pub fn start(dir: &Path) -> Etcd {
        Etcd::start_on(dir, (free_port(), free_port()))
    }

    pub fn start_on(dir: &Path, (client, peer): (u16, u16)) -> Etcd {
        let url = format!("http://127.0.0.1:{client}");
        let child = Command::new("etcd")
            .args(["--data-dir", dir.to_str().unwrap()])
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-cluster", &format!("default=http://127.0.0.1:{peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd runs (scripts/ensure-deps.sh installs Debian's etcd-server)");
        let etcd = Etcd { child, url, dir: dir.to_path_buf(), ports: (client, peer) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        etcd
    }
}

impl Etcd {
    /// A stand-in while the real one restarts on another thread (a finished `true`).
    pub fn placeholder() -> Etcd {
        let child = Command::new("true").spawn().unwrap();
        Etcd { child, url: String::new(), dir: PathBuf::new(), ports: (0, 0) }
    }

    /// Kill etcd (SIGKILL): every node is cut off from it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kill etcd (SIGKILL) and start it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        let (dir, ports) = (self.dir.clone(), self.ports);
        *self = Etcd::start_on(&dir, ports);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
