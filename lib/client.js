'use strict'
// The client: the same API over an embedded engine (`open`) or a remote node (`connect`).
const native = require('./native')
const { call, make } = require('./errors')
const { Frame, toColumns } = require('./frame')
const { toNanos, toRange } = require('./time')
const { Writer } = require('./writer')
const { Streamer, onLagOf } = require('./streamer')
const { Iterator } = require('./iterator')
const { Control } = require('./control')
const { Flows } = require('./flows')
const { Observe } = require('./observe')
const { traced } = require('./trace')

const list = (x) => (Array.isArray(x) ? x : [x])
const refOf = (c) => (c && typeof c === 'object' && 'key' in c ? c.key : c)
const names = (chans) => new Map(chans.map((c) => [c.key, c.name]))

class Channels {
  constructor(native_) {
    this._native = native_
  }

  /**
   * Create one channel (resolves to it) or many (all or none; resolves to the array).
   * `{name, dataType, isIndex, index, virtual, concurrency, compression}`. In a cluster, `place` names the
   * node to store them on, whichever node this client is connected to.
   */
  async create(def, { retrieveIfNameExists = false, place } = {}) {
    const many = Array.isArray(def)
    const out = await call(() => this._native.createChannels(list(def), retrieveIfNameExists, place))
    return many ? out : out[0]
  }

  /** One channel by name or key (resolves to it), or many (resolves to the array). */
  async retrieve(ref) {
    const many = Array.isArray(ref)
    const out = await call(() => this._native.retrieveChannels(list(ref).map(refOf)))
    return many ? out : out[0]
  }

  /** User channels whose name contains `term` (all with ''). */
  async search(term = '') {
    return call(() => this._native.searchChannels(term))
  }

  /** Rename a channel. */
  async rename(ref, name) {
    return call(() => this._native.renameChannel(refOf(ref), name))
  }

  /**
   * Change how compaction stores a channel's samples ('default', 'off', 'pcodec', 'zstd',
   * 'lz4'); what is stored follows at the next compaction pass.
   */
  async setCompression(ref, compression) {
    return call(() => this._native.setChannelCompression(refOf(ref), compression))
  }

  /** Delete channels and their data. */
  async delete(ref) {
    return call(() => this._native.deleteChannels(list(ref).map(refOf)))
  }
}

class Range {
  constructor(client, raw) {
    this._client = client
    /** UUID string. */
    this.key = raw.key
    this.name = raw.name
    /** `{start, end}` in ns. */
    this.timeRange = raw.timeRange
    this.labels = raw.labels
    this.color = raw.color ?? undefined
    /** The key of the range this one is a child of (undefined at the top). */
    this.parent = raw.parent ?? undefined
    const n = client._native
    const key = raw.key
    /** The range's metadata, persisted in the engine. */
    this.meta = Object.freeze({
      get: async (name) => {
        const all = await call(() => n.rangeMeta(key))
        return name === undefined ? all : all[name]
      },
      set: (entries, value) => call(() => n.setRangeMeta(key, typeof entries === 'string' ? { [entries]: String(value) } : entries)),
      delete: (names_) => call(() => n.deleteRangeMeta(key, list(names_))),
    })
  }

  /** Read channels over this range (same forms and options as `client.read`). */
  read(channels, options) {
    return this._client.read(this.timeRange, channels, options)
  }

  /** Rename; resolves to the renamed range. */
  async rename(name) {
    const r = new Range(this._client, await call(() => this._client._native.renameRange(this.key, name)))
    this.name = r.name
    return r
  }

  /** Replace the labels; resolves to the updated range. */
  async setLabels(labels) {
    const r = new Range(this._client, await call(() => this._client._native.setRangeLabels(this.key, list(labels))))
    this.labels = r.labels
    return r
  }

  /** The ranges directly below this one, by start time. */
  async children() {
    const out = await call(() => this._client._native.rangeChildren(this.key))
    return out.map((r) => new Range(this._client, r))
  }

  /** Write channels over this range to a Parquet file (see `Client.export`). */
  toParquet(path, channels, { memoryBudget, onProgress } = {}) {
    return this._client.export(path, channels, { range: this.timeRange, format: 'parquet', memoryBudget, onProgress })
  }

  /** Write channels over this range to a CSV file (see `Client.export`). */
  toCsv(path, channels, { memoryBudget, onProgress } = {}) {
    return this._client.export(path, channels, { range: this.timeRange, format: 'csv', memoryBudget, onProgress })
  }

  /** Create a range below this one (`timeRange` defaults to this range's). */
  createChild({ name, timeRange, labels, color, metaData }) {
    return this._client.ranges.create({ name, timeRange: timeRange ?? this.timeRange, labels, color, metaData, parent: this })
  }
}

const rangeKey = (r) => (r === undefined || r === null ? undefined : typeof r === 'object' ? r.key : String(r))

