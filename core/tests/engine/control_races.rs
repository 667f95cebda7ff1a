//! Control under races: writers with random authorities, concurrent equal opens, handoffs
//! racing a writer, and the control channel's transfer chain while writers race.

use crate::common;
use crate::control_support;

use common::open;
use control_support::*;
use serde_json::Value;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::Duration;
use telemetron::channel::{ChannelKey, Concurrency, NewChannel};
use telemetron::control::Authority;
use telemetron::framer::Writer;
use telemetron::relay::StreamerConfig;
use telemetron::telem::DataType;

/// Run `f` on a thread and fail (instead of hanging) if it does not finish in `limit`.
fn with_deadline<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(limit) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not finish within {limit:?} (deadlock?)"),
    }
}

/// A tiny deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Written,
    Unauthorized,
    Rejected,
}

#[test]
fn racing_writers_with_random_authorities_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    const THREADS: u64 = 6;
    const ROUNDS: usize = 25;
    let clock = Arc::new(AtomicI64::new(1));
    let log: Arc<Mutex<Vec<(i64, u32, Outcome)>>> = Arc::default();
    let next_val = Arc::new(AtomicU64::new(0));
    let eng = engine.clone();
    with_deadline(Duration::from_secs(120), move || {
        let handles: Vec<_> = (0..THREADS)
            .map(|tid| {
                let (engine, clock, log, next_val) = (eng.clone(), clock.clone(), log.clone(), next_val.clone());
                thread::spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((tid + 1) * 0x1234_5678));
                    for round in 0..ROUNDS {
                        // Few distinct authorities, so ties happen often.
                        let auth = (rng.next() % 4) as Authority * 10;
                        // A writer that starts inside data another thread just committed is
                        // refused; it retries from the clock.
                        let mut w = loop {
                            let start = clock.load(Ordering::SeqCst);
                            match engine.open_writer(cfg(start, vec![v.cmd], auth, &format!("t{tid}r{round}"))) {
                                Ok(w) => break w,
                                Err(e) => assert_eq!(e.code(), "write.overlaps_committed", "{e}"),
                            }
                        };
                        for _ in 0..(1 + rng.next() % 4) {
                            let t = clock.fetch_add(1, Ordering::SeqCst);
                            let val = next_val.fetch_add(1, Ordering::SeqCst) as u32;
                            let outcome = match w.write(&cmd_frame(v, &[t], &[val])) {
                                Ok(r) if r.all_written() => Outcome::Written,
                                Ok(r) => {
                                    assert_blocked(&r, v);
                                    Outcome::Unauthorized
                                }
                                Err(e) => {
                                    // Only a timestamp that arrives late (another thread wrote a
                                    // later one first) or past the writer's region is refused.
                                    assert!(matches!(e.code(), "write.not_monotonic" | "write.overlap"), "{e}");
                                    Outcome::Rejected
                                }
                            };
                            log.lock().unwrap().push((t, val, outcome));
                            if rng.next().is_multiple_of(5) {
                                let _ = w.set_authority((rng.next() % 4) as Authority * 10);
                            }
                        }
                        if rng.next().is_multiple_of(4) {
                            drop(w);
                        } else {
                            w.close().unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a racing writer panicked");
        }
        let log = log.lock().unwrap().clone();
        assert!(eng.control_states(&[]).is_empty(), "control state empty after every writer closed");
        let (ts, vals) = stored(&eng, v);
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "stored index strictly increasing");
        assert_eq!(ts.len(), vals.len());
        let mut written: Vec<(i64, u32)> = log.iter().filter(|e| e.2 == Outcome::Written).map(|e| (e.0, e.1)).collect();
        written.sort_unstable();
        let got: Vec<(i64, u32)> = ts.iter().copied().zip(vals.iter().copied()).collect();
        assert_eq!(got, written, "exactly the writes reported written were stored");
        assert!(!written.is_empty());
        let n = |o: Outcome| log.iter().filter(|e| e.2 == o).count();
        eprintln!("written {}, unauthorized {}, rejected {}", n(Outcome::Written), n(Outcome::Unauthorized), n(Outcome::Rejected));
    });
}

