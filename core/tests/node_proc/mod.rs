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