class Ranges {
  constructor(client) {
    this._client = client
  }

  /** Create a range `{name, timeRange, labels?, color?, metaData?, parent?}` (`parent`: a Range or key). */
  async create({ name, timeRange, labels, color, metaData, parent }) {
    const raw = await call(() => this._client._native.createRange({ name, timeRange: toRange(timeRange), labels, color, metaData, parent: rangeKey(parent) }))
    return new Range(this._client, raw)
  }

  /** A range by key. */
  async retrieve(key) {
    return new Range(this._client, await call(() => this._client._native.retrieveRange(key)))
  }

  /**
   * Ranges matching every filter given, by start time: `term` in the name, a label or a
   * metadata value (case-insensitive), overlapping a time range, and, in `filters`, all of
   * `labels`, each `metaData` entry exactly, and `parent` (a Range or key) as direct parent.
   */
  async search(term = '', overlapping, { labels, metaData, parent } = {}) {
    const query = {
      term,
      overlapping: overlapping === undefined || overlapping === null ? undefined : toRange(overlapping),
      labels: labels === undefined ? undefined : list(labels),
      metaData,
      parent: rangeKey(parent),
    }
    const out = await call(() => this._client._native.searchRanges(query))
    return out.map((r) => new Range(this._client, r))
  }

  /** Delete ranges (keys or Range objects), with their children and the metadata of all of them. */
  async delete(keys) {
    return call(() => this._client._native.deleteRanges(list(keys).map((k) => (typeof k === 'object' ? k.key : k))))
  }
}

class Client {
  constructor(native_) {
    this._native = native_
    /** Channel registry: create, retrieve, search, rename, delete. */
    this.channels = new Channels(native_)
    /** Named time ranges with metadata. */
    this.ranges = new Ranges(this)
    /** Control sequences and control state. */
    this.control = new Control(this)
    /** Dataflow pipelines: deploy, list, reconfigure, stop (embedded: they run in this process until `close`). */
    this.flows = new Flows(native_)
    this.observe = new Observe(native_)
  }

  /** True when connected to a remote node. */
  get isRemote() {
    return this._native.isRemote
  }

  /**
   * Write one frame starting at `start` and commit it: `write(start, {time, pressure})`,
   * `write(start, map)` or `write(start, 'pressure', samples)`. Resolves to the committed end.
   */
  async write(start, data, value) {
    const [channels, values] = toColumns(data, value)
    return traced('write', (tp) => call(() => this._native.write(toNanos(start, 'start'), channels.map(refOf), values, tp)))
  }

  /**
   * Read channels over a time range. With an array of channels resolves to a Frame; with
   * one channel, to its samples (typed array over Rust memory when it is one series).
   * With `{ points }`, the range is reduced where the data is to at most that many points
   * per channel (`reduce: 'minmax'` keeps every peak, `'average'` the bucket means).
   */
  async read(range, channels, { points, reduce } = {}) {
    return traced('read', async (tp) => {
      const many = Array.isArray(channels)
      const chans = await this.channels.retrieve(list(channels))
      const raw = await call(() =>
        this._native.read(
          toRange(range),
          chans.map((c) => c.key),
          points,
          reduce,
          tp,
        ),
      )
      const f = new Frame(raw, names(chans))
      return many ? f : (f.get(chans[0].key) ?? emptyOf(chans[0].dataType))
    })
  }

  /**
   * The last `n` samples of channels (e.g. the current value of a slow sensor):
   * `(await client.readLatest('tank_tc')).get('tank_tc').at(-1)`.
   */
  async readLatest(channels, n = 1) {
    return traced('read_latest', async (tp) => {
      const chans = await this.channels.retrieve(list(channels))
      const count = Math.min(2 ** 32 - 1, Math.max(1, Math.trunc(Number(n)) || 1))
      return new Frame(
        await call(() =>
          this._native.readLatest(
            chans.map((c) => c.key),
            count,
            tp,
          ),
        ),
        names(chans),
      )
    })
  }

  /** Delete a time range of channels' data. */
  async delete(range, channels) {
    return traced('delete', (tp) => call(() => this._native.deleteRangeData(toRange(range), list(channels).map(refOf), tp)))
  }

  /**
   * Write channels of one index over `range` to a Parquet or CSV file (format from the
   * extension unless `format` says), streaming so that about `memoryBudget` bytes are in
   * flight; `onProgress({rows, bytes, fraction, elapsed})` after each chunk. The index is the
   * first column; the file appears only when complete. Resolves to an ExportReport.
   */
  async export(path, channels, { range, format, memoryBudget, onProgress } = {}) {
    const opts = { format, memoryBudget }
    return call(() => this._native.export(String(path), list(channels).map(refOf), toRange(range), opts, onProgress))
  }

