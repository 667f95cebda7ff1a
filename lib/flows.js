'use strict'
// `client.flows`: dataflow pipelines (receivers, processors, exporters; docs/dataflow.md)
// deployed, reconfigured and stopped on the engine or node. The work is the Rust core's
// (`telemetron::flow::Flows`); this only turns the arguments into its calls.
const { readFile } = require('node:fs/promises')
const { call, make } = require('./errors')

/** A flow file's text: a string is the YAML itself; a `URL` (file:) or `{path}` is read. */
async function text(config) {
  if (typeof config === 'string') return config
  if (config instanceof URL) return readFile(config, 'utf8')
  if (config && typeof config === 'object' && typeof config.path === 'string') return readFile(config.path, 'utf8')
  throw make('invalid_argument', 'a flow is YAML text (a string), a file: URL or {path}')
}

class Flows {
  constructor(native_) {
    this._native = native_
  }

  /** Every flow, by name, with its counters. */
  async list() {
    return call(() => this._native.flowsList())
  }

  /** Flow `name` with its counters (`flow.not_found` when there is none). */
  async get(name) {
    return call(() => this._native.flowsGet(name))
  }

  /**
   * Compile and start a flow file under its `flow:` name. A wrong file rejects with
   * `flow.config` naming the node and line; a name in use, with `flow.name_taken`.
   */
  async deploy(config) {
    const yaml = await text(config)
    return call(() => this._native.flowsDeploy(yaml))
  }

  /**
   * Apply a new version of flow `name`'s file: live (CFG to the changed nodes) when the
   * graph is the same and they take it, else by draining the old flow (at most `drain`
   * seconds, default 10) and starting the new one. A wrong file rejects and leaves the
   * running flow untouched. Resolves to `{applied: 'live' | 'restarted' | 'unchanged', nodes, reason, flow}`.
   */
  async reconfigure(name, config, { drain } = {}) {
    const yaml = await text(config)
    return call(() => this._native.flowsReconfigure(name, yaml, drain))
  }

  /** Stop flow `name`, draining it for at most `drain` seconds (default 10); its final counters. */
  async stop(name, { drain } = {}) {
    return call(() => this._native.flowsStop(name, drain))
  }
}

module.exports = { Flows }
