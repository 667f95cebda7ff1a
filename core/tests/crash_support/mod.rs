//! The crash test's machinery: deterministic data generators, the child process's
//! plumbing, the model of what must survive, and the checks run after each kill.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use telemetron::Engine;
use telemetron::channel::ChannelKey;
use telemetron::storage::RecoveryReport;
use telemetron::telem::{DataType, Frame, Series, TimeRange};

pub const ENV_CHILD_DIR: &str = "TELEMETRON_CRASH_CHILD_DIR";
pub const ENV_CHILD_DURABILITY: &str = "TELEMETRON_CRASH_CHILD_DURABILITY";
pub const ENV_CHILD_SEED: &str = "TELEMETRON_CRASH_CHILD_SEED";
pub const ENV_CHILD_FRAME: &str = "TELEMETRON_CRASH_CHILD_FRAME";
/// Set: the child writes small frames with a background compactor running every few ms.
pub const ENV_CHILD_COMPACT: &str = "TELEMETRON_CRASH_CHILD_COMPACT";
pub const ENV_ITERATIONS: &str = "TELEMETRON_CRASH_ITERATIONS";
pub const ENV_SEED: &str = "TELEMETRON_CRASH_SEED";

/// Prefix of the child's protocol lines on stdout.
pub const MARK: &str = "@crash-child ";

pub const INDEX: &str = "crash_time";
pub const F64: &str = "crash_f64";
pub const I32: &str = "crash_i32";
pub const STR: &str = "crash_str";

/// Timestamp of the first sample ever written to a directory.
pub const BASE_TS: i64 = 1_700_000_000_000_000_000;
/// A child that was not killed by then stops on its own (its parent is gone).
pub const CHILD_MAX_RUNTIME: Duration = Duration::from_secs(120);
/// Kills in quick mode for the random-point test (spread over the three modes).
pub const QUICK_KILLS: usize = 21;
/// Kills in quick mode for the first-open test.
pub const QUICK_INIT_KILLS: usize = 30;
/// Kills in quick mode for the huge-write test.
pub const QUICK_HUGE_KILLS: usize = 6;
/// Kills of a compacting child in quick mode.
pub const QUICK_COMPACT_KILLS: usize = 12;
/// Samples per frame in the huge-write test.
pub const HUGE_FRAME: usize = 2_000_000;
/// Above this many stored samples, values of already verified sessions are spot-checked in
/// random windows instead of all being recomputed on every reopen.
pub const FULL_VALUE_CHECK_LIMIT: usize = 3_000_000;

// ---------------------------------------------------------------------------------------
// The deterministic data model: the parent recomputes everything from timestamps alone.

pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn hash_ts(ts: i64) -> u64 {
    mix64((ts as u64) ^ 0x7E1E_3E70_C4A5_5EED)
}

/// The timestamp written after `ts` (steps of 1..=7 ns).
pub fn next_ts(ts: i64) -> i64 {
    ts + 1 + (hash_ts(ts) % 7) as i64
}

pub fn f64_at(ts: i64) -> f64 {
    let m = hash_ts(ts);
    ((m >> 11) as f64 / (1u64 << 53) as f64) * 2.0e6 - 1.0e6 + (ts % 1000) as f64
}

pub fn i32_at(ts: i64) -> i32 {
    (hash_ts(ts) >> 32) as u32 as i32 ^ (ts as i32)
}

