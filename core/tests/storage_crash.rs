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
//! - `sigkill_during_compaction_...`: 12 kills (quick) of a child writing small commits with
//!   a background compactor running every 1..15 ms (small target records, compressed or
//!   not, a reclaimer deleting replaced segments every 5..50 ms).
//! - Long: `TELEMETRON_CRASH_ITERATIONS=500 cargo test -p telemetron --release --test
//!   storage_crash -- --nocapture` (500 random-point kills; the other two tests do a tenth).
//! - Reproduce the parent's choices with `TELEMETRON_CRASH_SEED=<seed>` (printed at start;
//!   kill timing still depends on the scheduler). `TELEMETRON_CRASH_VERBOSE=1` logs each kill.
#![cfg(unix)]

mod crash_support;

use crash_support::*;
use std::time::{Duration, Instant};
use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::storage::{Durability, StorageOptions};
use telemetron::telem::{DataType, TimeStamp};
use telemetron::{Engine, Options};

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
    // Compacting: a pass every few ms over small records, compressed or not, so kills land
    // inside compaction (merging, syncing, swapping, deleting replaced segments).
    let compacting = std::env::var_os(ENV_CHILD_COMPACT).is_some();
    let storage = if compacting {
        StorageOptions {
            durability,
            segment_size,
            compaction_interval: Some(Duration::from_millis(rng.range(1, 15))),
            compacted_record_bytes: [16u64 << 10, 64 << 10, 256 << 10][rng.range(0, 3) as usize],
            compress: rng.range(0, 2) == 0,
            reclaim_interval: Duration::from_millis(rng.range(5, 50)),
            // Checkpoints during the run too, so kills land before, during and after one
            // and the reopen starts from a checkpoint written by a process that then died.
            checkpoint_interval: Some(Duration::from_millis(rng.range(5, 60))),
        }
    } else {
        StorageOptions { durability, segment_size, ..StorageOptions::default() }
    };
    let opts = Options { storage, ..Options::default() };
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
    let most = if compacting { 300 } else { 5001 };
    let frame_len = |rng: &mut Rng| fixed_frame.unwrap_or_else(|| rng.range(1, most) as usize);
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

/// SIGKILL a child that compacts in the background (every few ms, small target records,
/// compressed or not) and writes index checkpoints during its run (every few ms) while it
/// writes small commits: every acknowledged commit survives, every sample is served exactly
/// once with its value, whatever step of a compaction or a checkpoint the kill interrupted,
/// and reopens start from checkpoints the killed child wrote.
#[test]
fn sigkill_during_compaction_serves_every_commit_once() {
    let test = "sigkill_during_compaction";
    let mut rng = Rng(master_seed(test));
    let kills = iterations(QUICK_COMPACT_KILLS, 5);
    let began = Instant::now();
    let mut model = Model::new();
    let mut totals = Totals::default();
    let (mut compacted, mut superseded) = (0usize, 0usize);
    // Reopens that started from a checkpoint the killed child wrote during its run.
    let mut from_run_checkpoint = 0usize;
    for it in 0..kills {
        if it > 0 && it % 30 == 0 {
            model = Model::new();
        }
        let mode = MODES[it % MODES.len()];
        let ctx = format!("{test}: kill {it} (durability {mode}, dir {})", model.path().display());
        // Every other child starts without the checkpoint the last verification's clean
        // close wrote, so any checkpoint its reopen finds was written during its run.
        let fresh = it % 2 == 1;
        if fresh {
            let _ = std::fs::remove_file(model.path().join("segments/index.ckpt"));
        }
        let mut run = spawn_compacting_child(&model.path(), mode, rng.next());
        if !run.wait_for(Instant::now() + Duration::from_secs(60), |e| matches!(e, Event::Start(_))) {
            run.fail(&format!("{ctx}: the child never started writing"));
        }
        std::thread::sleep(Duration::from_millis(rng.range(30, 500)));
        let killed = run.kill();
        totals.kills += 1;
        totals.acked_commits += killed.commits;
        totals.sessions += killed.sessions.len();
        model.record(&killed);
        let report = model.verify(&mut rng, &mut totals, &ctx);
        compacted += report.compacted_chunks;
        superseded += report.superseded_chunks;
        if fresh && report.checkpoint_chunks > 0 {
            from_run_checkpoint += 1;
        }
        if std::env::var_os("TELEMETRON_CRASH_VERBOSE").is_some() {
            println!(
                "{ctx}: {} commits acked, stored {} samples, {} compacted and {} superseded records at reopen, truncated {} B",
                killed.commits, model.stored, report.compacted_chunks, report.superseded_chunks, report.truncated_bytes
            );
        }
    }
    assert!(totals.acked_commits > 0, "{test}: no child ever acknowledged a commit");
    assert!(compacted > 0, "{test}: no reopen found a compacted record: the kills never followed a compaction");
    assert!(from_run_checkpoint > 0, "{test}: no reopen started from a checkpoint written during the killed run");
    summary(format!(
        "{test}: {kills} kills, {} acknowledged commits, {} samples verified ({} values), {compacted} compacted records \
         and {superseded} replaced-but-not-yet-deleted records found at reopens, {from_run_checkpoint} reopens from a \
         checkpoint written during the run, {} reopens truncated {} bytes, {:.1} s",
        totals.acked_commits,
        totals.samples_verified,
        totals.values_verified,
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
