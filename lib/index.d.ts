// Hand-written types for the JS layer (lib/*.js). The native addon's own declarations are
// generated from the Rust signatures by `napi build` into bindings-node/native/index.d.ts;
// the plain data shapes below are re-exported from there.
import type { EventEmitter } from 'node:events'
import type {
  ChannelJs,
  NewChannelJs,
  StateJs,
  TimeRangeJs,
  StreamerOptionsJs,
  WriteReportJs,
} from '../bindings-node/native/index'
import type { ChangeOp } from './web/index'

/** Nanoseconds since the Unix epoch. Inputs also accept Date, ISO strings and numbers (ns). */
export type TimeInput = bigint | number | Date | string
/** `{start, end}` (end exclusive), `[start, end]`, or undefined/null for all time. */
export type TimeRangeInput = { start: TimeInput; end: TimeInput } | [TimeInput, TimeInput] | undefined | null
/** A channel named by name, key or channel object. */
export type ChannelRef = string | number | { key: number }

/** A channel definition. */
export type Channel = ChannelJs
/** A channel to create. */
export type NewChannel = NewChannelJs
/** Who holds control of a channel. */
export type ControlState = StateJs
/** `[start, end)` in nanoseconds. */
export type TimeRangeValue = TimeRangeJs
/** What a write did. */
export type WriteReport = WriteReportJs

/** Samples a write accepts. Typed arrays of the channel's element type are not copied. */
export type SampleInput =
  | Float64Array | Float32Array | Int8Array | Int16Array | Int32Array
  | Uint8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array
  | number[] | bigint[] | boolean[] | string[] | Uint8Array[] | unknown[]
  | number | bigint | boolean | string | object
/** A frame to write: `{channelName: samples}` or a Map of channel (name or key) -> samples. */
export type FrameInput = Record<string, SampleInput> | Map<string | number, SampleInput>

/** Samples as read: typed arrays over Rust memory for fixed-size types. */
export type SampleData =
  | Float64Array | Float32Array | Int8Array | Int16Array | Int32Array
  | Uint8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array
  | string[] | Buffer[] | unknown[]

export declare class Series {
  readonly key: number
  readonly name: string | undefined
  /** `f64`, `timestamp`, `string`, ... */
  readonly dataType: string
  /** A typed array over the Rust buffer (fixed-size types); strings, Buffers or parsed JSON otherwise. */
  readonly data: SampleData
  readonly timeRange: TimeRangeValue
  /** `(domain << 32) | sample` of the first sample. */
  readonly alignment: bigint
  readonly length: number
}

/** Series keyed by channel. */
export declare class Frame implements Iterable<Series> {
  readonly series: Series[]
  readonly keys: number[]
  /** Distinct channel names present. */
  readonly channels: string[]
  readonly length: number
  seriesOf(channel: ChannelRef): Series[]
  has(channel: ChannelRef): boolean
  /** One channel's samples: the series' own view if there is one series, a concatenated copy otherwise. */
  get(channel: ChannelRef): SampleData | undefined
  samples(channel: ChannelRef): number
  toObject(): Record<string, SampleData | undefined>
  [Symbol.iterator](): IterableIterator<Series>
}

export interface WriterOptions {
  /** The earliest timestamp the writer may write. */
  start: TimeInput
  /** Exclusive end of the writer's time region. */
  end?: TimeInput
  /** Channels to write; each data channel's index is added. */
  channels: ChannelRef | ChannelRef[]
  /** One authority (0..255) for all channels, or one per channel. Default 255. */
  authorities?: number | number[]
  authority?: number
  mode?: 'persist_stream' | 'persist' | 'stream'
  name?: string
  /** Who is writing, in control state (random when absent). */
  subjectKey?: string
  /** Fail writes that include channels this writer does not control. */
  errOnUnauthorized?: boolean
  /** Commit after writes (default true). */
  autoCommit?: boolean
  autoCommitIntervalMs?: number
  /** This writer's durability; the engine's default when absent. */
  durability?: Durability
}

export interface WriteOptions {
  /**
   * Wait until the node has applied this write, so the report is certain: a remote writer
   * otherwise learns of channels dropped in flight (control moved on the node) only with a
   * later report. Embedded writes are always certain.
   */
  confirm?: boolean
}

