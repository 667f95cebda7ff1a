// The binary frame codec (version 1) in plain JavaScript, for browsers: docs/protocol.md §5,
// the same layout as core/src/protocol/codec.rs. Golden vectors written by the Rust codec
// (tests/golden/frames/) are decoded and re-encoded byte for byte by tests/node/web.test.mjs,
// so the two cannot drift apart unnoticed.
//
//   frame   := header series*
//   header  := "TLMF" | version u16 (1) | flags u16 (0) | series count u32 | 0 u32   (16 bytes)
//   series  := channel u32 | type u8 | 0 u8 | 0 u16 | samples u64 | start i64 | end i64
//              | alignment u64 | data bytes u64                                     (48 bytes)
//              data, zero padding to a multiple of 8, then for string/json/bytes
//              (samples + 1) u64 offsets from 0

import { parse, stringify } from './json.mjs'

/** Data type names by tag (the core's `DataType` discriminants). */
export const DATA_TYPES = [
  undefined,
  'u8',
  'u16',
  'u32',
  'u64',
  'i8',
  'i16',
  'i32',
  'i64',
  'f32',
  'f64',
  'bool',
  'timestamp',
  'uuid',
  'string',
  'json',
  'bytes',
]

/** The typed array of each fixed-size type (uuid: 16 bytes per sample, as strings). */
export const ARRAYS = {
  u8: Uint8Array,
  u16: Uint16Array,
  u32: Uint32Array,
  u64: BigUint64Array,
  i8: Int8Array,
  i16: Int16Array,
  i32: Int32Array,
  i64: BigInt64Array,
  f32: Float32Array,
  f64: Float64Array,
  bool: Uint8Array,
  timestamp: BigInt64Array,
}

const VARIABLE = new Set(['string', 'json', 'bytes'])
const MAGIC = 0x464d4c54 // "TLMF" little-endian
const HEADER = 16
const SERIES_HEADER = 48
const MAX_SERIES = 1 << 20

/** A frame that does not decode; `code` is `protocol.violation`, as on the wire. */
export class CodecError extends Error {
  constructor(message) {
    super(message)
    this.name = 'CodecError'
    this.code = 'protocol.violation'
  }
}

const pad8 = (n) => (n + 7) & ~7
const utf8 = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

function density(t) {
  if (t === 'uuid') return 16
  return ARRAYS[t]?.BYTES_PER_ELEMENT
}

function safe(big, what) {
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new CodecError(`${what} ${big} is too large`)
  return Number(big)
}

