//! The dispatcher: fan-out off the writer's thread.
//!
//! A writer whose frame goes to more than [`super::hub::INLINE_TARGETS`] streamers does not
//! queue it to each of them: it pushes the frame and its routing plan here (one short
//! lock), and the dispatcher's thread (`telemetron:relay`, started on first use) queues a
//! reference to it to every streamer and wakes them. The writer's cost per frame is then the same
//! for ten streamers or ten thousand.
//!
//! ## Order
//! Every frame handed off is counted in `in_flight` until it is queued to all its
//! streamers. While that count is not zero, every publish (small fan-outs included) and
//! every state push goes through the dispatcher too, so a streamer receives frames in the
//! order they were published, as when writers queued them themselves. Jobs are delivered
//! one batch at a time under the `deliver` lock, so two threads never deliver
//! concurrently.
//!
//! ## Bounds
//! At most [`MAX_QUEUED`] jobs wait. A writer that finds the queue full delivers the
//! oldest batch itself before queueing its own: memory stays bounded, and a writer
//! outrunning the dispatcher pays for the fan-out as it did before, instead of waiting on
//! a streamer (it never does).
//!
//! The dispatcher is not part of the loom models (`core/tests/relay_loom.rs`): their
//! streamers are few, so their frames never leave the writer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::hub::{Marks, Plan, RelayMetrics, Subscriber};
use super::sync::Arc;
use crate::telem::Frame;

/// Jobs that may wait for the dispatcher before writers start delivering themselves.
const MAX_QUEUED: usize = 4096;
/// Jobs taken off the queue at a time (each job's subscribers are woken once it is queued).
const BATCH: usize = 64;

/// Work for the dispatcher.
#[derive(Debug)]
pub(super) enum Job {
    /// A published frame with the plan it was published under.
    Routed { frame: std::sync::Arc<Frame>, plan: std::sync::Arc<Plan> },
    /// A state frame for one streamer, queued whatever its capacity.
    State { sub: Arc<Subscriber>, frame: Frame },
}

/// What the relay shares with the dispatcher's thread.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) metrics: RelayMetrics,
    pub(super) dispatch: Dispatch,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    stop: bool,
}

/// Scratch space of whoever delivers, reused across batches.
#[derive(Debug, Default)]
struct Scratch {
    marks: Marks,
    to_wake: Vec<Arc<Subscriber>>,
}

#[derive(Debug, Default)]
pub(super) struct Dispatch {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Jobs pushed and not yet queued to all their streamers.
    in_flight: AtomicUsize,
    deliver: Mutex<Scratch>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set once the thread runs, so a kick takes no lock after the first.
    started: std::sync::atomic::AtomicBool,
}

impl Dispatch {
    /// True while some handed-off frame is not yet queued to all its streamers: a publish
    /// must then go through the dispatcher too, to stay in order.
    pub(super) fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Queue `job`. With the queue full, deliver the oldest batch first (see the module
    /// docs). The dispatcher is not woken: call [`Dispatch::kick`] once the write path's
    /// locks are released.
    pub(super) fn push(&self, shared: &Shared, job: Job) {
        let mut q = self.queue.lock();
        if q.jobs.len() >= MAX_QUEUED {
            drop(q);
            self.deliver_batch(&shared.metrics);
            q = self.queue.lock();
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        q.jobs.push_back(job);
    }

    /// Wake the dispatcher, starting its thread on first use.
    pub(super) fn kick(&self, shared: &std::sync::Arc<Shared>) {
        if !self.started.load(Ordering::Acquire) {
            let mut t = self.thread.lock();
            if t.is_none() {
                let s = shared.clone();
                match std::thread::Builder::new().name("telemetron:relay".into()).spawn(move || run(&s)) {
                    Ok(h) => {
                        *t = Some(h);
                        self.started.store(true, Ordering::Release);
                    }
                    Err(e) => {
                        // No thread: deliver here, so nothing waits on a dispatcher that
                        // does not exist.
                        tracing::error!(key = "relay", error = %e, "cannot start the relay dispatcher; writers deliver their own frames");
                        drop(t);
                        self.drain(&shared.metrics);
                        return;
                    }
                }
            }
        }
        self.ready.notify_one();
    }

    /// Deliver up to [`BATCH`] of the oldest jobs, waking each job's streamers once it is
    /// queued to them.
    fn deliver_batch(&self, m: &RelayMetrics) {
        let mut scratch = self.deliver.lock();
        let Scratch { marks, to_wake } = &mut *scratch;
        let jobs: Vec<Job> = {
            let mut q = self.queue.lock();
            let n = q.jobs.len().min(BATCH);
            q.jobs.drain(..n).collect()
        };
        let n = jobs.len();
        if n == 0 {
            return;
        }
        // Each job's streamers are woken as soon as it is queued to them, not after the
        // batch: their receivers start while the rest is still being queued. A streamer in
        // several jobs of a batch is woken once per job (a counter and a `Notify` CAS, plus
        // a condvar signal if its receiver is parked), where one wake per batch used to
        // come only after a sort of every streamer fed.
        for (done, job) in jobs.into_iter().enumerate() {
            match job {
                Job::Routed { frame, plan } => {
                    plan.deliver(&frame, marks, m, to_wake);
                }
                Job::State { sub, frame } => {
                    sub.push_state(frame);
                    to_wake.push(sub);
                }
            }
            if done + 1 == n {
                // Every job is queued: publishes may go back to writers before the last
                // wakes (they queue behind these frames).
                self.in_flight.fetch_sub(n, Ordering::AcqRel);
            }
            for sub in to_wake.drain(..) {
                sub.wake();
            }
        }
    }

    /// Deliver every job queued now, on this thread.
    pub(super) fn drain(&self, m: &RelayMetrics) {
        while self.busy() {
            self.deliver_batch(m);
        }
    }

    /// Stop the thread (the relay is dropped): jobs still queued are dropped with it.
    pub(super) fn stop(&self) {
        self.queue.lock().stop = true;
        self.ready.notify_one();
        if let Some(h) = self.thread.lock().take()
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

/// The dispatcher's thread: wait for jobs, deliver them in batches.
fn run(shared: &Shared) {
    batch_scheduling();
    let d = &shared.dispatch;
    loop {
        {
            let mut q = d.queue.lock();
            while q.jobs.is_empty() {
                if q.stop {
                    return;
                }
                d.ready.wait(&mut q);
            }
            if q.stop {
                return;
            }
        }
        d.deliver_batch(&shared.metrics);
    }
}

/// Ask Linux not to let this thread preempt the thread that wakes it (`SCHED_BATCH`, no
/// privilege needed). A writer kicks the dispatcher at the end of its `write()`; with the
/// default policy the woken dispatcher often took the writer's core at once, and the
/// writer's call waited out a whole fan-out (p99 up to ~200 µs on 2 cores). The dispatcher
/// still gets its fair share of CPU.
fn batch_scheduling() {
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid, initialized
    // sched_param; it only changes this thread's scheduling policy.
    let rc = unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param)
    };
    if rc != 0 {
        tracing::debug!(key = "relay", error = %std::io::Error::last_os_error(), "the relay dispatcher keeps the default scheduling policy");
    }
}
