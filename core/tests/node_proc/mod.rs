//! `telemetron serve` as a real process, for the tests that run one: start it, wait for its
//! "telemetron serving" line, and keep draining its stdout so it never blocks on a pipe.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_telemetron");

/// A free loopback port (bound and released; the node binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free loopback port that stays free while nothing listens on it: below the ephemeral
/// range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 and up), so no `bind(:0)` of a
/// test running beside it, [`free_port`] included, can be handed it. For a test that
/// names a node's address long before it starts the node (a client retrying a node that
/// is down): a port from [`free_port`] could meanwhile go to another test's node.
pub fn reserved_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1_000) as u16 * 12;
    for _ in 0..12_000 {
        let port = 20_000 + (base - 20_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 20000..32000");
}

/// Run `telemetron serve --listen <listen> <args...>` with its stderr going to `stderr`,
/// and return once it serves (panicking, with the node killed, if it does not within 30 s).
pub fn spawn_serve<S: AsRef<OsStr>>(listen: &str, args: &[S], stderr: Stdio) -> Child {
    let mut child =
        Command::new(BIN).arg("serve").args(["--listen", listen]).args(args).stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("telemetron serving") {
            std::thread::spawn(move || {
                let mut sink = String::new();
                while out.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return child;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the node on {listen} did not start: {line}");
}
