// Telemetron for browsers: `import { connect } from 'telemetron/web'`.
//
// Plain ESM with no native code. It speaks the node's protocol (docs/protocol.md) over
// `fetch` and `WebSocket`, so it runs in browsers and in Node (20 with
// --experimental-websocket, 22 and later as is). Its API has the shapes of the Node SDK:
// channels, reads (with reductions done on the node), writes, ranges, streamers
// (`for await`), change capture. Frames decode to typed arrays over the received buffer,
// with no copy. Errors carry the core's codes (`err.code`).

import { CodecError, decodeFrame, encodeFrame } from './codec.mjs'
import { parse, stringify } from './json.mjs'

export { CodecError, decodeFrame, encodeFrame }

const PROTOCOL = 1

/** An error from the node or the client, with the core's stable `code`. */
export class TelemetronError extends Error {
  constructor(code, message, detail) {
    super(message)
    this.name = 'TelemetronError'
    this.code = code
    this.detail = detail
  }
}

const ns = (t) => {
  if (t === undefined || t === null) return undefined
  if (t instanceof Date) return BigInt(t.getTime()) * 1_000_000n
  return BigInt(t)
}

/** `{start, end}`, `[start, end]` or undefined (everything) → the wire's `{start, end}`. */
function toRange(r) {
  if (r === undefined || r === null) return { start: -(2n ** 63n), end: 2n ** 63n - 1n }
  if (Array.isArray(r)) return { start: ns(r[0]), end: ns(r[1]) }
  return { start: ns(r.start), end: ns(r.end ?? r.stop) }
}

/** A channel from the wire's serde form, in the Node SDK's shape. */
function channelOf(c) {
  // The kind is flattened into the channel: `"kind": "index" | "data" | "virtual"`, and
  // `"index": key` for a data channel.
  const kind = c.kind
  return {
    key: c.key,
    name: c.name,
    dataType: c.data_type,
    isIndex: kind === 'index',
    isVirtual: kind === 'virtual',
    index: kind === 'index' ? c.key : (c.index ?? undefined),
    concurrency: c.concurrency,
    internal: Boolean(c.internal),
    compression: c.compression ?? 'default',
  }
}

function rangeOf(r) {
  return {
    key: r.key,
    name: r.name,
    timeRange: { start: BigInt(r.time_range.start), end: BigInt(r.time_range.end) },
    labels: r.labels ?? [],
    color: r.color ?? undefined,
    parent: r.parent ?? undefined,
  }
}

/** A series of a frame. */
export class Series {
  constructor(raw, name) {
    this.key = raw.key
    this.name = name
    this.dataType = raw.dataType
    this.data = raw.data
    this.timeRange = raw.timeRange
    this.alignment = raw.alignment
  }

  get length() {
    return this.data.length
  }
}

function concat(parts) {
  if (parts.length === 1) return parts[0]
  if (ArrayBuffer.isView(parts[0])) {
    const out = new parts[0].constructor(parts.reduce((a, p) => a + p.length, 0))
    let o = 0
    for (const p of parts) {
      out.set(p, o)
      o += p.length
    }
    return out
  }
  return parts.flat()
}

/** Series keyed by channel, as the Node SDK's Frame. */
export class Frame {
  constructor(series, names) {
    this.series = series.map((s) => new Series(s, names?.get(s.key)))
  }

  get keys() {
    return this.series.map((s) => s.key)
  }

  get length() {
    return this.series.length
  }

  _match(ch) {
    if (typeof ch === 'number') return (s) => s.key === ch
    if (typeof ch === 'string') return (s) => s.name === ch
    if (ch && typeof ch === 'object' && 'key' in ch) return (s) => s.key === ch.key
    throw new TelemetronError('invalid_argument', 'name a channel by name, key or channel object')
  }

  /** The series of one channel, in order. */
  seriesOf(ch) {
    return this.series.filter(this._match(ch))
  }

  /** One channel's samples (concatenated when it has several series), or undefined. */
  get(ch) {
    const parts = this.seriesOf(ch).map((s) => s.data)
    return parts.length ? concat(parts) : undefined
  }