export declare class Writer {
  /**
   * Write one frame. Typed arrays of the channel's type are shared with the engine, not
   * copied: do not modify them afterwards.
   */
  write(frame: FrameInput, value?: undefined, options?: WriteOptions): Promise<WriteReport>
  write(channel: ChannelRef, samples: SampleInput, options?: WriteOptions): Promise<WriteReport>
  /**
   * Wait until every write so far has been applied (by the node, when remote); resolves to
   * the channels dropped since the last report (control moved while they were in flight).
   */
  confirm(): Promise<WriteReport>
  /** Commit; resolves to the committed end (ns). */
  commit(): Promise<bigint>
  setAuthority(authority: number): Promise<void>
  setAuthority(authorities: Record<string, number> | Map<ChannelRef, number>): Promise<void>
  hasControl(channel: string | number): boolean
  /** Commit and close; resolves to the committed end (ns). */
  close(): Promise<bigint>
  abort(): Promise<void>
}

export interface StreamerOptions extends StreamerOptionsJs {
  /**
   * What a lag notice (frames dropped for a slow streamer) does, as the Python SDK's
   * `on_lag`: 'warn' (default) emits a 'lag' event `{dropped}`; 'raise' makes the iteration
   * throw a StreamError `stream.lagged` (iterate again to continue); 'ignore' does nothing.
   */
  onLag?: 'warn' | 'raise' | 'ignore'
  /** @deprecated Use `onLag`: 'event' is 'warn', 'error' is 'raise'. */
  lag?: 'event' | 'error'
  lagPolicy?: 'notify' | 'disconnect'
}

export declare class Streamer extends EventEmitter implements AsyncIterable<Frame> {
  readonly closed: boolean
  /** The next frame, or null once closed. */
  next(): Promise<Frame | null>
  [Symbol.asyncIterator](): AsyncGenerator<Frame, void, undefined>
  updateChannels(channels: ChannelRef | ChannelRef[]): Promise<void>
  close(): Promise<void>
  on(event: 'lag', listener: (e: { dropped: number }) => void): this
  // biome-ignore lint/suspicious/noExplicitAny: the EventEmitter signature this overloads
  on(event: string | symbol, listener: (...args: any[]) => void): this
}

/** How far an iterator moves: samples (number) or nanoseconds (bigint); default the chunk size. */
export type IterSpan = number | bigint | { samples?: number; span?: bigint }

export declare class Iterator implements AsyncIterable<Frame> {
  seekFirst(): Promise<boolean>
  seekLast(): Promise<boolean>
  seekGe(t: TimeInput): Promise<boolean>
  seekLe(t: TimeInput): Promise<boolean>
  next(span?: IterSpan): Promise<Frame | null>
  prev(span?: IterSpan): Promise<Frame | null>
  [Symbol.asyncIterator](): AsyncGenerator<Frame, void, undefined>
}

/** Options of `channels.create`. */
export interface CreateOptions {
  /** Return channels whose names exist instead of failing. */
  retrieveIfNameExists?: boolean
  /** Cluster mode: the name of the node to store the channels on. */
  place?: string
}

export declare class Channels {
  create(channel: NewChannel, options?: CreateOptions): Promise<Channel>
  create(channels: NewChannel[], options?: CreateOptions): Promise<Channel[]>
  retrieve(channel: ChannelRef): Promise<Channel>
  retrieve(channels: ChannelRef[]): Promise<Channel[]>
  search(term?: string): Promise<Channel[]>
  rename(channel: ChannelRef, name: string): Promise<Channel>
  /**
   * Change how compaction stores a channel's samples. What is stored follows at the next
   * compaction pass (what compaction wrote is recoded; decompressed only for 'off').
   * A choice that does not fit the channel is refused (`channel.invalid`).
   */
  setCompression(channel: ChannelRef, compression: 'default' | 'off' | 'pcodec' | 'zstd' | 'lz4'): Promise<Channel>
  delete(channels: ChannelRef | ChannelRef[]): Promise<void>
}

