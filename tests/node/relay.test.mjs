import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, unique, tn } from './support/backends.mjs'

const tick = () => new Promise((r) => setTimeout(r, 20))

each(test, 'for await receives live frames; close ends the iteration', async (t, c) => {
  const s = await stand(c)
  const st = await c.openStreamer([s.pressure, s.time])
  const w = await c.openWriter({ start: 0n, channels: [s.pressure] })
  const got = []
  const reader = (async () => {
    for await (const f of st) {
      assert.ok(f instanceof tn.Frame)
      if (f.has(s.pressure)) got.push(...f.get(s.pressure))
      if (got.length === 3) await st.close()
    }
  })()
  for (let i = 0; i < 3; i++) await w.write({ [s.time]: [BigInt(i + 1)], [s.pressure]: Float64Array.of(i) })
  await reader
  assert.deepEqual(got, [0, 1, 2])
  assert.equal(await st.next(), null)
  await w.close()
})

each(test, 'live series carry their storage alignment and time range: a stream stitches onto a read', async (t, c) => {
  const s = await stand(c)
  const w = await c.openWriter({ start: 1n, channels: [s.pressure], autoCommit: false })
  await w.write({ [s.time]: [1n, 2n, 3n], [s.pressure]: Float64Array.of(0, 1, 2) })
  await w.commit()
  const st = await c.openStreamer([s.pressure])
  await w.write({ [s.time]: [10n, 11n], [s.pressure]: Float64Array.of(3, 4) })
  await w.write({ [s.time]: [20n], [s.pressure]: Float64Array.of(5) })
  await w.close()
  const live = []
  while (live.length < 2) live.push(...(await st.next()).seriesOf(s.pressure))
  await st.close()
  // Every sample as [alignment, value]: the read gives one series per stored run.
  const samples = (series) => series.flatMap((x) => [...x.data].map((v, i) => [x.alignment + BigInt(i), v]))
  const stored = samples((await c.read(undefined, [s.pressure])).seriesOf(s.pressure))
  const base = stored[0][0]
  assert.deepEqual(
    live.map((x) => [x.alignment - base, x.timeRange.start, x.timeRange.end]),
    [
      [3n, 10n, 12n],
      [5n, 20n, 21n],
    ],
  )
  const streamed = samples(live)
  const seen = new Set(streamed.map(([a]) => a))
  const stitched = [...stored.filter(([a]) => !seen.has(a)), ...streamed]
  assert.deepEqual(stitched, stored)
  assert.deepEqual(
    stitched.map(([, v]) => v),
    [0, 1, 2, 3, 4, 5],
  )
})

each(test, 'updateChannels changes what arrives without waiting for a frame', async (t, c) => {
  const a = await c.channels.create({ name: unique('va'), dataType: 'f64', virtual: true })
  const b = await c.channels.create({ name: unique('vb'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer([a.name])
  const pending = st.next()
  await tick()
  await st.updateChannels([b.name]) // must not wait for a frame of `a`
  const w = await c.openWriter({ start: tn.now(), channels: [a.key, b.key], mode: 'stream' })
  await w.write({ [a.name]: [1] })
  await w.write({ [b.name]: [2] })
  const f1 = await pending
  const f2 = f1.has(b.name) ? f1 : await st.next()
  assert.equal(f2.get(b.name)[0], 2)
  await w.close()
  await st.close()
})

each(test, 'a pending next() resolves to null on close', async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'u8', virtual: true })
  const st = await c.openStreamer(v.name)
  const pending = st.next()
  await tick()
  await st.close()
  assert.equal(await pending, null)
})

// Lag needs the streamer's queue to overflow. Remotely, socket buffers absorb megabytes
// first, so the writer sends big frames (1.6 MB each) while nobody reads; frames already in
// flight arrive before the notice.
const BIG = 200_000
const FRAMES = 64

async function flood(c, v) {
  const w = await c.openWriter({ start: tn.now(), channels: [v.key], mode: 'stream' })
  for (let i = 0; i < FRAMES; i++) await w.write(v.name, new Float64Array(BIG).fill(i))
  await w.close()
  await new Promise((r) => setTimeout(r, 100))
}

