//! Time: [`TimeStamp`], [`TimeSpan`] and [`TimeRange`].

use std::fmt;
use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An instant: nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeStamp(pub i64);

/// A signed duration in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeSpan(pub i64);

impl TimeStamp {
    /// The earliest representable instant.
    pub const MIN: TimeStamp = TimeStamp(i64::MIN);
    /// The latest representable instant.
    pub const MAX: TimeStamp = TimeStamp(i64::MAX);
    /// The Unix epoch.
    pub const EPOCH: TimeStamp = TimeStamp(0);

    /// The current wall-clock time.
    pub fn now() -> TimeStamp {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        TimeStamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// `self + span`, saturating at the representable range.
    pub const fn saturating_add(self, span: TimeSpan) -> TimeStamp {
        TimeStamp(self.0.saturating_add(span.0))
    }

    /// The span from `earlier` to `self`, saturating.
    pub const fn since(self, earlier: TimeStamp) -> TimeSpan {
        TimeSpan(self.0.saturating_sub(earlier.0))
    }
}

impl TimeSpan {
    /// Zero length.
    pub const ZERO: TimeSpan = TimeSpan(0);
    /// One nanosecond.
    pub const NANOSECOND: TimeSpan = TimeSpan(1);
    /// One microsecond.
    pub const MICROSECOND: TimeSpan = TimeSpan(1_000);
    /// One millisecond.
    pub const MILLISECOND: TimeSpan = TimeSpan(1_000_000);
    /// One second.
    pub const SECOND: TimeSpan = TimeSpan(1_000_000_000);
    /// The largest span.
    pub const MAX: TimeSpan = TimeSpan(i64::MAX);

    /// A span of `n` seconds.
    pub const fn seconds(n: i64) -> TimeSpan {
        TimeSpan(n.saturating_mul(1_000_000_000))
    }

    /// A span of `n` milliseconds.
    pub const fn millis(n: i64) -> TimeSpan {
        TimeSpan(n.saturating_mul(1_000_000))
    }

    /// The period of a rate in Hz (`1e9 / hz` ns, at least 1 ns).
    pub fn from_hz(hz: f64) -> TimeSpan {
        TimeSpan(((1e9 / hz).round() as i64).max(1))
    }

    /// Nanoseconds.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// As a std `Duration` (negative spans become zero).
    pub fn to_duration(self) -> Duration {
        Duration::from_nanos(self.0.max(0) as u64)
    }
}

impl From<Duration> for TimeSpan {
    fn from(d: Duration) -> Self {
        TimeSpan(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl Add<TimeSpan> for TimeStamp {
    type Output = TimeStamp;
    fn add(self, rhs: TimeSpan) -> TimeStamp {
        self.saturating_add(rhs)
    }
}

impl Sub<TimeSpan> for TimeStamp {
    type Output = TimeStamp;
    fn sub(self, rhs: TimeSpan) -> TimeStamp {
        TimeStamp(self.0.saturating_sub(rhs.0))
    }
}

impl Sub for TimeStamp {
    type Output = TimeSpan;
    fn sub(self, rhs: TimeStamp) -> TimeSpan {
        self.since(rhs)
    }
}

impl fmt::Display for TimeStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // RFC 3339 with nanoseconds, computed without a calendar dependency.
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", sod / 3600, (sod / 60) % 60, sod % 60)
    }
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let a = n.unsigned_abs();
        if a >= 1_000_000_000 {
            write!(f, "{:.3}s", n as f64 / 1e9)
        } else if a >= 1_000_000 {
            write!(f, "{:.3}ms", n as f64 / 1e6)
        } else if a >= 1_000 {
            write!(f, "{:.3}µs", n as f64 / 1e3)
        } else {
            write!(f, "{n}ns")
        }
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A half-open time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// Inclusive start.
    pub start: TimeStamp,
    /// Exclusive end.
    pub end: TimeStamp,
}

impl TimeRange {
    /// Everything.
    pub const MAX: TimeRange = TimeRange { start: TimeStamp::MIN, end: TimeStamp::MAX };

    /// `[start, end)`.
    pub const fn new(start: TimeStamp, end: TimeStamp) -> TimeRange {
        TimeRange { start, end }
    }

    /// `[start, end)` from raw nanoseconds.
    pub const fn from_nanos(start: i64, end: i64) -> TimeRange {
        TimeRange { start: TimeStamp(start), end: TimeStamp(end) }
    }

    /// True when `start <= end` (an empty range with `start == end` is valid).
    pub const fn is_valid(&self) -> bool {
        self.start.0 <= self.end.0
    }

    /// True when the range holds no instant.
    pub const fn is_empty(&self) -> bool {
        self.start.0 >= self.end.0
    }

    /// The length of the range.
    pub const fn span(&self) -> TimeSpan {
        self.end.since(self.start)
    }

    /// True if `t` lies in `[start, end)`.
    pub const fn contains(&self, t: TimeStamp) -> bool {
        t.0 >= self.start.0 && t.0 < self.end.0
    }

    /// True if the two ranges share at least one instant.
    pub const fn overlaps(&self, other: &TimeRange) -> bool {
        self.start.0 < other.end.0 && other.start.0 < self.end.0
    }

    /// The intersection (possibly empty).
    pub fn intersect(&self, other: &TimeRange) -> TimeRange {
        TimeRange { start: self.start.max(other.start), end: self.end.min(other.end) }
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// Parse a duration: `250us`, `10ms`, `2s`, `1m`, or a number of seconds (`1e-05` too, as
/// Python and JavaScript print small and large numbers).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let mut split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    // An exponent (`e-05`, `e+21`): no unit starts with `e`.
    if let Some(exp) = s[split..].strip_prefix(['e', 'E']) {
        let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let n = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        if n > 0 {
            split = s.len() - digits.len() + n;
        }
    }
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "ns" => v / 1e9,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    // `try_`: a finite number of seconds beyond what a `Duration` holds is not a duration.
    if secs >= 0.0 { Duration::try_from_secs_f64(secs).ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_rfc3339() {
        assert_eq!(TimeStamp(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(TimeStamp(1_700_000_000_123_456_789).to_string(), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(TimeStamp(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn ranges() {
        let r = TimeRange::from_nanos(10, 20);
        assert!(r.contains(TimeStamp(10)) && !r.contains(TimeStamp(20)));
        assert!(r.overlaps(&TimeRange::from_nanos(19, 30)));
        assert!(!r.overlaps(&TimeRange::from_nanos(20, 30)));
        assert_eq!(r.intersect(&TimeRange::from_nanos(15, 40)), TimeRange::from_nanos(15, 20));
        assert!(TimeRange::from_nanos(5, 5).is_empty());
        assert!(!TimeRange::from_nanos(6, 5).is_valid());
    }

    #[test]
    fn spans() {
        assert_eq!(TimeSpan::from_hz(1000.0), TimeSpan::MILLISECOND);
        assert_eq!(TimeStamp(5) + TimeSpan(3), TimeStamp(8));
        assert_eq!(TimeStamp::MAX + TimeSpan(3), TimeStamp::MAX);
        assert_eq!(TimeSpan::millis(2).to_string(), "2.000ms");
    }
}