  /** The time range covered by a stored channel (null if it holds no data). */
  async timeRange(channel) {
    return call(() => this._native.timeRange(refOf(channel)))
  }

  /** Open a writer `{start, channels, authorities?, mode?, ...}`. */
  async openWriter(options) {
    const { start, end, channels, authorities, authority, ...rest } = options ?? {}
    const auth = authorities ?? (authority === undefined ? undefined : list(authority))
    const w = await traced('open_writer', (tp) =>
      call(() =>
        this._native.openWriter(
          {
            ...rest,
            start: toNanos(start, 'start'),
            end: end === undefined ? undefined : toNanos(end, 'end'),
            channels: list(channels).map(refOf),
            authorities: auth === undefined ? undefined : list(auth),
          },
          tp,
        ),
      ),
    )
    return new Writer(w)
  }

  /** Open a streamer on channels (names or keys). Iterate it with `for await`. */
  async openStreamer(channels, options = {}) {
    const chans = await this.channels.retrieve(list(channels))
    const { lag, onLag, ...rest } = options
    onLagOf({ lag, onLag })
    const s = await traced('open_streamer', (tp) =>
      call(() =>
        this._native.openStreamer(
          chans.map((c) => c.key),
          rest,
          tp,
        ),
      ),
    )
    return new Streamer(s, names(chans), this, options)
  }

  /** Open an iterator over stored channels; `for await` it for chunks. */
  async openIterator(range, channels, { chunkSize, points, reduce } = {}) {
    const chans = await this.channels.retrieve(list(channels))
    const it = await traced('open_iterator', (tp) =>
      call(() => this._native.openIterator({ bounds: toRange(range), channels: chans.map((c) => c.key), chunkSize, points, reduce }, tp)),
    )
    return new Iterator(it, names(chans))
  }

  /** `for await (const frame of client.iterate(range, channels))`: a range in chunks. */
  async *iterate(range, channels, options) {
    yield* await this.openIterator(range, channels, options)
  }

  async _states(channels) {
    return call(() => this._native.controlStates(list(channels).map(refOf)))
  }

  /** The key of the virtual channel on which control transfers are published (JSON). */
  async controlChannel() {
    return call(() => this._native.controlChannel())
  }

  /**
   * Watch changes to channels and ranges (created, renamed, relabelled, metadata set,
   * deleted) from now on, each once and in commit order:
   * `for await (const change of await client.watchChanges()) console.log(change.op)`.
   * To keep a list current, open the watcher first, then list, then apply the changes.
   */
  async watchChanges() {
    return new ChangeWatcher(await call(() => this._native.watchChanges()), this)
  }

  /** Close the client (an embedded engine releases its directory). */
  async close() {
    return call(() => this._native.close())
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.close()
  }
}

const EMPTY = {
  f64: Float64Array,
  f32: Float32Array,
  i8: Int8Array,
  i16: Int16Array,
  i32: Int32Array,
  i64: BigInt64Array,
  u8: Uint8Array,
  u16: Uint16Array,
  u32: Uint32Array,
  u64: BigUint64Array,
  timestamp: BigInt64Array,
  bool: Uint8Array,
}
function emptyOf(dt) {
  return EMPTY[dt] ? new EMPTY[dt](0) : []
}

/** Open (or create) an embedded engine in `path`; `{durability}`: 'none' | 'interval' (default) | 'commit'. */
async function open(path, options) {
  if (typeof path !== 'string' || path === '') throw make('invalid_argument', 'open(path) needs a directory path')
  return new Client(await call(() => native.open(path, options)))
}

/**
 * Connect to a `telemetron serve` node: `connect('http://127.0.0.1:9090', {token})` or
 * `{username, password}`, `caCert` (PEM path), `timeoutMs`, `compress` (ask the node to
 * compress what it sends back, for slow links).
 */
async function connect(url, options = {}) {
  if (typeof native.connect !== 'function') {
    throw make('client.unsupported', 'this build has no remote client; rebuild with a core that provides telemetron::connect')
  }
  return new Client(await call(() => native.connect(url, options)))
}

/** Changes to channels and ranges, from `client.watchChanges()`. */
class ChangeWatcher {
  constructor(native_, client) {
    this._native = native_
    this._client = client
  }

  /**
   * The next change (`{ op, channels?, ranges?, keys?, key?, set?, deleted? }`), or null
   * once closed. Rejects with code `stream.lagged` when changes were missed (list again).
   */
  async next() {
    const c = await call(() => this._native.next())
    if (c == null) return null
    if (c.ranges) c.ranges = c.ranges.map((r) => new Range(this._client, r))
    return c
  }

  /** Stop watching; a pending `next()` resolves to null. */
  async close() {
    await this._native.close()
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const c = await this.next()
      if (c === null) return
      yield c
    }
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.close()
  }
}

module.exports = { Client, Channels, Ranges, Range, ChangeWatcher, open, connect }
