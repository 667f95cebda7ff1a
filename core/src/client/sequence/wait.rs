//! How a control sequence waits on a condition: the rules once, for every SDK.
//!
//! The condition itself is the caller's (a Python or JavaScript function of the latest
//! values); [`Wait`] decides what its answers mean. The caller evaluates the condition,
//! hands the answer to [`Wait::check`], and, while that returns `None`, waits for the next
//! change of the sequence's values or until [`Wait::wake_at`] (see
//! `Sequence::wait_blocking` and `Sequence::changed`).

use std::time::{Duration, Instant};

/// What a wait waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The condition holds (`wait_until`).
    True,
    /// The condition stops holding (`wait_while`).
    False,
    /// The condition holds, continuously, for this long (`remains_true_for`): any frame
    /// on which it is false restarts the clock.
    TrueFor(Duration),
}

/// One wait in progress.
#[derive(Debug, Clone)]
pub struct Wait {
    until: Until,
    deadline: Option<Instant>,
    since: Option<Instant>,
    /// The value version the condition was last evaluated on.
    pub(super) seen: u64,
}

impl Wait {
    /// A wait for `until`, giving up after `timeout` (`None`: never).
    pub fn new(until: Until, timeout: Option<Duration>) -> Wait {
        Wait { until, deadline: timeout.map(|t| Instant::now() + t), since: None, seen: 0 }
    }

    /// Feed the condition's current answer: `Some(true)` when the wait is satisfied,
    /// `Some(false)` when it timed out, `None` to keep waiting.
    pub fn check(&mut self, holds: bool) -> Option<bool> {
        let now = Instant::now();
        match self.until {
            Until::True if holds => return Some(true),
            Until::False if !holds => return Some(true),
            Until::TrueFor(d) => {
                if holds {
                    let since = *self.since.get_or_insert(now);
                    if now.duration_since(since) >= d {
                        return Some(true);
                    }
                } else {
                    self.since = None;
                }
            }
            _ => {}
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return Some(false);
        }
        None
    }

    /// The latest time to check again even if nothing changes: the timeout, or the end of
    /// a hold in progress.
    pub fn wake_at(&self) -> Option<Instant> {
        let hold_end = match (self.until, self.since) {
            (Until::TrueFor(d), Some(s)) => Some(s + d),
            _ => None,
        };
        match (self.deadline, hold_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_and_while() {
        let mut w = Wait::new(Until::True, None);
        assert_eq!(w.check(false), None);
        assert_eq!(w.check(true), Some(true));
        let mut w = Wait::new(Until::False, None);
        assert_eq!(w.check(true), None);
        assert_eq!(w.check(false), Some(true));
    }

    #[test]
    fn a_timeout_answers_false() {
        let mut w = Wait::new(Until::True, Some(Duration::ZERO));
        assert_eq!(w.check(false), Some(false));
        assert!(w.wake_at().is_some());
    }

    #[test]
    fn a_hold_restarts_when_the_condition_breaks() {
        let mut w = Wait::new(Until::TrueFor(Duration::from_millis(20)), None);
        assert_eq!(w.check(true), None);
        let first_end = w.wake_at().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(w.check(false), None);
        assert_eq!(w.wake_at(), None);
        assert_eq!(w.check(true), None);
        assert!(w.wake_at().unwrap() > first_end);
        std::thread::sleep(Duration::from_millis(21));
        assert_eq!(w.check(true), Some(true));
    }
}
