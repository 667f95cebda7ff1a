#!/usr/bin/env node
// Node SDK benchmarks (a program, not a timed test). Mirrors `telemetron bench ingest|read`
// so the figures compare one to one, and measures streamer latency at 1 kHz.
//
//   node bindings-node/benchmarks/bench.mjs ingest  [--channels 100] [--batch 10000] [--runs 3]
//   node bindings-node/benchmarks/bench.mjs read    [--samples 100000000] [--runs 3]
//   node bindings-node/benchmarks/bench.mjs latency [--rate 1000] [--count 5000] [--runs 3] [--url URL]
//   node bindings-node/benchmarks/bench.mjs all --compare   # also runs the Rust benches first
//
// `--compare` runs target/release/telemetron bench ingest/read with the same parameters
// right before the Node run and prints Node as a percentage of Rust.
// Latency: a writer in another client writes one sample (its send time, ns) per tick; the
// streamer's `for await` loop records receive time - send time. Embedded: writer and
// streamer share the process and the engine (an engine directory has one owner). Remote
// (`--url`, or `--serve` to start `telemetron serve`): the writer is a separate process
// with its own connection.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import * as tn from '../../lib/index.mjs'

// Between read runs the previous run's 800 MB must be freed, as the Rust bench drops its
// frame: in JS that takes a garbage collection (external buffers are freed by V8's GC).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const BIN = join(ROOT, 'target/release/telemetron')

function args(argv) {
  const out = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const k = a.slice(2)
      const v = argv[i + 1]
      if (v === undefined || v.startsWith('--')) out[k] = true
      else {
        out[k] = v
        i++
      }
    } else out._.push(a)
  }
  return out
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const rate = (x) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : x >= 1e6 ? `${(x / 1e6).toFixed(1)} M` : `${(x / 1e3).toFixed(1)} k`)
let BASE = tmpdir()
const scratch = () => mkdtempSync(join(BASE, 'tn-node-bench-'))

/** Fill `out` (BigInt64Array) with base, base+1, ... without per-sample BigInt allocation. */
function stamps(out, base) {
  const w = new Uint32Array(out.buffer, out.byteOffset, out.length * 2)
  for (let i = 0; i < out.length; i++) {
    const n = base + i // < 2^53
    w[2 * i] = n >>> 0
    w[2 * i + 1] = Math.floor(n / 4294967296)
  }
  return out
}

function rust(argv) {
  const r = spawnSync(BIN, ['bench', ...argv, '--json', '--dir', BASE], { encoding: 'utf8', maxBuffer: 1 << 26 })
  if (r.status !== 0) throw new Error(`telemetron bench ${argv.join(' ')} failed: ${r.stderr}`)
  return r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
}

// ---------------------------------------------------------------------------------------

async function ingest(o) {
  const channels = Number(o.channels ?? 100)
  const batch = Number(o.batch ?? 10_000)
  const runs = Number(o.runs ?? 3)
  const perFrame = channels * batch
  const frames = Number(o.frames ?? Math.min(2_000_000, Math.max(20, Math.floor(200_000_000 / perFrame))))
  console.log(`node ingest: ${channels} float64 channels x ${batch}-sample typed-array frames, ${frames} frames, commit every frame, in ${BASE}`)
  const rates = []
  const rustRates = []
  for (let run = 0; run < runs; run++) {
    if (o.compare) {
      // Interleaved with the Node runs so both see the same disk and page-cache state.
      const [row] = rust(['ingest', '--channels', String(channels), '--batch', String(batch), '--frames', String(frames), '--runs', '1'])
      rustRates.push(row.samples_per_s)
      console.log(`  run ${run} rust: ${row.seconds.toFixed(3)} s, ${rate(row.samples_per_s)} samples/s`)
    }
    const dir = scratch()
    const c = await tn.open(dir)
    const defs = [{ name: 'time', isIndex: true }, ...Array.from({ length: channels }, (_, i) => ({ name: `ch_${i}`, dataType: 'f64', index: 'time' }))]
    const chans = await c.channels.create(defs)
    const index = chans[0].key
    const keys = chans.slice(1).map((x) => x.key)
    // Data arrays are made once and shared by every frame (as the Rust bench shares series);
    // timestamps are generated per frame.
    const data = keys.map((_, ch) => Float64Array.from({ length: batch }, (_, i) => (i + ch) * 0.5))
    const w = await c.openWriter({ start: 0n, channels: keys, autoCommit: false })
    const t0 = process.hrtime.bigint()
    let ts = 0
    for (let f = 0; f < frames; f++) {
      const frame = new Map([[index, stamps(new BigInt64Array(batch), ts)]])
      ts += batch
      for (let k = 0; k < keys.length; k++) frame.set(keys[k], data[k])
      await w.write(frame)
      await w.commit()
    }
    await w.close()
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    await c.close()
    rmSync(dir, { recursive: true, force: true })
    const sps = (frames * perFrame) / secs
    rates.push(sps)
    console.log(`  run ${run} node: ${secs.toFixed(3)} s, ${rate(sps)} samples/s, ${((sps * 8) / 1e6).toFixed(0)} MB/s`)
  }
  const rustMedian = rustRates.length ? median(rustRates) : undefined
  if (rustMedian) console.log(`rust ingest median: ${rate(rustMedian)} samples/s`)
  const m = median(rates)
  console.log(`node ingest median: ${rate(m)} samples/s${rustMedian ? ` = ${((100 * m) / rustMedian).toFixed(0)}% of Rust` : ''}`)
  return { nodeSamplesPerS: m, rustSamplesPerS: rustMedian }
}

