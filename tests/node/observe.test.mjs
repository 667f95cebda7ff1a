import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, startNode, tempDir, tn } from './support/backends.mjs'

const { connect, open } = tn

/** JSON for a failure message (bigints as strings). */
const show = (x) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? String(v) : v))

each(test, 'observe: levels change at runtime; metrics move with writes', async (t, c, b) => {
  assert.deepEqual(await c.observe.levels(), { logs: 'basic', metrics: 'basic', traces: 'off' })
  const before = (await c.observe.metrics())['_telemetron/storage/samples']
  assert.equal(typeof before, 'number')
  const s = await stand(c)
  const n = 1000
  const start = BigInt(Date.now()) * 1_000_000n
  const ts = new BigInt64Array(n).map((_, i) => start + BigInt(i) * 1000n)
  await c.write(start, { [s.time]: ts, [s.pressure]: new Float64Array(n).fill(2.5) })
  const after = await c.observe.metrics()
  if (b.name === 'cluster') {
    // The metrics are the connected node's own: the gateway stores nothing (its channels
    // live on the other node, which counts these samples).
    assert.equal(after['_telemetron/storage/samples'], before)
  } else {
    assert.ok(after['_telemetron/storage/samples'] - before >= 2 * n, `${before} -> ${after['_telemetron/storage/samples']}`)
    assert.ok(after['_telemetron/storage/commits'] >= 1)
  }

  assert.deepEqual(await c.observe.setLevels({ metrics: 'off' }), { logs: 'basic', metrics: 'off', traces: 'off' })
  assert.equal((await c.observe.setLevels({ traces: 'basic' })).traces, 'basic')
  assert.equal((await c.observe.setLevels({ traces: 'off' })).traces, 'off')
  assert.deepEqual(await c.observe.metrics(), {})
  await assert.rejects(c.observe.setLevels({ metrics: 'loud' }), (e) => e.code === 'invalid_argument' && /off, basic or detailed/.test(e.message))
  assert.equal((await c.observe.levels()).metrics, 'off', 'a refused change changes nothing')
  await c.observe.setLevels({ metrics: 'basic' })
  assert.ok((await c.observe.metrics())['_telemetron/storage/samples'] >= after['_telemetron/storage/samples'])
})

test('observe: a node summarizes its self-telemetry history; an engine without it says how to get one', async () => {
  const node = await startNode(['--self-telemetry', '100ms'])
  const c = await connect(node.url)
  try {
    const s = await stand(c)
    const n = 2000
    const start = BigInt(Date.now()) * 1_000_000n
    await c.write(start, { [s.time]: new BigInt64Array(n).map((_, i) => start + BigInt(i) * 1000n), [s.pressure]: new Float64Array(n) })
    // Wait until the node's history holds the write.
    const deadline = Date.now() + 10_000
    let sum
    for (;;) {
      sum = await c.observe.summary({ window: '10m' })
      const stored = sum.series.find((x) => x.name === '_telemetron/storage/samples')
      if (stored && stored.increase >= 2 * n) break
      assert.ok(Date.now() < deadline, `self-telemetry never showed the write: ${show(stored)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.equal(typeof sum.start, 'bigint')
    assert.ok(sum.end - sum.start === 600_000_000_000n, 'a 10-minute window')
    const stored = sum.series.find((x) => x.name === '_telemetron/storage/samples')
    assert.equal(stored.kind, 'counter')
    assert.ok(stored.rate > 0 && stored.points >= 2 && typeof stored.lastTime === 'bigint', show(stored))
    assert.equal(stored.min, undefined, 'a counter has no range')
    const sync = sum.series.find((x) => x.name === '_telemetron/storage/sync.duration')
    assert.equal(sync.kind, 'histogram')
    assert.equal(sync.unit, 's')
    const gauge = sum.series.find((x) => x.name === '_telemetron/relay/streamers')
    assert.equal(gauge.kind, 'gauge')
    assert.ok(gauge.min <= gauge.mean && gauge.mean <= gauge.max)
    // Seconds work as a window; a filter keeps matching series only.
    assert.ok(Array.isArray((await c.observe.summary({ window: 1e-7 })).series), 'a tiny window is a duration too')
    const only = await c.observe.summary({ window: 600, filter: 'storage/commits' })
    assert.deepEqual(only.series.map((x) => x.name), ['_telemetron/storage/commits'])
    // An end before the history: an empty summary, not an error.
    assert.deepEqual((await c.observe.summary({ window: '1s', end: new Date('2001-01-01') })).series, [])
    await assert.rejects(c.observe.summary({ window: 'soon' }), (e) => e.code === 'invalid_argument' && /is not a window/.test(e.message))
    await assert.rejects(c.observe.summary({ window: {} }), (e) => e.code === 'invalid_argument')
  } finally {
    await c.close()
    await node.stop()
  }
  const e = await open(tempDir())
  try {
    await assert.rejects(e.observe.summary(), (err) => err.code === 'invalid_argument' && /--self-telemetry/.test(err.message))
  } finally {
    await e.close()
  }
})