export declare class Range {
  readonly key: string
  name: string
  readonly timeRange: TimeRangeValue
  labels: string[]
  readonly color: string | undefined
  /** The key of the range this one is a child of (undefined at the top). */
  readonly parent: string | undefined
  /** The range's metadata, persisted in the engine. */
  readonly meta: {
    get(): Promise<Record<string, string>>
    get(name: string): Promise<string | undefined>
    set(entries: Record<string, string>): Promise<void>
    set(name: string, value: string): Promise<void>
    delete(names: string | string[]): Promise<void>
  }
  read(channels: ChannelRef[], options?: ReadOptions): Promise<Frame>
  read(channel: ChannelRef, options?: ReadOptions): Promise<SampleData>
  rename(name: string): Promise<Range>
  /** Write channels over this range to a Parquet file, in bounded memory. */
  toParquet(path: string, channels: ChannelRef | ChannelRef[], options?: Omit<ExportOptions, 'range' | 'format'>): Promise<ExportReport>
  /** Write channels over this range to a CSV file, in bounded memory. */
  toCsv(path: string, channels: ChannelRef | ChannelRef[], options?: Omit<ExportOptions, 'range' | 'format'>): Promise<ExportReport>
  /** Replace the labels (an empty label rejects with RangerError 'range.invalid'). */
  setLabels(labels: string | string[]): Promise<Range>
  /** The ranges directly below this one, by start time. */
  children(): Promise<Range[]>
  /** Create a range below this one; `timeRange` defaults to this range's. */
  createChild(range: Omit<NewRange, 'parent' | 'timeRange'> & { timeRange?: TimeRangeInput }): Promise<Range>
}

export interface RangeFilters {
  /** Only ranges carrying every one of these labels (any case). */
  labels?: string | string[]
  /** Only ranges whose metadata has each of these entries exactly. */
  metaData?: Record<string, string>
  /** Only direct children of this range. */
  parent?: string | Range
}

export interface NewRange {
  name: string
  timeRange: TimeRangeInput
  labels?: string[]
  color?: string
  metaData?: Record<string, string>
  /** Create it as a child of this range (a Range or key); deleting the parent deletes it. */
  parent?: string | Range
}

export declare class Ranges {
  create(range: NewRange): Promise<Range>
  retrieve(key: string): Promise<Range>
  search(term?: string, overlapping?: TimeRangeInput | null, filters?: RangeFilters): Promise<Range[]>
  delete(ranges: string | Range | Array<string | Range>): Promise<void>
}

export interface AcquireOptions {
  /** Shown in control state; names the command record (`<name>/commands/...`). */
  name?: string
  /** Channels to command. */
  write?: ChannelRef[]
  /** Channels to follow. */
  read?: ChannelRef[]
  /** One authority, or one per write channel. Default 200 (255 is absolute). */
  authority?: number | number[]
  authorities?: number[]
  /**
   * What losing control to a higher authority does (a 'lost' event is emitted in every
   * case): 'throw' (default) rejects the next set / wait / sleep / tick with ControlError
   * `control.lost`; 'warn' emits a process warning; a function is called; 'ignore'.
   * A command that was not written rejects whatever this says.
   */
  onLost?: 'throw' | 'warn' | 'ignore' | ((ctrl: Controller, channels: string[]) => void)
  /** Values `abort()` writes to the write channels still controlled (a safe state). */
  safe?: Record<string, SampleInput>
  /** Keep the command record as channels (default true). */
  record?: boolean
}

/** One iteration of a fixed-rate loop (times in ms). */
export interface Tick {
  /** 0-based tick count; skipped ticks count too. */
  index: number
  /** When the tick was due, since the loop's first tick. */
  scheduled: number
  /** How late the loop woke for it. */
  late: number
  /** Ticks skipped just before it because the body overran its period. */
  missed: number
}

/** How late a loop's ticks started so far (ms). */
export interface LoopStats {
  hz: number
  ticks: number
  overruns: number
  lateP50: number
  lateP99: number
  lateMax: number
}

export interface LoopOptions {
  /** Stop after this many ms. */
  duration?: number
  /** Stop after this many ticks. */
  count?: number
  /** Ms of each wait spent spinning for precision (default 0.15). */
  spinMs?: number
}

/** A fixed-rate loop: `for await (const tick of loop(1000)) { ... }`. */
export declare class Loop implements AsyncIterable<Tick> {
  /** The period in ms. */
  readonly period: number
  tick(): Promise<Tick | null>
  stats(): LoopStats
  [Symbol.asyncIterator](): AsyncIterator<Tick>
}

/** A fixed-rate loop outside any sequence (the Rust core's `Ticker`). */
export declare function loop(hz: number, options?: LoopOptions): Loop

