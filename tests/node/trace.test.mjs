// The Node SDK joins the caller's OpenTelemetry context (`@opentelemetry/api`): a write is
// a CLIENT span `telemetron.write` under the caller's span, and the node's spans for it
// (exported by `--otlp-endpoint` to an OTLP/HTTP collector here) carry the same trace and
// name that span as a parent (docs/observability.md §4).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import * as api from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { startNode, tn } from './support/backends.mjs'

test('traces: a write joins the caller trace, and the node spans of it carry that trace', async () => {
  const exporter = new InMemorySpanExporter()
  api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())

  // An OTLP/HTTP collector that keeps the protobuf bodies sent to /v1/traces.
  const bodies = []
  const collector = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(Buffer.concat(chunks))
      res.writeHead(200, { 'content-type': 'application/x-protobuf' })
      res.end()
    })
  })
  await new Promise((r) => collector.listen(0, '127.0.0.1', r))
  const port = collector.address().port
  const node = await startNode(['--trace-level', 'basic', '--otlp-endpoint', `http://127.0.0.1:${port}`, '--otlp-protocol', 'http', '--otlp-interval', '100ms'])
  try {
    const c = await tn.connect(node.url)
    await c.channels.create([{ name: 'time', isIndex: true }, { name: 'p', dataType: 'f64', index: 'time' }])
    const ts = new BigInt64Array(100).map((_, i) => 1000n + BigInt(i))
    const seq = await api.trace.getTracer('test-sequence').startActiveSpan('sequence', async (span) => {
      await c.write(1000n, { time: ts, p: new Float64Array(100).fill(0.5) })
      span.end()
      return span.spanContext()
    })
    // A stream joins the trace too: the node's `telemetron.stream` span for the writer is
    // a child of the SDK's `telemetron.open_writer` span (through its upgrade request).
    await api.trace.getTracer('test-sequence').startActiveSpan('streamed', async (span) => {
      const w = await c.openWriter({ start: 5000n, channels: ['p'], autoCommit: false })
      await w.write({ time: new BigInt64Array([5000n, 5001n]), p: new Float64Array([1, 2]) })
      await w.commit()
      await w.close()
      span.end()
    })
    await c.close()
    const opened = exporter.getFinishedSpans().find((s) => s.name === 'telemetron.open_writer')
    assert.ok(opened, 'the SDK recorded its open_writer span')
    const write = exporter.getFinishedSpans().find((s) => s.name === 'telemetron.write')
    assert.ok(write, 'the SDK recorded its span')
    assert.equal(write.kind, api.SpanKind.CLIENT)
    assert.equal(write.spanContext().traceId, seq.traceId)
    assert.equal(write.parentSpanContext.spanId, seq.spanId)

    // The node's export holds the trace id and, as a parent id, the SDK's write span, next
    // to its storage commit span (protobuf bytes: ids are raw 16 and 8 byte fields).
    const traceId = Buffer.from(seq.traceId, 'hex')
    const parent = Buffer.from(write.spanContext().spanId, 'hex')
    const deadline = Date.now() + 20_000
    const streamTrace = Buffer.from(opened.spanContext().traceId, 'hex')
    const streamParent = Buffer.from(opened.spanContext().spanId, 'hex')
    const found = () =>
      bodies.some((b) => b.includes(traceId) && b.includes(parent) && b.includes(Buffer.from('storage.commit'))) &&
      bodies.some((b) => b.includes(streamTrace) && b.includes(streamParent)) &&
      bodies.some((b) => b.includes(streamTrace) && b.includes(Buffer.from('telemetron.stream')))
    while (!found()) {
      assert.ok(Date.now() < deadline, `the node's spans never arrived (${bodies.length} bodies): ${node.stderr()}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    await node.stop()
    collector.close()
  }
})
