'use strict'
// Control sequences, with the same semantics as the Python SDK:
//
//   const ctrl = await client.control.acquire({ name: 'press seq', write: ['valve_cmd'],
//                                               read: ['press_pt'], authority: 200 })
//   await ctrl.set('valve_cmd', 1)          // writes 1 with a fresh timestamp on its index
//   await ctrl.waitUntil((c) => c.get('press_pt') > 100, { timeout: 10_000 })  // -> boolean
//   await ctrl.setAuthority(255)
//   await ctrl.release()
//
// `acquire` opens a writer at now() on the write channels (their indexes are added) with the
// given authority, and a streamer on the read channels and the control-state channel.
// `get(ch)` is the latest value received (seeded with the last stored sample at acquire;
// a write channel's is the last command sent). Conditions are evaluated now and on every
// frame; a channel without a value reads as undefined (the condition is then usually false).
//
// Losing control: when a higher authority takes a write channel, `hasControl(ch)` turns
// false, a 'lost' event is emitted with the channel names, and `onLost` decides the rest:
// 'throw' (default) rejects the next set / waitUntil / sleep with ControlError `control.lost`;
// 'warn' emits a process warning; a function is called as onLost(ctrl, channels); 'ignore'
// does nothing. A command written while not in control is dropped by the engine and handled
// the same way.
const { EventEmitter } = require('node:events')
const { randomUUID } = require('node:crypto')
const { make } = require('./errors')
const { now } = require('./time')

const ON_LOST = ['throw', 'warn', 'ignore']

class Controller extends EventEmitter {
  constructor(client, opts) {
    super()
    const { name, subjectKey, onLost, writer, streamer, writeChannels, readChannels, controlKey, seed } = opts
    /** The sequence's name (control state). */
    this.name = name
    /** The subject key identifying this sequence in control state. */
    this.subjectKey = subjectKey
    this._client = client
    this._onLost = onLost
    this._writer = writer
    this._streamer = streamer
    this._writeList = writeChannels
    this._write = new Map(writeChannels.map((c) => [c.name, c]))
    this._byKey = new Map([...writeChannels, ...readChannels].map((c) => [c.key, c]))
    this._controlKey = controlKey
    this._state = new Map(seed)
    this._holders = new Map()
    this._held = new Map(writeChannels.map((c) => [c.name, writer.hasControl(c.key)]))
    this._waiters = new Set()
    this._lastTs = 0n
    this._pending = null
    this._released = false
    this._loop = this._run()
  }

  async _run() {
    try {
      for await (const frame of this._streamer) {
        for (const s of frame.series) {
          if (s.key === this._controlKey) this._transfers(s.data)
          else if (s.length > 0) this._state.set(s.name ?? s.key, s.data[s.length - 1])
        }
        this._wake()
      }
    } catch (e) {
      this._error = e
      this._wake()
    }
  }

  _wake() {
    for (const w of [...this._waiters]) w()
  }

  // Follow control transfers ({transfers: [{from, to}]}) and report the write channels whose
  // holder stopped being this sequence.
  _transfers(docs) {
    for (const doc of docs) {
      for (const t of doc?.transfers || []) {
        const state = t.to || t.from
        if (!state) continue
        this._holders.set(state.resource, t.to ? t.to.subject.key : null)
      }
    }
    const lost = []
    for (const c of this._writeList) {
      let mine = this._holders.get(c.key) === this.subjectKey
      if (!c.isVirtual && c.index !== undefined && c.index !== null && c.index !== c.key) {
        mine = mine && this._holders.get(c.index) === this.subjectKey
      }
      if (this._held.get(c.name) && !mine) lost.push(c.name)
      this._held.set(c.name, mine)
    }
    if (lost.length) this._lost(lost)
  }

  _lost(names) {
    const e = make(
      'control.lost',
      `control sequence ${JSON.stringify(this.name)} lost control of ${names.join(', ')} to a higher authority; raise its authority or wait for release`,
    )
    e.channels = names
    this.emit('lost', names)
    if (this._onLost === 'throw') {
      this._pending = e
      this._wake()
    } else if (this._onLost === 'warn') {
      process.emitWarning(e.message, 'TelemetronControlWarning')
    } else if (typeof this._onLost === 'function') {
      this._onLost(this, names)
    }
  }

  _throwPending() {
    const e = this._pending
    if (e) {
      this._pending = null
      throw e
    }
  }

  _channel(channel) {
    const c = typeof channel === 'number' ? this._byKey.get(channel) : undefined
    return c ? c.name : channel
  }

  /** The latest value of a channel (undefined until one is received or commanded). */
  get(channel) {
    return this._state.get(this._channel(channel))
  }

  /** A snapshot `{name: latest value}`. */
  get state() {
    return Object.fromEntries(this._state)
  }

  _timestamp() {
    let t = now()
    if (t <= this._lastTs) t = this._lastTs + 1n
    this._lastTs = t
    return t
  }

