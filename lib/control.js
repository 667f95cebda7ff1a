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
// given authority, and a streamer on the read and write channels that keeps the latest value
// of each. Losing control to a higher authority is visible: `hasControl(ch)` turns false, a
// 'unauthorized' event is emitted with the channels a `set` could not write, and with
// `errOnUnauthorized: true` the `set` rejects with ControlError `control.unauthorized`.
const { EventEmitter } = require('node:events')
const { make } = require('./errors')
const { now } = require('./time')

class Controller extends EventEmitter {
  constructor(client, writer, streamer, writeChannels, readChannels) {
    super()
    this._client = client
    this._writer = writer
    this._streamer = streamer
    this._write = new Map(writeChannels.map((c) => [c.name, c]))
    this._byKey = new Map([...writeChannels, ...readChannels].map((c) => [c.key, c]))
    this._state = new Map()
    this._waiters = new Set()
    this._lastTs = 0n
    this._released = false
    this._loop = this._run()
  }

  async _run() {
    try {
      for await (const frame of this._streamer) {
        for (const s of frame.series) {
          if (s.length > 0) this._state.set(s.name ?? s.key, s.data[s.length - 1])
        }
        for (const w of [...this._waiters]) w()
      }
    } catch (e) {
      this._error = e
      for (const w of [...this._waiters]) w()
    }
  }

  /** The latest value received for a channel (undefined until one arrives). */
  get(channel) {
    const c = typeof channel === 'number' ? this._byKey.get(channel) : undefined
    return this._state.get(c ? c.name : channel)
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
    if (this._released) throw make('engine.closed', 'the controller was released; acquire again')
    const values = typeof channel === 'object' && channel !== null ? channel : { [channel]: value }
    const frame = new Map()
    const t = this._timestamp()
    for (const [name, v] of Object.entries(values)) {
      const c = this._write.get(name) ?? this._byKey.get(Number(name))
      if (!c || !this._write.has(c.name)) {
        throw make('write.not_in_writer', `channel ${JSON.stringify(name)} is not one of this controller's write channels; acquire it with write: [...]`)
      }
      frame.set(c.name, [v])
      if (!c.isVirtual && c.index !== undefined && c.index !== null && c.index !== c.key) frame.set(c.index, BigInt64Array.of(t))
    }
    const report = await this._writer.write(frame)
    if (report.unauthorized.length > 0) this.emit('unauthorized', report.unauthorized)
    return report
  }

  /**
   * Resolve `true` once `cond(this)` holds (checked now and on every frame received), or
   * `false` after `timeout` ms (default: wait forever).
   */
  waitUntil(cond, { timeout } = {}) {
    return new Promise((resolve, reject) => {
      let timer
      const check = () => {
        if (this._error) {
          done()
          return reject(this._error)
        }
        let ok
        try {
          ok = cond(this)
        } catch (e) {
          done()
          return reject(e)
        }
        if (ok) {
          done()
          resolve(true)
        } else if (this._released) {
          done()
          resolve(false)
        }
      }
      const done = () => {
        this._waiters.delete(check)
        if (timer) clearTimeout(timer)
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
    return this._writer.setAuthority(value)
  }

  /** True if this controller may command `channel` now. */
  hasControl(channel) {
    return this._writer.hasControl(channel)
  }

  /** Sleep `ms` milliseconds. */
  sleep(ms) {
    return new Promise((r) => setTimeout(r, ms))
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
      for (const w of [...this._waiters]) w()
    }
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.release()
  }
}

class ControlClient {
  constructor(client) {
    this._client = client
  }

  /**
   * Acquire control of `write` channels (with `authority`, one number or one per write
   * channel) and follow `read` channels.
   */
  async acquire({ name = 'controller', write = [], read = [], authority = 255, authorities, errOnUnauthorized = false } = {}) {
    const writeChannels = write.length ? await this._client.channels.retrieve(write) : []
    const readChannels = read.length ? await this._client.channels.retrieve(read) : []
    const auth = authorities ?? (Array.isArray(authority) ? authority : [authority])
    const writer = writeChannels.length
      ? await this._client.openWriter({
          start: now(), channels: writeChannels.map((c) => c.key), authorities: auth, name, errOnUnauthorized,
        })
      : nullWriter()
    const follow = [...new Map([...readChannels, ...writeChannels].map((c) => [c.key, c])).values()]
    let streamer
    try {
      streamer = await this._client.openStreamer(follow.map((c) => c.key))
    } catch (e) {
      await writer.abort()
      throw e
    }
    return new Controller(this._client, writer, streamer, writeChannels, readChannels)
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

module.exports = { Controller, ControlClient }
