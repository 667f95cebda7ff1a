//! Crash recovery under `SIGKILL`: a separate writer process is killed at random points,
//! many times, and the data directory is reopened and checked after every kill.
//!
//! ## How it works
//! The test binary re-runs itself (`current_exe() --exact child_writer --include-ignored`)
//! with `TELEMETRON_CRASH_CHILD_DIR` (plus durability, seed and frame size) in the
//! environment. In that process the otherwise ignored test `child_writer` is the writer: it
//! opens the engine, creates the channels if needed (an index plus `f64`, `i32` and
//! `string` data channels), opens a writer just after the stored data (`START <ts>`) and
//! loops: frames of 1..5000 samples whose timestamps and values are pure functions of the
//! previous timestamp (see [`next_ts`] and the `*_at` functions), a commit every 1..4 writes,
//! and after every commit that returned `Ok` a line `COMMITTED <end>` on stdout. Now and then
//! it closes the writer (a seal record follows) or aborts it with uncommitted frames, prints
//! `CLOSED <end>` and opens a new one.
//!
//! The parent kills the child with `SIGKILL` after a random delay, reaps it, reopens the
//! directory and checks that (1) every acknowledged commit is there, (2) every sample served
//! has exactly the value its timestamp dictates, index timestamps strictly increase and data
//! channels line up with their index, (3) reads (full and random sub-ranges) never fail, and
//! (4) what lies beyond the last acknowledged commit (a commit that completed but was not
//! printed) is an intact prefix of what the child wrote, a closed or aborted writer's data
//! ends exactly at its last commit, nothing outside the sessions appears, and what one reopen
//! found stays exactly so at every later one. The storage docs promise that a process crash
//! loses no acknowledged commit in any durability mode (commits are in the page cache when
//! `commit()` returns), so all three modes are held to that.
//!
//! ## Tests and modes
//! - `sigkill_at_random_points_...`: 21 kills (quick) spread over the three durability modes,
//!   5..200 ms after the spawn or after the child started writing.
//! - `sigkill_during_huge_commit_...`: 6 kills (quick) while ~40-80 MB commits are being
//!   written (the parent watches the segment files grow), so tails are torn.
//! - `sigkill_during_first_open_...`: 30 fresh directories (quick), each killed while the
//!   child initializes it, then reopened and written to by a second child.
//! - Long: `TELEMETRON_CRASH_ITERATIONS=500 cargo test -p telemetron --release --test
//!   storage_crash -- --nocapture` (500 random-point kills; the other two tests do a tenth).
//! - Reproduce the parent's choices with `TELEMETRON_CRASH_SEED=<seed>` (printed at start;
//!   kill timing still depends on the scheduler). `TELEMETRON_CRASH_VERBOSE=1` logs each kill.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::WriterConfig;
use telemetron::storage::{Durability, RecoveryReport, StorageOptions};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Engine, Options};

const ENV_CHILD_DIR: &str = "TELEMETRON_CRASH_CHILD_DIR";
const ENV_CHILD_DURABILITY: &str = "TELEMETRON_CRASH_CHILD_DURABILITY";
const ENV_CHILD_SEED: &str = "TELEMETRON_CRASH_CHILD_SEED";
const ENV_CHILD_FRAME: &str = "TELEMETRON_CRASH_CHILD_FRAME";
const ENV_ITERATIONS: &str = "TELEMETRON_CRASH_ITERATIONS";
const ENV_SEED: &str = "TELEMETRON_CRASH_SEED";

/// Prefix of the child's protocol lines on stdout.
const MARK: &str = "@crash-child ";

const INDEX: &str = "crash_time";
const F64: &str = "crash_f64";
const I32: &str = "crash_i32";
const STR: &str = "crash_str";

/// Timestamp of the first sample ever written to a directory.
const BASE_TS: i64 = 1_700_000_000_000_000_000;
/// A child that was not killed by then stops on its own (its parent is gone).
const CHILD_MAX_RUNTIME: Duration = Duration::from_secs(120);
/// Kills in quick mode for the random-point test (spread over the three modes).
const QUICK_KILLS: usize = 21;
/// Kills in quick mode for the first-open test.
const QUICK_INIT_KILLS: usize = 30;
/// Kills in quick mode for the huge-write test.
const QUICK_HUGE_KILLS: usize = 6;
/// Samples per frame in the huge-write test.
const HUGE_FRAME: usize = 2_000_000;
/// Above this many stored samples, values of already verified sessions are spot-checked in
/// random windows instead of all being recomputed on every reopen.
const FULL_VALUE_CHECK_LIMIT: usize = 3_000_000;

// ---------------------------------------------------------------------------------------
// The deterministic data model: the parent recomputes everything from timestamps alone.

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_ts(ts: i64) -> u64 {
    mix64((ts as u64) ^ 0x7E1E_3E70_C4A5_5EED)
}

