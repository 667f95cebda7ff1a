//! Loom model of the relay's subscriber wake protocol: no wake-up may be lost.
//!
//! Run with:
//!   RUSTFLAGS="--cfg telemetron_loom" cargo test -p telemetron --test relay_loom --release
//!
//! (optionally with `CARGO_TARGET_DIR=/tmp/loom-target`, so the changed RUSTFLAGS do not
//! invalidate the regular build). Without `--cfg telemetron_loom` this file compiles to
//! nothing. (Not `--cfg loom`: tokio reads that one and drops its networking, which the
//! crate needs.)
//!
//! The protocol, as in `core/src/relay/hub.rs` (`Subscriber::push` / `Subscriber::wake`)
//! and `core/src/relay/streamer.rs` (`Streamer::recv_timeout`, the wait path without a
//! timeout):
//!
//! * producer: lock the queue, push, unlock; then, if `waiting` is set, notify the condvar.
//! * consumer: lock, pop (the `pop` in `step`), unlock; if nothing was there, lock again and,
//!   if the queue is still empty (and not closed), set `waiting = true`, wait on the condvar,
//!   set `waiting = false`, unlock and loop.
//!
//! The spin before parking (`StreamerConfig::spin_us`): the producer bumps `events` after
//! each push and close; the spinning consumer reads `events` before looking at the queue
//! and spins until it changes. Modelled unbounded (see `recv_spinning`).
//!
//! A lost wake-up shows up as a consumer blocked forever after every producer finished,
//! which loom reports as a deadlock (a panic). One model deliberately breaks the protocol
//! (the producer checks `waiting` before pushing) to show that the check can fail.
#![cfg(telemetron_loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

#[derive(Default)]
struct QueueState {
    frames: VecDeque<u32>,
    closed: bool,
}

/// The subset of `hub::Subscriber` the wake protocol uses.
struct Subscriber {
    queue: Mutex<QueueState>,
    cv: Condvar,
    waiting: AtomicBool,
    /// Bumped after every push and close (what a spinning receiver watches).
    events: AtomicU64,
}

impl Subscriber {
    fn new() -> Subscriber {
        Subscriber {
            queue: Mutex::new(QueueState::default()),
            cv: Condvar::new(),
            waiting: AtomicBool::new(false),
            events: AtomicU64::new(0),
        }
    }

    /// `Subscriber::push` (queue not full): lock, push, unlock, wake.
    fn push(&self, f: u32) {
        let mut q = self.queue.lock().unwrap();
        if q.closed {
            return;
        }
        q.frames.push_back(f);
        drop(q);
        self.wake();
    }

    /// `Subscriber::wake` (the tokio `Notify` half is not modelled).
    fn wake(&self) {
        self.events.fetch_add(1, Ordering::Release);
        if self.waiting.load(Ordering::Acquire) {
            self.cv.notify_one();
        }
    }

    /// `Subscriber::close`.
    fn close(&self) {
        self.queue.lock().unwrap().closed = true;
        self.events.fetch_add(1, Ordering::Release);
        self.cv.notify_all();
    }

    /// A deliberately broken push: checks `waiting` before publishing the frame.
    fn push_broken(&self, f: u32) {
        let waiting = self.waiting.load(Ordering::Acquire);
        if waiting {
            self.cv.notify_one();
        }
        self.queue.lock().unwrap().frames.push_back(f);
    }

    /// `Streamer::pop`: `Some(Ok(frame))`, `Some(Err(()))` when closed, `None` if empty.
    fn pop(&self) -> Option<Result<u32, ()>> {
        let mut q = self.queue.lock().unwrap();
        match q.frames.pop_front() {
            Some(f) => Some(Ok(f)),
            None if q.closed => Some(Err(())),
            None => None,
        }
    }

    /// The spin of `Streamer::recv_timeout` with `spin_us`, made unbounded: read `events`,
    /// look at the queue, and if it was empty wait for `events` to change. Unbounded, a
    /// change it could miss would spin forever, which loom reports; the real spin is
    /// bounded and then parks, so there a miss would only cost time. `broken` reads
    /// `events` after looking at the queue (the wrong order).
    fn recv_spinning(&self, broken: bool) -> Result<u32, ()> {
        loop {
            let mut seen = self.events.load(Ordering::Acquire);
            if let Some(r) = self.pop() {
                return r;
            }
            if broken {
                seen = self.events.load(Ordering::Acquire);
            }
            while self.events.load(Ordering::Acquire) == seen {
                thread::yield_now();
            }
        }
    }

