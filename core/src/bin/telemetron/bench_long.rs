//! `telemetron bench long-run`: a long test campaign, simulated as fast as the machine
//! writes it (issue 12): `--channels` f64 channels at `--rate-hz`, committed `--commit-hz`
//! times per simulated second, for `--hours`. The signals are the codecs bench's (16-bit ADC
//! pressures, filtered pressures, valve commands) plus counters.
//!
//! Three passes over fresh directories:
//! 1. **plain**: no background compaction. Ingest rate; disk over raw sample bytes before
//!    compaction; one explicit compaction (its time and longest batch); disk after it and
//!    reclaim; reopen time and the anonymous memory the reopened engine holds; reading one
//!    channel over the whole run (page cache warm).
//! 2. **background**: the same writes with the compactor running every second: the ingest
//!    rate against pass 1.
//! 3. **compressed**: background compaction with compression: ingest rate, disk after a
//!    last compaction, reopen, and the whole-channel read (decompressing).
//!
//! And on request a fourth, **crash**: a child process writes the campaign with background
//! compaction and index checkpoints every `--checkpoint-interval-s` (the engine's 5
//! minutes by default), is SIGKILLed once its last commit returned, and the directory is
//! reopened: the reopen time after a crash, how many chunk records it read from the last
//! run-time checkpoint and how many it walked in the segment files, and a check that every
//! commit is there.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::WriterConfig;
use telemetron::storage::{Durability, StorageOptions};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Engine, Error, Options};

use crate::bench::{Scratch, emit};
use crate::bench_codecs::{Rng, adc_pressure, filtered_pressure, valve_command};

#[derive(Debug, Args)]
pub struct LongRunArgs {
    /// Simulated hours of recording. A full day of the default stand is 69 GB of samples;
    /// the bench refuses a run whose directories would not fit on the disk of --dir.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// f64 data channels (one shared index).
    #[arg(long, default_value_t = 100)]
    pub channels: usize,
    /// Samples per channel per simulated second.
    #[arg(long, default_value_t = 1_000)]
    pub rate_hz: usize,
    /// Commits per simulated second.
    #[arg(long, default_value_t = 10)]
    pub commit_hz: usize,
    /// none | interval | commit.
    #[arg(long, default_value = "interval")]
    pub durability: Durability,
    /// Which passes to run: plain, background, compressed, crash (comma-separated).
    #[arg(long, default_value = "plain,background,compressed", value_delimiter = ',')]
    pub passes: Vec<String>,
    /// Where to put the temporary data directories (deleted afterwards).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    pub dir: std::path::PathBuf,
    /// Print one JSON object per pass instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The crash pass: seconds between the writer process's index checkpoints.
    #[arg(long, default_value_t = 300.0)]
    pub checkpoint_interval_s: f64,
    /// Keep the segment files of a pass near this many GB: the writer waits (the time is
    /// reported apart from the ingest rate) while background compaction and reclaim catch
    /// up. A compaction pass that is behind writes its output before the segments it
    /// empties are deleted, so the disk peaks at about 1.3 times this. A stand recording in real time writes 0.8 MB/s and never waits; this lets a
    /// full day's compressed pass run on a disk smaller than a day of raw samples. Needs
    /// background compaction (the background, compressed and crash passes).
    #[arg(long)]
    pub max_disk_gb: Option<f64>,
    /// Internal: write the campaign into this directory, say so, and wait to be killed
    /// (the crash pass runs the bench again with it).
    #[arg(long, hide = true)]
    pub crash_child: Option<std::path::PathBuf>,
}

/// One channel's signal: a precomputed table a whole number of commits long (about a
/// minute), cut zero-copy into each commit's series; counters are generated as they go.
enum Signal {
    Table(Series),
    Counter,
}

struct Stand {
    index: ChannelKey,
    keys: Vec<ChannelKey>,
    signals: Vec<Signal>,
    per_commit: usize,
    step_ns: i64,
}

