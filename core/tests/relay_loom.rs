//! Loom models of the shipping relay: no wake-up may be lost, frames arrive in order, a
//! close comes after the frames queued before it, a full queue reports its lag.
//!
//! Run with `make test-loom`, i.e.
//!   RUSTFLAGS="--cfg telemetron_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p telemetron --no-default-features --test relay_loom --release
//!
//! (its own target directory, so the changed RUSTFLAGS do not invalidate the regular build).
//! Without `--cfg telemetron_loom` this file compiles to nothing. (Not `--cfg loom`: tokio
//! reads that one and drops its networking, which the crate needs.)
//!
//! Under that cfg the relay's atomics, locks, condition variable and subscriber `Arc` are
//! loom's (`core/src/relay/sync.rs`), so these models run the real code:
//! `telemetron::relay::loom_model::Hub` is the engine's relay hub, `Hub::publish` a
//! writer's relay tap (`Relay::publish` -> `Subscriber::push` -> `Subscriber::wake`), and
//! the receiver is a real `Streamer` (`recv` -> `recv_timeout`: look at `events`, pop, then
//! spin or park on the condvar; the tokio `Notify` of async receives is not modelled).
//!
//! Loom has no clock, so in a model time stands still: a timed wait is a plain wait and the
//! bounded spin before parking (`StreamerConfig::spin_us`) becomes unbounded. A lost
//! wake-up then shows as a receiver parked forever after every producer finished (loom
//! reports a deadlock) or spinning forever (loom reports too many branches); the real
//! bounded waits would only have cost time.
//!
//! Two models select a deliberate protocol break (`loom_model::Fault`, a knob that exists
//! only in loom builds) and must fail, to show the models can catch one.
#![cfg(telemetron_loom)]

use loom::sync::Arc;
use loom::thread;
use telemetron::relay::loom_model::{Fault, Hub, value};
use telemetron::relay::{LagPolicy, StreamError, Streamer};

/// Parked receivers: no spin before parking.
const PARK: u64 = 0;
/// Spinning receivers: any spin is unbounded under loom.
const SPIN: u64 = 1;

/// Run `f` under loom: every interleaving with at most `LOOM_MAX_PREEMPTIONS` preemptions,
/// 4 by default (the breaks below need one; 4 keeps the run near a minute on a loaded
/// 2-core machine, 6 takes over ten).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(4);
    }
    b.check(f);
}

/// A hub with `fault`, one streamer on it, and producer threads publishing `values[i]`.
fn start(fault: Fault, capacity: usize, policy: LagPolicy, spin_us: u64, values: &[&[u32]]) -> (Streamer, Vec<thread::JoinHandle<()>>) {
    let hub = Arc::new(Hub::new(fault));
    let s = hub.subscribe(capacity, policy, spin_us);
    let producers = values
        .iter()
        .map(|vs| {
            let (hub, vs) = (hub.clone(), vs.to_vec());
            thread::spawn(move || vs.into_iter().for_each(|v| hub.publish(v)))
        })
        .collect();
    (s, producers)
}

/// The next frame's value.
fn recv(s: &mut Streamer) -> Result<u32, StreamError> {
    s.recv().map(|f| value(&f).expect("a model frame"))
}

fn join(producers: Vec<thread::JoinHandle<()>>) {
    for p in producers {
        p.join().unwrap();
    }
}

/// One producer publishes one frame; the receiver gets it (unless `fault` breaks that).
fn one_frame(fault: Fault, spin_us: u64) {
    model(move || {
        let (mut s, p) = start(fault, 16, LagPolicy::Notify, spin_us, &[&[7]]);
        assert_eq!(recv(&mut s), Ok(7));
        join(p);
    });
}

#[test]
fn one_producer_one_consumer_no_lost_wakeup() {
    one_frame(Fault::None, PARK);
}