  /** Samples of one channel. */
  samples(ch) {
    return this.seriesOf(ch).reduce((a, s) => a + s.length, 0)
  }
}

class Channels {
  constructor(c) {
    this._c = c
  }

  /**
   * Create channels (`{name, dataType, isIndex, index, isVirtual, concurrency, compression}`);
   * resolves to them.
   */
  async create(defs, { retrieveIfNameExists = false, place } = {}) {
    const many = Array.isArray(defs)
    const channels = (many ? defs : [defs]).map((d) => ({
      name: d.name,
      data_type: d.dataType ?? (d.isIndex ? 'timestamp' : undefined),
      is_index: Boolean(d.isIndex),
      index: d.index,
      virtual: Boolean(d.isVirtual),
      concurrency: d.concurrency,
      compression: d.compression,
    }))
    const r = await this._c._call('channels/create', { channels, retrieve_if_name_exists: retrieveIfNameExists, place })
    const out = r.channels.map(channelOf)
    return many ? out : out[0]
  }

  /** Channels by key or name (one, or an array). */
  async retrieve(ref) {
    const many = Array.isArray(ref)
    const r = await this._c._call('channels/retrieve', { refs: many ? ref : [ref] })
    const out = r.channels.map(channelOf)
    return many ? out : out[0]
  }

  /** User channels whose name contains `term`. */
  async search(term = '') {
    return (await this._c._call('channels/search', { term })).channels.map(channelOf)
  }

  async rename(ref, name) {
    const [c] = await this.retrieve([ref])
    return channelOf((await this._c._call('channels/rename', { key: c.key, name })).channel)
  }

  /** Change how compaction stores a channel's samples (see the Node SDK). */
  async setCompression(ref, compression) {
    const [c] = await this.retrieve([ref])
    return channelOf((await this._c._call('channels/compression', { key: c.key, compression })).channel)
  }

  async delete(refs) {
    const keys = (await this.retrieve(Array.isArray(refs) ? refs : [refs])).map((c) => c.key)
    await this._c._call('channels/delete', { keys })
  }
}

class Ranges {
  constructor(c) {
    this._c = c
  }

  async create({ name, timeRange, labels = [], color, metaData = {}, parent }) {
    const range = { name, time_range: toRange(timeRange), labels, color, meta_data: metaData, parent }
    return rangeOf((await this._c._call('ranges/create', { range })).range)
  }

  async retrieve(key) {
    return rangeOf((await this._c._call('ranges/retrieve', { key })).range)
  }

  async search(term = '', overlapping) {
    const q = { term, overlapping: overlapping === undefined ? undefined : toRange(overlapping) }
    return (await this._c._call('ranges/search', q)).ranges.map(rangeOf)
  }

  async delete(keys) {
    await this._c._call('ranges/delete', { keys: Array.isArray(keys) ? keys : [keys] })
  }

  async rename(key, name) {
    return rangeOf((await this._c._call('ranges/rename', { key, name })).range)
  }

  async setLabels(key, labels) {
    return rangeOf((await this._c._call('ranges/labels', { key, labels })).range)
  }

  /** The direct children of a range, by start time. */
  async children(key) {
    return (await this._c._call('ranges/children', { key })).ranges.map(rangeOf)
  }

  /** A range's metadata as `{name: value}`. */
  async meta(key) {
    return (await this._c._call('ranges/meta/get', { key })).entries
  }

  async setMeta(key, entries) {
    await this._c._call('ranges/meta/set', { key, entries })
  }

  async deleteMeta(key, names) {
    await this._c._call('ranges/meta/delete', { key, names: Array.isArray(names) ? names : [names] })
  }
}

/** An async queue of stream events. */
class Inbox {
  constructor() {
    this.items = []
    this.waiters = []
  }

  push(item) {
    const w = this.waiters.shift()
    if (w) w(item)
    else this.items.push(item)
  }

