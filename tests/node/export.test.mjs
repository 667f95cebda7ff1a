import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { each, stand, tempDir, unique } from './support/backends.mjs'

// Export runs in the Rust core (Client::export); these check the SDK's translation: the
// options, progress callbacks, ranges and errors. Parquet contents are checked in Rust and
// Python (pyarrow).

each(test, 'client.export writes CSV with progress, range.toParquet writes Parquet', async (t, c) => {
  const s = await stand(c)
  const n = 20_000
  const time = new BigInt64Array(n).map((_, i) => 1_000n + BigInt(i) * 10n)
  await c.write(1_000n, { [s.time]: time, [s.pressure]: Float64Array.from({ length: n }, (_, i) => i / 2) })
  const dir = tempDir()
  const seen = []
  const r = await c.export(join(dir, 'p.csv'), s.pressure, { memoryBudget: 1 << 20, onProgress: (p) => seen.push(p) })
  assert.equal(r.rows, n)
  assert.equal(r.format, 'csv')
  assert.deepEqual(r.columns, [s.time, s.pressure])
  const lines = readFileSync(join(dir, 'p.csv'), 'utf8').trimEnd().split('\n')
  assert.equal(lines.length, n + 1)
  assert.equal(lines[0], `${s.time},${s.pressure}`)
  assert.equal(lines[4], '1970-01-01T00:00:00.000001030Z,1.5') // row 3
  await new Promise((r) => setTimeout(r, 50)) // progress calls are queued to the JS thread
  assert.ok(seen.length >= 2, `progress after each chunk: ${seen.length}`)
  assert.equal(seen.at(-1).fraction, 1)

  const rng = await c.ranges.create({ name: unique('run'), timeRange: [1_000n, 1_100n] })
  const pq = await rng.toParquet(join(dir, 'run.parquet'), [s.pressure])
  assert.equal(pq.rows, 10)
  assert.ok(pq.fileBytes > 0)
  assert.equal(readFileSync(join(dir, 'run.parquet')).subarray(0, 4).toString(), 'PAR1')
})

each(test, 'bad exports reject with coded errors and write nothing', async (t, c) => {
  const s = await stand(c)
  const dir = tempDir()
  await assert.rejects(c.export(join(dir, 'x.xlsx'), s.pressure), (e) => e.code === 'invalid_argument' && /\.parquet or \.csv/.test(e.message))
  await assert.rejects(c.export(join(dir, 'x.csv'), s.pressure, { format: 'xls' }), { code: 'invalid_argument' })
  await assert.rejects(c.export(join(dir, 'x.csv'), unique('missing')), { code: 'channel.not_found' })
  assert.deepEqual(readdirSync(dir), [])
})
