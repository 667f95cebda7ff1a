// Long streams must not grow memory without bound: every frame's typed arrays are external
// buffers over Rust memory, freed when V8 collects them (the event loop must turn).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, unique, tn } from './support/backends.mjs'

const FRAMES = 20_000
const SAMPLES = 2_000 // 16 kB per frame, 320 MB streamed in total

each(test, `a ${FRAMES}-frame for-await stream keeps RSS flat`, async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer(v.name, { capacity: 64 })
  let dropped = 0
  st.on('lag', (e) => { dropped += e.dropped })
  const w = await c.openWriter({ start: tn.now(), channels: [v.key], mode: 'stream' })
  let received = 0
  let lastSeries
  let sum = 0
  let baseline = 0
  let peak = 0
  const reader = (async () => {
    for await (const f of st) {
      const d = f.get(v.name)
      lastSeries = f.series[0]
      sum += d[0]
      received += 1
      if (received === 2_000) baseline = process.memoryUsage().rss
      if (received > 2_000 && received % 500 === 0) peak = Math.max(peak, process.memoryUsage().rss)
      if (received + dropped >= FRAMES) break
    }
  })()
  // A plain array is converted into a new Rust buffer per write, so every received frame is
  // an external ArrayBuffer over Rust memory (a typed array written by this process would
  // come back through its own JS ArrayBuffer on the embedded backend).
  const ones = Array.from({ length: SAMPLES }, () => 1)
  for (let i = 0; i < FRAMES; i++) {
    await w.write(v.name, ones)
    if (i % 64 === 63) await new Promise((r) => setImmediate(r))
  }
  await reader
  await w.close()
  await st.close()
  const growth = (peak - baseline) / 2 ** 20
  t.diagnostic(`received ${received} frames (${dropped} dropped), RSS baseline ${(baseline / 2 ** 20).toFixed(0)} MB, growth ${growth.toFixed(1)} MB`)
  assert.ok(received >= FRAMES / 2, `received ${received}`)
  assert.ok(tn.debug.seriesAddress(lastSeries) > 0 && tn.debug.addressOf(lastSeries.data) === tn.debug.seriesAddress(lastSeries), 'frames are views over Rust memory')
  assert.equal(sum, received)
  assert.ok(growth < 96, `RSS grew ${growth.toFixed(1)} MB over ${received} frames`)
}, { timeout: 300_000 })
