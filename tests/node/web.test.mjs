// The browser client (`telemetron/web`) in Node: its codec against the Rust codec's golden
// vectors (both directions), then its API against a real node, checked against the Node
// addon reading the same node.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNode, tn, unique } from './support/backends.mjs'
import { CodecError, connect, decodeFrame, encodeFrame } from '../../lib/web/index.mjs'

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'frames')
const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8'))
const BIG = new Set(['u64', 'i64', 'timestamp'])

/** A manifest sample as the web codec gives it (64-bit integers as bigints). */
const expected = (s) => (BIG.has(s.dataType) ? s.data.map((x) => BigInt(x)) : s.data)
const plain = (data) => Array.from(data, (x) => (x instanceof Uint8Array ? [...x] : x))

test('the web codec decodes every golden vector the Rust codec wrote', () => {
  for (const { name, series } of manifest) {
    const bytes = readFileSync(join(GOLDEN, `${name}.bin`))
    const got = decodeFrame(new Uint8Array(bytes))
    assert.equal(got.length, series.length, name)
    got.forEach((g, i) => {
      const want = series[i]
      assert.equal(g.key, want.key, name)
      assert.equal(g.dataType, want.dataType, name)
      assert.deepEqual(plain(g.data), expected(want), `${name} ${want.dataType}`)
      assert.deepEqual(g.timeRange, { start: BigInt(want.timeRange.start), end: BigInt(want.timeRange.end) })
      assert.equal(g.alignment, BigInt(want.alignment))
    })
  }
})

test('the web codec encodes the golden frames byte for byte, and writes the reverse vectors', () => {
  const update = process.env.TELEMETRON_UPDATE_GOLDEN !== undefined
  for (const { name, series } of manifest) {
    const mine = encodeFrame(
      series.map((s) => ({
        key: s.key,
        dataType: s.dataType,
        data: s.dataType === 'bytes' ? s.data.map((b) => Uint8Array.from(b)) : expected(s),
        timeRange: { start: BigInt(s.timeRange.start), end: BigInt(s.timeRange.end) },
        alignment: BigInt(s.alignment),
      })),
    )
    assert.deepEqual(Buffer.from(mine), readFileSync(join(GOLDEN, `${name}.bin`)), `${name}: bytes differ from the Rust codec's`)
    const web = join(GOLDEN, `web-${name}.bin`)
    if (update) writeFileSync(web, mine)
    // core/tests/client/golden_frames.rs decodes these with the Rust codec.
    assert.deepEqual(Buffer.from(mine), readFileSync(web), `web-${name}.bin is stale; regenerate with TELEMETRON_UPDATE_GOLDEN=1`)
  }
})

test('decoding shares an aligned buffer and refuses malformed frames', () => {
  const frame = encodeFrame([{ key: 1, dataType: 'f64', data: new Float64Array([1, 2, 3]) }])
  const buf = frame.buffer
  const [s] = decodeFrame(buf)
  assert.equal(s.data.buffer, buf, 'a view over the received buffer, not a copy')
  // A frame starting at an odd offset still decodes (into a copy).
  const odd = new Uint8Array(frame.length + 1)
  odd.set(frame, 1)
  assert.deepEqual([...decodeFrame(odd.subarray(1))[0].data], [1, 2, 3])
  const bad = (bytes, re) => assert.throws(() => decodeFrame(bytes), (e) => e instanceof CodecError && e.code === 'protocol.violation' && re.test(e.message))
  bad(frame.subarray(0, 10), /truncated/)
  bad(frame.subarray(0, frame.length - 8), /truncated|not 3/)
  const magic = frame.slice()
  magic[0] = 0
  bad(magic, /magic/)
  const trailing = new Uint8Array(frame.length + 8)
  trailing.set(frame)
  bad(trailing, /trailing/)
  const tag = frame.slice()
  tag[16 + 4] = 99
  bad(tag, /unknown data type/)
  const text = encodeFrame([{ key: 2, dataType: 'string', data: ['ok'] }])
  text[16 + 48] = 0xff
  bad(text, /UTF-8/)
})

