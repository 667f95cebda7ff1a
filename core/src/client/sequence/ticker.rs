//! A fixed-rate loop that holds its period, and a precise sleep.
//!
//! [`sleep_until`] sleeps in the kernel until a short margin before the deadline (with this
//! thread's timer slack set to 1 ns, so the kernel does not add its default 50 µs), then
//! spins the rest. [`Ticker`] schedules tick `n` at `start + n * period` (never drifting),
//! reports how late each tick woke, and counts **overruns**: ticks skipped because the body
//! of the loop took longer than a period. A late loop does not try to catch up with a burst
//! of ticks; it skips to the next tick still ahead and says how many it skipped.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The default spin margin of [`sleep_until`]: the kernel wakes a thread within tens of
/// microseconds of its deadline when the machine is not overloaded; the margin covers that.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(150);

thread_local! {
    static SLACK_SET: Cell<bool> = const { Cell::new(false) };
}

/// Ask the kernel for 1 ns timer slack on this thread (Linux; elsewhere a no-op), once.
fn tighten_timer_slack() {
    SLACK_SET.with(|done| {
        if !done.get() {
            #[cfg(target_os = "linux")]
            // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects this thread.
            unsafe {
                libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
            }
            done.set(true);
        }
    });
}

/// Sleep until `deadline`: in the kernel until `spin` before it, then spinning. Returns at
/// once for a deadline in the past.
pub fn sleep_until(deadline: Instant, spin: Duration) {
    tighten_timer_slack();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > spin {
            std::thread::sleep(left - spin);
        } else {
            while Instant::now() < deadline {
                std::hint::spin_loop();
            }
            return;
        }
    }
}

/// One tick of a [`Ticker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The tick's number, counting from 0 (skipped ticks count).
    pub index: u64,
    /// When the tick was scheduled, since the loop started.
    pub scheduled: Duration,
    /// How late the loop woke for it.
    pub late: Duration,
    /// Ticks skipped just before this one because the previous body overran its period.
    pub missed: u64,
}

/// Lateness statistics of a loop (see [`Ticker::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoopStats {
    /// Ticks delivered.
    pub ticks: u64,
    /// Ticks skipped because a body overran its period.
    pub overruns: u64,
    /// Median lateness.
    pub p50: Duration,
    /// 99th percentile of lateness.
    pub p99: Duration,
    /// Worst lateness.
    pub max: Duration,
}

/// Lateness histogram: 1 µs buckets up to 10 ms, then one overflow bucket (whose samples
/// are reported as the maximum).
const BUCKETS: usize = 10_001;

/// A fixed-rate loop (see the module docs).
///
/// # Examples
///
/// ```
/// use telemetron::client::Ticker;
/// let mut t = Ticker::new(1000.0).unwrap();
/// let mut skipped = 0; // ticks skipped so far (a loaded machine may skip some)
/// for i in 0..5 {
///     let tick = t.tick();
///     skipped += tick.missed;
///     assert_eq!(tick.index, i + skipped);
/// }
/// assert_eq!((t.stats().ticks, t.stats().overruns), (5, skipped));
/// ```
#[derive(Debug, Clone)]
pub struct Ticker {
    period: Duration,
    /// Tick 0's due time: set by the first tick, so a loop built ahead of use does not
    /// start behind.
    start: Option<Instant>,
    next: u64,
    spin: Duration,
    hist: Vec<u64>,
    ticks: u64,
    overruns: u64,
    max: Duration,
    /// Stop after this many ticks.
    count: Option<u64>,
    /// Stop before the first tick due this long after the start.
    duration: Option<Duration>,
}

impl Ticker {
    /// A loop at `hz` ticks per second; the first tick is due when it is first asked for.
    ///
    /// # Errors
    /// `invalid_argument` for a rate that is not a positive finite number of at most 1 MHz.
    pub fn new(hz: f64) -> Result<Ticker> {
        if !(hz.is_finite() && hz > 0.0 && hz <= 1e6) {
            return Err(Error::InvalidArgument { reason: format!("loop rate {hz} Hz: pass a rate above 0 and at most 1,000,000 Hz") });
        }
        Ok(Ticker {
            period: Duration::from_secs_f64(1.0 / hz),
            start: None,
            next: 0,
            spin: DEFAULT_SPIN,
            hist: vec![0; BUCKETS],
            ticks: 0,
            overruns: 0,
            max: Duration::ZERO,
            count: None,
            duration: None,
        })
    }

    /// End the loop after `count` ticks ([`Ticker::done`], the iterator's end).
    #[must_use]
    pub fn with_count(mut self, count: u64) -> Ticker {
        self.count = Some(count);
        self
    }