async function read(o) {
  const samples = Number(o.samples ?? 100_000_000)
  const batch = Number(o.batch ?? 100_000)
  const runs = Number(o.runs ?? 3)
  let rustMedian
  if (o.compare) {
    const rows = rust(['read', '--samples', String(samples), '--batch', String(batch), '--runs', String(runs)])
    rustMedian = median(rows.map((r) => r.bytes_per_s))
    console.log(`rust read: runs ${rows.map((r) => `${(r.bytes_per_s / 1e9).toFixed(2)} GB/s`).join(', ')}; median ${(rustMedian / 1e9).toFixed(2)} GB/s (${rows[0].series} series)`)
  }
  const dir = scratch()
  {
    const c = await tn.open(dir)
    const [time, value] = await c.channels.create([{ name: 'time', isIndex: true }, { name: 'value', dataType: 'f64', index: 'time' }])
    const w = await c.openWriter({ start: 0n, channels: [value.key], autoCommit: false, durability: 'none' })
    for (let written = 0; written < samples; ) {
      const n = Math.min(batch, samples - written)
      const v = new Float64Array(n)
      for (let i = 0; i < n; i++) v[i] = written + i
      await w.write(new Map([[time.key, stamps(new BigInt64Array(n), written)], [value.key, v]]))
      written += n
      if (written % (batch * 16) === 0) await w.commit()
    }
    await w.close()
    await c.close()
  }
  console.log(`node read: one float64 channel, ${samples} samples (${((samples * 8) / 1e6).toFixed(0)} MB) into Float64Arrays over Rust memory`)
  const rates = []
  for (let run = 0; run < runs; run++) {
    const c = await tn.open(dir) // reopened each run, like the Rust bench
    const t0 = process.hrtime.bigint()
    const f = await c.read(undefined, ['value'])
    const tRead = Number(process.hrtime.bigint() - t0) / 1e9
    let sum = 0
    let n = 0
    for (const s of f.seriesOf('value')) {
      const d = s.data
      n += d.length
      for (let i = 0; i < d.length; i++) sum += d[i]
    }
    const tAll = Number(process.hrtime.bigint() - t0) / 1e9
    if (n !== samples || sum !== ((samples - 1) * samples) / 2) throw new Error(`read back ${n} samples, sum ${sum}`)
    const bps = (n * 8) / tRead
    rates.push(bps)
    console.log(`  run ${run}: read ${tRead.toFixed(4)} s = ${(bps / 1e9).toFixed(2)} GB/s (${f.series.length} series); read+sum in JS ${((n * 8) / tAll / 1e9).toFixed(2)} GB/s`)
    await c.close()
    await new Promise((r) => setImmediate(r))
    gc()
    // let V8's concurrent sweeper finish before the next timed read (2 cores here)
    await new Promise((r) => setTimeout(r, 500))
  }
  rmSync(dir, { recursive: true, force: true })
  const m = median(rates)
  console.log(`node read median: ${(m / 1e9).toFixed(2)} GB/s${rustMedian ? ` = ${((100 * m) / rustMedian).toFixed(0)}% of Rust` : ''}`)
  return { nodeBytesPerS: m, rustBytesPerS: rustMedian }
}

// ---------------------------------------------------------------------------------------

// Paced by sleeping, never spinning: on two cores a spinning writer steals the time slice
// of the receiver (and of the tokio threads both depend on). Node timers have 1 ms
// resolution, so ticks are scheduled against absolute due times and the achieved rate is
// reported.
async function pace(hz, count, tick) {
  const period = 1e9 / hz
  const t0 = Number(process.hrtime.bigint())
  for (let i = 0; i < count; i++) {
    const left = (t0 + i * period - Number(process.hrtime.bigint())) / 1e6
    if (left >= 1) await new Promise((r) => setTimeout(r, Math.floor(left)))
    await tick(i)
  }
  return (count - 1) / ((Number(process.hrtime.bigint()) - t0) / 1e9)
}

