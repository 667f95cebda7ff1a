'use strict'
// Time helpers: every time in the API is a bigint of nanoseconds since the Unix epoch.
// Inputs also accept Date, ISO strings, and numbers (nanoseconds; exact only below 2^53).
const { make } = require('./errors')
const native = require('./native')

const NS_PER_MS = 1_000_000n
const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n

/** Nanoseconds (bigint) from a bigint, number (ns), Date or date string. */
function toNanos(t, what = 'timestamp') {
  if (typeof t === 'bigint') return t
  if (typeof t === 'number') {
    if (!Number.isFinite(t)) throw make('invalid_argument', `${what} ${t} is not a finite number; pass nanoseconds as a bigint`)
    return BigInt(Math.trunc(t))
  }
  if (t instanceof Date) {
    const ms = t.getTime()
    if (Number.isNaN(ms)) throw make('invalid_argument', `${what} is an invalid Date`)
    return BigInt(ms) * NS_PER_MS
  }
  if (typeof t === 'string') {
    const ms = Date.parse(t)
    if (Number.isNaN(ms))
      throw make('invalid_argument', `${what} ${JSON.stringify(t)} is not a date; pass an ISO 8601 string, a Date or a bigint of nanoseconds`)
    return BigInt(ms) * NS_PER_MS
  }
  throw make('invalid_argument', `${what} must be a bigint of nanoseconds, a Date or an ISO string, got ${typeof t}`)
}

const TimeRange = Object.freeze({
  /** Everything. */
  MAX: Object.freeze({ start: I64_MIN, end: I64_MAX }),
  /** `[start, end)` from any accepted time inputs. */
  of(start, end) {
    return { start: toNanos(start, 'start'), end: toNanos(end, 'end') }
  },
})

/** A `{start, end}` of bigints from `{start, end}`, `[start, end]` or undefined (all). */
function toRange(r) {
  if (r === undefined || r === null) return TimeRange.MAX
  if (Array.isArray(r)) return TimeRange.of(r[0], r[1])
  if (typeof r === 'object' && 'start' in r && 'end' in r) return TimeRange.of(r.start, r.end)
  throw make('invalid_argument', 'a time range must be {start, end}, [start, end] or undefined for all time')
}

const TimeSpan = Object.freeze({
  nanos: (n) => BigInt(n),
  micros: (n) => BigInt(Math.round(n * 1e3)),
  millis: (n) => BigInt(Math.round(n * 1e6)),
  seconds: (n) => BigInt(Math.round(n * 1e9)),
})

/** The current time in nanoseconds since the epoch (bigint). */
function now() {
  return native.now()
}

/** A Date from nanoseconds (millisecond precision). */
function toDate(ns) {
  return new Date(Number(BigInt(ns) / NS_PER_MS))
}

module.exports = { toNanos, toRange, TimeRange, TimeSpan, now, toDate }
