// The package works from require() (this file) and import (the .mjs tests).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const os = require('node:os')
const path = require('node:path')
const fs = require('node:fs')
const tn = require('../..')

test('CommonJS require exposes the API', async () => {
  for (const k of ['open', 'connect', 'Frame', 'TelemetronError', 'ChannelError', 'now', 'debug', 'TimeRange']) {
    assert.ok(k in tn, k)
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tn-cjs-'))
  const c = await tn.open(dir)
  const ch = await c.channels.create({ name: 'x', isIndex: true })
  assert.equal(ch.name, 'x')
  await c.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('ESM import resolves to the same module', async () => {
  const esm = await import('telemetron')
  assert.equal(esm.open, tn.open)
  assert.equal(esm.default, tn)
})