/** Writer role (a separate process for the remote variant). */
async function writerRole(o) {
  const c = await tn.connect(o.url)
  const w = await c.openWriter({ start: tn.now(), channels: [o.channel], mode: 'stream' })
  process.send?.('ready')
  await new Promise((r) => process.once('message', r))
  const hz = await pace(Number(o.rate), Number(o.count), () => w.write(o.channel, BigInt64Array.of(tn.now())))
  process.send?.(hz)
  await w.close()
  await c.close()
}

async function freePort() {
  return new Promise((res) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })
}

async function latencyRun(c, o, remoteUrl) {
  const hz = Number(o.rate ?? 1000)
  const count = Number(o.count ?? 5000)
  const warm = Math.min(200, Math.floor(count / 10))
  const ch = await c.channels.create({ name: `lat_${process.pid}_${Date.now()}`, dataType: 'i64', virtual: true })
  const s = await c.openStreamer(ch.name)
  const lat = []
  const reader = (async () => {
    for await (const f of s) {
      const recv = tn.now()
      for (const sent of f.get(ch.key)) lat.push(Number(recv - sent) / 1e3)
      if (lat.length >= count) break
    }
  })()
  let achieved
  if (remoteUrl) {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'writer', '--url', remoteUrl, '--channel', ch.name, '--rate', String(hz), '--count', String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    await new Promise((r) => child.once('message', r))
    child.once('message', (m) => { achieved = m })
    child.send('go')
    await new Promise((r) => child.once('exit', r))
  } else {
    const w = await c.openWriter({ start: tn.now(), channels: [ch.key], mode: 'stream' })
    achieved = await pace(hz, count, () => w.write(ch.key, BigInt64Array.of(tn.now())))
    await w.close()
  }
  await reader
  await s.close()
  const xs = lat.slice(warm)
  return { p50: pct(xs, 50), p99: pct(xs, 99), n: xs.length, hz: achieved }
}

async function latency(o) {
  const runs = Number(o.runs ?? 3)
  let url = o.url
  let server
  let data
  if (o.serve) {
    const port = await freePort()
    data = scratch()
    server = spawn(BIN, ['serve', '--data', data, '--listen', `127.0.0.1:${port}`], { stdio: 'ignore' })
    url = `http://127.0.0.1:${port}`
    for (let i = 0; ; i++) {
      try {
        await (await tn.connect(url)).close()
        break
      } catch (e) {
        if (i > 300) throw e
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }
  const out = {}
  for (const mode of url ? ['embedded', 'remote'] : ['embedded']) {
    const res = []
    for (let run = 0; run < runs; run++) {
      const dir = mode === 'embedded' ? scratch() : null
      const c = mode === 'embedded' ? await tn.open(dir) : await tn.connect(url)
      const r = await latencyRun(c, o, mode === 'remote' ? url : null)
      await c.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
      res.push(r)
      console.log(`  ${mode} run ${run}: p50 ${r.p50.toFixed(1)} µs, p99 ${r.p99.toFixed(1)} µs (${r.n} samples, ${Math.round(r.hz)} Hz achieved)`)
    }
    out[mode] = { p50: median(res.map((r) => r.p50)), p99: median(res.map((r) => r.p99)) }
    console.log(`node streamer latency (${mode}) median of runs: p50 ${out[mode].p50.toFixed(1)} µs, p99 ${out[mode].p99.toFixed(1)} µs`)
  }
  if (server) {
    const exited = new Promise((r) => server.once('exit', r))
    server.kill('SIGTERM')
    await exited
    rmSync(data, { recursive: true, force: true })
  }
  return out
}

const o = args(process.argv.slice(2))
if (o.dir) BASE = resolve(o.dir)
const cmd = o._[0] ?? 'all'
if (cmd !== 'writer') console.log(`node ${process.version}, 1-minute load average ${loadavg()[0].toFixed(2)}`)
const run = {
  ingest: () => ingest(o),
  read: () => read(o),
  latency: () => latency(o),
  writer: () => writerRole(o),
  all: async () => {
    const r = { ingest: await ingest(o), read: await read(o), latency: await latency(o) }
    if (o.json) console.log(JSON.stringify(r))
  },
}[cmd]
if (!run) {
  console.error(`unknown scenario ${cmd}; use ingest | read | latency | all`)
  process.exit(2)
}
await run()
