'use strict'
// Client calls in the caller's OpenTelemetry trace (docs/observability.md §4). When
// `@opentelemetry/api` can be loaded (an optional peer: `npm install @opentelemetry/api`),
// each traced call is a CLIENT span `telemetron.<call>` in the caller's active context, and
// the call carries that span's W3C `traceparent` to the node, whose spans for the request
// become its children. With no tracer provider or propagator registered nothing is recorded
// or sent; without the package, calls are not traced at all. The trace context itself is
// carried by the Rust core (`telemetron::client::with_traceparent`).

let api = null
try {
  api = require('@opentelemetry/api')
} catch {
  api = null
}

/**
 * Run `fn(traceparent)` as span `telemetron.<name>`; `traceparent` is undefined when there
 * is nothing to propagate.
 */
async function traced(name, fn) {
  if (api === null) {
    return fn(undefined)
  }
  const tracer = api.trace.getTracer('telemetron')
  return tracer.startActiveSpan(`telemetron.${name}`, { kind: api.SpanKind.CLIENT }, async (span) => {
    const carrier = {}
    api.propagation.inject(api.trace.setSpan(api.context.active(), span), carrier)
    try {
      return await fn(carrier.traceparent)
    } catch (e) {
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: e?.message })
      throw e
    } finally {
      span.end()
    }
  })
}

module.exports = { traced }
