// The same suite runs against three backends: an embedded engine (`open`), a
// `telemetron serve` node started here (`connect`), and the gateway of a cluster (etcd, a
// node `store` and a node `gateway` with `--place store`, docs/cluster.md §10), whose
// channels are all stored on the other node. Each test gets a fresh client; on the remote
// and cluster backends tests share one server (or cluster) per test file, so they use
// unique channel names.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after } from 'node:test'
import * as tn from '../../../lib/index.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const BIN = join(ROOT, 'target', 'release', 'telemetron')
const dirs = []

export function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'tn-node-'))
  dirs.push(d)
  return d
}

// Registered at load time, so these run once after every test of the file (a hook
// registered inside a test would run after that test).
after(async () => {
  if (server) await server.stop()
  if (cluster) await cluster.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

let counter = 0
/** A name unique within this process (servers are shared by the tests of a file). */
export function unique(base) {
  counter += 1
  return `${base}_${process.pid}_${counter}`
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })
}

let server = null

/**
 * Start a `telemetron serve` node on a fresh data directory with `extra` arguments;
 * `stop()` ends it. (The remote backend's shared node is one of these.)
 */
export async function startNode(extra = [], { setup } = {}) {
  if (!existsSync(BIN)) {
    const b = spawnSync('cargo', ['build', '--release', '-p', 'telemetron'], { cwd: ROOT, stdio: 'inherit' })
    if (b.status !== 0) throw new Error('building the telemetron server binary failed')
  }
  const port = await freePort()
  const data = tempDir()
  // Before the node opens it: e.g. `telemetron users add` on the data directory.
  if (setup) setup(data, BIN)
  const proc = spawn(BIN, ['serve', '--data', data, '--listen', `127.0.0.1:${port}`, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr.on('data', (d) => { stderr += d })
  const exited = new Promise((res) => proc.once('exit', (code) => res(code)))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))])
    if (code !== undefined) throw new Error(`telemetron serve exited with ${code}: ${stderr.trim()}`)
    try {
      const c = await tn.connect(url)
      await c.close()
      break
    } catch (e) {
      if (e.code === 'auth.required') break // up, and asking for credentials
      if (Date.now() > deadline) {
        proc.kill('SIGKILL')
        throw new Error(`telemetron serve did not accept connections within 30 s (${e.message}): ${stderr.trim()}`)
      }
    }
  }
  const stop = async () => {
    proc.kill('SIGTERM')
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(t)
  }
  return { url, proc, exited, stop, data, stderr: () => stderr }
}

/** The remote backend's shared node (started on first use). */
export async function startServer() {
  if (!server) server = await startNode()
  return server
}

let cluster = null

/** An etcd on free loopback ports over a fresh directory; `stop()` ends it. */
async function startEtcd() {
  const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' })
  const exe = which.stdout.trim()
  if (!exe) throw new Error("etcd is missing: run scripts/ensure-deps.sh (Debian's etcd-server)")
  const [client, peer] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${client}`
  const peerUrl = `http://127.0.0.1:${peer}`
  const proc = spawn(
    exe,
    ['--data-dir', join(tempDir(), 'etcd'), '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `default=${peerUrl}`],
    { stdio: 'ignore' },
  )
  const exited = new Promise((res) => proc.once('exit', (code) => res(code)))
  const deadline = Date.now() + 20_000
  for (;;) {
    const up = await new Promise((res) => {
      const s = createConnection({ host: '127.0.0.1', port: client }, () => { s.destroy(); res(true) })
      s.once('error', () => res(false))
    })
    if (up) break
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error('etcd did not listen within 20 s')
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  const stop = async () => {
    proc.kill('SIGKILL')
    await exited
  }
  return { url, stop }
}

/** The cluster backend's etcd, `store` and `gateway` (started on first use). */
export async function startCluster() {
  if (!cluster) {
    const etcd = await startEtcd()
    const join = ['--cluster', etcd.url, '--lease-ttl', '2']
    const started = []
    try {
      started.push(await startNode([...join, '--name', 'store']))
      started.push(await startNode([...join, '--name', 'gateway', '--place', 'store']))
    } catch (e) {
      for (const n of started) await n.stop()
      await etcd.stop()
      throw e
    }
    const [store, gateway] = started
    cluster = {
      etcd,
      store,
      gateway,
      stop: async () => {
        await gateway.stop()
        await store.stop()
        await etcd.stop()
      },
    }
  }
  return cluster
}

/**
 * The backends every test runs against. `client()` gives a fresh client.
 * (`TELEMETRON_TEST_BACKENDS=embedded` narrows a local run; CI runs all three.)
 */
const ALL = [
  {
    name: 'embedded',
    remote: false,
    async client() {
      return tn.open(tempDir())
    },
  },
  {
    name: 'remote',
    remote: true,
    async client() {
      const s = await startServer()
      return tn.connect(s.url)
    },
  },
  {
    name: 'cluster',
    remote: true,
    async client() {
      const c = await startCluster()
      return tn.connect(c.gateway.url)
    },
  },
]
const only = process.env.TELEMETRON_TEST_BACKENDS?.split(',')
export const BACKENDS = only ? ALL.filter((b) => only.includes(b.name)) : ALL

/**
 * Run `fn(t, client, backend)` once per backend as `name [backend]`, closing the client
 * afterwards.
 */
export function each(test, name, fn, options = {}) {
  for (const b of BACKENDS) {
    test(`${name} [${b.name}]`, options, async (t) => {
      const c = await b.client()
      try {
        await fn(t, c, b)
      } finally {
        await c.close().catch(() => {})
      }
    })
  }
}

/** An index `time` and data channels `{name: dataType}` with unique names. */
export async function stand(client, data = { pressure: 'f64' }) {
  const time = unique('time')
  const defs = [{ name: time, isIndex: true }]
  const names = {}
  for (const [n, dt] of Object.entries(data)) {
    names[n] = unique(n)
    defs.push({ name: names[n], dataType: dt, index: time })
  }
  const chans = await client.channels.create(defs)
  return { time, ...names, channels: chans }
}

export { tn }
