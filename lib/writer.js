'use strict'
// Writers: `const w = await client.openWriter({start, channels, authorities, mode})`.
const { call, sync, make } = require('./errors')
const { toColumns } = require('./frame')

class Writer {
  constructor(native) {
    this._native = native
  }

  /**
   * Write one frame: `write({time, pressure})`, `write(map)` or `write('pressure', samples)`.
   * Typed arrays of the channel's element type are passed without a copy and must not be
   * modified afterwards (the engine may still hold them; see the README).
   * Resolves to `{unauthorized}`: channels not written because another writer controls them.
   * Against a node, writes are pipelined: control can move on the node while a write is on
   * its way; the node then drops those channels and the next report names them. With
   * `{confirm: true}` (third argument) the call waits until the node applied this write, so
   * the report is certain (embedded writes always are).
   */
  async write(data, value, options) {
    const [channels, values] = toColumns(data, value)
    const confirm = options?.confirm === true
    return call(() => this._native.write(channels, values, confirm))
  }

  /** Wait until every write so far has been applied; resolves to `{unauthorized}` dropped since the last report. */
  async confirm() {
    return call(() => this._native.confirm())
  }

  /** Commit what was written; resolves to the committed end (ns). */
  async commit() {
    return call(() => this._native.commit())
  }

  /** `setAuthority(200)` for every channel, or `setAuthority({valve: 200, ...})`. */
  async setAuthority(value) {
    if (typeof value === 'number') return call(() => this._native.setAuthority(value))
    if (value instanceof Map) return call(() => this._native.setAuthorities([...value.keys()], [...value.values()]))
    if (value && typeof value === 'object') return call(() => this._native.setAuthorities(Object.keys(value), Object.values(value)))
    throw make('invalid_argument', 'pass an authority (0..255) or {channel: authority}')
  }

  /** True if this writer controls `channel` (and its index) now. */
  hasControl(channel) {
    return sync(() => this._native.hasControl(channel))
  }

  /** Commit and close; resolves to the committed end (ns). Control passes on. */
  async close() {
    return call(() => this._native.close())
  }

  /** Close without committing. */
  async abort() {
    return call(() => this._native.abort())
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this._native.abort()
  }
}

module.exports = { Writer }
