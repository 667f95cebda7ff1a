import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, startServer, tempDir, unique, tn } from './support/backends.mjs'

each(test, 'client.write and client.read round trip', async (t, c) => {
  const s = await stand(c)
  const time = BigInt64Array.from([10n, 20n, 30n])
  const pressure = new Float64Array([1.5, 2.5, 3.5])
  const end = await c.write(10n, { [s.time]: time, [s.pressure]: pressure })
  assert.equal(end, 31n)
  const f = await c.read({ start: 0n, end: 100n }, [s.time, s.pressure])
  assert.ok(f instanceof tn.Frame)
  assert.deepEqual([...f.get(s.pressure)], [1.5, 2.5, 3.5])
  assert.ok(f.get(s.time) instanceof BigInt64Array)
  assert.deepEqual([...f.get(s.time)], [10n, 20n, 30n])
  assert.deepEqual(f.get(s.pressure).constructor, Float64Array)
  assert.equal(f.samples(s.pressure), 3)
  assert.equal(f.series.find((x) => x.name === s.pressure).dataType, 'f64')
  assert.deepEqual(f.series[0].timeRange, { start: 10n, end: 31n })
  // one channel: resolves to its samples; ranges as [start, end]; all time by default
  assert.deepEqual([...(await c.read([0n, 25n], s.pressure))], [1.5, 2.5])
  assert.deepEqual([...(await c.read(undefined, s.pressure))], [1.5, 2.5, 3.5])
  assert.equal((await c.read([100n, 200n], s.pressure)).length, 0)
  assert.deepEqual(await c.timeRange(s.pressure), { start: 10n, end: 31n })
})

each(test, 'plain arrays and Dates are converted', async (t, c) => {
  const s = await stand(c, { count: 'i32', ok: 'bool', note: 'string', cfg: 'json', big: 'u64' })
  const t0 = new Date('2026-01-01T00:00:00Z')
  const ns = BigInt(t0.getTime()) * 1_000_000n
  await c.write(t0, {
    [s.time]: [ns, ns + 1n],
    [s.count]: [1, -2],
    [s.ok]: [true, false],
    [s.note]: ['open', 'close'],
    [s.cfg]: [{ a: 1 }, [1, 2]],
    [s.big]: [2n ** 64n - 1n, 0n],
  })
  const f = await c.read(undefined, [s.count, s.ok, s.note, s.cfg, s.big])
  assert.deepEqual(f.get(s.count), Int32Array.of(1, -2))
  assert.deepEqual(f.get(s.ok), Uint8Array.of(1, 0))
  assert.deepEqual(f.get(s.note), ['open', 'close'])
  assert.deepEqual(f.get(s.cfg), [{ a: 1 }, [1, 2]])
  assert.deepEqual(f.get(s.big), BigUint64Array.of(2n ** 64n - 1n, 0n))
  assert.deepEqual(Object.keys(f.toObject()).sort(), [s.count, s.ok, s.note, s.cfg, s.big].sort())
})

each(test, 'openWriter: write, commit, close', async (t, c) => {
  const s = await stand(c)
  const w = await c.openWriter({ start: 0n, channels: [s.pressure], authorities: [200], mode: 'persist_stream', autoCommit: false })
  for (let i = 0; i < 5; i++) {
    const r = await w.write({ [s.time]: BigInt64Array.of(BigInt(i * 10), BigInt(i * 10 + 1)), [s.pressure]: Float64Array.of(i, i + 0.5) })
    assert.deepEqual(r.unauthorized, [])
  }
  assert.equal((await c.read(undefined, s.pressure)).length, 0, 'nothing before commit')
  assert.equal(await w.commit(), 42n)
  assert.equal((await c.read(undefined, s.pressure)).length, 10)
  await w.write(new Map([[s.time, [50n]], [s.pressure, [9]]]))
  assert.equal(await w.close(), 51n)
  assert.equal((await c.read(undefined, s.pressure)).length, 11)
  await assert.rejects(w.write({ [s.time]: [60n], [s.pressure]: [1] }), { code: 'engine.closed' })
})