  next() {
    if (this.items.length) return Promise.resolve(this.items.shift())
    return new Promise((resolve) => this.waiters.push(resolve))
  }
}

/** A live stream of channels: `for await (const frame of streamer)`. */
export class Streamer {
  constructor(ws, names, inbox) {
    this._ws = ws
    this._names = names
    this._inbox = inbox
    this.closed = false
  }

  /**
   * The next frame, or null once closed. Rejects with `stream.lagged` (with `dropped`) when
   * frames were lost, then continues.
   */
  async next() {
    if (this.closed && !this._inbox.items.length) return null
    const ev = await this._inbox.next()
    if (ev.frame) return new Frame(decodeFrame(ev.frame), this._names)
    if (ev.error && ev.error.code === 'stream.lagged') {
      throw new TelemetronError(ev.error.code, ev.error.message, ev.error.detail)
    }
    this.closed = true
    if (ev.error) throw new TelemetronError(ev.error.code, ev.error.message, ev.error.detail)
    return null
  }

  async close() {
    if (this.closed) return
    this.closed = true
    try {
      this._ws.send(JSON.stringify({ type: 'close' }))
    } catch {}
    this._ws.close()
    this._inbox.push({ end: true })
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const f = await this.next()
      if (f === null) return
      yield f
    }
  }
}

/** Authorities are whole numbers 0..255 (checked here: the node closes a stream it cannot parse). */
function checkAuthority(a) {
  if (!Number.isInteger(a) || a < 0 || a > 255) throw new TelemetronError('invalid_argument', `authority ${a} must be a whole number from 0 to 255`)
}

/**
 * A writer (`client.openWriter`). Frames are sent without waiting; what only the node can
 * refuse comes back on the next call (`write`, `commit`, `setAuthority`, `close`), as with
 * the Node SDK's remote writer. `hasControl` reads the authority the node pushed.
 */
export class Writer {
  constructor(ws, inbox, opened) {
    this._ws = ws
    this._inbox = inbox
    this._ids = 0
    this._errors = []
    this._replies = new Map()
    /** The writer's channels (indexes added). */
    this.channels = opened.channels.map(channelOf)
    this._authorized = new Set(opened.authorized)
    this.closed = false
    this._pump()
  }

  async _pump() {
    for (;;) {
      const ev = await this._inbox.next()
      if (ev.end) {
        this.closed = true
        const err = ev.error ? new TelemetronError(ev.error.code, ev.error.message, ev.error.detail) : null
        for (const [, r] of this._replies) r(ev.msg ?? { type: 'failed', error: ev.error ?? { code: 'stream.closed', message: 'the writer is closed' } })
        this._replies.clear()
        this._end = ev.msg?.end ?? null
        if (err) this._errors.push(err)
        return
      }
      const m = ev.msg
      if (!m) continue
      if (m.type === 'authority') this._authorized = new Set(m.authorized)
      else if (m.type === 'write_error') this._errors.push(new TelemetronError(m.error.code, m.error.message, m.error.detail))
      else if (m.id !== undefined && this._replies.has(m.id)) {
        this._replies.get(m.id)(m)
        this._replies.delete(m.id)
      }
    }
  }

  _pending() {
    const e = this._errors.shift()
    if (e) throw e
  }

  _request(body) {
    if (this.closed) throw new TelemetronError('stream.closed', 'the writer is closed')
    const id = ++this._ids
    const reply = new Promise((resolve) => this._replies.set(id, resolve))
    this._ws.send(stringify({ ...body, id }))
    return reply.then((m) => {
      this._pending()
      if (m.type === 'failed' || m.type === 'closed') throw new TelemetronError(m.error.code, m.error.message, m.error.detail)
      return m
    })
  }

  /** True if the writer controls `channel` (a key or name) now. */
  hasControl(channel) {
    const c = this.channels.find((x) => x.key === channel || x.name === channel)
    return c !== undefined && this._authorized.has(c.key)
  }