function uuidString(b) {
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/**
 * Decode a frame. Fixed-size samples come out as typed arrays over `buf` itself when the
 * buffer is 8-aligned (as a fetch or WebSocket ArrayBuffer is), so no sample is copied.
 * @param {ArrayBuffer | Uint8Array} buf
 * @returns {{key: number, dataType: string, data: any, timeRange: {start: bigint, end: bigint}, alignment: bigint}[]}
 */
export function decodeFrame(buf) {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const len = bytes.byteLength
  const need = (at, n) => {
    if (at + n > len) throw new CodecError(`frame is truncated: needed ${n} bytes at offset ${at}, ${len} available`)
  }
  need(0, HEADER)
  if (view.getUint32(0, true) !== MAGIC) throw new CodecError('not a Telemetron frame (bad magic)')
  const version = view.getUint16(4, true)
  if (version !== 1) throw new CodecError(`frame version ${version} is not supported (this client reads 1)`)
  if (view.getUint16(6, true) !== 0 || view.getUint32(12, true) !== 0) throw new CodecError('reserved header fields must be 0')
  const count = view.getUint32(8, true)
  if (count > MAX_SERIES) throw new CodecError(`${count} series is over the limit of ${MAX_SERIES}`)
  const out = []
  let at = HEADER
  for (let i = 0; i < count; i++) {
    need(at, SERIES_HEADER)
    const key = view.getUint32(at, true)
    const dataType = DATA_TYPES[view.getUint8(at + 4)]
    if (dataType === undefined) throw new CodecError(`unknown data type tag ${view.getUint8(at + 4)}`)
    if (view.getUint8(at + 5) !== 0 || view.getUint16(at + 6, true) !== 0) throw new CodecError('reserved series fields must be 0')
    const samples = safe(view.getBigUint64(at + 8, true), 'sample count')
    const start = view.getBigInt64(at + 16, true)
    const end = view.getBigInt64(at + 24, true)
    const alignment = view.getBigUint64(at + 32, true)
    const dataBytes = safe(view.getBigUint64(at + 40, true), 'data length')
    at += SERIES_HEADER
    need(at, pad8(dataBytes))
    const d = density(dataType)
    let data
    if (d !== undefined) {
      if (dataBytes !== samples * d) throw new CodecError(`${dataBytes} bytes is not ${samples} ${dataType} samples`)
      const raw = bytes.subarray(at, at + dataBytes)
      if (dataType === 'uuid') {
        data = Array.from({ length: samples }, (_, j) => uuidString(raw.subarray(16 * j, 16 * j + 16)))
      } else {
        const T = ARRAYS[dataType]
        const aligned = (bytes.byteOffset + at) % T.BYTES_PER_ELEMENT === 0
        data = aligned ? new T(bytes.buffer, bytes.byteOffset + at, samples) : new T(raw.slice().buffer)
        if (dataType === 'bool' && data.some((x) => x > 1)) throw new CodecError('a bool sample is not 0 or 1')
      }
      at += pad8(dataBytes)
    } else {
      const body = bytes.subarray(at, at + dataBytes)
      at += pad8(dataBytes)
      need(at, 8 * (samples + 1))
      const offsets = new Array(samples + 1)
      for (let j = 0; j <= samples; j++) offsets[j] = safe(view.getBigUint64(at + 8 * j, true), 'offset')
      at += 8 * (samples + 1)
      if (offsets[0] !== 0 || offsets[samples] !== dataBytes) throw new CodecError('variable-length offsets do not span the data')
      data = new Array(samples)
      for (let j = 0; j < samples; j++) {
        if (offsets[j + 1] < offsets[j]) throw new CodecError('variable-length offsets go backwards')
        const v = body.subarray(offsets[j], offsets[j + 1])
        if (dataType === 'bytes') {
          data[j] = v
          continue
        }
        let text
        try {
          text = utf8.decode(v)
        } catch {
          throw new CodecError(`sample ${j} is not valid UTF-8`)
        }
        if (dataType === 'string') data[j] = text
        else {
          try {
            data[j] = parse(text)
          } catch {
            throw new CodecError(`sample ${j} is not valid JSON`)
          }
        }
      }
    }
    out.push({ key, dataType, data, timeRange: { start, end }, alignment })
  }
  if (at !== len) throw new CodecError(`${len - at} trailing bytes after the last series`)
  return out
}

function uuidBytes(s) {
  const h = String(s).replace(/-/g, '')
  if (!/^[0-9a-fA-F]{32}$/.test(h)) throw new CodecError(`${s} is not a UUID`)
  return Uint8Array.from({ length: 16 }, (_, i) => Number.parseInt(h.slice(2 * i, 2 * i + 2), 16))
}

/** The sample bytes of one series (`data` a typed array or an array of values). */
function payload(dataType, data) {
  if (dataType === 'uuid') {
    const out = new Uint8Array(16 * data.length)
    data.forEach((u, i) => {
      out.set(uuidBytes(u), 16 * i)
    })
    return { body: out }
  }
  const T = ARRAYS[dataType]
  if (T) {
    const big = T === BigInt64Array || T === BigUint64Array
    const arr = data instanceof T ? data : T.from(data, (x) => (big ? BigInt(x) : dataType === 'bool' ? Number(Boolean(x)) : Number(x)))
    return { body: new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength) }
  }
  if (!VARIABLE.has(dataType)) throw new CodecError(`unknown data type ${dataType}`)
  const parts = data.map((v) => {
    if (dataType === 'bytes') return v instanceof Uint8Array ? v : new Uint8Array(v)
    return encoder.encode(dataType === 'json' ? stringify(v) : String(v))
  })
  const offsets = [0]
  for (const p of parts) offsets.push(offsets[offsets.length - 1] + p.length)
  const body = new Uint8Array(offsets[offsets.length - 1])
  parts.forEach((p, i) => {
    body.set(p, offsets[i])
  })
  return { body, offsets }
}

/**
 * Encode series into one frame, byte for byte as the Rust codec does.
 * @param {{key: number, dataType: string, data: any, timeRange?: {start: bigint, end: bigint}, alignment?: bigint}[]} series
 * @returns {Uint8Array}
 */
export function encodeFrame(series) {
  const parts = series.map((s) => ({ s, ...payload(s.dataType, s.data) }))
  const size = parts.reduce((a, p) => a + SERIES_HEADER + pad8(p.body.length) + (p.offsets ? 8 * p.offsets.length : 0), HEADER)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  view.setUint32(0, MAGIC, true)
  view.setUint16(4, 1, true)
  view.setUint32(8, series.length, true)
  let at = HEADER
  for (const { s, body, offsets } of parts) {
    const tag = DATA_TYPES.indexOf(s.dataType)
    if (tag <= 0) throw new CodecError(`unknown data type ${s.dataType}`)
    const n = offsets ? offsets.length - 1 : body.length / density(s.dataType)
    view.setUint32(at, s.key, true)
    view.setUint8(at + 4, tag)
    view.setBigUint64(at + 8, BigInt(n), true)
    view.setBigInt64(at + 16, BigInt(s.timeRange?.start ?? 0n), true)
    view.setBigInt64(at + 24, BigInt(s.timeRange?.end ?? 0n), true)
    view.setBigUint64(at + 32, BigInt(s.alignment ?? 0n), true)
    view.setBigUint64(at + 40, BigInt(body.length), true)
    at += SERIES_HEADER
    out.set(body, at)
    at += pad8(body.length)
    if (offsets) {
      for (const o of offsets) {
        view.setBigUint64(at, BigInt(o), true)
        at += 8
      }
    }
  }
  return out
}
