#!/usr/bin/env node
// The browser client's decoding against the Node addon's, side by side (a program, not a
// timed test): issue 14 asks the web client to decode at least 50 % as fast.
//
//   node --experimental-websocket bindings-node/benchmarks/web_decode.mjs [--samples 20000000] [--runs 5] [--browser]
//
// It starts `telemetron serve` on a scratch directory, writes one float64 channel and its
// index, then alternates, per run, a remote read by the addon and by `telemetron/web`
// (fetch + lib/web/codec.mjs) of the same range, and a pure decode of the same frame bytes
// by the web codec. Both reads return typed arrays over the received buffer. Reported:
// samples/s for each, and the web/addon ratio per run and as the median of those ratios.
//
// With --browser the web client's read runs in Chromium instead (puppeteer-core, the page
// served by the node, so the same origin and no CORS), timed in the page with
// performance.now(); the addon's read still runs here, alternating with it.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
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
const inBrowser = process.argv.includes('--browser')
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
let browser

/** Chromium on the node's page, with the web client bundled in as `globalThis.tnweb`. */
async function openPage(origin) {
  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))
  if (!chromium) throw new Error('Chromium is missing: run scripts/ensure-chromium.sh')
  const { default: puppeteer } = await import('puppeteer-core')
  const { build } = await import('esbuild')
  const bundle = await build({ entryPoints: [join(ROOT, 'lib/web/index.mjs')], bundle: true, format: 'iife', globalName: 'tnweb', write: false, platform: 'browser' })
  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
  const page = await browser.newPage()
  await page.goto(origin)
  await page.addScriptTag({ content: bundle.outputFiles[0].text })
  return page
}
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
  const page = inBrowser ? await openPage(url) : undefined
  // The web client's read of the whole channel: in this process, or in the page.
  // Also the transport alone: the same request's body fetched into one buffer, not decoded
  // (the ceiling any client over fetch can reach there).
  const measure = async (client, n, reqBody) => {
    let t = performance.now()
    const b = await client.read(undefined, ['value'])
    const secs = (performance.now() - t) / 1e3
    t = performance.now()
    await (await client._fetch('frames/read', reqBody)).arrayBuffer()
    return { secs, fetchSecs: (performance.now() - t) / 1e3, length: b.get('value').length, last: b.get('value')[n - 1] }
  }
  const webRead = async () => {
    if (!page) return measure(w, samples, body)
    return page.evaluate(
      async (n, reqBody, src) => {
        globalThis.client ??= await globalThis.tnweb.connect(location.origin)
        return new Function(`return ${src}`)()(globalThis.client, n, reqBody)
      },
      samples,
      body,
      measure.toString(),
    )
  }
  console.log(
    `web decode: ${samples} float64 samples + index (${(raw.byteLength / 1e6).toFixed(0)} MB per read), node ${url}, web client in ${page ? 'Chromium' : 'Node'}`,
  )
  console.log('run   addon read/s   web read/s   web/addon   web fetch only/s   web decode only/s')
  const ratios = []
  for (let r = 0; r < runs; r++) {
    let t = performance.now()
    const a = await addon.read(undefined, ['value'])
    const ta = (performance.now() - t) / 1e3
    if (a.get('value').length !== samples) throw new Error('addon read the wrong count')
    const b = await webRead()
    const tw = b.secs
    if (b.length !== samples || b.last !== a.get('value')[samples - 1]) throw new Error('web read differs')
    t = performance.now()
    const d = web.decodeFrame(raw)
    const td = (performance.now() - t) / 1e3
    if (d.reduce((n, s) => n + s.data.length, 0) < samples) throw new Error('decode lost samples')
    ratios.push(ta / tw)
    console.log(
      `${String(r).padStart(3)} ${(samples / ta / 1e6).toFixed(1).padStart(12)} M ${(samples / tw / 1e6).toFixed(1).padStart(10)} M ${(ta / tw).toFixed(2).padStart(10)} ${(samples / b.fetchSecs / 1e6).toFixed(1).padStart(16)} M ${(samples / td / 1e9).toFixed(1).padStart(17)} G`,
    )
  }
  console.log(`median web/addon throughput: ${median(ratios).toFixed(2)} (target >= 0.5)`)
} finally {
  await browser?.close()
  await addon?.close()
  node.kill('SIGTERM')
  await new Promise((r) => node.once('exit', r))
  rmSync(data, { recursive: true, force: true })
}