  /** Write `{channel: samples}` (index included for stored channels); does not wait. */
  async write(data) {
    this._pending()
    if (this.closed) throw new TelemetronError('stream.closed', 'the writer is closed')
    const series = Object.entries(data).map(([k, v]) => {
      const c = this.channels.find((x) => x.name === k || String(x.key) === k)
      if (!c) throw new TelemetronError('write.not_in_writer', `channel ${k} is not one of this writer's channels`)
      return { key: c.key, dataType: c.dataType, data: v }
    })
    this._ws.send(encodeFrame(series))
  }

  /** Commit what was written; resolves to the end (ns). */
  async commit() {
    this._pending()
    return BigInt((await this._request({ type: 'commit' })).end)
  }

  /** Change this writer's authority on all its channels (0..255). */
  async setAuthority(authority) {
    checkAuthority(authority)
    this._pending()
    await this._request({ type: 'set_authorities', changes: this.channels.map((c) => [c.key, authority]) })
  }

  /** Commit and close; control passes on. Resolves to the end (ns), or null. */
  async close() {
    if (this.closed) return this._end ?? null
    const done = new Promise((resolve) => this._replies.set('close', resolve))
    this._ws.send(JSON.stringify({ type: 'close', commit: true }))
    const m = await done
    this._pending()
    // A stream that died before `closed` fails the close: uncommitted writes were lost.
    if (m.type === 'failed' || m.error) {
      const e = m.error ?? { code: 'net.connection_lost', message: 'the writer stream ended before it closed' }
      throw new TelemetronError(e.code, e.message, e.detail)
    }
    return m.end === undefined || m.end === null ? null : BigInt(m.end)
  }
}

/**
 * A cursor over stored data (`client.openIterator`), one command at a time as the Node
 * SDK's: `seekFirst()`, `next()` (a chunk of `chunkSize` samples, or `{samples}` /
 * `{time}` ns), `value` the frame read; `for await` walks from the first sample.
 */
export class Iterator {
  constructor(ws, inbox, names) {
    this._ws = ws
    this._inbox = inbox
    this._names = names
    /** The frame read by the last `next`/`prev` (empty before). */
    this.value = new Frame([], names)
    this.closed = false
    this._queue = Promise.resolve()
  }

  /** Send one command and take its result (and frame); commands run one after another. */
  _command(cmd) {
    const run = async () => {
      if (this.closed) throw new TelemetronError('stream.closed', 'the iterator is closed')
      this._ws.send(stringify(cmd))
      const ev = await this._inbox.next()
      if (ev.end) {
        this.closed = true
        throw new TelemetronError(ev.error?.code ?? 'stream.closed', ev.error?.message ?? 'the iterator is closed')
      }
      const m = ev.msg
      if (m.type === 'failed') throw new TelemetronError(m.error.code, m.error.message, m.error.detail)
      if (m.frame) {
        const f = await this._inbox.next()
        this.value = new Frame(decodeFrame(f.frame), this._names)
      } else if (cmd.type === 'next' || cmd.type === 'prev') this.value = new Frame([], this._names)
      return m.ok
    }
    const p = this._queue.then(run, run)
    this._queue = p.catch(() => {})
    return p
  }

  seekFirst() {
    return this._command({ type: 'seek_first' })
  }

  seekLast() {
    return this._command({ type: 'seek_last' })
  }

  seekGE(t) {
    return this._command({ type: 'seek_ge', t: ns(t) })
  }

  seekLE(t) {
    return this._command({ type: 'seek_le', t: ns(t) })
  }

  /** Move forward and read: `{samples: n}`, `{time: ns}`, or the chunk size. */
  next(span) {
    return this._command({ type: 'next', span: spanOf(span) })
  }

  prev(span) {
    return this._command({ type: 'prev', span: spanOf(span) })
  }

  async close() {
    this.closed = true
    try {
      this._ws.send(JSON.stringify({ type: 'close' }))
    } catch {}
    this._ws.close()
  }

  async *[Symbol.asyncIterator]() {
    if (!(await this.seekFirst())) return
    while (await this.next()) yield this.value
  }
}

