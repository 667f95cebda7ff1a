#!/usr/bin/env node
// The browser client's decoding against the Node addon's, side by side (a program, not a
// timed test): issue 14 asks the web client to decode at least 50 % as fast.
//
//   node --experimental-websocket bindings-node/benchmarks/web_decode.mjs [--samples 20000000] [--runs 5]
//
// It starts `telemetron serve` on a scratch directory, writes one float64 channel and its
// index, then alternates, per run, a remote read by the addon and by `telemetron/web`
// (fetch + lib/web/codec.mjs) of the same range, and a pure decode of the same frame bytes
// by the web codec. Both reads return typed arrays over the received buffer. Reported:
// samples/s for each, and the web/addon ratio per run and as the median of those ratios.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as tn from '../../lib/index.mjs'
import * as web from '../../lib/web/index.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : d
}
const samples = arg('samples', 20_000_000)
const runs = arg('runs', 5)
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]

const port = await new Promise((res) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port
    s.close(() => res(p))
  })
})
const data = mkdtempSync(join(tmpdir(), 'tlm-webbench-'))
const node = spawn(join(ROOT, 'target/release/telemetron'), ['serve', '--data', data, '--listen', `127.0.0.1:${port}`], { stdio: 'ignore' })
const url = `http://127.0.0.1:${port}`
let addon
for (let i = 0; i < 300; i++) {
  try {
    addon = await tn.connect(url)
    break
  } catch {
    await new Promise((r) => setTimeout(r, 100))
  }
}
try {
  const w = await web.connect(url)
  await addon.channels.create([
    { name: 'time', isIndex: true },
    { name: 'value', dataType: 'f64', index: 'time' },
  ])
  const batch = 1_000_000
  for (let at = 0; at < samples; at += batch) {
    const n = Math.min(batch, samples - at)
    const ts = BigInt64Array.from({ length: n }, (_, i) => BigInt(at + i) * 1_000_000n)
    const v = Float64Array.from({ length: n }, (_, i) => Math.sin((at + i) / 1e4))
    await addon.write(ts[0], { time: ts, value: v })
  }
  const keys = (await w.channels.retrieve(['value', 'time'])).map((c) => c.key)
  const body = JSON.stringify({ range: { start: 0, end: samples * 1_000_000 }, keys })
  const raw = await (await w._fetch('frames/read', body)).arrayBuffer()
  console.log(`web decode: ${samples} float64 samples + index (${(raw.byteLength / 1e6).toFixed(0)} MB per read), node ${url}`)
  console.log('run   addon read/s   web read/s   web/addon   web decode only/s')
  const ratios = []
  for (let r = 0; r < runs; r++) {
    let t = performance.now()
    const a = await addon.read(undefined, ['value'])
    const ta = (performance.now() - t) / 1e3
    if (a.get('value').length !== samples) throw new Error('addon read the wrong count')
    t = performance.now()
    const b = await w.read(undefined, ['value'])
    const tw = (performance.now() - t) / 1e3
    if (b.get('value').length !== samples || b.get('value')[samples - 1] !== a.get('value')[samples - 1]) throw new Error('web read differs')
    t = performance.now()
    const d = web.decodeFrame(raw)
    const td = (performance.now() - t) / 1e3
    if (d.reduce((n, s) => n + s.data.length, 0) < samples) throw new Error('decode lost samples')
    ratios.push(ta / tw)
    console.log(
      `${String(r).padStart(3)} ${(samples / ta / 1e6).toFixed(1).padStart(12)} M ${(samples / tw / 1e6).toFixed(1).padStart(10)} M ${(ta / tw).toFixed(2).padStart(10)} ${(samples / td / 1e9).toFixed(1).padStart(14)} G`,
    )
  }
  console.log(`median web/addon throughput: ${median(ratios).toFixed(2)} (target >= 0.5)`)
} finally {
  await addon?.close()
  node.kill('SIGTERM')
  await new Promise((r) => node.once('exit', r))
  rmSync(data, { recursive: true, force: true })
}
