'use strict'
// Control sequences: a translation of the Rust core's `telemetron::client::Sequence`, the
// same implementation the Python SDK's `client.control.acquire` wraps.
//
//   const ctrl = await client.control.acquire({ name: 'press seq', write: ['valve_cmd'],
//                                               read: ['press_pt'], authority: 200,
//                                               safe: { valve_cmd: 0 } })
//   await ctrl.set('valve_cmd', 1)          // resolves once applied, or rejects control.lost
//   await ctrl.waitUntil((c) => c.get('press_pt') > 100, { timeout: 10_000 })  // -> boolean
//   for await (const tick of ctrl.loop(100, { duration: 2_000 })) { ... }      // 100 Hz
//   await ctrl.release()                    // or ctrl.abort(): safe values first
//
// Commands take effect or reject: if control moved and a command was not written, `set`
// rejects with ControlError `control.lost` naming the channels (`err.channels`), whatever
// `onLost` says. Losing control while running (a higher authority took a write channel)
// emits a 'lost' event with the channel names, and `onLost` decides the rest: 'throw'
// (default) rejects the next set / wait / sleep / tick with `control.lost`; 'warn' emits a
// process warning; a function is called as onLost(ctrl, channels); 'ignore' does nothing.
//
// Every command is recorded as channels `<name>/commands/{time,channel,value,authority,
// outcome}` (`record: false` turns it off). `get(ch)` is the latest value received (seeded
// with the last stored sample at acquire; a write channel's is the last command sent).
// Conditions are evaluated now and on every change; a channel without a value reads as
// undefined (the condition is then usually false). Times are in milliseconds.
const { EventEmitter } = require('node:events')
const native = require('./native')
const { call, make, sync } = require('./errors')

const ON_LOST = ['throw', 'warn', 'ignore']
const RECORD_FIELDS = ['time', 'channel', 'value', 'authority', 'outcome']

/** A fixed-rate loop: `for await (const tick of loop(1000)) { ... }` (see `Loop`). */
class Loop {
  constructor(hz, { duration, count, spinMs } = {}, sequence) {
    this._ticker = sync(() => new native.LoopTicker(hz, spinMs, duration, count))
    this._sequence = sequence
  }

  /** The period in ms. */
  get period() {
    return this._ticker.period
  }

  /** Resolve at the next tick, `{index, scheduled, late, missed}` (ms), or null once the loop's duration or count is reached. */
  tick() {
    return call(() => (this._sequence ? this._sequence.tick(this._ticker) : this._ticker.tick()))
  }

  async *[Symbol.asyncIterator]() {
    for (let t = await this.tick(); t; t = await this.tick()) yield t
  }

  /** `{hz, ticks, overruns, lateP50, lateP99, lateMax}` (ms). */
  stats() {
    return this._ticker.stats()
  }
}

/** A fixed-rate loop outside any sequence. */
function loop(hz, options) {
  return new Loop(hz, options)
}

function latestOf(series) {
  const d = series?.data
  return d && d.length > 0 ? d[0] : undefined
}

class Controller extends EventEmitter {
  constructor(client, seq, onLost) {
    super()
    this._client = client
    this._native = seq
    /** The sequence's name (control state, command record). */
    this.name = seq.name
    /** The subject key identifying this sequence in control state. */
    this.subjectKey = seq.subjectKey
    this._onLost = onLost
    this._write = seq.writeChannels
    this._read = seq.readChannels
    this._byName = new Map([...this._write, ...this._read].map((c) => [c.name, c]))
    this._losses = this._follow()
  }

  // Losses reach JS as one promise each (the core's on_lost hook queues the names).
  async _follow() {
    for (;;) {
      let names
      try {
        names = await this._native.nextLoss()
      } catch {
        return
      }
      if (!names) return
      this.emit('lost', names)
      if (this._onLost === 'warn') {
        process.emitWarning(
          `control sequence ${JSON.stringify(this.name)} lost control of ${names.join(', ')} to a higher authority`,
          'TelemetronControlWarning',
        )
      } else if (typeof this._onLost === 'function') {
        this._onLost(this, names)
      }
    }
  }

  _key(channel) {
    if (typeof channel === 'number') return channel
    if (channel && typeof channel === 'object' && 'key' in channel) return channel.key
    return channel
  }

  /** The latest value of a channel (undefined until one is received or commanded). */
  get(channel) {
    return latestOf(this._native.value(this._key(channel)))
  }

  /** A snapshot `{name: latest value}`. */
  get state() {
    const f = this._native.values()
    const byKey = new Map([...this._write, ...this._read].map((c) => [c.key, c.name]))
    const out = {}
    for (let i = 0; i < f.keys.length; i++) out[byKey.get(f.keys[i]) ?? f.keys[i]] = latestOf(f.series[i])
    return out
  }

