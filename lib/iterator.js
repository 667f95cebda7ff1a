'use strict'
// Iterators over stored data, for ranges larger than memory.
const { call } = require('./errors')
const { Frame } = require('./frame')
const { toNanos } = require('./time')

function span(s) {
  if (s === undefined || s === null) return undefined
  if (typeof s === 'number') return { samples: s }
  if (typeof s === 'bigint') return { span: s }
  return s
}

class Iterator {
  constructor(native, names) {
    this._native = native
    this._names = names
  }

  seekFirst() {
    return call(() => this._native.seekFirst())
  }
  seekLast() {
    return call(() => this._native.seekLast())
  }
  seekGe(t) {
    return call(() => this._native.seekGe(toNanos(t)))
  }
  seekLe(t) {
    return call(() => this._native.seekLe(toNanos(t)))
  }

  /** Move forward by `span` (samples as a number, ns as a bigint, default: chunk size) and read. */
  async next(s) {
    const f = await call(() => this._native.next(span(s)))
    return f ? new Frame(f, this._names) : null
  }

  /** Move backward and read. */
  async prev(s) {
    const f = await call(() => this._native.prev(span(s)))
    return f ? new Frame(f, this._names) : null
  }

  /** Every chunk from the first sample on. */
  async *[Symbol.asyncIterator]() {
    if (!(await this.seekFirst())) return
    for (;;) {
      const f = await this.next()
      if (f === null) return
      yield f
    }
  }
}

module.exports = { Iterator }