each(test, 'rejected writes name the rule and write nothing', async (t, c) => {
  const s = await stand(c)
  const w = await c.openWriter({ start: 0n, channels: [s.pressure] })
  await assert.rejects(w.write({ [s.time]: [5n, 4n], [s.pressure]: [1, 2] }), (e) => {
    assert.ok(e instanceof tn.WriteError)
    assert.equal(e.code, 'write.not_monotonic')
    assert.match(e.message, /strictly increase/)
    return true
  })
  await assert.rejects(w.write({ [s.time]: [5n, 6n], [s.pressure]: [1] }), { code: 'write.length_mismatch' })
  await assert.rejects(w.write({ [s.time]: [5n], [s.pressure]: Float32Array.of(1) }), (e) => {
    assert.equal(e.code, 'write.type_mismatch')
    assert.match(e.message, /Float64Array/)
    return true
  })
  await assert.rejects(w.write({ [s.time]: [5n], [s.pressure]: [0.5], [unique('other')]: [1] }), { code: 'write.not_in_writer' })
  await assert.rejects(w.write({ [s.time]: [1.5] }), { code: 'invalid_argument' })
  await w.close()
  assert.equal((await c.read(undefined, s.pressure)).length, 0)
})

each(test, 'iterator walks a large range in chunks', async (t, c) => {
  const s = await stand(c)
  const n = 25_000
  const time = new BigInt64Array(n).map((_, i) => BigInt(i))
  const p = new Float64Array(n).map((_, i) => i)
  await c.write(0n, { [s.time]: time, [s.pressure]: p })
  let seen = 0
  let chunks = 0
  for await (const f of c.iterate(undefined, [s.pressure], { chunkSize: 10_000 })) {
    const d = f.get(s.pressure)
    assert.ok(d instanceof Float64Array)
    assert.equal(d[0], seen)
    seen += d.length
    chunks += 1
  }
  assert.equal(seen, n)
  assert.equal(chunks, 3)
  const it = await c.openIterator(undefined, [s.pressure])
  assert.equal(await it.seekGe(24_990n), true)
  assert.equal((await it.next(5)).get(s.pressure).length, 5)
  assert.equal(await it.seekLast(), true)
  assert.equal((await it.prev(3n)).get(s.pressure)[0], n - 3)
})

each(test, 'delete a time range of data', async (t, c) => {
  const s = await stand(c)
  await c.write(0n, { [s.time]: [0n, 1n, 2n, 3n], [s.pressure]: [0, 1, 2, 3] })
  await c.delete([1n, 3n], [s.pressure, s.time])
  assert.deepEqual([...(await c.read(undefined, s.pressure))], [0, 3])
})

each(test, 'readLatest gives the last n samples', async (t, c) => {
  const s = await stand(c)
  assert.equal((await c.readLatest(s.pressure)).samples(s.pressure), 0)
  await c.write(0n, { [s.time]: [1n, 2n, 3n, 4n], [s.pressure]: [1, 2, 3, 4] })
  assert.deepEqual([...(await c.readLatest(s.pressure)).get(s.pressure)], [4])
  const f = await c.readLatest([s.pressure, s.time], 2)
  assert.deepEqual([...f.get(s.pressure)], [3, 4])
  assert.deepEqual([...f.get(s.time)], [3n, 4n])
})

test('durability: open(path, {durability}) and the writer option take none, interval and commit, as in Python', async () => {
  for (const durability of ['none', 'interval', 'commit']) {
    const c = await tn.open(tempDir(), { durability })
    const s = await stand(c)
    const w = await c.openWriter({ start: 1n, channels: [s.pressure], durability })
    await w.write({ [s.time]: [1n, 2n], [s.pressure]: [1, 2] })
    assert.equal(await w.close(), 3n)
    assert.deepEqual([...(await c.read([0n, 10n], [s.pressure])).get(s.pressure)], [1, 2])
    await c.close()
  }
  await assert.rejects(tn.open(tempDir(), { durability: 'fast' }), (e) => e.code === 'invalid_argument' && /none, interval or commit/.test(e.message))
  const c = await tn.open(tempDir())
  const s = await stand(c)
  await assert.rejects(c.openWriter({ start: 1n, channels: [s.pressure], durability: 'sometimes' }), { code: 'invalid_argument' })
  await c.close()
})

test('a client that asks for compression reads the same typed arrays', async (t) => {
  const node = await startServer()
  const plain = await tn.connect(node.url)
  const packed = await tn.connect(node.url, { compress: true })
  t.after(async () => {
    await plain.close()
    await packed.close()
  })
  const s = await stand(plain)
  const n = 50_000
  const time = BigInt64Array.from({ length: n }, (_, i) => 1_000n + BigInt(i) * 1_000n)
  // A pressure through a 16-bit ADC: what the node compresses by far.
  const adc = Float64Array.from({ length: n }, (_, i) => Math.round(Math.sin(i * 0.001) * 20_000 + 32_768) * (100 / 65_535))
  await plain.write(1_000n, { [s.time]: time, [s.pressure]: adc })
  const f = await packed.read(undefined, [s.time, s.pressure])
  assert.deepEqual(f.get(s.pressure), adc)
  assert.deepEqual(f.get(s.time), time)
})
