'use strict'
// `client.observe`: the log, metrics and trace levels of the engine or node, changed at runtime,
// and every metric now (docs/observability.md). The work is the Rust core's
// (`telemetron::observe::Observe`); this only turns the arguments into its calls.
const { call, make } = require('./errors')
const { toNanos } = require('./time')

class Observe {
  constructor(native_) {
    this._native = native_
  }

  /** The levels in force: `{logs, metrics, traces}`, each `'off' | 'basic' | 'detailed'`. */
  async levels() {
    return call(() => this._native.observeLevels())
  }

  /**
   * Change the log, metrics and/or trace level; resolves to the levels now in force. A name other
   * than `off`, `basic` or `detailed` rejects with `invalid_argument` and changes nothing.
   */
  async setLevels({ logs, metrics, traces } = {}) {
    return call(() => this._native.observeSetLevels(logs, metrics, traces))
  }

  /**
   * Every scalar metric now, by self-telemetry channel name (`_telemetron/storage/commits`,
   * ...; histograms give `<name>/count` and `<name>/sum`). Empty at metrics level `off`.
   */
  async metrics() {
    return call(() => this._native.observeMetrics())
  }

  /**
   * The node's self-telemetry history over a window, summarized where it is stored
   * (docs/observability.md §7): per series its `kind`, and a counter's `increase` and `rate`
   * (per second), a gauge's `min`, `mean` and `max`, a histogram's `rate`, `mean` and
   * `p50`/`p90`/`p99`. `window` is a duration (`'30s'`, `'5m'`, `'1h'`) or a number of seconds
   * (default 5 minutes); `end` any time input (default: the last sample); `filter` keeps the
   * series whose name contains it. Resolves to `{start, end, series}`, `series` sorted by name.
   */
  async summary({ window, end, filter } = {}) {
    if (window !== undefined && typeof window !== 'string' && typeof window !== 'number')
      throw make('invalid_argument', `window must be a duration such as '5m' or a number of seconds, got ${typeof window}`)
    const w = window === undefined ? undefined : String(window)
    const e = end === undefined ? undefined : toNanos(end, 'end')
    return call(() => this._native.observeSummary(w, e, filter))
  }
}

module.exports = { Observe }