function spanOf(span) {
  if (span === undefined) return { by: 'auto' }
  if (span.samples !== undefined) return { by: 'samples', value: span.samples }
  if (span.time !== undefined) return { by: 'time', value: ns(span.time) }
  throw new TelemetronError('invalid_argument', 'a span is {samples: n} or {time: ns}')
}

/** Changes to channels and ranges (`client.watchChanges()`), as the Node SDK's. */
export class ChangeWatcher {
  constructor(streamer) {
    this._s = streamer
    this._pending = []
  }

  /** The next change (`{op, channels?, ranges?, keys?, key?, set?, deleted?}`), or null once closed. */
  async next() {
    while (!this._pending.length) {
      const f = await this._s.next()
      if (f === null) return null
      for (const s of f.series) for (const c of s.data) this._pending.push(changeOf(c))
    }
    return this._pending.shift()
  }

  async close() {
    await this._s.close()
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const c = await this.next()
      if (c === null) return
      yield c
    }
  }
}

function changeOf(c) {
  const out = { op: c.op }
  if (c.channels) out.channels = c.channels.map(channelOf)
  if (c.ranges) out.ranges = c.ranges.map(rangeOf)
  if (c.keys) out.keys = c.keys
  if (c.op === 'range.meta') Object.assign(out, { key: c.key, set: c.set, deleted: c.deleted })
  return out
}

/**
 * A response body in one buffer: with a `content-length` (the node always sends one for
 * frames), each chunk is copied once into a buffer of that size, instead of collected and
 * joined (two copies of a large read).
 */
async function bodyBytes(r) {
  const len = Number(r.headers.get('content-length'))
  if (!r.body || !Number.isSafeInteger(len) || len <= 0) return r.arrayBuffer()
  // One copy per chunk into a buffer of the announced size. (A BYOB reader would skip the
  // copy, but Node's fetch then hands over tiny pieces: 60x slower, measured.)
  const buf = new ArrayBuffer(len)
  const out = new Uint8Array(buf)
  const reader = r.body.getReader()
  let at = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    if (at + value.length > len) throw new TelemetronError('protocol.violation', `the node sent more than its content-length of ${len}`)
    out.set(value, at)
    at += value.length
  }
  if (at !== len) throw new TelemetronError('net.connection_lost', `the node sent ${at} of ${len} bytes`)
  return buf
}

/** A connection to a node. */
export class Client {
  constructor(base, token, info, opts) {
    this._base = base
    this._token = token
    this._opts = opts
    /** What the node said at connect: `{protocol, version, auth_required, max_message_bytes}`. */
    this.node = info
    this.channels = new Channels(this)
    this.ranges = new Ranges(this)
    this.isRemote = true
  }

  _headers(extra = {}) {
    const h = { 'telemetron-protocol': String(PROTOCOL), ...extra }
    if (this._token) h.authorization = `Bearer ${this._token}`
    return h
  }

  async _fetch(path, body, contentType = 'application/json') {
    let r
    try {
      r = await fetch(`${this._base}/api/v1/${path}`, { method: 'POST', headers: this._headers({ 'content-type': contentType }), body })
    } catch (e) {
      throw new TelemetronError('net.connect', `cannot reach ${this._base}: ${e.message}`)
    }
    if (!r.ok) {
      const text = await r.text()
      let w
      try {
        w = JSON.parse(text)
      } catch {
        throw new TelemetronError('server.internal', `HTTP ${r.status}: ${text.slice(0, 200)}`)
      }
      throw new TelemetronError(w.code, w.message, w.detail)
    }
    return r
  }

  async _call(path, body) {
    const r = await this._fetch(path, stringify(body ?? {}))
    return parse(await r.text())
  }

  async _keys(refs) {
    const chans = await this.channels.retrieve(refs)
    return { chans, keys: chans.map((c) => c.key), names: new Map(chans.map((c) => [c.key, c.name])) }
  }