  /** Command channels: `set('valve', 1)` or `set({valve: 1, vent: 0})`. */
  async set(channel, value) {
    if (this._released) throw make('engine.closed', `control sequence ${JSON.stringify(this.name)} was released; acquire again`)
    this._throwPending()
    const values = typeof channel === 'object' && channel !== null ? channel : { [channel]: value }
    if (this._write.size === 0) throw make('invalid_argument', `control sequence ${JSON.stringify(this.name)} has no write channels`)
    const frame = new Map()
    const t = this._timestamp()
    const sent = []
    for (const [ch, v] of Object.entries(values)) {
      const c = this._write.get(this._channel(/^\d+$/.test(ch) && !this._write.has(ch) ? Number(ch) : ch))
      if (!c) {
        throw make('write.not_in_writer', `channel ${JSON.stringify(ch)} is not one of this sequence's write channels; acquire it with write: [...]`)
      }
      frame.set(c.key, Array.isArray(v) || ArrayBuffer.isView(v) ? v : [v])
      sent.push([c.name, v])
      if (!c.isVirtual && c.index !== undefined && c.index !== null && c.index !== c.key) frame.set(c.index, BigInt64Array.of(t))
    }
    // Confirmed: a command takes effect or is reported lost, also when control moves in flight.
    const report = await this._writer.write(frame, undefined, { confirm: true })
    for (const [n, v] of sent) this._state.set(n, v)
    if (report.unauthorized.length > 0) {
      const dropped = report.unauthorized.filter((n) => this._write.has(n))
      for (const n of dropped) this._held.set(n, false)
      this._lost(dropped.length ? dropped : report.unauthorized)
      this._throwPending()
    }
    this._wake()
    return report
  }

  /**
   * Resolve `true` once `cond(this)` holds (checked now and on every frame received), or
   * `false` after `timeout` ms (default: wait forever).
   */
  waitUntil(cond, { timeout } = {}) {
    return new Promise((resolve, reject) => {
      let timer
      const done = () => {
        this._waiters.delete(check)
        if (timer) clearTimeout(timer)
      }
      const check = () => {
        try {
          this._throwPending()
          if (this._error) throw this._error
          if (cond(this)) {
            done()
            resolve(true)
          } else if (this._released) {
            done()
            resolve(false)
          }
        } catch (e) {
          done()
          reject(e)
        }
      }
      this._waiters.add(check)
      if (timeout !== undefined && timeout !== null) {
        timer = setTimeout(() => {
          done()
          resolve(false)
        }, timeout)
      }
      check()
    })
  }

  /** `waitUntil(c => !cond(c))`. */
  waitWhile(cond, opts) {
    return this.waitUntil((c) => !cond(c), opts)
  }

  /** `setAuthority(255)` or `setAuthority({valve: 10})`. */
  async setAuthority(value) {
    await this._writer.setAuthority(value)
    for (const c of this._writeList) this._held.set(c.name, this._writer.hasControl(c.key))
  }

  /** True if this sequence controls `channel` now (every write channel when omitted). */
  hasControl(channel) {
    if (channel === undefined) return this._writeList.length > 0 && this._writeList.every((c) => this._writer.hasControl(c.key))
    return this._writer.hasControl(channel)
  }

  /** Sleep `ms` milliseconds (rejects with `control.lost` if control is lost meanwhile, with onLost 'throw'). */
  async sleep(ms) {
    this._throwPending()
    await new Promise((r) => setTimeout(r, ms))
    this._throwPending()
  }

  /** Release control (closes the writer, committing, and the streamer). Idempotent. */
  async release() {
    if (this._released) return
    this._released = true
    try {
      await this._writer.close()
    } finally {
      await this._streamer.close()
      await this._loop
      this._wake()
    }
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.release()
  }
}

async function seed(client, channels) {
  const stored = channels.filter((c) => !c.isVirtual)
  const out = []
  for (const c of stored) {
    const d = (await client.readLatest([c.key])).get(c.key)
    if (d?.length) out.push([c.name, d[d.length - 1]])
  }
  return out
}

/** `client.control`: acquire control sequences, read control state (Python: `Control`). */
class Control {
  constructor(client) {
    this._client = client
  }

  /**
   * Acquire control of `write` channels (with `authority`, one number or one per write
   * channel) and follow `read` channels.
   */
  async acquire({ name = 'controller', write = [], read = [], authority = 255, authorities, onLost = 'throw' } = {}) {
    if (!(ON_LOST.includes(onLost) || typeof onLost === 'function')) {
      throw make('invalid_argument', "onLost must be 'throw', 'warn', 'ignore' or a function")
    }
    const writeChannels = write.length ? await this._client.channels.retrieve(write) : []
    const readChannels = read.length ? await this._client.channels.retrieve(read) : []
    const auth = authorities ?? (Array.isArray(authority) ? authority : [authority])
    const subjectKey = randomUUID()
    const writer = writeChannels.length
      ? await this._client.openWriter({ start: now(), channels: writeChannels.map((c) => c.key), authorities: auth, name, subjectKey })
      : nullWriter()
    try {
      const controlKey = await this._client.controlChannel()
      const initial = await seed(this._client, readChannels)
      const streamer = await this._client.openStreamer([...new Set([...readChannels.map((c) => c.key), controlKey])])
      return new Controller(this._client, { name, subjectKey, onLost, writer, streamer, writeChannels, readChannels, controlKey, seed: initial })
    } catch (e) {
      await writer.abort()
      throw e
    }
  }

  /** Who controls `channels` now (all when omitted). */
  async states(channels = []) {
    return this._client._states(channels)
  }
}

function nullWriter() {
  const none = () => Promise.resolve()
  return { write: none, close: none, abort: none, setAuthority: none, hasControl: () => false }
}

/** @deprecated The old name of {@link Control}. */
const ControlClient = Control

module.exports = { Controller, Control, ControlClient }
