'use strict'
// `client.observe`: the log, metrics and trace levels of the engine or node, changed at runtime,
// and every metric now (docs/observability.md). The work is the Rust core's
// (`telemetron::observe::Observe`); this only turns the arguments into its calls.
const { call } = require('./errors')

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
}

module.exports = { Observe }