impl Stand {
    fn create(engine: &Engine, a: &LongRunArgs) -> Result<Stand, Error> {
        let mut batch = vec![NewChannel::index("time")];
        batch.extend((0..a.channels).map(|i| NewChannel::data(format!("ch_{i:03}"), DataType::F64, "time")));
        let chans = engine.create_channels(batch)?;
        let per_commit = a.rate_hz / a.commit_hz;
        let mut r = Rng(0x5EED_0000_0000_0001);
        let signals = (0..a.channels)
            .map(|c| {
                // Tables of different lengths, so channels do not repeat in step.
                let n = per_commit * (600 + c);
                let period = 5.0 + c as f64 * 0.37;
                match c % 10 {
                    0..5 => Signal::Table(Series::from_vec(adc_pressure(&mut r, n, period))),
                    5..7 => Signal::Table(Series::from_vec(filtered_pressure(&mut r, n, period))),
                    7 | 8 => Signal::Table(Series::from_vec(valve_command(&mut r, n))),
                    _ => Signal::Counter,
                }
            })
            .collect();
        Ok(Stand {
            index: chans[0].key,
            keys: chans[1..].iter().map(|c| c.key).collect(),
            signals,
            per_commit,
            step_ns: 1_000_000_000 / a.rate_hz as i64,
        })
    }

    /// Commit number `k`'s frame.
    fn frame(&self, k: u64) -> Result<Frame, Error> {
        let n = self.per_commit;
        let first = k * n as u64;
        let stamps: Vec<i64> = (0..n as i64).map(|i| (first as i64 + i) * self.step_ns).collect();
        let mut f = Frame::with_capacity(self.keys.len() + 1);
        f.push(self.index, Series::timestamps(stamps));
        for (key, s) in self.keys.iter().zip(&self.signals) {
            let series = match s {
                Signal::Table(t) => {
                    let at = (first as usize) % t.len();
                    t.slice(at..at + n)?
                }
                Signal::Counter => Series::from_vec((0..n as u64).map(|i| (first + i) as f64).collect::<Vec<f64>>()),
            };
            f.push(*key, series);
        }
        Ok(f)
    }
}

/// Bytes the segment files take on disk (allocated blocks).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir.join("segments"))
        .map(|rd| rd.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.blocks() * 512).sum())
        .unwrap_or(0)
}

/// Anonymous resident memory of this process (heap; not mapped files), in bytes.
fn rss_anon() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("RssAnon:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()))
        })
        .flatten()
        .map_or(0, |kb| kb * 1024)
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed out-parameter.
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0).then(|| st.f_bavail * st.f_frsize)
}

struct Written {
    /// Time spent writing, waits for the disk bound excluded.
    seconds: f64,
    /// Time the writer waited for compaction to bring the disk under `--max-disk-gb`.
    waited: f64,
    samples: u64,
}

/// How `write_all` keeps the disk bounded: the data directory and its bound in bytes.
struct DiskBound<'a> {
    dir: &'a Path,
    max: u64,
}

/// Commits between two looks at the disk under a [`DiskBound`] (about 80 MB of samples).
const DISK_CHECK_EVERY: u64 = 1_000;

/// A writer waiting under a [`DiskBound`] gives up when the disk has not shrunk for this long.
const STALLED: Duration = Duration::from_secs(120);