/** A control sequence: the Rust core's `Sequence`, as the Python SDK's `client.control.acquire`. */
export declare class Controller extends EventEmitter {
  readonly name: string
  /** This sequence's subject key in control state. */
  readonly subjectKey: string
  readonly writeChannels: Channel[]
  readonly readChannels: Channel[]
  /** Names of the command record's channels. */
  readonly recordChannels: string[]
  /** The latest value received (or commanded) for a channel; seeded with the last stored sample. */
  get(channel: ChannelRef): number | bigint | string | unknown
  readonly state: Record<string, unknown>
  /** Resolves once applied; rejects with `control.lost` (naming `channels`) if a command was not written. */
  set(channel: string | number, value: SampleInput): Promise<void>
  set(values: Record<string, SampleInput>): Promise<void>
  /** true once `cond` holds, false after `timeout` ms. */
  waitUntil(cond: (c: Controller) => boolean, options?: { timeout?: number }): Promise<boolean>
  /** true once `cond` stops holding, false after `timeout` ms. */
  waitWhile(cond: (c: Controller) => boolean, options?: { timeout?: number }): Promise<boolean>
  /** true once `cond` has held for `duration` ms without a break, false after `timeout` ms. */
  remainsTrueFor(cond: (c: Controller) => boolean, duration: number, options?: { timeout?: number }): Promise<boolean>
  setAuthority(authority: number | Record<string, number>): Promise<void>
  /** True if this sequence controls `channel` now (every write channel when omitted). */
  hasControl(channel?: ChannelRef): boolean
  /** Sleep precisely (kernel sleep, then a short spin). */
  sleep(ms: number): Promise<void>
  /** A fixed-rate loop whose ticks also reject with `control.lost`. */
  loop(hz: number, options?: LoopOptions): Loop
  /** Write the safe values to the channels still controlled, then release. */
  abort(): Promise<void>
  release(): Promise<void>
  on(event: 'lost', listener: (channels: string[]) => void): this
  // biome-ignore lint/suspicious/noExplicitAny: the EventEmitter signature this overloads
  on(event: string | symbol, listener: (...args: any[]) => void): this
}

/** `client.control`: control sequences and control state (the Python SDK's `Control`). */
export declare class Control {
  acquire(options: AcquireOptions): Promise<Controller>
  states(channels?: ChannelRef[]): Promise<ControlState[]>
}

/** @deprecated Renamed {@link Control}, as in the Python SDK. */
export declare const ControlClient: typeof Control
/** @deprecated Renamed {@link Control}, as in the Python SDK. */
export type ControlClient = Control

/** One running node of a flow and its counters. */
export interface FlowNode {
  name: string
  /** Component type (`generator`, `filter`, ...). */
  type: string
  /** Whether it takes new options while running (CFG). */
  reconfigurable: boolean
  received: number
  rows: number
  emitted: number
  acked: number
  nacked: number
  expired: number
  cancelled: number
  /** NACKed in front of it because its input queue was full (`overflow: nack`). */
  dropped: number
  errors: number
  /** Messages waiting in its input queue now. */
  queued: number
}

/** A flow: its state, configuration and counters. */
export interface FlowInfo {
  name: string
  state: 'running' | 'finished' | 'stopped'
  /** When it was deployed or last restarted (ns since the epoch). */
  started: bigint
  /** The flow file as deployed. */
  config: string
  nodes: FlowNode[]
  /** The most recent component errors, oldest first. */
  errors: Array<{ node: string; error: string }>
  /** In `stop`'s reply: whether everything drained in time. */
  drained?: boolean | null
}

/** How `reconfigure` applied a new file. */
export interface Reconfigured {
  applied: 'live' | 'restarted' | 'unchanged'
  /** The nodes whose options changed. */
  nodes: string[]
  /** Why it restarted. */
  reason?: string | null
  flow: FlowInfo
}

/** A flow file: YAML text, a `file:` URL, or `{path}`. */
export type FlowConfig = string | URL | { path: string }

/** `client.flows`: dataflow pipelines on the engine (embedded: in this process) or node. */
export declare class Flows {
  list(): Promise<FlowInfo[]>
  get(name: string): Promise<FlowInfo>
  deploy(config: FlowConfig): Promise<FlowInfo>
  reconfigure(name: string, config: FlowConfig, options?: { drain?: number }): Promise<Reconfigured>
  stop(name: string, options?: { drain?: number }): Promise<FlowInfo>
}

/** An instrumentation level (docs/observability.md). */
export type Level = 'off' | 'basic' | 'detailed'

/** The log and metrics levels of an engine or node. */
export interface Levels {
  logs: Level
  metrics: Level
  /** What the node traces (`off` by default); spans leave through `--otlp-endpoint`. */
  traces: Level
}