test('the web client against a real node, checked against the Node addon', async (t) => {
  const node = await startNode(['--user', 'ops', '--password', 'web-password-1'])
  t.after(() => node.stop())
  await assert.rejects(connect(node.url), { code: 'auth.required' })
  await assert.rejects(connect(node.url, { username: 'ops', password: 'nope' }), { code: 'auth.invalid_credentials' })
  const web = await connect(node.url, { username: 'ops', password: 'web-password-1' })
  assert.equal(web.node.protocol, 1)
  const addon = await tn.connect(node.url, { username: 'ops', password: 'web-password-1' })
  t.after(() => addon.close())

  const changes = await web.watchChanges()
  const [time, press, note] = [unique('wt'), unique('wp'), unique('wn')]
  const made = await web.channels.create([
    { name: time, isIndex: true },
    { name: press, dataType: 'f64', index: time, compression: 'pcodec' },
    { name: note, dataType: 'string', index: time },
  ])
  assert.deepEqual(
    made.map((c) => [c.dataType, c.isIndex, c.compression]),
    [
      ['timestamp', true, 'default'],
      ['f64', false, 'pcodec'],
      ['string', false, 'default'],
    ],
  )
  const created = await changes.next()
  assert.equal(created.op, 'channel.create')
  assert.deepEqual(
    created.channels.map((c) => c.name),
    [time, press, note],
  )
  await changes.close()

  // The compression changes after creation, as the addon sees; a string stays raw.
  assert.equal((await web.channels.setCompression(press, 'zstd')).compression, 'zstd')
  assert.equal((await addon.channels.retrieve(press)).compression, 'zstd')
  await assert.rejects(web.channels.setCompression(note, 'lz4'), { code: 'channel.invalid' })
  assert.equal((await web.channels.setCompression(press, 'pcodec')).compression, 'pcodec')

  const n = 10_000
  const t0 = 1_700_000_000_000_000_000n
  const ts = BigInt64Array.from({ length: n }, (_, i) => t0 + BigInt(i) * 1_000_000n)
  const p = Float64Array.from({ length: n }, (_, i) => (i === 4321 ? 99 : Math.sin(i / 100)))
  const notes = Array.from({ length: n }, (_, i) => `n${i}`)
  const end = await web.write(t0, { [time]: ts, [press]: p, [note]: notes })
  assert.equal(end, ts[n - 1] + 1n)

  // Plain reads: the same samples the addon reads; the index comes along.
  const f = await web.read(undefined, [press, note])
  assert.deepEqual(f.get(time), await addon.read(undefined, time))
  assert.deepEqual(f.get(press), p)
  assert.deepEqual(f.get(note), notes)
  assert.deepEqual(await web.timeRange(press), { start: t0, end: ts[n - 1] + 1n })
  // Reductions, computed on the node: the same points as the addon gets.
  const r = await web.read(undefined, [press], { points: 100 })
  assert.equal(r.get(press).length, 100)
  assert.equal(Math.max(...r.get(press)), 99)
  assert.deepEqual(r.get(press), (await addon.read(undefined, [press], { points: 100 })).get(press))
  const avg = await web.read(undefined, press, { points: 10, reduce: 'average' })
  assert.equal(avg.length, 10)
  await assert.rejects(web.read(undefined, [note], { points: 10 }), { code: 'invalid_argument' })
  await assert.rejects(web.read(undefined, ['no such channel']), { code: 'channel.not_found' })

  // Iterators: chunks as the addon's, reduced chunks, seeks.
  const chunks = []
  for await (const c of web.iterate(undefined, [press], { chunkSize: 3000 })) chunks.push(c.get(press).length)
  assert.deepEqual(chunks, [3000, 3000, 3000, 1000])
  const reduced = []
  for await (const c of web.iterate(undefined, [press], { chunkSize: 5000, points: 10 })) reduced.push(c.get(press))
  assert.deepEqual(
    reduced.map((x) => x.length),
    [10, 10],
  )
  assert.equal(Math.max(...reduced[0]), 99)
  const it = await web.openIterator(undefined, [press])
  assert.ok(await it.seekLast())
  assert.ok(await it.prev({ samples: 2 }))
  assert.deepEqual(it.value.get(press), p.subarray(n - 2))
  assert.ok(await it.seekGE(ts[100]))
  assert.ok(await it.next({ time: 3_000_000n }))
  assert.deepEqual(it.value.get(time), ts.subarray(100, 103))
  await it.close()
  await assert.rejects(web.openIterator(undefined, [note], { points: 5 }), { code: 'invalid_argument' })

  // Streaming: a write by the addon reaches the web streamer.
  const s = await web.openStreamer([press])
  await addon.write(ts[n - 1] + 10n, { [time]: [ts[n - 1] + 10n], [press]: [7.5], [note]: ['late'] })
  const live = await s.next()
  assert.deepEqual([...live.get(press)], [7.5])
  await s.close()
  assert.equal(await s.next(), null)

  // Writers and control: the web client takes a command channel from the addon's writer
  // by authority, the addon sees it on the control-state channel, and gets it back.
  const valve = unique('valve')
  await web.channels.create({ name: valve, dataType: 'u8', isVirtual: true })
  const control = await addon.controlChannel()
  assert.equal(await web.controlChannel(), control)
  const states = await addon.openStreamer([control])
  const low = await addon.openWriter({ start: tn.now(), channels: [valve], authority: 50, name: 'sequence' })
  const panel = await web.openWriter({ channels: [valve], authority: 100, name: 'web panel' })
  assert.ok(panel.hasControl(valve))
  const cmds = await addon.openStreamer([valve])
  await panel.write({ [valve]: Uint8Array.of(1) })
  const cmd = await cmds.next()
  assert.deepEqual([...cmd.get(valve)], [1])
  let sawPanel = false
  for await (const f of states) {
    const transfers = f.get(control).flatMap((x) => x.transfers)
    if (transfers.some((x) => x.to?.subject?.name === 'web panel')) {
      sawPanel = true
      break
    }
  }
  assert.ok(sawPanel, 'the transfer to the web panel is on the control-state channel')
  await panel.setAuthority(10) // below the sequence's 50: control goes back
  assert.ok(!panel.hasControl(valve))
  await assert.rejects(panel.setAuthority(300), { code: 'invalid_argument' })
  await panel.close()
  assert.ok(panel.closed)
  await low.close()
  await cmds.close()
  await states.close()
  // A stored write through a writer, committed.
  const wr = await web.openWriter({ start: ts[n - 1] + 100n, channels: [press], autoCommit: false })
  // `note` is not one of its channels: refused at once, nothing sent.
  await assert.rejects(wr.write({ [time]: BigInt64Array.of(ts[n - 1] + 100n), [press]: Float64Array.of(3.25), [note]: ['w'] }), {
    code: 'write.not_in_writer',
  })
  // What only the node checks comes back on the next call, which then does nothing.
  await wr.write({ [time]: BigInt64Array.of(t0), [press]: Float64Array.of(0) })
  await assert.rejects(wr.commit(), { code: 'write.before_start' })
  await wr.write({ [time]: BigInt64Array.of(ts[n - 1] + 100n), [press]: Float64Array.of(3.25) })
  assert.equal(await wr.commit(), ts[n - 1] + 101n)
  await wr.close()
  assert.deepEqual([...(await web.read([ts[n - 1] + 100n, ts[n - 1] + 101n], press))], [3.25])

  const rng = await web.ranges.create({ name: unique('run'), timeRange: [t0, end] })
  assert.deepEqual((await web.ranges.retrieve(rng.key)).timeRange, { start: t0, end })
  const child = await web.ranges.create({ name: 'ignition', timeRange: [t0, t0 + 10n], parent: rng.key, metaData: { by: 'web' } })
  assert.deepEqual(
    (await web.ranges.children(rng.key)).map((r) => r.key),
    [child.key],
  )
  assert.equal((await web.ranges.rename(child.key, 'ignition 2')).name, 'ignition 2')
  assert.deepEqual((await web.ranges.setLabels(child.key, ['hot'])).labels, ['hot'])
  await web.ranges.setMeta(child.key, { operator: 'ada' })
  await web.ranges.deleteMeta(child.key, 'by')
  assert.deepEqual(await web.ranges.meta(child.key), { operator: 'ada' })
  assert.deepEqual(await addon.ranges.retrieve(child.key).then((r) => r.meta.get()), { operator: 'ada' })
  await web.ranges.delete(rng.key)
  await web.channels.delete([press, note])
  await assert.rejects(web.channels.retrieve(press), { code: 'channel.not_found' })
})