  /** Channels plus the index of each data channel (as the Node SDK reads them). */
  async _withIndexes(refs) {
    const chans = await this.channels.retrieve(refs)
    const missing = [...new Set(chans.filter((c) => !c.isVirtual && c.index !== undefined && c.index !== c.key).map((c) => c.index))].filter(
      (k) => !chans.some((c) => c.key === k),
    )
    return missing.length ? chans.concat(await this.channels.retrieve(missing)) : chans
  }

  /**
   * Read channels over a time range: a Frame for an array of channels (their indexes
   * included), the samples for one. With `{points}`, reduced on the node to at most that
   * many points per channel (`reduce: 'minmax'` keeps every peak, `'average'` the means).
   */
  async read(range, channels, { points, reduce } = {}) {
    const many = Array.isArray(channels)
    const chans = await this._withIndexes(many ? channels : [channels])
    const body = { range: toRange(range), keys: chans.map((c) => c.key) }
    if (points !== undefined) body.reduce = { points, method: reduce ?? 'minmax' }
    const r = await this._fetch('frames/read', stringify(body))
    const frame = new Frame(decodeFrame(await bodyBytes(r)), new Map(chans.map((c) => [c.key, c.name])))
    return many ? frame : frame.get(chans[0].key)
  }

  /** Write `{channel: samples}` starting at `start` and commit; resolves to the end (ns). */
  async write(start, data) {
    const { chans } = await this._keys(Object.keys(data).map((k) => (/^\d+$/.test(k) ? Number(k) : k)))
    const series = chans.map((c) => ({ key: c.key, dataType: c.dataType, data: data[c.name] ?? data[c.key] }))
    const r = await this._fetch(`frames/write?start=${ns(start)}`, encodeFrame(series), 'application/vnd.telemetron.frame')
    return BigInt(parse(await r.text()).end)
  }

  /** Delete a time range of channels. */
  async delete(range, channels) {
    const { keys } = await this._keys(Array.isArray(channels) ? channels : [channels])
    await this._call('frames/delete', { range: toRange(range), keys })
  }

  /** The time range a stored channel covers, or null. */
  async timeRange(channel) {
    const [c] = await this.channels.retrieve([channel])
    const r = (await this._call('channels/time_range', { key: c.key })).range
    return r ? { start: BigInt(r.start), end: BigInt(r.end) } : null
  }

  /**
   * Stream channels live: `for await (const frame of await client.openStreamer([...]))`.
   * Options as the node's StreamerConfig: `capacity`, `decimate`, `throttleHz`.
   */
  async openStreamer(channels, { capacity, decimate, throttleHz } = {}) {
    const { keys, names } = await this._keys(Array.isArray(channels) ? channels : [channels])
    return this._stream(keys, names, { capacity, decimate, throttle_hz: throttleHz })
  }

  async _stream(keys, names, options) {
    const config = { channels: keys }
    for (const [k, v] of Object.entries(options)) if (v !== undefined) config[k] = v
    const { ws, inbox } = await this._open('streamer', config)
    return new Streamer(ws, names, inbox)
  }

  /** Open a stream of `kind` with `config`; resolves once the node said `opened`. */
  async _open(kind, config) {
    const WS = this._opts.WebSocket ?? globalThis.WebSocket
    if (!WS) throw new TelemetronError('invalid_argument', 'no WebSocket here: pass connect(url, {WebSocket}) or run Node with --experimental-websocket')
    const q = new URLSearchParams({ protocol: String(PROTOCOL) })
    if (this._token) q.set('access_token', this._token)
    const ws = new WS(`${this._base.replace(/^http/, 'ws')}/api/v1/stream/${kind}?${q}`)
    ws.binaryType = 'arraybuffer'
    const inbox = new Inbox()
    let opened
    await new Promise((resolve, reject) => {
      ws.onopen = () => ws.send(stringify({ type: 'open', config }))
      ws.onerror = () => {
        if (!opened) reject(new TelemetronError('net.connect', `cannot open a stream to ${this._base}`))
      }
      ws.onclose = () => {
        if (!opened) reject(new TelemetronError('net.connection_lost', 'the node closed the stream before it opened'))
        inbox.push({ end: true })
      }
      ws.onmessage = (m) => {
        if (typeof m.data !== 'string') return inbox.push({ frame: m.data })
        const msg = parse(m.data)
        if (msg.type === 'opened') {
          opened = msg
          resolve()
        } else if (msg.type === 'notice') inbox.push({ error: msg.error })
        else if (msg.type === 'closed') {
          if (!opened && msg.error) reject(new TelemetronError(msg.error.code, msg.error.message, msg.error.detail))
          inbox.push({ end: true, error: msg.error ?? undefined, msg })
        } else inbox.push({ msg })
      }
    })
    return { ws, inbox, opened }
  }