/// The timestamp written after `ts` (steps of 1..=7 ns).
fn next_ts(ts: i64) -> i64 {
    ts + 1 + (hash_ts(ts) % 7) as i64
}

fn f64_at(ts: i64) -> f64 {
    let m = hash_ts(ts);
    ((m >> 11) as f64 / (1u64 << 53) as f64) * 2.0e6 - 1.0e6 + (ts % 1000) as f64
}

fn i32_at(ts: i64) -> i32 {
    (hash_ts(ts) >> 32) as u32 as i32 ^ (ts as i32)
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The string value at `ts`: 0..=19 ASCII characters (empty values included).
fn str_at(ts: i64, out: &mut String) {
    out.clear();
    let m = hash_ts(ts).rotate_left(17);
    let len = (m % 20) as usize;
    for k in 0..len {
        let b = ((m >> ((k % 8) * 8)) as usize).wrapping_add(k * 7).wrapping_add(ts as usize) % ALPHABET.len();
        out.push(ALPHABET[b] as char);
    }
}

#[derive(Debug, Clone, Copy)]
struct Keys {
    index: ChannelKey,
    f64: ChannelKey,
    i32: ChannelKey,
    string: ChannelKey,
}

impl Keys {
    fn all(&self) -> [ChannelKey; 4] {
        [self.index, self.f64, self.i32, self.string]
    }

    fn lookup(engine: &Engine) -> Option<Keys> {
        let c = engine.channels();
        Some(Keys {
            index: c.by_name(INDEX).ok()?.key,
            f64: c.by_name(F64).ok()?.key,
            i32: c.by_name(I32).ok()?.key,
            string: c.by_name(STR).ok()?.key,
        })
    }
}

/// `n` samples starting at `start`; returns the frame, its last timestamp and the next one.
fn build_frame(k: &Keys, start: i64, n: usize) -> (Frame, i64, i64) {
    let mut ts = Vec::with_capacity(n);
    let mut fs = Vec::with_capacity(n);
    let mut is = Vec::with_capacity(n);
    let mut ss = Vec::with_capacity(n);
    let mut t = start;
    let mut buf = String::new();
    for _ in 0..n {
        ts.push(t);
        fs.push(f64_at(t));
        is.push(i32_at(t));
        str_at(t, &mut buf);
        ss.push(buf.clone());
        t = next_ts(t);
    }
    let last = *ts.last().expect("n > 0");
    let frame = Frame::new()
        .with(k.index, Series::timestamps(ts))
        .with(k.f64, Series::from_vec(fs))
        .with(k.i32, Series::from_vec(is))
        .with(k.string, Series::strings(&ss));
    (frame, last, t)
}

/// SplitMix64: small, seedable, good enough for test choices.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

// ---------------------------------------------------------------------------------------
// The child process.

fn say(line: &str) {
    // Straight to fd 1 (not the test harness capture), flushed before the next step: a
    // line the parent reads was printed after the commit it reports returned.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{MARK}{line}").and_then(|()| out.flush()).is_err() {
        // The parent is gone.
        std::process::exit(2);
    }
}

fn child_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child: {name} is not set"))
}