/// Write the whole campaign into `engine`, printing progress every tenth (and every 30 s).
fn write_all(
    engine: &Engine,
    stand: &Stand,
    commits: u64,
    durability: Durability,
    quiet: bool,
    label: &str,
    bound: Option<DiskBound<'_>>,
) -> Result<Written, Error> {
    let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), stand.keys.clone()).auto_commit(false).durability(durability))?;
    let t0 = Instant::now();
    let tenth = commits.div_ceil(10).max(1);
    let mut last_report = Instant::now();
    let mut waited = Duration::ZERO;
    for k in 0..commits {
        w.write(&stand.frame(k)?)?;
        w.commit()?;
        if let Some(b) = &bound
            && k % DISK_CHECK_EVERY == 0
            && disk_bytes(b.dir) > b.max
        {
            // A compaction pass that is behind first grows the disk (its output), and frees
            // the old segments only once every channel has moved past them: any change of
            // size is progress, only a size that stays put is a stall.
            let t = Instant::now();
            let (mut last, mut since) = (0, Instant::now());
            loop {
                let now = disk_bytes(b.dir);
                if now <= b.max {
                    break;
                }
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > STALLED {
                    return Err(Error::InvalidArgument {
                        reason: format!(
                            "{label}: the segment files stayed at {:.1} GB, over --max-disk-gb, for {} s: compaction cannot bring them under it; raise the bound",
                            now as f64 / 1e9,
                            STALLED.as_secs()
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            waited += t.elapsed();
        }
        if !quiet && (k % tenth == tenth - 1 || last_report.elapsed() > Duration::from_secs(30)) {
            eprintln!(
                "  {label}: {:.1} % written, {:.0} s ({:.0} s waiting for compaction)",
                (k + 1) as f64 * 100.0 / commits as f64,
                t0.elapsed().as_secs_f64(),
                waited.as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    w.close()?;
    let seconds = (t0.elapsed() - waited).as_secs_f64();
    Ok(Written { seconds, waited: waited.as_secs_f64(), samples: commits * stand.per_commit as u64 * (stand.keys.len() as u64 + 1) })
}

fn options(durability: Durability, background: bool, compress: bool) -> Options {
    Options {
        storage: StorageOptions {
            durability,
            compaction_interval: background.then_some(Duration::from_secs(1)),
            compress,
            ..StorageOptions::default()
        },
        ..Options::default()
    }
}

/// What a reopen took and found.
struct Reopened {
    seconds: f64,
    /// Anonymous memory the reopened engine holds.
    held: u64,
    found: telemetron::storage::RecoveryReport,
    /// Median bytes/s of the warm reads of `ch_000`.
    read_rate: f64,
}

/// Reopen `dir` and read channel `ch_000` over the whole run, summing its values.
fn reopen_and_read(dir: &Path, o: Options, expect: usize) -> Result<Reopened, Error> {
    let before = rss_anon();
    let t0 = Instant::now();
    let engine = Engine::open_with(dir, o)?;
    let reopen = t0.elapsed().as_secs_f64();
    let held = rss_anon().saturating_sub(before);
    let found = engine.recovery_report().clone();
    let key = engine.channels().by_name("ch_000")?.key;
    // Read and sum every value (a read that only maps pages would measure nothing), five
    // times; the median of the last four (page cache warm) is reported.
    let mut rates = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let f = engine.read(TimeRange::MAX, &[key])?;
        let mut n = 0usize;
        let mut sum = 0.0f64;
        for s in f.get(key) {
            let v = s.as_slice::<f64>()?;
            n += v.len();
            sum += v.iter().sum::<f64>();
        }
        let secs = t.elapsed().as_secs_f64();
        if n != expect || !sum.is_finite() {
            return Err(Error::InvalidArgument { reason: format!("read {n} samples of ch_000 (sum {sum}), wrote {expect}") });
        }
        rates.push(n as f64 * 8.0 / secs);
    }
    let rate = crate::stats::median(rates.get(1..).unwrap_or_default());
    engine.close()?;
    Ok(Reopened { seconds: reopen, held, found, read_rate: rate })
}

/// The crash pass's child: write the campaign with background compaction and run-time
/// checkpoints, print `written`, and wait to be killed (never closing the engine).
fn crash_child(a: &LongRunArgs, dir: &Path, commits: u64) -> Result<(), Error> {
    let mut o = options(a.durability, true, false);
    o.storage.checkpoint_interval = Some(Duration::from_secs_f64(a.checkpoint_interval_s.max(0.001)));
    let engine = Engine::open_with(dir, o)?;
    let stand = Stand::create(&engine, a)?;
    let bound = a.max_disk_gb.map(|gb| DiskBound { dir, max: (gb * 1e9) as u64 });
    let w = write_all(&engine, &stand, commits, a.durability, false, "crash", bound)?;
    println!("written {}", w.seconds);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The crash pass: run [`crash_child`] in a child process, SIGKILL it once it has written
/// everything, reopen. Returns (seconds the child wrote for, the reopen's figures).
fn crash_pass(a: &LongRunArgs, dir: &Path, expect: usize) -> Result<(f64, Reopened), Error> {
    use std::io::BufRead as _;
    let fail = |what: String| Error::InvalidArgument { reason: format!("crash pass: {what}") };
    let exe = std::env::current_exe().map_err(|e| fail(format!("cannot find this program: {e}")))?;
    let mut child = std::process::Command::new(exe)
        .args(["bench", "long-run", "--hours", &a.hours.to_string(), "--channels", &a.channels.to_string()])
        .args(["--rate-hz", &a.rate_hz.to_string(), "--commit-hz", &a.commit_hz.to_string()])
        .args([
            "--durability",
            crate::bench::durability_name(a.durability),
            "--checkpoint-interval-s",
            &a.checkpoint_interval_s.to_string(),
        ])
        .args(a.max_disk_gb.iter().flat_map(|gb| ["--max-disk-gb".to_string(), gb.to_string()]))
        .arg("--dir")
        .arg(&a.dir)
        .arg("--crash-child")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start the writer process: {e}")))?;
    // Whatever goes wrong from here, the child is killed before returning.
    let line = match child.stdout.take() {
        Some(out) => std::io::BufReader::new(out).lines().next().and_then(Result::ok).unwrap_or_default(),
        None => String::new(),
    };
    let Some(seconds) = line.strip_prefix("written ").and_then(|s| s.parse::<f64>().ok()) else {
        let _ = child.kill();
        let status = child.wait().map_err(|e| fail(e.to_string()))?;
        return Err(fail(format!("the writer process ended before writing everything ({status}): {line:?}")));
    };
    child.kill().map_err(|e| fail(format!("cannot kill the writer process: {e}")))?;
    child.wait().map_err(|e| fail(e.to_string()))?;
    Ok((seconds, reopen_and_read(dir, options(a.durability, false, false), expect)?))
}

pub fn run(a: &LongRunArgs) -> Result<(), Error> {
    if a.channels == 0 || a.commit_hz == 0 || a.rate_hz < a.commit_hz || !a.rate_hz.is_multiple_of(a.commit_hz) || a.hours <= 0.0 {
        return Err(Error::InvalidArgument {
            reason: "--channels, --commit-hz and --hours must be positive, and --rate-hz a multiple of --commit-hz".into(),
        });
    }
    let commits = (a.hours * 3600.0 * a.commit_hz as f64).round() as u64;
    let per_commit = (a.rate_hz / a.commit_hz) as u64;
    let raw = commits * per_commit * (a.channels as u64 + 1) * 8;
    // Without a bound, the plain pass holds the small records and their compacted copy at
    // once. With one, a pass needs the bound, and its compacted result must fit under it:
    // the raw bytes uncompressed, at most half of them compressed (the target).
    let need = match a.max_disk_gb {
        None => raw * 22 / 10,
        Some(gb) => {
            let max = (gb * 1e9) as u64;
            if a.passes.iter().any(|p| p == "plain") {
                return Err(Error::InvalidArgument {
                    reason: "--max-disk-gb needs background compaction: pass --passes background, compressed or crash".into(),
                });
            }
            let result = if a.passes.iter().all(|p| p == "compressed") { raw / 2 } else { raw * 11 / 10 };
            if result > max {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "--max-disk-gb {gb} is below what these passes keep after compaction (about {:.1} GB); raise it or pass --passes compressed",
                        result as f64 / 1e9
                    ),
                });
            }
            // The compacted output of a backlog exists before the backlog's segments go.
            max + max * 3 / 10
        }
    };
    if let Some(free) = free_bytes(&a.dir)
        && free < need
    {
        return Err(Error::InvalidArgument {
            reason: format!(
                "{:.1} simulated hours are {:.1} GB of samples and need about {:.1} GB free in {}, which has {:.1} GB: pass --hours {:.1}, --max-disk-gb with --passes compressed, or another --dir",
                a.hours,
                raw as f64 / 1e9,
                need as f64 / 1e9,
                a.dir.display(),
                free as f64 / 1e9,
                a.hours * free as f64 / need as f64 * 0.9
            ),
        });
    }
    let expect = (commits * per_commit) as usize;
    if let Some(dir) = &a.crash_child {
        return crash_child(a, dir, commits);
    }
    if !a.json {
        println!(
            "long-run: {} f64 channels at {} Hz, {} commits/s, {:.2} simulated hours: {commits} commits, {:.2} GB of samples (index included), durability {}",
            a.channels,
            a.rate_hz,
            a.commit_hz,
            a.hours,
            raw as f64 / 1e9,
            crate::bench::durability_name(a.durability)
        );
    }
    let mut plain_rate = None;
    for pass in &a.passes {
        let (background, compress) = match pass.as_str() {
            "plain" => (false, false),
            "background" => (true, false),
            "compressed" => (true, true),
            "crash" => (true, false),
            other => {
                return Err(Error::InvalidArgument {
                    reason: format!("unknown pass {other:?}; use plain, background, compressed or crash"),
                });
            }
        };
        let scratch = Scratch::new(&a.dir, "long-run");
        if pass == "crash" {
            let (wrote_s, Reopened { seconds: reopen, held, found, read_rate }) = crash_pass(a, &scratch.0, expect)?;
            let walked = found.chunks - found.checkpoint_chunks;
            emit(
                a.json,
                json!({"bench": "long-run", "pass": pass, "hours": a.hours, "commits": commits, "write_seconds": wrote_s,
                       "checkpoint_interval_s": a.checkpoint_interval_s, "reopen_seconds": reopen, "reopen_anon_bytes": held,
                       "chunks_indexed": found.chunks, "chunks_from_checkpoint": found.checkpoint_chunks, "chunks_walked": walked,
                       "truncated_bytes": found.truncated_bytes, "read_one_channel_bytes_per_s": read_rate}),
                || {
                    format!(
                        "{pass:>10}: written in {wrote_s:.1} s with a checkpoint every {} s, then SIGKILL | reopen {reopen:.3} s, {:.1} MB heap, {} chunks: {} from the checkpoint, {walked} walked in the segments, {} bytes cut | every commit read back ({expect} samples of ch_000, {:.2} GB/s)",
                        a.checkpoint_interval_s,
                        held as f64 / 1e6,
                        found.chunks,
                        found.checkpoint_chunks,
                        found.truncated_bytes,
                        read_rate / 1e9
                    )
                },
            );
            continue;
        }
        let engine = Engine::open_with(&scratch.0, options(a.durability, background, compress))?;
        let stand = Stand::create(&engine, a)?;
        let bound = a.max_disk_gb.map(|gb| DiskBound { dir: &scratch.0, max: (gb * 1e9) as u64 });
        let w = write_all(&engine, &stand, commits, a.durability, a.json, pass, bound)?;
        let ingest = w.samples as f64 / w.seconds;
        let before = disk_bytes(&scratch.0);
        // Written back first, so the compaction below is timed on its own work, not on the
        // kernel flushing what the writer left in the page cache.
        let t = Instant::now();
        engine.sync()?;
        let sync_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let report = engine.compact()?;
        let compact_s = t.elapsed().as_secs_f64();
        engine.reclaim();
        let after = disk_bytes(&scratch.0);
        engine.close()?;
        drop(engine);
        let Reopened { seconds: reopen, held, found, read_rate } =
            reopen_and_read(&scratch.0, options(a.durability, false, compress), expect)?;
        let chunks = found.chunks;
        if pass == "plain" {
            plain_rate = Some(ingest);
        }
        let vs_plain = plain_rate.filter(|_| pass != "plain").map(|p| ingest / p);
        emit(
            a.json,
            json!({"bench": "long-run", "pass": pass, "hours": a.hours, "channels": a.channels, "rate_hz": a.rate_hz,
                   "commit_hz": a.commit_hz, "commits": commits, "samples": w.samples, "raw_bytes": raw,
                   "write_seconds": w.seconds, "waited_for_compaction_seconds": w.waited, "samples_per_s": ingest, "ingest_vs_plain": vs_plain,
                   "sync_after_write_seconds": sync_s, "disk_before_compaction": before, "disk_after": after, "disk_over_raw": after as f64 / raw as f64,
                   "final_compaction_seconds": compact_s, "final_compaction": report,
                   "reopen_seconds": reopen, "reopen_anon_bytes": held, "chunks_indexed": chunks,
                   "read_one_channel_bytes_per_s": read_rate}),
            || {
                format!(
                    "{pass:>10}: ingest {:.2} M samples/s{}{} (then {sync_s:.1} s to sync) | disk {:.3}x raw before the last compaction, {:.3}x after ({:.1} s, {} records merged, longest batch {:.1} ms) | reopen {:.3} s, {:.1} MB heap, {chunks} chunks | read one channel {:.2} GB/s",
                    ingest / 1e6,
                    vs_plain.map(|v| format!(" ({:.0} % of plain)", v * 100.0)).unwrap_or_default(),
                    if w.waited > 0.0 { format!(", {:.0} s waited for compaction", w.waited) } else { String::new() },
                    before as f64 / raw as f64,
                    after as f64 / raw as f64,
                    compact_s,
                    report.records_in,
                    report.longest_batch_micros as f64 / 1e3,
                    reopen,
                    held as f64 / 1e6,
                    read_rate / 1e9
                )
            },
        );
    }
    Ok(())
}
