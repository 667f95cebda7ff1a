'use strict'
// Streamers: `for await (const frame of await client.openStreamer(channels)) {...}`.
//
// Lag (the streamer fell behind and the relay dropped its oldest frames), as the Python
// SDK's `on_lag`: with `onLag: 'warn'` (default) a 'lag' event `{dropped}` is emitted and
// iteration continues with the newest frames; with `onLag: 'raise'` the iteration throws a
// StreamError with code `stream.lagged` and `dropped` (the streamer stays open: iterate
// again to continue); with `onLag: 'ignore'` iteration continues silently. The older
// `lag: 'event' | 'error'` still works (deprecated): 'event' is 'warn', 'error' is 'raise'.
// With `lagPolicy: 'disconnect'` the relay closes the streamer and iteration throws
// `stream.disconnected`.
const { EventEmitter } = require('node:events')
const { call, make } = require('./errors')
const { Frame } = require('./frame')

const ON_LAG = ['warn', 'raise', 'ignore']
const DEPRECATED_LAG = { event: 'warn', error: 'raise' }

/** The `onLag` mode of streamer options (`onLag`, or the deprecated `lag`). */
function onLagOf({ onLag, lag } = {}) {
  if (onLag !== undefined) {
    if (!ON_LAG.includes(onLag)) throw make('invalid_argument', `onLag ${JSON.stringify(onLag)} is not 'warn', 'raise' or 'ignore'`)
    return onLag
  }
  if (lag === undefined) return 'warn'
  if (!(lag in DEPRECATED_LAG)) throw make('invalid_argument', `lag ${JSON.stringify(lag)} is not 'event' or 'error'; use onLag: 'warn' | 'raise' | 'ignore'`)
  return DEPRECATED_LAG[lag]
}

class Streamer extends EventEmitter {
  constructor(native, names, client, options) {
    super()
    this._native = native
    this._names = names
    this._client = client
    this._onLag = onLagOf(options)
    this.closed = false
  }

  /** The next frame, or null once the streamer is closed. */
  async next() {
    for (;;) {
      const ev = await call(() => this._native.next())
      if (ev.frame) return new Frame(ev.frame, this._names)
      if (ev.lagged !== undefined && ev.lagged !== null) {
        const dropped = ev.lagged
        if (this._onLag === 'raise') {
          const e = make('stream.lagged', `streamer fell behind and lost ${dropped} frames; receive faster, enlarge its capacity, or decimate/throttle`)
          e.dropped = dropped
          throw e
        }
        if (this._onLag === 'warn') this.emit('lag', { dropped })
        continue
      }
      this.closed = true
      return null
    }
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const f = await this.next()
      if (f === null) return
      yield f
    }
  }

  /** Change the channels received (names or keys). */
  async updateChannels(channels) {
    const list = Array.isArray(channels) ? channels : [channels]
    const chans = await this._client.channels.retrieve(list)
    for (const c of chans) this._names.set(c.key, c.name)
    return call(() => this._native.updateChannels(chans.map((c) => c.key)))
  }

  /** Stop receiving; a pending `next()` resolves to null. Idempotent. */
  async close() {
    this.closed = true
    return call(() => this._native.close())
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.close()
  }
}

module.exports = { Streamer, onLagOf }