/** `client.observe`: levels (changed at runtime) and metrics of the engine or node. */
export declare class Observe {
  levels(): Promise<Levels>
  setLevels(levels: { logs?: Level; metrics?: Level; traces?: Level }): Promise<Levels>
  /** Every scalar metric now, by self-telemetry channel name (`_telemetron/storage/commits`). */
  metrics(): Promise<Record<string, number>>
  /**
   * The self-telemetry history over a window, summarized where it is stored (docs/observability.md
   * §7). `window`: `'30s'`, `'5m'`, `'1h'` or seconds (default 5 minutes); `end`: default the last
   * sample; `filter`: keep series whose name contains it.
   */
  summary(options?: { window?: string | number; end?: TimeInput; filter?: string }): Promise<Summary>
}

/** What kind of metric a self-telemetry series is. */
export type MetricKind = 'counter' | 'gauge' | 'histogram' | 'unknown'

/**
 * One self-telemetry series over a window. Counters set `increase` and `rate` (per second);
 * gauges `min`, `mean`, `max`; histograms `increase` and `rate` (observations), `mean` (the mean
 * observation) and `p50`/`p90`/`p99` (estimated from the buckets); `unknown` all but quantiles.
 */
export interface SeriesSummary {
  /** The channel name (a histogram: its base, without `/count`). */
  name: string
  kind: MetricKind
  /** The metric's unit (`s`, `By`, `{commit}`); empty when unknown. */
  unit: string
  /** Samples in the window. */
  points: number
  firstTime: bigint
  lastTime: bigint
  /** The last value (a histogram: its total count). */
  last: number
  min?: number
  mean?: number
  max?: number
  increase?: number
  rate?: number
  p50?: number
  p90?: number
  p99?: number
}

/** The self-telemetry history over `[start, end]` (ns), one entry per series, sorted by name. */
export interface Summary {
  start: bigint
  end: bigint
  series: SeriesSummary[]
}

export declare class Client {
  readonly channels: Channels
  readonly ranges: Ranges
  readonly control: Control
  readonly flows: Flows
  readonly observe: Observe
  readonly isRemote: boolean
  /** Write one frame starting at `start` and commit it; resolves to the committed end. */
  write(start: TimeInput, frame: FrameInput): Promise<bigint>
  write(start: TimeInput, channel: ChannelRef, samples: SampleInput): Promise<bigint>
  /**
   * Read channels: a Frame for an array of channels, the samples for one channel. With
   * `{ points }`, reduced where the data is (on the node) to at most that many points.
   */
  read(range: TimeRangeInput, channels: ChannelRef[], options?: ReadOptions): Promise<Frame>
  read(range: TimeRangeInput, channel: ChannelRef, options?: ReadOptions): Promise<SampleData>
  /** The last `n` samples (default 1) of channels. */
  readLatest(channels: ChannelRef | ChannelRef[], n?: number): Promise<Frame>
  delete(range: TimeRangeInput, channels: ChannelRef | ChannelRef[]): Promise<void>
  timeRange(channel: ChannelRef): Promise<TimeRangeValue | null>
  /**
   * Write channels of one index to a Parquet or CSV file (format from the extension unless
   * `format` says), streaming in bounded memory; the index is the first column, and the
   * file appears only when complete.
   */
  export(path: string, channels: ChannelRef | ChannelRef[], options?: ExportOptions): Promise<ExportReport>
  openWriter(options: WriterOptions): Promise<Writer>
  openStreamer(channels: ChannelRef | ChannelRef[], options?: StreamerOptions): Promise<Streamer>
  openIterator(range: TimeRangeInput, channels: ChannelRef | ChannelRef[], options?: IteratorOptions): Promise<Iterator>
  iterate(range: TimeRangeInput, channels: ChannelRef | ChannelRef[], options?: IteratorOptions): AsyncGenerator<Frame, void, undefined>
  controlChannel(): Promise<number>
  /**
   * Watch changes to channels and ranges from now on, each once and in commit order
   * (open it first, then list, to keep a list current).
   */
  watchChanges(): Promise<ChangeWatcher>
  close(): Promise<void>
}

/** One change to channels or ranges; `op` names it and the fields of its kind are set. */
export interface Change {
  op: ChangeOp
  /** The channels created, or the one renamed or updated (its compression), as it is now. */
  channels?: Channel[]
  /** The range created or updated (renamed or relabelled), as it is now. */
  ranges?: Range[]
  /** The channel keys (numbers) or range keys (strings, descendants included) deleted. */
  keys?: number[] | string[]
  /** `range.meta`: the range, the entries set with their values, the names removed. */
  key?: string
  set?: Record<string, string>
  deleted?: string[]
}

