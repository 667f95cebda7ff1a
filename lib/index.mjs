// ESM entry: re-exports the CommonJS package (one copy of the native addon either way).
import cjs from './index.js'

export const {
  open, connect, Client, Range, Writer, Streamer, Iterator, Controller, Control, ControlClient, Loop, loop, Frame, Series,
  now, toNanos, toDate, TimeRange, TimeSpan, debug,
  TelemetronError, ChannelError, RangerError, StorageError, WriteError, ControlError,
  StreamError, SeriesError, EngineError, InvalidArgumentError, TransportError, FlowError,
} = cjs
export default cjs