    /// End the loop before the first tick due `duration` or more after the first tick.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Ticker {
        self.duration = Some(duration);
        self
    }

    /// True once the loop's count or duration is reached: the next tick (skipping what an
    /// overrun missed) would be past the end. A tick due within a millionth of a period
    /// of the end counts as at the end (a rate whose period is not a whole number of ns).
    pub fn done(&mut self) -> bool {
        if self.count.is_some_and(|c| self.ticks >= c) {
            return true;
        }
        let Some(d) = self.duration else { return false };
        let (_, _, due) = self.plan();
        due - self.start() + self.period / 1_000_000 >= d
    }

    /// Spin for at most this long before each tick instead of [`DEFAULT_SPIN`] (zero: never
    /// spin, lower CPU use, later wake-ups).
    #[must_use]
    pub fn with_spin(mut self, spin: Duration) -> Ticker {
        self.spin = spin;
        self
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// When the loop started (the first tick).
    fn start(&mut self) -> Instant {
        *self.start.get_or_insert_with(Instant::now)
    }

    /// When tick `n` is due.
    fn due(&mut self, n: u64) -> Instant {
        let nanos = self.period.as_nanos().saturating_mul(u128::from(n));
        self.start() + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The next tick's due time, skipping the ticks already past by more than a period.
    fn plan(&mut self) -> (u64, u64, Instant) {
        let now = Instant::now();
        let mut n = self.next;
        let mut due = self.due(n);
        let mut missed = 0;
        if now > due + self.period {
            let behind = (now - due).as_nanos() / self.period.as_nanos().max(1);
            missed = u64::try_from(behind).unwrap_or(u64::MAX);
            n = n.saturating_add(missed);
            due = self.due(n);
        }
        (n, missed, due)
    }

    fn record(&mut self, n: u64, missed: u64, due: Instant) -> Tick {
        let late = Instant::now().saturating_duration_since(due);
        let us = usize::try_from(late.as_micros()).unwrap_or(usize::MAX).min(BUCKETS - 1);
        if let Some(b) = self.hist.get_mut(us) {
            *b += 1;
        }
        self.max = self.max.max(late);
        self.ticks += 1;
        self.overruns += missed;
        self.next = n + 1;
        Tick { index: n, scheduled: due - self.start(), late, missed }
    }

    /// Wait for the next tick (blocking this thread, precisely), ignoring the count and
    /// duration (the iterator honours them).
    pub fn tick(&mut self) -> Tick {
        let (n, missed, due) = self.plan();
        sleep_until(due, self.spin);
        self.record(n, missed, due)
    }

    /// Wait for the next tick, waking early (and returning `None`) when `interrupt` is set
    /// at one of the checks made every `check` while sleeping. Used by control sequences,
    /// which stop a loop when control is lost.
    pub fn tick_or(&mut self, check: Duration, mut interrupt: impl FnMut() -> bool) -> Option<Tick> {
        let (n, missed, due) = self.plan();
        loop {
            if interrupt() {
                return None;
            }
            let left = due.saturating_duration_since(Instant::now());
            if left <= check + self.spin {
                break;
            }
            sleep_until(Instant::now() + check, Duration::ZERO);
        }
        sleep_until(due, self.spin);
        Some(self.record(n, missed, due))
    }

    /// Lateness so far.
    pub fn stats(&self) -> LoopStats {
        let at = |q: f64| -> Duration {
            let rank = ((self.ticks as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (us, &c) in self.hist.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return if us == BUCKETS - 1 { self.max } else { Duration::from_micros(us as u64).min(self.max) };
                }
            }
            self.max
        };
        if self.ticks == 0 {
            return LoopStats::default();
        }
        LoopStats { ticks: self.ticks, overruns: self.overruns, p50: at(0.5), p99: at(0.99), max: self.max }
    }
}

/// The ticks of a loop, until its count or duration ([`Ticker::done`]).
impl Iterator for Ticker {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        if self.done() { None } else { Some(self.tick()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_duration_end_the_loop() {
        assert_eq!(Ticker::new(2000.0).unwrap().with_count(3).count(), 3);
        let ticks: Vec<Tick> = Ticker::new(200.0).unwrap().with_duration(Duration::from_millis(50)).collect();
        assert_eq!(ticks.len(), 10, "ticks at 0, 5, ..., 45 ms; none at the end itself");
        // A period that is not a whole number of ns: 3 ticks in 1 s at 3 Hz, not 4.
        let mut t = Ticker::new(3.0).unwrap().with_duration(Duration::from_secs(1)).with_spin(Duration::ZERO);
        t.start = Some(Instant::now() - Duration::from_secs(1));
        t.next = 3;
        assert!(t.done());
    }

    #[test]
    fn rates_out_of_range_are_refused() {
        for hz in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e6] {
            assert_eq!(Ticker::new(hz).unwrap_err().code(), "invalid_argument", "{hz}");
        }
    }

    #[test]
    fn ticks_keep_the_schedule_and_count_overruns() {
        let mut t = Ticker::new(500.0).unwrap(); // 2 ms
        let a = t.tick();
        assert_eq!((a.index, a.missed), (0, 0));
        let b = t.tick();
        // Under load this tick may come late enough to skip some (numbering counts them).
        assert_eq!(b.index, 1 + b.missed);
        assert_eq!(b.scheduled, Duration::from_millis(2) * u32::try_from(b.index).unwrap());
        std::thread::sleep(Duration::from_millis(9)); // overrun: at least 3 ticks are past
        let c = t.tick();
        assert!(c.missed >= 3, "{c:?}");
        assert_eq!(c.index, b.index + 1 + c.missed);
        let s = t.stats();
        assert_eq!(s.ticks, 3);
        assert_eq!(s.overruns, b.missed + c.missed);
        assert!(s.p50 <= s.p99 && s.p99 <= s.max);
    }

    #[test]
    fn sleep_until_does_not_return_early() {
        let d = Instant::now() + Duration::from_millis(3);
        sleep_until(d, DEFAULT_SPIN);
        assert!(Instant::now() >= d);
    }

    #[test]
    fn an_interrupted_tick_returns_none() {
        let mut t = Ticker::new(1.0).unwrap();
        t.tick();
        let started = Instant::now();
        let mut calls = 0;
        assert_eq!(
            t.tick_or(Duration::from_millis(5), || {
                calls += 1;
                calls > 2
            }),
            None
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