/** Changes to channels and ranges, from `client.watchChanges()`. */
export declare class ChangeWatcher {
  /** The next change, or null once closed; rejects with `stream.lagged` if changes were missed. */
  next(): Promise<Change | null>
  close(): Promise<void>
  [Symbol.asyncIterator](): AsyncGenerator<Change, void, undefined>
}

/**
 * A reduction done where the data is: the time is cut into equal buckets; `'minmax'`
 * (default) keeps each bucket's lowest and highest sample in the order they occurred, so
 * every peak survives; `'average'` keeps each bucket's mean as float64.
 */
export interface ReadOptions {
  /** At most this many points per channel (2 to 10,000,000; 1 is enough for `'average'`). */
  points?: number
  reduce?: 'minmax' | 'average'
}

export interface IteratorOptions extends ReadOptions {
  /** Samples per chunk (default 100,000); with `points`, each chunk is reduced. */
  chunkSize?: number
}

export interface ConnectOptions {
  token?: string
  username?: string
  password?: string
  /** PEM file of a CA certificate to trust. */
  caCert?: string
  timeoutMs?: number
  /**
   * Ask the node to compress what it sends back (reads, iterator steps, streamed frames)
   * where that pays: for a link slower than loopback or a fast LAN. Default false.
   */
  compress?: boolean
}

/** Open (or create) an embedded engine in `path`. */
export interface OpenOptions {
  /**
   * The engine's default durability, as Python's `tn.open(path, durability=...)`: 'none',
   * 'interval' (the default: a background sync every second) or 'commit' (`fdatasync`
   * before every commit returns).
   */
  durability?: Durability
}

export type Durability = 'none' | 'interval' | 'commit'

export declare function open(path: string, options?: OpenOptions): Promise<Client>
/** Connect to a `telemetron serve` node. */
export declare function connect(url: string, options?: ConnectOptions): Promise<Client>

export declare function now(): bigint
export declare function toNanos(t: TimeInput, what?: string): bigint
export declare function toDate(ns: bigint): Date
export declare const TimeRange: {
  readonly MAX: { readonly start: bigint; readonly end: bigint }
  of(start: TimeInput, end: TimeInput): { start: bigint; end: bigint }
}
export declare const TimeSpan: {
  nanos(n: number): bigint
  micros(n: number): bigint
  millis(n: number): bigint
  seconds(n: number): bigint
}

/** Every error the SDK throws: `code` is the core's stable code (`channel.not_found`, ...). */
export declare class TelemetronError extends Error {
  readonly code: string
}
export declare class ChannelError extends TelemetronError {}
export declare class RangerError extends TelemetronError {}
export declare class StorageError extends TelemetronError {}
export declare class WriteError extends TelemetronError {}
export declare class ControlError extends TelemetronError {}
export declare class StreamError extends TelemetronError {
  /** Frames lost (for `stream.lagged`). */
  readonly dropped?: number
}
export declare class SeriesError extends TelemetronError {}
export declare class EngineError extends TelemetronError {}
export declare class InvalidArgumentError extends TelemetronError {}
export declare class TransportError extends TelemetronError {}
/** Deploying, reconfiguring or running a flow failed (`flow.*`). */
export declare class FlowError extends TelemetronError {}

/** Zero-copy checks: addresses as Rust sees them. */
export declare const debug: {
  addressOf(value: unknown): number
  seriesAddress(series: Series): number
  inputAddress(dataType: string, value: unknown): number
}

/** Progress of an export, after each chunk written. */
export interface ExportProgress {
  /** Rows written so far. */
  rows: number
  /** Sample bytes read so far. */
  bytes: number
  /** How far through the range's data, 0 to 1 (by time). */
  fraction: number
  /** Seconds since the export started. */
  elapsed: number
}

/** Options of `Client.export`. */
export interface ExportOptions {
  /** The time range (default: everything). */
  range?: TimeRangeInput
  /** 'parquet' or 'csv' (default: from the path's extension). */
  format?: 'parquet' | 'csv'
  /** Bytes of data in flight (default 64 MiB). */
  memoryBudget?: number
  onProgress?: (p: ExportProgress) => void
}

/** What an export wrote. */
export interface ExportReport {
  path: string
  format: 'parquet' | 'csv'
  /** Column names, the index first. */
  columns: string[]
  rows: number
  /** Sample bytes read. */
  bytes: number
  /** Size of the file written. */
  fileBytes: number
}