#[test]
fn one_producer_two_frames_arrive_in_order() {
    model(|| {
        let (mut s, p) = start(Fault::None, 16, LagPolicy::Notify, PARK, &[&[1, 2]]);
        assert_eq!(recv(&mut s), Ok(1));
        assert_eq!(recv(&mut s), Ok(2));
        join(p);
    });
}

/// Two producers publish one frame each; the receiver gets both.
fn two_producers_one_consumer(spin_us: u64) {
    model(move || {
        let (mut s, p) = start(Fault::None, 16, LagPolicy::Notify, spin_us, &[&[1], &[2]]);
        let mut got = vec![recv(&mut s).unwrap(), recv(&mut s).unwrap()];
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
        join(p);
    });
}

#[test]
fn two_producers_one_consumer_receives_both() {
    two_producers_one_consumer(PARK);
}

#[test]
fn a_spinning_consumer_receives_from_two_producers() {
    two_producers_one_consumer(SPIN);
}

/// A producer publishes `frames` then closes the hub; the receiver gets them, then the close.
fn frames_then_close(spin_us: u64, frames: &'static [u32]) {
    model(move || {
        let hub = Arc::new(Hub::new(Fault::None));
        let mut s = hub.subscribe(16, LagPolicy::Notify, spin_us);
        let p = {
            let hub = hub.clone();
            thread::spawn(move || {
                frames.iter().for_each(|&v| hub.publish(v));
                hub.close();
            })
        };
        for &v in frames {
            assert_eq!(recv(&mut s), Ok(v));
        }
        assert_eq!(recv(&mut s), Err(StreamError::Closed));
        p.join().unwrap();
    });
}

#[test]
fn close_wakes_a_waiting_consumer_after_queued_frames() {
    frames_then_close(PARK, &[5]);
}

#[test]
fn a_spinning_consumer_sees_every_push_and_the_close() {
    frames_then_close(SPIN, &[1, 2]);
}

/// Frames lost and frames received add up to the frames published, and the newest one
/// arrives: a full queue drops its oldest frame and the next receive reports it.
#[test]
fn a_full_queue_reports_the_lag_then_the_newest_frame() {
    model(|| {
        let (mut s, p) = start(Fault::None, 1, LagPolicy::Notify, PARK, &[&[1, 2]]);
        let (mut got, mut dropped) = (Vec::new(), 0);
        while got.last() != Some(&2) {
            match recv(&mut s) {
                Ok(v) => got.push(v),
                Err(StreamError::Lagged { dropped: d }) => dropped += d,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert!(got == [1, 2] || (got == [2] && dropped == 1), "got {got:?}, {dropped} dropped");
        join(p);
    });
}

/// With `LagPolicy::Disconnect` an overflow closes the streamer with the count of frames
/// lost (woken if parked); otherwise every frame arrives.
#[test]
fn a_full_queue_disconnects_under_the_disconnect_policy() {
    model(|| {
        let (mut s, p) = start(Fault::None, 1, LagPolicy::Disconnect, PARK, &[&[1, 2]]);
        match recv(&mut s) {
            Ok(1) => assert_eq!(recv(&mut s), Ok(2)),
            Err(StreamError::Disconnected { dropped: 2 }) => assert_eq!(recv(&mut s), Err(StreamError::Closed)),
            other => panic!("unexpected {other:?}"),
        }
        join(p);
    });
}

/// The models are sensitive: a push that checks `waiting` before queuing its frame loses
/// the wake-up in some interleaving, and loom finds it (as a deadlock).
#[test]
#[should_panic(expected = "deadlock")]
fn broken_protocol_is_caught() {
    one_frame(Fault::WakeBeforePush, PARK);
}

/// Reading `events` after looking at the queue misses a push that lands in between; loom
/// finds the interleaving (the spin never ends).
#[test]
#[should_panic(expected = "maximum number of branches")]
fn a_spin_reading_events_too_late_is_caught() {
    one_frame(Fault::ReadEventsLate, SPIN);
}