  /**
   * Open a writer: `{start, channels, authority (default 255), name, autoCommit}`. Commands
   * to a virtual channel (an operator panel's valve) take effect when written; control
   * goes to the highest authority (docs/architecture.md §14).
   */
  async openWriter({ start, channels, authority = 255, name = 'web', autoCommit = true }) {
    const authorities = Array.isArray(authority) ? authority : [authority]
    authorities.forEach(checkAuthority)
    const { keys } = await this._keys(Array.isArray(channels) ? channels : [channels])
    const config = {
      start: ns(start ?? BigInt(Date.now()) * 1_000_000n),
      channels: keys,
      authorities,
      name,
      auto_commit: autoCommit,
    }
    const { ws, inbox, opened } = await this._open('writer', config)
    return new Writer(ws, inbox, opened)
  }

  /**
   * A cursor over `range` of channels (their indexes included) in chunks of `chunkSize`
   * samples; with `{points}`, each chunk is reduced on the node.
   */
  async openIterator(range, channels, { chunkSize, points, reduce } = {}) {
    const chans = await this._withIndexes(Array.isArray(channels) ? channels : [channels])
    const config = { bounds: toRange(range), channels: chans.map((c) => c.key) }
    if (chunkSize !== undefined) config.chunk_size = chunkSize
    if (points !== undefined) config.reduce = { points, method: reduce ?? 'minmax' }
    const { ws, inbox } = await this._open('iterator', config)
    return new Iterator(ws, inbox, new Map(chans.map((c) => [c.key, c.name])))
  }

  /** `for await (const frame of client.iterate(range, channels))`: a range in chunks. */
  async *iterate(range, channels, options) {
    const it = await this.openIterator(range, channels, options)
    try {
      yield* it
    } finally {
      await it.close()
    }
  }

  /** Changes to channels and ranges from now on: `for await (const c of await client.watchChanges())`. */
  async watchChanges() {
    const [c] = await this.channels.retrieve(['telemetron_changes'])
    return new ChangeWatcher(await this._stream([c.key], new Map(), {}))
  }

  /** The key of the control-state channel (JSON transfers, streamable). */
  async controlChannel() {
    return (await this.channels.retrieve('telemetron_control')).key
  }

  /** Nothing to release over HTTP; kept for the Node SDK's shape. */
  async close() {}
}

/**
 * Connect to a node: `await connect('http://127.0.0.1:9090', {username, password} | {token})`.
 * The page's own node when `url` is omitted in a browser.
 */
export async function connect(url, opts = {}) {
  const base = (url ?? globalThis.location?.origin ?? 'http://127.0.0.1:9090').replace(/\/+$/, '').replace(/^ws/, 'http')
  let info
  try {
    info = await (await fetch(`${base}/api/v1/version`)).json()
  } catch (e) {
    throw new TelemetronError('net.connect', `cannot reach ${base}: ${e.message}`)
  }
  if (info.protocol !== PROTOCOL) {
    throw new TelemetronError(
      'protocol.version_mismatch',
      `protocol version mismatch: the node speaks version ${info.protocol}, the client speaks version ${PROTOCOL}`,
    )
  }
  let token = opts.token
  const client = new Client(base, token, info, opts)
  if (!token && opts.username !== undefined) {
    token = (await client._call('auth/login', { username: opts.username, password: opts.password ?? '' })).token
    client._token = token
  }
  await client._call('auth/check', {})
  return client
}
