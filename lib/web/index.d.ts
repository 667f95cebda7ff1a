// Types of `telemetron/web`: the browser client (plain ESM, no native code).

export type TimeInput = bigint | number | Date
export type TimeRangeInput = { start: TimeInput; end: TimeInput } | [TimeInput, TimeInput] | undefined
export type SampleData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | string[]
  | unknown[]
  | Uint8Array[]
export type ChannelRef = number | string

export interface Channel {
  key: number
  name: string
  dataType: string
  isIndex: boolean
  isVirtual: boolean
  index?: number
  concurrency: 'exclusive' | 'shared'
  internal: boolean
  /** How compaction stores the samples (`'default'`: the node's setting). */
  compression: Compression
}

/** A channel's codec when compacted; only stored data channels of fixed-size types take one. */
export type Compression = 'default' | 'off' | 'pcodec' | 'zstd' | 'lz4'

export interface NewChannel {
  name: string
  dataType?: string
  isIndex?: boolean
  index?: ChannelRef
  isVirtual?: boolean
  concurrency?: 'exclusive' | 'shared'
  compression?: Compression
}

export interface Range {
  key: string
  name: string
  timeRange: { start: bigint; end: bigint }
  labels: string[]
  color?: string
  parent?: string
}

export interface RawSeries {
  key: number
  dataType: string
  data: SampleData
  timeRange?: { start: bigint; end: bigint }
  alignment?: bigint
}

export declare class CodecError extends Error {
  readonly code: 'protocol.violation'
}
export declare function decodeFrame(buf: ArrayBuffer | Uint8Array): Required<RawSeries>[]
export declare function encodeFrame(series: RawSeries[]): Uint8Array

export declare class TelemetronError extends Error {
  readonly code: string
  readonly detail?: unknown
}

export declare class Series {
  readonly key: number
  readonly name?: string
  readonly dataType: string
  readonly data: SampleData
  readonly timeRange: { start: bigint; end: bigint }
  readonly alignment: bigint
  readonly length: number
}

export declare class Frame {
  readonly series: Series[]
  readonly keys: number[]
  readonly length: number
  seriesOf(channel: ChannelRef | Channel): Series[]
  get(channel: ChannelRef | Channel): SampleData | undefined
  samples(channel: ChannelRef | Channel): number
}

/** A reduction done on the node (see the Node SDK's `ReadOptions`). */
export interface ReadOptions {
  points?: number
  reduce?: 'minmax' | 'average'
}

export declare class Streamer {
  readonly closed: boolean
  next(): Promise<Frame | null>
  close(): Promise<void>
  [Symbol.asyncIterator](): AsyncGenerator<Frame, void, undefined>
}

export declare class Writer {
  readonly channels: Channel[]
  readonly closed: boolean
  hasControl(channel: ChannelRef): boolean
  write(data: Record<string, SampleData | number[] | bigint[] | boolean[]>): Promise<void>
  commit(): Promise<bigint>
  setAuthority(authority: number): Promise<void>
  close(): Promise<bigint | null>
}

export declare class Iterator {
  /** The frame read by the last `next`/`prev`. */
  readonly value: Frame
  seekFirst(): Promise<boolean>
  seekLast(): Promise<boolean>
  seekGE(t: TimeInput): Promise<boolean>
  seekLE(t: TimeInput): Promise<boolean>
  next(span?: { samples: number } | { time: TimeInput }): Promise<boolean>
  prev(span?: { samples: number } | { time: TimeInput }): Promise<boolean>
  close(): Promise<void>
  [Symbol.asyncIterator](): AsyncGenerator<Frame, void, undefined>
}

/** What a change did (the `op` of a {@link Change}); the Node SDK's changes share it. */
export type ChangeOp =
  | 'channel.create'
  | 'channel.rename'
  | 'channel.update'
  | 'channel.delete'
  | 'range.create'
  | 'range.update'
  | 'range.delete'
  | 'range.meta'

export interface Change {
  op: ChangeOp
  channels?: Channel[]
  ranges?: Range[]
  keys?: number[] | string[]
  key?: string
  set?: Record<string, string>
  deleted?: string[]
}

export declare class ChangeWatcher {
  next(): Promise<Change | null>
  close(): Promise<void>
  [Symbol.asyncIterator](): AsyncGenerator<Change, void, undefined>
}

export declare class Client {
  readonly node: { protocol: number; version: string; auth_required: boolean; max_message_bytes: number }
  readonly isRemote: true
  readonly channels: {
    create(def: NewChannel, options?: { retrieveIfNameExists?: boolean; place?: string }): Promise<Channel>
    create(defs: NewChannel[], options?: { retrieveIfNameExists?: boolean; place?: string }): Promise<Channel[]>
    retrieve(ref: ChannelRef): Promise<Channel>
    retrieve(refs: ChannelRef[]): Promise<Channel[]>
    search(term?: string): Promise<Channel[]>
    rename(ref: ChannelRef, name: string): Promise<Channel>
    setCompression(ref: ChannelRef, compression: Compression): Promise<Channel>
    delete(refs: ChannelRef | ChannelRef[]): Promise<void>
  }
  readonly ranges: {
    create(range: {
      name: string
      timeRange: TimeRangeInput
      labels?: string[]
      color?: string
      metaData?: Record<string, string>
      parent?: string
    }): Promise<Range>
    retrieve(key: string): Promise<Range>
    search(term?: string, overlapping?: TimeRangeInput): Promise<Range[]>
    delete(keys: string | string[]): Promise<void>
    rename(key: string, name: string): Promise<Range>
    setLabels(key: string, labels: string[]): Promise<Range>
    children(key: string): Promise<Range[]>
    meta(key: string): Promise<Record<string, string>>
    setMeta(key: string, entries: Record<string, string>): Promise<void>
    deleteMeta(key: string, names: string | string[]): Promise<void>
  }
  read(range: TimeRangeInput, channels: ChannelRef[], options?: ReadOptions): Promise<Frame>
  read(range: TimeRangeInput, channel: ChannelRef, options?: ReadOptions): Promise<SampleData | undefined>
  write(start: TimeInput, data: Record<string, SampleData | number[] | bigint[] | boolean[]>): Promise<bigint>
  delete(range: TimeRangeInput, channels: ChannelRef | ChannelRef[]): Promise<void>
  timeRange(channel: ChannelRef): Promise<{ start: bigint; end: bigint } | null>
  openStreamer(channels: ChannelRef | ChannelRef[], options?: { capacity?: number; decimate?: number; throttleHz?: number }): Promise<Streamer>
  openIterator(range: TimeRangeInput, channels: ChannelRef | ChannelRef[], options?: ReadOptions & { chunkSize?: number }): Promise<Iterator>
  iterate(range: TimeRangeInput, channels: ChannelRef | ChannelRef[], options?: ReadOptions & { chunkSize?: number }): AsyncGenerator<Frame, void, undefined>
  watchChanges(): Promise<ChangeWatcher>
  /** A writer; control of each channel goes to the highest authority. */
  openWriter(options: {
    start?: TimeInput
    channels: ChannelRef | ChannelRef[]
    authority?: number | number[]
    name?: string
    autoCommit?: boolean
  }): Promise<Writer>
  controlChannel(): Promise<number>
  close(): Promise<void>
}

export interface ConnectOptions {
  token?: string
  username?: string
  password?: string
  /** A WebSocket class where the platform has none (Node 20 without --experimental-websocket). */
  WebSocket?: unknown
}

export declare function connect(url?: string, options?: ConnectOptions): Promise<Client>