for (const [label, opts] of [['default', {}], ["onLag: 'warn'", { onLag: 'warn' }], ["deprecated lag: 'event'", { lag: 'event' }]]) {
each(test, `${label} emits the drop count and continues with the newest frames`, async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer(v.name, { capacity: 2, ...opts })
  let dropped = 0
  st.on('lag', (e) => { dropped += e.dropped })
  await flood(c, v)
  let last = -1
  let received = 0
  while (last !== FRAMES - 1) {
    const f = await st.next()
    last = f.get(v.name)[0]
    received += 1
  }
  assert.ok(dropped > 0, `dropped ${dropped}`)
  assert.equal(received + dropped, FRAMES, 'every frame is either received or counted as dropped')
  await st.close()
})
}

each(test, "onLag: 'ignore' continues with the newest frames without a 'lag' event", async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer(v.name, { capacity: 2, onLag: 'ignore' })
  let events = 0
  st.on('lag', () => { events += 1 })
  await flood(c, v)
  let last = -1
  let received = 0
  while (last !== FRAMES - 1) {
    last = (await st.next()).get(v.name)[0]
    received += 1
  }
  assert.ok(received < FRAMES, `received ${received}: frames were dropped`)
  assert.equal(events, 0)
  await st.close()
})

for (const [label, opts] of [["onLag: 'raise'", { onLag: 'raise' }], ["deprecated lag: 'error'", { lag: 'error' }]]) {
each(test, `${label} throws stream.lagged and the streamer stays usable`, async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer(v.name, { capacity: 2, ...opts })
  await flood(c, v)
  let received = 0
  await assert.rejects(async () => { for await (const _ of st) received += 1 }, (e) => {
    assert.ok(e instanceof tn.StreamError)
    assert.equal(e.code, 'stream.lagged')
    assert.ok(e.dropped > 0)
    received += e.dropped
    return true
  })
  let last = -1
  while (last !== FRAMES - 1) {
    try {
      last = (await st.next()).get(v.name)[0]
      received += 1
    } catch (e) {
      assert.equal(e.code, 'stream.lagged') // a remote streamer can lag more than once
      received += e.dropped
    }
  }
  assert.equal(received, FRAMES, 'every frame is either received or counted as dropped')
  await st.close()
})
}

each(test, "lagPolicy 'disconnect' ends with stream.disconnected", async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer(v.name, { capacity: 2, lagPolicy: 'disconnect' })
  await flood(c, v)
  await assert.rejects(async () => {
    for (;;) if ((await st.next()) === null) break
  }, { code: 'stream.disconnected' })
})

each(test, 'early break leaves the streamer open', async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'i32', virtual: true })
  const st = await c.openStreamer(v.name)
  const w = await c.openWriter({ start: tn.now(), channels: [v.key], mode: 'stream' })
  await w.write(v.name, Int32Array.of(1))
  await w.write(v.name, Int32Array.of(2))
  for await (const f of st) {
    assert.equal(f.get(v.name)[0], 1)
    break
  }
  assert.equal((await st.next()).get(v.name)[0], 2)
  await w.close()
  await st.close()
})

each(test, 'decimate and bad options', async (t, c) => {
  const v = await c.channels.create({ name: unique('v'), dataType: 'f64', virtual: true })
  const st = await c.openStreamer(v.name, { decimate: 2 })
  const w = await c.openWriter({ start: tn.now(), channels: [v.key], mode: 'stream' })
  await w.write(v.name, Float64Array.of(0, 1, 2, 3))
  assert.deepEqual([...(await st.next()).get(v.name)], [0, 2])
  await w.close()
  await st.close()
  await assert.rejects(c.openStreamer(v.name, { lagPolicy: 'sometimes' }), { code: 'invalid_argument' })
  await assert.rejects(c.openStreamer(v.name, { lag: 'loud' }), { code: 'invalid_argument' })
  await assert.rejects(c.openStreamer(v.name, { onLag: 'event' }), { code: 'invalid_argument' })
  await assert.rejects(c.openStreamer(v.name, { capacity: 0 }), { code: 'invalid_argument' })
})
