'use strict'
// Typed errors. The native layer prefixes messages with `[telemetron:<code>] `; `translate`
// turns such an error into an instance of the class for its code's family, with `code`
// set to the core's stable code (`channel.not_found`, `write.not_monotonic`, ...).
// Every code is in `codes.js`, generated from the core's `telemetron::error::codes()`;
// `tests/node/errors.test.mjs` fails when a code of the native module has no class here.

const { CODES } = require('./codes')

class TelemetronError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.name = new.target.name
    /** Stable, language-neutral code (the core's `Error::code()`). */
    this.code = code
  }
}

class ChannelError extends TelemetronError {}
class RangerError extends TelemetronError {}
class StorageError extends TelemetronError {}
class WriteError extends TelemetronError {}
class ControlError extends TelemetronError {}
class StreamError extends TelemetronError {}
class SeriesError extends TelemetronError {}
class EngineError extends TelemetronError {}
class InvalidArgumentError extends TelemetronError {}
class TransportError extends TelemetronError {}
class FlowError extends TelemetronError {}

/** The class of each family (a code's part before the first dot). */
const BY_FAMILY = {
  channel: ChannelError,
  range: RangerError,
  storage: StorageError,
  write: WriteError,
  control: ControlError,
  stream: StreamError,
  series: SeriesError,
  engine: EngineError,
  invalid_argument: InvalidArgumentError,
  transport: TransportError,
  net: TransportError,
  protocol: TransportError,
  auth: TransportError,
  server: TransportError,
  client: TransportError,
  node: TransportError,
  cluster: TransportError,
  flow: FlowError,
}

/** The class of every code of the core, from the generated table. */
const BY_CODE = Object.freeze(Object.fromEntries(CODES.map(({ code, family }) => [code, BY_FAMILY[family] || TelemetronError])))

/** The class for `code`: its own entry, else its family's, else `TelemetronError` (a newer node's code). */
function classFor(code) {
  return BY_CODE[code] || BY_FAMILY[code.split('.')[0]] || TelemetronError
}

// `[telemetron:<code>] message`, or `[telemetron:<code>|{details as JSON}] message`.
const PATTERN = /^\[telemetron:([a-z0-9_.]+)(?:\|(\{[^\n]*\}))?\] ([\s\S]*)$/

/** Build the typed error for `code`. */
function make(code, message, cause) {
  const Cls = classFor(code)
  return new Cls(code, message, cause ? { cause } : undefined)
}

/** Turn a native error into a typed error (anything else is returned unchanged). */
function translate(e) {
  if (e instanceof TelemetronError) return e
  if (e && typeof e.message === 'string') {
    const m = PATTERN.exec(e.message)
    if (m) {
      const err = make(m[1], m[3])
      if (m[2]) {
        try {
          Object.assign(err, JSON.parse(m[2]))
        } catch {
          // details are extras: a message without them is still the error
        }
      }
      return err
    }
    // napi-rs argument conversion errors (wrong JS type passed to a native method)
    if (e.code === 'InvalidArg' || e.code === 'NumberExpected' || e.code === 'StringExpected' ||
        e.code === 'ObjectExpected' || e.code === 'BigintExpected' || e.code === 'ArrayExpected') {
      return make('invalid_argument', `${e.message}; check the argument types against the TypeScript declarations`, e)
    }
  }
  return e
}

/** Call a native async method and await it, translating a throw or a rejection. */
async function call(fn) {
  try {
    return await fn()
  } catch (e) {
    throw translate(e)
  }
}

/** Run a synchronous native call, translating what it throws. */
function sync(fn) {
  try {
    return fn()
  } catch (e) {
    throw translate(e)
  }
}

module.exports = {
  TelemetronError, ChannelError, RangerError, StorageError, WriteError, ControlError,
  StreamError, SeriesError, EngineError, InvalidArgumentError, TransportError, FlowError,
  translate, call, sync, make, classFor, CODES,
}