/// Writers that open at the same moment at equal authority: one of them must end up holding
/// both the command and its index (never one each, which would let nobody write).
#[test]
fn concurrent_equal_opens_never_split_data_and_index_control() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    const THREADS: usize = 4;
    const ROUNDS: usize = 40;
    let eng = engine.clone();
    with_deadline(Duration::from_secs(120), move || {
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let (tx, rx) = mpsc::channel::<Option<Writer>>();
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (engine, barrier, tx) = (eng.clone(), barrier.clone(), tx.clone());
                thread::spawn(move || {
                    for r in 0..ROUNDS {
                        barrier.wait();
                        let w = engine.open_writer(cfg(0, vec![v.cmd], 50, &format!("w{i}r{r}"))).unwrap();
                        tx.send(Some(w)).unwrap();
                        barrier.wait();
                    }
                })
            })
            .collect();
        drop(tx);
        for _ in 0..ROUNDS {
            barrier.wait();
            let ws: Vec<Writer> = (0..THREADS).map(|_| rx.recv().unwrap().unwrap()).collect();
            let cmd_holder = holder(&eng, v.cmd);
            let idx_holder = holder(&eng, v.idx);
            let can_write = ws.iter().filter(|w| w.has_control(v.cmd)).count();
            assert_eq!(cmd_holder, idx_holder, "data and index held by the same writer");
            assert_eq!(can_write, 1, "exactly one of the equal writers may write");
            drop(ws);
            assert!(eng.control_states(&[]).is_empty());
            barrier.wait();
        }
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// A writer writing while control flips back and forth under it: each frame is written
/// whole or reported unauthorized whole (never its index without its data, never its data
/// without its index).
#[test]
fn handoffs_racing_a_writer_never_split_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let eng = engine.clone();
    with_deadline(Duration::from_secs(120), move || {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipper = {
            let (engine, done) = (eng.clone(), done.clone());
            thread::spawn(move || {
                for _ in 0..150 {
                    let mut h = writer(&engine, v, 0, 20, "H");
                    h.set_authority(5).unwrap();
                    h.set_authority(20).unwrap();
                    drop(h);
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let mut w = writer(&eng, v, 0, 10, "W");
        let mut written = Vec::new();
        let (mut partial, mut errors) = (Vec::new(), Vec::new());
        let mut t = 0i64;
        // Write for as long as control is flipping (and at least 1000 frames).
        while (t < 1_000 || !done.load(Ordering::SeqCst)) && t < 200_000 {
            t += 1;
            match w.write(&cmd_frame(v, &[t], &[t as u32])) {
                Ok(r) if r.all_written() => written.push(t),
                Ok(r) if r.unauthorized.len() == 2 => {}
                Ok(r) => partial.push((t, r.unauthorized)),
                Err(e) => errors.push((t, e.code())),
            }
        }
        flipper.join().unwrap();
        w.close().unwrap();
        eprintln!("{} of {t} written", written.len());
        assert!(partial.is_empty() && errors.is_empty(), "split frames: {partial:?} errors: {errors:?}");
        let (ts, vals) = stored(&eng, v);
        assert_eq!(ts, written);
        assert_eq!(vals, written.iter().map(|&t| t as u32).collect::<Vec<_>>());
    });
}

/// Replay control-channel messages: start from `state` (or a snapshot, which replaces it)
/// and check that each transfer starts from the holder the previous ones left. Returns
/// the final holders and the number of transfers.
fn replay(
    msgs: &[Value],
    mut state: std::collections::HashMap<ChannelKey, Option<String>>,
) -> (std::collections::HashMap<ChannelKey, Option<String>>, usize) {
    let mut n = 0;
    for m in msgs {
        if m.get("snapshot").is_some() {
            state.clear();
            for t in transfers(m) {
                let to = t.to.unwrap();
                state.insert(to.resource, Some(to.subject.key));
            }
            continue;
        }
        for t in transfers(m) {
            let resource = t.from.as_ref().or(t.to.as_ref()).unwrap().resource;
            let cur = state.entry(resource).or_default();
            let from = t.from.as_ref().map(|s| s.subject.key.clone());
            assert_eq!(&from, cur, "transfer #{n} on {resource} does not start from the current holder: {t:?}");
            *cur = t.to.as_ref().map(|s| s.subject.key.clone());
            n += 1;
        }
    }
    (state, n)
}

/// Transfers on the control channel must tell a consistent story: replayed in the order
/// received, each transfer's `from` is the holder the previous ones left, and when every
/// writer has closed nobody holds anything. Writers open, change authority and close
/// concurrently, while other streamers join the control channel (by opening or by
/// updating their channels): each of those starts from a snapshot that the transfers
/// after it continue exactly.
#[test]
fn control_channel_transfers_form_a_consistent_chain_under_races() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let light = engine.create_channel(NewChannel::virtual_("light", DataType::U8)).unwrap().key;
    let ctl = engine.control_channel();
    let big = |keys: Vec<ChannelKey>| {
        let mut c = StreamerConfig::new(keys);
        c.capacity = 1 << 20;
        c
    };
    let mut s = engine.open_streamer(big(vec![ctl])).unwrap();
    let eng = engine.clone();
    let joiners = with_deadline(Duration::from_secs(120), move || {
        let handles: Vec<_> = (0..4u64)
            .map(|tid| {
                let engine = eng.clone();
                thread::spawn(move || {
                    let mut rng = Rng(0xDEAD_BEEF ^ ((tid + 1) * 0x9E37_79B9));
                    for r in 0..60 {
                        let mut w = writer(&engine, v, 0, (rng.next() % 5) as Authority * 10, &format!("t{tid}r{r}"));
                        if rng.next().is_multiple_of(2) {
                            w.set_authority((rng.next() % 5) as Authority * 10).unwrap();
                        }
                        drop(w);
                    }
                })
            })
            .collect();
        let joiner = {
            let engine = eng.clone();
            thread::spawn(move || {
                let mut out = Vec::new();
                for i in 0..30 {
                    if i % 2 == 0 {
                        out.push(engine.open_streamer(big(vec![ctl])).unwrap());
                    } else {
                        let mut st = engine.open_streamer(big(vec![light])).unwrap();
                        st.update_channels(vec![light, ctl]).unwrap();
                        out.push(st);
                    }
                    thread::yield_now();
                }
                out
            })
        };
        for h in handles {
            h.join().unwrap();
        }
        joiner.join().unwrap()
    });
    assert!(engine.control_states(&[]).is_empty());
    let msgs = control_msgs(&mut s);
    assert_eq!(msgs[0]["snapshot"], Value::Bool(true));
    assert!(msgs[1..].iter().all(|m| m.get("snapshot").is_none()));
    let (end, n) = replay(&msgs, Default::default());
    assert!(n > 0);
    assert!(end.values().all(Option::is_none), "after every writer closed nobody holds: {end:?}");
    for mut j in joiners {
        let msgs = control_msgs(&mut j);
        assert_eq!(msgs[0]["snapshot"], Value::Bool(true), "a joining streamer first gets the state");
        let (end, _) = replay(&msgs, Default::default());
        assert!(end.values().all(Option::is_none), "a joining streamer ends where the arbiter ends: {end:?}");
    }
}