  /** The channels this sequence commands and follows. */
  get writeChannels() {
    return this._write
  }

  get readChannels() {
    return this._read
  }

  /** Names of the command record's channels. */
  get recordChannels() {
    return RECORD_FIELDS.map((f) => `${this.name}/commands/${f}`)
  }

  /** Command channels: `set('valve', 1)` or `set({valve: 1, vent: 0})`; resolves once applied. */
  async set(channel, value) {
    const values = typeof channel === 'object' && channel !== null ? channel : { [channel]: value }
    const chans = []
    const vals = []
    for (const [ch, v] of Object.entries(values)) {
      chans.push(/^\d+$/.test(ch) && !this._byName.has(ch) ? Number(ch) : ch)
      vals.push(v)
    }
    await call(() => this._native.set(chans, vals))
  }

  async _wait(kind, cond, timeout, hold) {
    const w = sync(() => new native.SequenceWait(kind, timeout ?? null, hold ?? null))
    for (;;) {
      sync(() => this._native.observe(w))
      const answer = w.check(Boolean(cond(this)))
      if (answer !== null && answer !== undefined) return answer
      await call(() => this._native.changed(w))
    }
  }

  /** Resolve `true` once `cond(this)` holds (checked now and on every change), `false` after `timeout` ms. */
  waitUntil(cond, { timeout } = {}) {
    return this._wait('until', cond, timeout)
  }

  /** Resolve `true` once `cond(this)` stops holding, `false` after `timeout` ms. */
  waitWhile(cond, { timeout } = {}) {
    return this._wait('while', cond, timeout)
  }

  /** Resolve `true` once `cond(this)` has held for `duration` ms without a break, `false` after `timeout` ms. */
  remainsTrueFor(cond, duration, { timeout } = {}) {
    return this._wait('trueFor', cond, timeout, duration)
  }

  /** `setAuthority(255)` or `setAuthority({valve: 10})`. */
  async setAuthority(value) {
    const entries = typeof value === 'object' && value !== null ? Object.entries(value) : [[null, value]]
    await call(() =>
      this._native.setAuthority(
        entries.map(([c]) => (c === null ? null : /^\d+$/.test(c) && !this._byName.has(c) ? Number(c) : c)),
        entries.map(([, a]) => a),
      ),
    )
  }

  /** True if this sequence controls `channel` now (every write channel when omitted). */
  hasControl(channel) {
    return sync(() => this._native.hasControl(channel === undefined ? undefined : this._key(channel)))
  }

  /** Sleep `ms` precisely (rejects with `control.lost` if control is lost meanwhile, with onLost 'throw'). */
  sleep(ms) {
    return call(() => this._native.sleep(ms))
  }

  /** A fixed-rate loop whose ticks also reject with `control.lost` (onLost 'throw'). */
  loop(hz, options) {
    return new Loop(hz, options, this._native)
  }

  /** Write the safe values to the channels still controlled (recorded), then release. */
  async abort() {
    try {
      await call(() => this._native.abort())
    } finally {
      await this._losses
    }
  }

  /** Release control (closes the writer and the command record). Idempotent. */
  async release() {
    try {
      await call(() => this._native.release())
    } finally {
      await this._losses
    }
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.release()
  }
}

/** `client.control`: acquire control sequences, read control state (Python: `Control`). */
class Control {
  constructor(client) {
    this._client = client
  }

  /**
   * Acquire control of `write` channels (with `authority`, one number or one per write
   * channel) and follow `read` channels. `safe` values are written by `abort()`.
   */
  async acquire({ name = 'controller', write = [], read = [], authority = 200, authorities, onLost = 'throw', safe, record = true } = {}) {
    if (!(ON_LOST.includes(onLost) || typeof onLost === 'function')) {
      throw make('invalid_argument', "onLost must be 'throw', 'warn', 'ignore' or a function")
    }
    const refs = (list) => list.map((c) => (c && typeof c === 'object' && 'key' in c ? c.key : c))
    const auth = authorities ?? (Array.isArray(authority) ? authority : [authority])
    const seq = await call(() =>
      this._client._native.acquire({ name, write: refs(write), read: refs(read), authorities: auth, raiseOnLost: onLost === 'throw', record }),
    )
    if (safe) {
      try {
        const entries = Object.entries(safe)
        sync(() =>
          seq.setSafe(
            entries.map(([c]) => (/^\d+$/.test(c) ? Number(c) : c)),
            entries.map(([, v]) => v),
          ),
        )
      } catch (e) {
        await seq.release()
        throw e
      }
    }
    return new Controller(this._client, seq, onLost)
  }

  /** Who controls `channels` now (all when omitted). */
  async states(channels = []) {
    return this._client._states(channels)
  }
}

/** @deprecated The old name of {@link Control}. */
const ControlClient = Control

module.exports = { Controller, Control, ControlClient, Loop, loop }
