// Zero copy, proved by addresses as Rust sees them (tn.debug).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, unique, tn } from './support/backends.mjs'

const { debug } = tn

each(test, 'read: typed arrays are views over the Rust series buffers', async (t, c) => {
  const s = await stand(c)
  const n = 100_000
  await c.write(0n, {
    [s.time]: new BigInt64Array(n).map((_, i) => BigInt(i)),
    [s.pressure]: new Float64Array(n).map((_, i) => i * 0.5),
  })
  const f = await c.read(undefined, [s.time, s.pressure])
  assert.equal(f.series.length, 2)
  for (const series of f.series) {
    const rust = debug.seriesAddress(series)
    assert.ok(rust > 0)
    assert.equal(debug.addressOf(series.data), rust, `${series.name}: JS view at the Rust buffer`)
    assert.equal(series.data.byteOffset, 0)
    assert.equal(series.data.buffer.byteLength, series.data.byteLength, 'one external ArrayBuffer per series')
  }
  // get() of a single series returns that very view
  assert.equal(f.get(s.pressure), f.series.find((x) => x.name === s.pressure).data)
  assert.equal(f.get(s.pressure)[n - 1], (n - 1) * 0.5)
})

test('write: typed arrays of the channel type reach Rust without a copy', () => {
  const a = new Float64Array(1000).fill(2)
  assert.equal(debug.inputAddress('f64', a), debug.addressOf(a))
  const sub = a.subarray(10, 20)
  assert.equal(debug.addressOf(sub), debug.addressOf(a) + 80, 'byteOffset honoured')
  assert.equal(debug.inputAddress('f64', sub), debug.addressOf(sub))
  const ts = BigInt64Array.of(1n, 2n)
  assert.equal(debug.inputAddress('timestamp', ts), debug.addressOf(ts))
  const u8 = Uint8Array.of(0, 1)
  assert.equal(debug.inputAddress('bool', u8), debug.addressOf(u8))
  // plain arrays are converted (a documented copy); wrong element types are refused
  assert.ok(debug.inputAddress('f64', [1, 2, 3]) > 0)
  assert.throws(() => debug.inputAddress('f64', new Float32Array(3)), { code: 'write.type_mismatch' })
  assert.equal(debug.addressOf([1, 2]), 0)
})

each(test, 'end to end: a written typed array is streamed back without a copy (embedded) or as a Rust view (remote)', async (t, c, b) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer(v.name)
  const w = await c.openWriter({ start: tn.now(), channels: [v.key], mode: 'stream' })
  const input = new Float64Array(10_000).map((_, i) => i)
  await w.write(v.name, input)
  const f = await st.next()
  const out = f.get(v.name)
  assert.deepEqual(out.length, input.length)
  assert.equal(out[9_999], 9_999)
  assert.equal(debug.addressOf(out), debug.seriesAddress(f.series[0]))
  if (!b.remote) {
    assert.equal(debug.addressOf(out), debug.addressOf(input), 'the streamer sees the very buffer that was written')
    assert.equal(out.buffer, input.buffer, 'through the writer\'s own ArrayBuffer, not a second one over the same memory')
    const part = input.subarray(100, 200)
    await w.write(v.name, part)
    const back = (await st.next()).get(v.name)
    assert.equal(back.buffer, input.buffer)
    assert.equal(back.byteOffset, part.byteOffset)
    assert.equal(back[0], 100)
  }
  await w.close()
  await st.close()
})

each(test, 'one external ArrayBuffer per Rust buffer: repeated reads and fan-out share it', async (t, c, b) => {
  const s = await stand(c)
  await c.write(0n, { [s.time]: BigInt64Array.of(1n, 2n, 3n), [s.pressure]: Float64Array.of(1, 2, 3) })
  const a = await c.read(undefined, s.pressure)
  const again = await c.read(undefined, s.pressure)
  assert.deepEqual([...again], [...a])
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const s1 = await c.openStreamer(v.name)
  const s2 = await c.openStreamer(v.name)
  const w = await c.openWriter({ start: tn.now(), channels: [v.key], mode: 'stream' })
  await w.write(v.name, [7, 8])
  const [f1, f2] = [await s1.next(), await s2.next()]
  assert.deepEqual([...f1.get(v.name)], [7, 8])
  assert.deepEqual([...f2.get(v.name)], [7, 8])
  if (!b.remote) {
    // the engine hands out the same memory twice: JS sees one ArrayBuffer, not two over one address
    assert.equal(again.buffer, a.buffer)
    assert.equal(f1.get(v.name).buffer, f2.get(v.name).buffer)
    assert.equal(debug.addressOf(f1.get(v.name)), debug.addressOf(f2.get(v.name)))
  }
  await w.close()
  await s1.close()
  await s2.close()
})