    /// `Streamer::recv_timeout` without a timeout: `Ok(frame)` or `Err(())` once closed.
    fn recv(&self) -> Result<u32, ()> {
        loop {
            if let Some(r) = self.pop() {
                return r;
            }
            let q = self.queue.lock().unwrap();
            let q = if q.frames.is_empty() && !q.closed {
                self.waiting.store(true, Ordering::Release);
                let q = self.cv.wait(q).unwrap();
                self.waiting.store(false, Ordering::Release);
                q
            } else {
                q
            };
            drop(q);
        }
    }
}

#[test]
fn one_producer_one_consumer_no_lost_wakeup() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new());
        let p = {
            let sub = sub.clone();
            thread::spawn(move || sub.push(7))
        };
        assert_eq!(sub.recv(), Ok(7));
        p.join().unwrap();
    });
}

#[test]
fn one_producer_two_frames_arrive_in_order() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new());
        let p = {
            let sub = sub.clone();
            thread::spawn(move || {
                sub.push(1);
                sub.push(2);
            })
        };
        assert_eq!(sub.recv(), Ok(1));
        assert_eq!(sub.recv(), Ok(2));
        p.join().unwrap();
    });
}

/// Two producers push one frame each; the consumer receives both with `recv`.
fn two_producers_one_consumer(recv: fn(&Subscriber) -> Result<u32, ()>) {
    loom::model(move || {
        let sub = Arc::new(Subscriber::new());
        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|v| {
                let sub = sub.clone();
                thread::spawn(move || sub.push(v))
            })
            .collect();
        let mut got = vec![recv(&sub).unwrap(), recv(&sub).unwrap()];
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
        for p in producers {
            p.join().unwrap();
        }
    });
}

#[test]
fn two_producers_one_consumer_receives_both() {
    two_producers_one_consumer(Subscriber::recv);
}

#[test]
fn close_wakes_a_waiting_consumer_after_queued_frames() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new());
        let p = {
            let sub = sub.clone();
            thread::spawn(move || {
                sub.push(5);
                sub.close();
            })
        };
        // The frame pushed before the close is delivered first, then the close.
        assert_eq!(sub.recv(), Ok(5));
        assert_eq!(sub.recv(), Err(()));
        p.join().unwrap();
    });
}

/// The model is sensitive: checking `waiting` before publishing the frame loses the
/// wake-up in some interleaving, and loom finds it (as a deadlock).
#[test]
#[should_panic]
fn broken_protocol_is_caught() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new());
        let p = {
            let sub = sub.clone();
            thread::spawn(move || sub.push_broken(9))
        };
        assert_eq!(sub.recv(), Ok(9));
        p.join().unwrap();
    });
}

#[test]
fn a_spinning_consumer_sees_every_push_and_the_close() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new());
        let p = {
            let sub = sub.clone();
            thread::spawn(move || {
                sub.push(1);
                sub.push(2);
                sub.close();
            })
        };
        assert_eq!(sub.recv_spinning(false), Ok(1));
        assert_eq!(sub.recv_spinning(false), Ok(2));
        assert_eq!(sub.recv_spinning(false), Err(()));
        p.join().unwrap();
    });
}

#[test]
fn a_spinning_consumer_receives_from_two_producers() {
    two_producers_one_consumer(|s| s.recv_spinning(false));
}

/// Reading `events` after looking at the queue misses a push that lands in between; loom
/// finds the interleaving (the spin never ends).
#[test]
#[should_panic]
fn a_spin_reading_events_too_late_is_caught() {
    loom::model(|| {
        let sub = Arc::new(Subscriber::new());
        let p = {
            let sub = sub.clone();
            thread::spawn(move || sub.push(3))
        };
        assert_eq!(sub.recv_spinning(true), Ok(3));
        p.join().unwrap();
    });
}