/// The writer process. Spawned by the tests below; does nothing when run any other way.
#[test]
#[ignore = "the crash tests' child process; it only runs when they spawn it"]
fn child_writer() {
    let Some(dir) = std::env::var_os(ENV_CHILD_DIR) else { return };
    let durability: Durability = child_env(ENV_CHILD_DURABILITY).parse().expect("child: durability");
    let mut rng = Rng(child_env(ENV_CHILD_SEED).parse().expect("child: seed"));
    let fixed_frame: Option<usize> = std::env::var(ENV_CHILD_FRAME).ok().map(|s| s.parse().expect("child: frame size"));
    // Small segments make writers move between segment files; large ones keep one file.
    let segment_size = [1u64 << 20, 8 << 20, 256 << 20][rng.range(0, 3) as usize];
    let opts = Options { storage: StorageOptions { durability, segment_size, ..StorageOptions::default() } };
    let engine = Engine::open_with(&dir, opts).expect("child: open the engine");
    let chans = engine
        .create_channels_with(
            vec![
                NewChannel::index(INDEX),
                NewChannel::data(F64, DataType::F64, INDEX),
                NewChannel::data(I32, DataType::I32, INDEX),
                NewChannel::data(STR, DataType::String, INDEX),
            ],
            true,
        )
        .expect("child: create channels");
    let keys = Keys { index: chans[0].key, f64: chans[1].key, i32: chans[2].key, string: chans[3].key };
    // Huge mode: one or two 2M-sample frames per commit (two push the string channel past the
    // writer's 64 MiB pending limit, so records reach the file before the commit record).
    let writes_per_commit = |rng: &mut Rng| if fixed_frame.is_some() { rng.range(1, 3) } else { rng.range(1, 5) };
    let frame_len = |rng: &mut Rng| fixed_frame.unwrap_or_else(|| rng.range(1, 5001) as usize);
    let began = Instant::now();
    while began.elapsed() < CHILD_MAX_RUNTIME {
        let start = engine.time_range(keys.index).expect("child: time range").map_or(BASE_TS, |r| r.end.0 + 1);
        say(&format!("START {start}"));
        let cfg = WriterConfig::new(TimeStamp(start), vec![keys.f64, keys.i32, keys.string])
            .auto_commit(false)
            .durability(durability)
            .name("crash-child");
        let mut w = engine.open_writer(cfg).expect("child: open writer");
        let mut next = start;
        let mut end = start;
        while began.elapsed() < CHILD_MAX_RUNTIME {
            let mut last = next;
            for _ in 0..writes_per_commit(&mut rng) {
                let (frame, l, nx) = build_frame(&keys, next, frame_len(&mut rng));
                w.write(&frame).expect("child: write");
                last = l;
                next = nx;
            }
            if fixed_frame.is_some() {
                say("WRITING");
            }
            end = w.commit().expect("child: commit").0;
            assert_eq!(end, last + 1, "child: commit returned an unexpected end");
            say(&format!("COMMITTED {end}"));
            // Now and then end the writer cleanly (a seal record follows its commits in the
            // segment) or abort it with uncommitted frames, and start a new one.
            if fixed_frame.is_none() {
                match rng.range(0, 32) {
                    0 => {
                        let closed = w.close().expect("child: close").0;
                        assert_eq!(closed, end, "child: close returned an unexpected end");
                        break;
                    }
                    1 => {
                        for _ in 0..rng.range(1, 3) {
                            let (frame, _, nx) = build_frame(&keys, next, frame_len(&mut rng));
                            w.write(&frame).expect("child: write");
                            next = nx;
                        }
                        w.abort();
                        break;
                    }
                    _ => {}
                }
            }
        }
        // Everything this writer wrote past `end` is gone for good.
        say(&format!("CLOSED {end}"));
    }
    std::process::exit(3);
}

// ---------------------------------------------------------------------------------------
// The parent: spawning and killing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Start(i64),
    Writing,
    Committed(i64),
    Closed(i64),
}

#[derive(Debug)]
struct Running {
    child: Child,
    events: Receiver<(Instant, Event)>,
    stdout: JoinHandle<()>,
    stderr: JoinHandle<String>,
    spawned: Instant,
    seen: Vec<(Instant, Event)>,
}

fn spawn_child(dir: &Path, durability: &str, seed: u64, frame: Option<usize>) -> Running {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child_writer", "--nocapture", "--include-ignored", "--test-threads=1"])
        .env(ENV_CHILD_DIR, dir)
        .env(ENV_CHILD_DURABILITY, durability)
        .env(ENV_CHILD_SEED, seed.to_string())
        .env_remove(ENV_CHILD_FRAME)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = frame {
        cmd.env(ENV_CHILD_FRAME, n.to_string());
    }
    let spawned = Instant::now();
    let mut child = cmd.spawn().expect("spawn the child writer");
    let out = child.stdout.take().expect("child stdout");
    let mut err = child.stderr.take().expect("child stderr");
    let (tx, events) = mpsc::channel();
    let stdout = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // The harness prints "test child_writer ... " without a newline, so a marker
            // may follow other text on its line.
            let Some(at) = line.find(MARK) else { continue };
            let mut it = line[at + MARK.len()..].split_whitespace();
            let ev = match (it.next(), it.next().map(str::parse::<i64>)) {
                (Some("START"), Some(Ok(ts))) => Event::Start(ts),
                (Some("WRITING"), None) => Event::Writing,
                (Some("COMMITTED"), Some(Ok(ts))) => Event::Committed(ts),
                (Some("CLOSED"), Some(Ok(ts))) => Event::Closed(ts),
                _ => panic!("unexpected line from the child: {line:?}"),
            };
            if tx.send((Instant::now(), ev)).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Running { child, events, stdout, stderr, spawned, seen: Vec::new() }
}

