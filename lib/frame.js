'use strict'
// Frames: series keyed by channel. Series data of fixed-size types are typed arrays over
// Rust-owned memory (no copy); see bindings-node/src/telem.rs.
const { make } = require('./errors')

const ADDRESS = Symbol('telemetron.address')

class Series {
  constructor(key, name, raw) {
    /** Channel key. */
    this.key = key
    /** Channel name (undefined if unknown). */
    this.name = name
    /** Data type name (`f64`, `timestamp`, ...). */
    this.dataType = raw.dataType
    /** Samples: a typed array over Rust memory, or strings / Buffers / parsed JSON values. */
    this.data = raw.dataType === 'json' ? raw.data.map((s) => JSON.parse(s)) : raw.data
    /** `{start, end}` in ns. */
    this.timeRange = raw.timeRange
    /** `(domain << 32) | sample` of the first sample (bigint). */
    this.alignment = raw.alignment
    Object.defineProperty(this, ADDRESS, { value: raw.address, enumerable: false })
  }

  get length() {
    return this.data.length
  }
}

function concat(parts) {
  if (parts.length === 1) return parts[0]
  if (ArrayBuffer.isView(parts[0])) {
    const n = parts.reduce((a, p) => a + p.length, 0)
    const out = new parts[0].constructor(n)
    let o = 0
    for (const p of parts) {
      out.set(p, o)
      o += p.length
    }
    return out
  }
  return parts.flat()
}

class Frame {
  /**
   * @param raw native frame `{keys, series}`
   * @param names Map key -> name for the channels involved
   */
  constructor(raw, names) {
    /** Every series, in order (a channel may have several). */
    this.series = raw.series.map((s, i) => new Series(raw.keys[i], names ? names.get(raw.keys[i]) : undefined, s))
  }

  /** The channel key of each series. */
  get keys() {
    return this.series.map((s) => s.key)
  }

  /** Distinct channel names present (keys as strings when a name is unknown). */
  get channels() {
    return [...new Set(this.series.map((s) => s.name ?? String(s.key)))]
  }

  /** Number of series. */
  get length() {
    return this.series.length
  }

  _match(ch) {
    if (typeof ch === 'number') return (s) => s.key === ch
    if (typeof ch === 'string') return (s) => s.name === ch
    if (ch && typeof ch === 'object' && 'key' in ch) return (s) => s.key === ch.key
    throw make('invalid_argument', 'name a channel by name, key or channel object')
  }

  /** The series of one channel, in order. */
  seriesOf(ch) {
    return this.series.filter(this._match(ch))
  }

  /** True if the frame holds samples of `ch`. */
  has(ch) {
    return this.series.some(this._match(ch))
  }

  /**
   * The samples of one channel: the series' own typed array when there is one series (no
   * copy), the concatenation (a copy) when there are several, undefined when there is none.
   */
  get(ch) {
    const parts = this.seriesOf(ch).map((s) => s.data)
    return parts.length === 0 ? undefined : concat(parts)
  }

  /** Samples of one channel across its series. */
  samples(ch) {
    return this.seriesOf(ch).reduce((a, s) => a + s.length, 0)
  }

  /** `{name: samples}` for every channel (see `get`). */
  toObject() {
    const out = {}
    for (const c of this.channels) {
      const key = Number.isNaN(Number(c)) || this.series.some((s) => s.name === c) ? c : Number(c)
      out[c] = this.get(key)
    }
    return out
  }

  *[Symbol.iterator]() {
    yield* this.series
  }
}

/** Split `{name: samples}` / Map / `[channel, samples]` pairs into parallel arrays. */
function toColumns(data, maybeValue) {
  if (maybeValue !== undefined) return [[data], [maybeValue]]
  if (data instanceof Map) return [[...data.keys()], [...data.values()]]
  if (data && typeof data === 'object' && !Array.isArray(data) && !ArrayBuffer.isView(data)) {
    const keys = Object.keys(data)
    return [keys, keys.map((k) => jsonable(data[k]))]
  }
  throw make('invalid_argument', 'pass a frame as {channelName: samples}, a Map of channel -> samples, or (channel, samples)')
}

// Objects (json channels) are sent as JSON text.
function jsonable(v) {
  if (Array.isArray(v) && v.length > 0 && v[0] !== null && typeof v[0] === 'object' && !ArrayBuffer.isView(v[0])) {
    return v.map((x) => JSON.stringify(x))
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) return JSON.stringify(v)
  return v
}

module.exports = { Frame, Series, toColumns, ADDRESS }