pub const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The string value at `ts`: 0..=19 ASCII characters (empty values included).
pub fn str_at(ts: i64, out: &mut String) {
    out.clear();
    let m = hash_ts(ts).rotate_left(17);
    let len = (m % 20) as usize;
    for k in 0..len {
        let b = ((m >> ((k % 8) * 8)) as usize).wrapping_add(k * 7).wrapping_add(ts as usize) % ALPHABET.len();
        out.push(ALPHABET[b] as char);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Keys {
    pub index: ChannelKey,
    pub f64: ChannelKey,
    pub i32: ChannelKey,
    pub string: ChannelKey,
}

impl Keys {
    pub fn all(&self) -> [ChannelKey; 4] {
        [self.index, self.f64, self.i32, self.string]
    }

    pub fn lookup(engine: &Engine) -> Option<Keys> {
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
pub fn build_frame(k: &Keys, start: i64, n: usize) -> (Frame, i64, i64) {
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
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

// ---------------------------------------------------------------------------------------
// The child process.

pub fn say(line: &str) {
    // Straight to fd 1 (not the test harness capture), flushed before the next step: a
    // line the parent reads was printed after the commit it reports returned.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{MARK}{line}").and_then(|()| out.flush()).is_err() {
        // The parent is gone.
        std::process::exit(2);
    }
}

pub fn child_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child: {name} is not set"))
}

// ---------------------------------------------------------------------------------------
// The parent: spawning and killing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start(i64),
    Writing,
    Committed(i64),
    Closed(i64),
}

#[derive(Debug)]
pub struct Running {
    pub child: Child,
    pub events: Receiver<(Instant, Event)>,
    pub stdout: JoinHandle<()>,
    pub stderr: JoinHandle<String>,
    pub spawned: Instant,
    pub seen: Vec<(Instant, Event)>,
}

pub fn spawn_child(dir: &Path, durability: &str, seed: u64, frame: Option<usize>) -> Running {
    spawn_child_with(dir, durability, seed, frame, false)
}

/// [`spawn_child`] with the child compacting in the background while it writes.
pub fn spawn_compacting_child(dir: &Path, durability: &str, seed: u64) -> Running {
    spawn_child_with(dir, durability, seed, None, true)
}

fn spawn_child_with(dir: &Path, durability: &str, seed: u64, frame: Option<usize>, compact: bool) -> Running {
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
    if compact {
        cmd.env(ENV_CHILD_COMPACT, "1");
    } else {
        cmd.env_remove(ENV_CHILD_COMPACT);
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
    pub fn wait_for(&mut self, deadline: Instant, pred: impl Fn(&Event) -> bool) -> bool {
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
    pub fn fail(mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the child");
        let stderr = self.stderr.join().unwrap_or_default();
        let tail = &self.seen[self.seen.len().saturating_sub(5)..];
        panic!("{what} (child status {status}; {} events, last: {tail:?}); child stderr:\n{stderr}", self.seen.len());
    }

    /// SIGKILL the child, reap it and collect everything it printed.
    pub fn kill(mut self) -> Killed {
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
pub struct SessionLog {
    pub start: i64,
    /// End of its last acknowledged commit.
    pub acked: Option<i64>,
    /// Set when the writer was closed or aborted: its stored end is exactly this.
    pub closed: Option<i64>,
}

#[derive(Debug)]
pub struct Killed {
    pub sessions: Vec<SessionLog>,
    pub commits: usize,
    pub alive_for: Duration,
    pub seen: Vec<(Instant, Event)>,
}

// ---------------------------------------------------------------------------------------
// The parent: what must be on disk, and checking it.

/// One writer session of a child (it printed `START`).
#[derive(Debug, Clone)]
pub struct Session {
    pub log: SessionLog,
    /// Samples found after the first reopen; they must stay exactly so forever after.
    pub settled: Option<usize>,
    /// All values of the session were checked at least once.
    pub values_checked: bool,
}

#[derive(Debug)]
pub struct Model {
    pub dir: tempfile::TempDir,
    pub sessions: Vec<Session>,
    /// Where the next child must start: stored end + 1 (or `BASE_TS` for an empty store).
    pub next_start: i64,
    pub stored: usize,
}

#[derive(Debug, Default)]
pub struct Totals {
    pub kills: usize,
    pub sessions: usize,
    pub acked_commits: usize,
    pub unacked_tail_samples: usize,
    pub truncated_bytes: u64,
    pub torn_reopens: usize,
    pub samples_verified: usize,
    pub values_verified: usize,
}

impl Model {
    pub fn new() -> Model {
        Model { dir: tempfile::tempdir().expect("tempdir"), sessions: Vec::new(), next_start: BASE_TS, stored: 0 }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Take in what a killed child printed.
    pub fn record(&mut self, k: &Killed) {
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
    pub fn verify(&mut self, rng: &mut Rng, totals: &mut Totals, ctx: &str) -> RecoveryReport {
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
pub fn check_channel(frame: &Frame, key: ChannelKey, ts: &[i64], check: std::ops::Range<usize>, ctx: &str) -> usize {
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
pub fn segment_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir.join("segments")) else { return 0 };
    rd.filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

// ---------------------------------------------------------------------------------------
// The tests.

pub fn master_seed(test: &str) -> u64 {
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
pub fn summary(line: String) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn iterations(quick: usize, divisor: usize) -> usize {
    match std::env::var(ENV_ITERATIONS) {
        Ok(s) => (s.parse::<usize>().expect("TELEMETRON_CRASH_ITERATIONS must be a number") / divisor).max(quick),
        Err(_) => quick,
    }
}

pub const MODES: [&str; 3] = ["commit", "interval", "none"];