impl Running {
    /// Wait until `pred` matches an event (true) or `deadline` passes / the child exits (false).
    fn wait_for(&mut self, deadline: Instant, pred: impl Fn(&Event) -> bool) -> bool {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.events.recv_timeout(deadline - now) {
                Ok(ev) => {
                    self.seen.push(ev);
                    if pred(&ev.1) {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Give up: kill the child and fail with what it printed on stderr.
    fn fail(mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the child");
        let stderr = self.stderr.join().unwrap_or_default();
        let tail = &self.seen[self.seen.len().saturating_sub(5)..];
        panic!("{what} (child status {status}; {} events, last: {tail:?}); child stderr:\n{stderr}", self.seen.len());
    }

    /// SIGKILL the child, reap it and collect everything it printed.
    fn kill(mut self) -> Killed {
        // `Child::kill` sends SIGKILL on Unix.
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the child");
        let alive_for = self.spawned.elapsed();
        self.stdout.join().expect("stdout reader");
        let stderr = self.stderr.join().expect("stderr reader");
        self.seen.extend(self.events.try_iter());
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the child writer ended on its own ({status}) instead of being killed; its stderr:\n{stderr}"
        );
        let mut sessions: Vec<SessionLog> = Vec::new();
        let mut commits = 0;
        for (_, e) in &self.seen {
            match *e {
                Event::Start(t) => {
                    assert!(sessions.last().is_none_or(|l| l.closed.is_some()), "child: START before the previous writer was CLOSED");
                    sessions.push(SessionLog { start: t, acked: None, closed: None });
                }
                Event::Committed(t) => {
                    let l = sessions.last_mut().expect("child: COMMITTED before START");
                    assert!(t > l.acked.unwrap_or(l.start), "child: commit end {t} does not advance ({l:?})");
                    l.acked = Some(t);
                    commits += 1;
                }
                Event::Closed(t) => {
                    let l = sessions.last_mut().expect("child: CLOSED before START");
                    assert_eq!(t, l.acked.unwrap_or(l.start), "child: a writer closed at an end it never committed");
                    l.closed = Some(t);
                }
                Event::Writing => {}
            }
        }
        Killed { sessions, commits, alive_for, seen: self.seen }
    }
}

/// What the child said about one of its writers.
#[derive(Debug, Clone, Copy)]
struct SessionLog {
    start: i64,
    /// End of its last acknowledged commit.
    acked: Option<i64>,
    /// Set when the writer was closed or aborted: its stored end is exactly this.
    closed: Option<i64>,
}

#[derive(Debug)]
struct Killed {
    sessions: Vec<SessionLog>,
    commits: usize,
    alive_for: Duration,
    seen: Vec<(Instant, Event)>,
}

// ---------------------------------------------------------------------------------------
// The parent: what must be on disk, and checking it.

/// One writer session of a child (it printed `START`).
#[derive(Debug, Clone)]
struct Session {
    log: SessionLog,
    /// Samples found after the first reopen; they must stay exactly so forever after.
    settled: Option<usize>,
    /// All values of the session were checked at least once.
    values_checked: bool,
}

#[derive(Debug)]
struct Model {
    dir: tempfile::TempDir,
    sessions: Vec<Session>,
    /// Where the next child must start: stored end + 1 (or `BASE_TS` for an empty store).
    next_start: i64,
    stored: usize,
}

#[derive(Debug, Default)]
struct Totals {
    kills: usize,
    sessions: usize,
    acked_commits: usize,
    unacked_tail_samples: usize,
    truncated_bytes: u64,
    torn_reopens: usize,
    samples_verified: usize,
    values_verified: usize,
}

impl Model {
    fn new() -> Model {
        Model { dir: tempfile::tempdir().expect("tempdir"), sessions: Vec::new(), next_start: BASE_TS, stored: 0 }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Take in what a killed child printed.
    fn record(&mut self, k: &Killed) {
        for log in &k.sessions {
            assert_eq!(
                log.start, self.next_start,
                "a child started a writer somewhere other than just after the stored data ({:?})",
                k.sessions
            );
            self.sessions.push(Session { log: *log, settled: None, values_checked: false });
            // A closed writer that committed something moved the stored end.
            if let Some(c) = log.closed.filter(|&c| c > log.start) {
                self.next_start = c + 1;
            }
        }
    }

    /// Reopen the directory and check everything. Returns the recovery report.
    fn verify(&mut self, rng: &mut Rng, totals: &mut Totals, ctx: &str) -> RecoveryReport {
        let engine = Engine::open(self.path()).unwrap_or_else(|e| panic!("{ctx}: reopen after SIGKILL failed: {e}"));
        let report = engine.recovery_report().clone();
        assert!(report.quarantined.is_empty(), "{ctx}: recovery quarantined segments: {report:?}");
        assert_eq!(report.orphan_chunks, 0, "{ctx}: recovery found orphan chunks: {report:?}");
        totals.truncated_bytes += report.truncated_bytes;
        if report.truncated_bytes > 0 {
            totals.torn_reopens += 1;
        }
        let Some(keys) = Keys::lookup(&engine) else {
            assert!(self.sessions.is_empty(), "{ctx}: channels vanished after sessions wrote to them");
            engine.close().expect("close");
            return report;
        };

        // (3) reads never fail; read everything once.
        let all = engine.read(TimeRange::MAX, &keys.all()).unwrap_or_else(|e| panic!("{ctx}: full read failed: {e}"));
        let index_series: Vec<&Series> = all.get(keys.index).collect();
        let mut ts: Vec<i64> = Vec::with_capacity(index_series.iter().map(|s| s.len()).sum());
        for s in &index_series {
            let t = s.as_timestamps().unwrap_or_else(|e| panic!("{ctx}: index series is not timestamps: {e}"));
            assert!(!t.is_empty(), "{ctx}: empty index series served");
            assert_eq!(s.time_range(), TimeRange::from_nanos(t[0], t[t.len() - 1] + 1), "{ctx}: index series time range");
            ts.extend_from_slice(t);
        }
        // (2) strictly increasing index.
        if let Some(i) = ts.windows(2).position(|w| w[0] >= w[1]) {
            panic!("{ctx}: index not strictly increasing at {i}: {} then {}", ts[i], ts[i + 1]);
        }

        // (1) + (4): the index is exactly the sessions' timestamp chains, each an unbroken
        // prefix reaching at least the acknowledged end, and stable across reopens.
        let mut i = 0usize;
        let mut unchecked_from: Option<usize> = None;
        let bounds: Vec<i64> = self.sessions.iter().skip(1).map(|s| s.log.start).chain([i64::MAX]).collect();
        for (si, s) in self.sessions.iter_mut().enumerate() {
            let SessionLog { start, acked, closed } = s.log;
            let first = i;
            let mut expect = start;
            // A session's chain may run on into the next session's timestamps: stop there.
            while i < ts.len() && ts[i] == expect && expect < bounds[si] {
                expect = next_ts(expect);
                i += 1;
            }
            let found = i - first;
            let end = if found > 0 { ts[i - 1] + 1 } else { start };
            // (1) every acknowledged sample is there: the chain reaches the acknowledged end.
            if let Some(acked) = acked {
                assert!(
                    expect >= acked,
                    "{ctx}: session {si} (start {start}) lost acknowledged samples: the chain stops before {expect} \
                     (found {found} samples; next stored timestamp {:?}) but a commit ending at {acked} was acknowledged",
                    ts.get(i)
                );
            }
            // A closed or aborted writer's data ends exactly at its last commit.
            if let Some(closed) = closed {
                assert_eq!(end, closed, "{ctx}: session {si} (start {start}) was closed at {closed} but its data ends at {end}");
            }
            match s.settled {
                None => {
                    s.settled = Some(found);
                    // (4) samples past the last printed commit (a commit that completed before
                    // the kill but was not printed): an intact prefix of the chain, checked above.
                    if closed.is_none() {
                        totals.unacked_tail_samples += found - ts[first..i].partition_point(|&t| t < acked.unwrap_or(start));
                    }
                }
                Some(prev) => {
                    assert_eq!(prev, found, "{ctx}: session {si} (start {start}) had {prev} samples after an earlier reopen, now {found}")
                }
            }
            if !s.values_checked && unchecked_from.is_none() {
                unchecked_from = Some(first);
            }
            s.values_checked = true;
        }
        // A session that left nothing behind is over for good: the next one starts where it
        // did, so drop it or it would claim that one's samples.
        self.sessions.retain(|s| s.settled != Some(0));
        assert_eq!(
            i,
            ts.len(),
            "{ctx}: {} stored samples belong to no session (first: {:?}); sessions: {:?}",
            ts.len() - i,
            ts.get(i),
            self.sessions
        );
        self.stored = ts.len();
        self.next_start = ts.last().map_or(BASE_TS, |t| t + 2);
        let tr = engine.time_range(keys.index).unwrap_or_else(|e| panic!("{ctx}: time_range failed: {e}"));
        assert_eq!(tr, ts.first().map(|&f| TimeRange::from_nanos(f, ts[ts.len() - 1] + 1)), "{ctx}: time_range");
        totals.samples_verified += ts.len();

        // (2) data channels: same sample count as the index, aligned, exact values.
        let value_from = if ts.len() <= FULL_VALUE_CHECK_LIMIT { 0 } else { unchecked_from.unwrap_or(ts.len()) };
        for key in [keys.f64, keys.i32, keys.string] {
            totals.values_verified += check_channel(&all, key, &ts, value_from..ts.len(), ctx);
        }

        // Random sub-range reads must be exact slices of the full read (partial chunks).
        if !ts.is_empty() {
            let (lo_t, hi_t) = (ts[0], ts[ts.len() - 1] + 1);
            for _ in 0..6 {
                let a = lo_t + rng.range(0, (hi_t - lo_t) as u64 + 1) as i64;
                let b = (a + rng.range(0, 40_000) as i64).min(hi_t);
                let part = engine
                    .read(TimeRange::from_nanos(a, b), &keys.all())
                    .unwrap_or_else(|e| panic!("{ctx}: read of [{a}, {b}) failed: {e}"));
                let (lo, hi) = (ts.partition_point(|&t| t < a), ts.partition_point(|&t| t < b));
                let got: Vec<i64> = part.get(keys.index).flat_map(|s| s.as_timestamps().expect("timestamps").to_vec()).collect();
                assert_eq!(got, ts[lo..hi], "{ctx}: index read of [{a}, {b})");
                for key in [keys.f64, keys.i32, keys.string] {
                    totals.values_verified += check_channel(&part, key, &got, 0..got.len(), ctx);
                }
            }
        }
        engine.close().unwrap_or_else(|e| panic!("{ctx}: close failed: {e}"));
        report
    }
}

/// Check a data channel of `frame` against the index timestamps `ts`: same count, series
/// aligned with the index, and exact values for samples in `check`. Returns values checked.
fn check_channel(frame: &Frame, key: ChannelKey, ts: &[i64], check: std::ops::Range<usize>, ctx: &str) -> usize {
    let mut pos = 0usize;
    let mut checked = 0usize;
    let mut want = String::new();
    for s in frame.get(key) {
        let n = s.len();
        assert!(n > 0, "{ctx}: empty series served for channel {key}");
        assert!(pos + n <= ts.len(), "{ctx}: channel {key} has more samples than its index ({} > {})", pos + n, ts.len());
        assert_eq!(
            s.time_range(),
            TimeRange::from_nanos(ts[pos], ts[pos + n - 1] + 1),
            "{ctx}: channel {key} series at {pos} is not aligned with its index"
        );
        // Positions [lo, hi) of the channel, i.e. samples [lo - pos, hi - pos) of `s`.
        let lo = check.start.clamp(pos, pos + n);
        let hi = check.end.clamp(lo, pos + n);
        let times = &ts[lo..hi];
        match s.data_type() {
            DataType::F64 => {
                let v = &s.as_slice::<f64>().expect("f64")[lo - pos..hi - pos];
                for (&t, &got) in times.iter().zip(v) {
                    let exp = f64_at(t);
                    assert!(got.to_bits() == exp.to_bits(), "{ctx}: f64 at ts {t} is {got}, expected {exp}");
                }
            }
            DataType::I32 => {
                let v = &s.as_slice::<i32>().expect("i32")[lo - pos..hi - pos];
                for (&t, &got) in times.iter().zip(v) {
                    assert_eq!(got, i32_at(t), "{ctx}: i32 at ts {t}");
                }
            }
            DataType::String => {
                for (k, &t) in times.iter().enumerate() {
                    str_at(t, &mut want);
                    assert_eq!(s.value_str(lo - pos + k), Some(want.as_str()), "{ctx}: string at ts {t}");
                }
            }
            other => panic!("{ctx}: channel {key} served as {other}"),
        }
        checked += hi - lo;
        pos += n;
    }
    assert_eq!(pos, ts.len(), "{ctx}: channel {key} has {pos} samples but its index has {}", ts.len());
    checked
}

/// Total size of the segment files of a data directory.
fn segment_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir.join("segments")) else { return 0 };
    rd.filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

// ---------------------------------------------------------------------------------------
// The tests.

fn master_seed(test: &str) -> u64 {
    let seed = match std::env::var(ENV_SEED) {
        Ok(s) => s.parse().expect("TELEMETRON_CRASH_SEED must be a u64"),
        Err(_) => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            mix64(t.as_nanos() as u64 ^ u64::from(std::process::id()))
        }
    };
    println!("{test}: seed {seed} (rerun with {ENV_SEED}={seed})");
    seed
}

/// Print a test's summary line where it is seen even when output is captured.
fn summary(line: String) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn iterations(quick: usize, divisor: usize) -> usize {
    match std::env::var(ENV_ITERATIONS) {
        Ok(s) => (s.parse::<usize>().expect("TELEMETRON_CRASH_ITERATIONS must be a number") / divisor).max(quick),
        Err(_) => quick,
    }
}

const MODES: [&str; 3] = ["commit", "interval", "none"];

/// SIGKILL a writing child at random points, in every durability mode, and check every
/// acknowledged commit survives with exact values.
#[test]
fn sigkill_at_random_points_keeps_every_acknowledged_commit() {
    let test = "sigkill_at_random_points";
    let mut rng = Rng(master_seed(test));
    let kills = iterations(QUICK_KILLS, 1);
    let began = Instant::now();
    // One directory per durability mode; data accumulates across that mode's kills. Long
    // runs move to a fresh directory now and then to bound verification cost.
    let mut models: Vec<Model> = MODES.iter().map(|_| Model::new()).collect();
    let mut per_dir = [0usize; 3];
    let mut totals = Totals::default();
    for it in 0..kills {
        let m = it % MODES.len();
        if per_dir[m] == 60 {
            models[m] = Model::new();
            per_dir[m] = 0;
        }
        per_dir[m] += 1;
        let model = &mut models[m];
        let ctx = format!("{test}: kill {it} (durability {}, dir {})", MODES[m], model.path().display());
        let mut run = spawn_child(&model.path(), MODES[m], rng.next(), None);
        let delay = Duration::from_millis(rng.range(5, 200));
        // Half the kills count from the spawn (they also land in startup and recovery), half
        // from the moment the child starts writing (they all land among writes and commits).
        if rng.range(0, 2) == 0 {
            std::thread::sleep(delay.saturating_sub(run.spawned.elapsed()));
        } else {
            if !run.wait_for(Instant::now() + Duration::from_secs(60), |e| matches!(e, Event::Start(_))) {
                run.fail(&format!("{ctx}: the child never started writing"));
            }
            std::thread::sleep(delay);
        }
        let killed = run.kill();
        totals.kills += 1;
        totals.acked_commits += killed.commits;
        totals.sessions += killed.sessions.len();
        model.record(&killed);
        let report = model.verify(&mut rng, &mut totals, &ctx);
        if std::env::var_os("TELEMETRON_CRASH_VERBOSE").is_some() {
            println!(
                "{ctx}: alive {:?}, {} commits acked, stored {} samples, truncated {} B",
                killed.alive_for, killed.commits, model.stored, report.truncated_bytes
            );
        }
    }
    assert!(totals.acked_commits > 0, "no child ever acknowledged a commit: the test exercised nothing");
    summary(format!(
        "{test}: {kills} iterations, {} kills ({} writer sessions, {} acknowledged commits), {} samples verified \
         ({} values), {} samples recovered past the last acknowledged commit, {} reopens truncated {} bytes, {:.1} s",
        totals.kills,
        totals.sessions,
        totals.acked_commits,
        totals.samples_verified,
        totals.values_verified,
        totals.unacked_tail_samples,
        totals.torn_reopens,
        totals.truncated_bytes,
        began.elapsed().as_secs_f64()
    ));
}

/// SIGKILL the child in the middle of huge commits (~80 MB in one vectored write) so the
/// segment tail is torn, and check recovery cuts it off and serves exactly what was committed.
#[test]
fn sigkill_during_huge_commit_truncates_torn_tail() {
    let test = "sigkill_during_huge_commit";
    let mut rng = Rng(master_seed(test));
    let kills = iterations(QUICK_HUGE_KILLS, 10);
    let began = Instant::now();
    let mut model = Model::new();
    let mut totals = Totals::default();
    // How long a commit takes from WRITING to COMMITTED (adapted as we observe them).
    let mut commit_time = Duration::from_millis(40);
    for it in 0..kills {
        if it > 0 && it % 20 == 0 {
            model = Model::new();
        }
        let mode = MODES[it % MODES.len()];
        let ctx = format!("{test}: kill {it} (durability {mode}, dir {})", model.path().display());
        let mut run = spawn_child(&model.path(), mode, rng.next(), Some(HUGE_FRAME));
        // Kill during the first or second commit of the session.
        let nth = rng.range(1, 3);
        let mut writing = 0;
        let mut at = None;
        let deadline = Instant::now() + Duration::from_secs(120);
        while writing < nth {
            if !run.wait_for(deadline, |e| matches!(e, Event::Writing)) {
                run.fail(&format!("{ctx}: the child never reached commit {nth}"));
            }
            writing += 1;
            at = run.seen.last().map(|(t, _)| *t);
        }
        let how = if rng.range(0, 3) > 0 {
            // Inside the write(2) of the commit: wait until the segment files grow, then kill
            // within a moment (the ~80 MB write takes tens of ms).
            let base = segment_bytes(&model.path());
            let until = Instant::now() + Duration::from_secs(60);
            let mut grew = false;
            while Instant::now() < until {
                if segment_bytes(&model.path()) > base + (1 << 20) {
                    grew = true;
                    break;
                }
                if run.wait_for(Instant::now() + Duration::from_micros(200), |e| matches!(e, Event::Committed(_))) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(rng.range(0, 1000)));
            format!("kill while the segment grows (growth seen: {grew})")
        } else {
            // Anywhere from the start of the commit to a bit after it.
            let window = commit_time.mul_f64(1.3).max(Duration::from_millis(2));
            let delay = Duration::from_micros(rng.range(0, window.as_micros() as u64 + 1));
            std::thread::sleep(delay.saturating_sub(at.map_or(Duration::ZERO, |t| t.elapsed())));
            format!("kill {delay:?} into the commit (commit takes ~{commit_time:?})")
        };
        let killed = run.kill();
        // Learn the commit duration from WRITING -> COMMITTED pairs seen so far.
        let mut last_writing = None;
        for (t, e) in &killed.seen {
            match e {
                Event::Writing => last_writing = Some(*t),
                Event::Committed(_) => {
                    if let Some(w) = last_writing.take() {
                        commit_time = (commit_time + t.duration_since(w)) / 2;
                    }
                }
                Event::Start(_) | Event::Closed(_) => {}
            }
        }
        totals.kills += 1;
        totals.acked_commits += killed.commits;
        totals.sessions += killed.sessions.len();
        model.record(&killed);
        let report = model.verify(&mut rng, &mut totals, &ctx);
        if std::env::var_os("TELEMETRON_CRASH_VERBOSE").is_some() {
            println!(
                "{ctx}: commit {nth}: {how}, {} commits acked, stored {} samples, truncated {} B",
                killed.commits, model.stored, report.truncated_bytes
            );
        }
    }
    assert!(totals.torn_reopens > 0, "{test}: no kill landed inside a commit's write (nothing was truncated in {kills} kills)");
    summary(format!(
        "{test}: {kills} iterations, {} kills, {} acknowledged commits, {} samples verified ({} values), \
         {} reopens truncated {} bytes of torn tails, {} samples recovered past the last acknowledged commit, {:.1} s",
        totals.kills,
        totals.acked_commits,
        totals.samples_verified,
        totals.values_verified,
        totals.torn_reopens,
        totals.truncated_bytes,
        totals.unacked_tail_samples,
        began.elapsed().as_secs_f64()
    ));
}

/// SIGKILL children while they initialize a fresh directory (marker file, lock, catalog,
/// channels, first segment) and check the directory always reopens and then takes writes.
#[test]
fn sigkill_during_first_open_leaves_a_usable_directory() {
    let test = "sigkill_during_first_open";
    let mut rng = Rng(master_seed(test));
    let kills = iterations(QUICK_INIT_KILLS, 10);
    let began = Instant::now();
    let mut totals = Totals::default();
    // How long a child takes from spawn to START on a fresh directory.
    let mut to_start = Duration::ZERO;
    for _ in 0..2 {
        let model = Model::new();
        let mut run = spawn_child(&model.path(), "none", rng.next(), None);
        if !run.wait_for(Instant::now() + Duration::from_secs(60), |e| matches!(e, Event::Start(_))) {
            run.fail(&format!("{test}: the child never started writing"));
        }
        to_start = to_start.max(run.seen[0].0.duration_since(run.spawned));
        run.kill();
    }
    let mut interrupted_inits = 0;
    for it in 0..kills {
        let mut model = Model::new();
        let mode = MODES[it % MODES.len()];
        let ctx = format!("{test}: kill {it} (durability {mode}, dir {})", model.path().display());
        let run = spawn_child(&model.path(), mode, rng.next(), None);
        if rng.range(0, 2) == 0 {
            // Right after the k-th file of the directory appears (marker and its temporary
            // file, LOCK, catalog, segments...): the crash lands inside that step.
            let k = rng.range(1, 7) as usize;
            let mut seen = std::collections::BTreeSet::new();
            let until = Instant::now() + Duration::from_secs(30);
            while seen.len() < k && Instant::now() < until {
                if let Ok(rd) = std::fs::read_dir(model.path()) {
                    seen.extend(rd.filter_map(Result::ok).map(|e| e.file_name()));
                }
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_micros(rng.range(0, 300)));
        } else {
            let delay = Duration::from_micros(rng.range(0, to_start.mul_f64(1.2).as_micros() as u64 + 1));
            std::thread::sleep(delay.saturating_sub(run.spawned.elapsed()));
        }
        let killed = run.kill();
        if std::env::var_os("TELEMETRON_CRASH_VERBOSE").is_some() {
            let names: Vec<_> =
                std::fs::read_dir(model.path()).map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name()).collect()).unwrap_or_default();
            println!("{ctx}: killed after {:?}, directory holds {names:?}", killed.alive_for);
        }
        totals.kills += 1;
        interrupted_inits += usize::from(killed.sessions.is_empty());
        model.record(&killed);
        model.verify(&mut rng, &mut totals, &ctx);
        // The directory takes writes after the interrupted initialization.
        let ctx = format!("{ctx}, second child");
        let mut run = spawn_child(&model.path(), mode, rng.next(), None);
        if !run.wait_for(Instant::now() + Duration::from_secs(60), |e| matches!(e, Event::Committed(_))) {
            run.fail(&format!("{ctx}: the child never committed"));
        }
        let killed = run.kill();
        totals.kills += 1;
        totals.acked_commits += killed.commits;
        model.record(&killed);
        model.verify(&mut rng, &mut totals, &ctx);
    }
    summary(format!(
        "{test}: {kills} iterations, {} kills ({interrupted_inits} before the first writer opened; startup takes ~{to_start:?}), \
         {} acknowledged commits, {} samples verified ({} values), {:.1} s",
        totals.kills,
        totals.acked_commits,
        totals.samples_verified,
        totals.values_verified,
        began.elapsed().as_secs_f64()
    ));
}

/// What a SIGKILL between writing the directory marker's temporary file and renaming it
/// leaves behind must not make the directory look foreign.
#[test]
fn interrupted_marker_write_still_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".TELEMETRON.tmp"), b"telemetron data dir").expect("write");
    let engine = Engine::open(dir.path()).unwrap_or_else(|e| panic!("a directory with an interrupted marker write must open: {e}"));
    engine.close().expect("close");
    drop(engine);
    Engine::open(dir.path()).expect("reopen").close().expect("close");
}
