import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand } from './support/backends.mjs'

each(test, 'observe: levels change at runtime; metrics move with writes', async (t, c) => {
  assert.deepEqual(await c.observe.levels(), { logs: 'basic', metrics: 'basic', traces: 'off' })
  const before = (await c.observe.metrics())['_telemetron/storage/samples']
  assert.equal(typeof before, 'number')
  const s = await stand(c)
  const n = 1000
  const start = BigInt(Date.now()) * 1_000_000n
  const ts = new BigInt64Array(n).map((_, i) => start + BigInt(i) * 1000n)
  await c.write(start, { [s.time]: ts, [s.pressure]: new Float64Array(n).fill(2.5) })
  const after = await c.observe.metrics()
  assert.ok(after['_telemetron/storage/samples'] - before >= 2 * n, `${before} -> ${after['_telemetron/storage/samples']}`)
  assert.ok(after['_telemetron/storage/commits'] >= 1)

  assert.deepEqual(await c.observe.setLevels({ metrics: 'off' }), { logs: 'basic', metrics: 'off', traces: 'off' })
  assert.equal((await c.observe.setLevels({ traces: 'basic' })).traces, 'basic')
  assert.equal((await c.observe.setLevels({ traces: 'off' })).traces, 'off')
  assert.deepEqual(await c.observe.metrics(), {})
  await assert.rejects(c.observe.setLevels({ metrics: 'loud' }), (e) => e.code === 'invalid_argument' && /off, basic or detailed/.test(e.message))
  assert.equal((await c.observe.levels()).metrics, 'off', 'a refused change changes nothing')
  await c.observe.setLevels({ metrics: 'basic' })
  assert.ok((await c.observe.metrics())['_telemetron/storage/samples'] >= after['_telemetron/storage/samples'])
})
