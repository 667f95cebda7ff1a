import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand } from './support/backends.mjs'

const N = 20_000

/** A sine with a spike at sample 12,345, one sample per microsecond. */
async function signal(c) {
  const s = await stand(c, { pressure: 'f64', count: 'i32', note: 'string' })
  const time = BigInt64Array.from({ length: N }, (_, i) => 1_000n + BigInt(i) * 1_000n)
  const pressure = Float64Array.from({ length: N }, (_, i) => (i === 12_345 ? 50 : Math.sin(i / 500)))
  const count = Int32Array.from({ length: N }, (_, i) => i % 100)
  const note = Array.from({ length: N }, (_, i) => String(i))
  await c.write(1_000n, { [s.time]: time, [s.pressure]: pressure, [s.count]: count, [s.note]: note })
  return { s, time, pressure }
}

/** Positions split into `n` equal-time buckets (the core's rule). */
function buckets(time, n) {
  const span = time[time.length - 1] - time[0] + 1n
  const width = (span + BigInt(n) - 1n) / BigInt(n)
  const out = []
  time.forEach((t, i) => {
    const b = Number((t - time[0]) / width)
    ;(out[b] ??= []).push(i)
  })
  return out.filter(Boolean)
}

each(test, 'min-max reductions keep every peak in order, typed arrays out', async (t, c) => {
  const { s, time, pressure } = await signal(c)
  const f = await c.read(undefined, [s.time, s.pressure, s.count], { points: 200 })
  assert.ok(f.get(s.pressure) instanceof Float64Array)
  assert.ok(f.get(s.count) instanceof Int32Array)
  assert.ok(f.get(s.time) instanceof BigInt64Array)
  const want = []
  const wantT = []
  for (const idx of buckets(time, 100)) {
    let lo = idx[0]
    let hi = idx[0]
    for (const i of idx) {
      if (pressure[i] < pressure[lo]) lo = i
      if (pressure[i] > pressure[hi]) hi = i
    }
    want.push(pressure[Math.min(lo, hi)], pressure[Math.max(lo, hi)])
    wantT.push(time[idx[0]], time[idx[idx.length - 1]])
  }
  assert.deepEqual([...f.get(s.pressure)], want)
  assert.deepEqual([...f.get(s.time)], wantT)
  assert.equal(Math.max(...f.get(s.pressure)), 50)
  // One channel resolves to its samples, as a plain read does.
  assert.equal((await c.read(undefined, s.pressure, { points: 50 })).length, 50)
})

each(test, 'average reductions and reduced iterators', async (t, c) => {
  const { s, pressure } = await signal(c)
  const avg = await c.read(undefined, [s.count], { points: 100, reduce: 'average' })
  assert.ok(avg.get(s.count) instanceof Float64Array)
  assert.deepEqual([...avg.get(s.count)], new Array(100).fill(49.5))
  const chunks = []
  for await (const f of c.iterate(undefined, [s.time, s.pressure], { chunkSize: 5_000, points: 10 })) {
    chunks.push(f)
  }
  assert.equal(chunks.length, 4)
  for (const f of chunks) assert.equal(f.get(s.pressure).length, 10)
  const means = []
  for await (const f of c.iterate(undefined, [s.pressure], { chunkSize: 10_000, points: 1, reduce: 'average' })) {
    means.push(f.get(s.pressure)[0])
  }
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length
  assert.equal(means.length, 2)
  assert.ok(Math.abs(means[0] - mean([...pressure.subarray(0, 10_000)])) < 1e-12)
})

each(test, 'reductions refuse what they cannot do, with the same codes', async (t, c) => {
  const { s } = await signal(c)
  await assert.rejects(c.read(undefined, [s.note], { points: 10 }), { code: 'invalid_argument', message: /without a reduction/ })
  await assert.rejects(c.read(undefined, [s.pressure], { points: 10, reduce: 'median' }), { code: 'invalid_argument' })
  await assert.rejects(c.read(undefined, [s.pressure], { points: 1 }), { code: 'invalid_argument' })
  await assert.rejects(c.read(undefined, [s.pressure], { points: 2.5 }), { code: 'invalid_argument' })
  await assert.rejects(c.openIterator(undefined, [s.pressure], { points: 0, reduce: 'average' }), { code: 'invalid_argument' })
  assert.equal((await c.read(undefined, s.note)).length, N)
})
