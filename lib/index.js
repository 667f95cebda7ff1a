'use strict'
// telemetron: Node.js / TypeScript SDK. See README.md ("TypeScript quick start").
const native = require('./native')
const errors = require('./errors')
const time = require('./time')
const { Frame, Series, ADDRESS } = require('./frame')
const { Client, Range, open, connect } = require('./client')
const { Writer } = require('./writer')
const { Streamer } = require('./streamer')
const { Iterator } = require('./iterator')
const { Controller, Control, ControlClient, Loop, loop } = require('./control')

/** Helpers for zero-copy checks (addresses as Rust sees them). */
const debug = Object.freeze({
  /** Address of a typed array's first element as seen by Rust (0 if not a typed array). */
  addressOf: (value) => native.debugAddressOf(value),
  /** Address of the Rust buffer behind a series read or streamed from the engine. */
  seriesAddress: (series) => series[ADDRESS],
  /** Address of the series a write to a `dataType` channel would build from `value`. */
  inputAddress: (dataType, value) => errors.sync(() => native.debugInputAddress(dataType, value)),
})

module.exports = {
  open, connect, Client, Range, Writer, Streamer, Iterator, Controller, Control, ControlClient, Loop, loop, Frame, Series,
  now: time.now, toNanos: time.toNanos, toDate: time.toDate, TimeRange: time.TimeRange, TimeSpan: time.TimeSpan,
  ...Object.fromEntries(Object.entries(errors).filter(([k]) => /Error$/.test(k))),
  debug,
}
