import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { each, unique, tempDir, tn } from './support/backends.mjs'

// Generator -> filter on severity -> discard; `min` is the filter's threshold.
const pipeline = (name, min) => `flow: ${name}
nodes:
  gen: {type: generator, rows: 4, rate: 500, to: [keep]}
  keep: {type: filter, where: {column: severity_number, op: '>=', value: ${min}}, to: [out]}
  out: {type: discard}
`
const node = (info, name) => info.nodes.find((n) => n.name === name)

async function waitFor(what, cond, ms = 10_000) {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

each(test, 'flows: deploy, live reconfiguration, restart, stop', async (t, c) => {
  const name = unique('pipe')
  const info = await c.flows.deploy(pipeline(name, 13))
  assert.equal(info.state, 'running')
  assert.equal(typeof info.started, 'bigint')
  assert.deepEqual(info.nodes.map((n) => [n.name, n.type, n.reconfigurable]), [['gen', 'generator', true], ['keep', 'filter', true], ['out', 'discard', false]])
  assert.ok((await c.flows.list()).some((f) => f.name === name))
  await waitFor('messages at the exporter', async () => node(await c.flows.get(name), 'out').received >= 10)

  // Only the threshold changes: live, not restarted; then no row passes.
  const r = await c.flows.reconfigure(name, pipeline(name, 100))
  assert.equal(r.applied, 'live')
  assert.deepEqual(r.nodes, ['keep'])
  assert.equal(r.flow.started, info.started)
  await waitFor('the new threshold to apply', async () => {
    const before = await c.flows.get(name)
    await waitFor('more messages', async () => node(await c.flows.get(name), 'keep').received >= node(before, 'keep').received + 50)
    return node(await c.flows.get(name), 'out').received === node(before, 'out').received
  })

  // A new node: restarted after draining the old flow.
  const sampled = pipeline(name, 1).replace('to: [keep]}', 'to: [thin]}\n  thin: {type: sample, every: 2, to: [keep]}')
  const r2 = await c.flows.reconfigure(name, sampled, { drain: 5 })
  assert.equal(r2.applied, 'restarted')
  assert.equal(r2.reason, 'nodes were added or removed')
  assert.ok(r2.flow.started > info.started)

  const last = await c.flows.stop(name, { drain: 5 })
  assert.equal(last.state, 'stopped')
  assert.equal(last.drained, true)
  assert.deepEqual(last.errors, [])
  assert.ok(!(await c.flows.list()).some((f) => f.name === name))
})

each(test, 'flows: errors are coded and leave the running flow alone', async (t, c) => {
  const name = unique('errs')
  const file = join(tempDir(), 'flow.yaml')
  writeFileSync(file, pipeline(name, 1))
  const info = await c.flows.deploy(pathToFileURL(file))
  await assert.rejects(c.flows.deploy({ path: file }), (e) => e instanceof tn.FlowError && e.code === 'flow.name_taken')
  await assert.rejects(c.flows.reconfigure(name, pipeline(name, 1).replace('discard', 'dicard')), (e) => {
    assert.ok(e instanceof tn.FlowError)
    assert.equal(e.code, 'flow.config')
    assert.match(e.message, /line 5: node `out`: unknown component type `dicard`/)
    return true
  })
  await assert.rejects(c.flows.get(unique('nope')), { code: 'flow.not_found' })
  await assert.rejects(c.flows.stop(name, { drain: -1 }), { code: 'invalid_argument' })
  await assert.rejects(c.flows.deploy(42), { code: 'invalid_argument' })
  const now = await c.flows.get(name)
  assert.equal(now.state, 'running')
  assert.equal(now.started, info.started)
  await c.flows.stop(name)
})
