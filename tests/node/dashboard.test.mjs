// The dashboard the node serves at `/`: its bundle is current with dashboard/src, its
// TypeScript type-checks, and a node serves the page and the bundle the repository holds.
// (The page in a real browser, with Chromium, is not tested yet.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNode } from './support/backends.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const DIST = join(ROOT, 'dashboard/dist')
const FILES = ['index.html', 'app.js', 'app.css']

test('dashboard/dist is what dashboard/src builds to', () => {
  const out = mkdtempSync(join(tmpdir(), 'tlm-dash-'))
  try {
    const r = spawnSync(process.execPath, [join(ROOT, 'dashboard/build.mjs'), out], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stdout + r.stderr)
    for (const f of FILES) {
      assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(DIST, f))), `dashboard/dist/${f} is stale: run npm run build:dashboard`)
    }
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
})

test('the dashboard type-checks (tsc --strict)', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'dashboard/tsconfig.json')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('a node serves the page and its bundle without credentials', async (t) => {
  const node = await startNode(['--token', 'dash-token'])
  t.after(() => node.stop())
  const types = { 'index.html': 'text/html', 'app.js': 'text/javascript', 'app.css': 'text/css' }
  for (const [path, file] of [
    ['/', 'index.html'],
    ['/app.js', 'app.js'],
    ['/app.css', 'app.css'],
  ]) {
    const r = await fetch(`${node.url}${path}`)
    assert.equal(r.status, 200, path)
    assert.ok(r.headers.get('content-type').startsWith(types[file]), `${path}: ${r.headers.get('content-type')}`)
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(readFileSync(join(DIST, file))), path)
  }
  // The API behind it still needs the token.
  const api = await fetch(`${node.url}/api/v1/channels/search`, { method: 'POST', headers: { 'telemetron-protocol': '1' }, body: '{"term":""}' })
  assert.equal(api.status, 401)
})
