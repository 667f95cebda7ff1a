import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, unique, tn } from './support/backends.mjs'

each(test, 'ranges with metadata: create, retrieve, search, read, rename, delete', async (t, c) => {
  const s = await stand(c)
  await c.write(0n, { [s.time]: [0n, 10n, 20n], [s.pressure]: [1, 2, 3] })
  const name = unique('hotfire')
  const r = await c.ranges.create({ name, timeRange: [5n, 25n], labels: ['hotfire'], color: '#ff8800', metaData: { operator: 'ada' } })
  assert.equal(r.name, name)
  assert.deepEqual(r.timeRange, { start: 5n, end: 25n })
  assert.deepEqual(await r.meta.get(), { operator: 'ada' })
  await r.meta.set({ stand: 'B', run: '12' })
  await r.meta.set('valve', 'open')
  assert.equal(await r.meta.get('stand'), 'B')
  await r.meta.delete('run')
  assert.deepEqual(await r.meta.get(), { operator: 'ada', stand: 'B', valve: 'open' })
  const back = await c.ranges.retrieve(r.key)
  assert.equal(back.color, '#ff8800')
  assert.deepEqual(back.labels, ['hotfire'])
  assert.ok((await c.ranges.search(name)).some((x) => x.key === r.key))
  assert.ok((await c.ranges.search('ada')).some((x) => x.key === r.key), 'metadata values are searched')
  assert.equal((await c.ranges.search(name, [100n, 200n])).length, 0)
  const f = await r.read([s.pressure])
  assert.deepEqual([...f.get(s.pressure)], [2, 3])
  const renamed = await r.rename(`${name}_b`)
  assert.equal(renamed.name, `${name}_b`)
  await c.ranges.delete(r)
  await assert.rejects(c.ranges.retrieve(r.key), (e) => {
    assert.ok(e instanceof tn.RangerError)
    assert.equal(e.code, 'range.not_found')
    return true
  })
})

each(test, 'invalid ranges are coded errors', async (t, c) => {
  await assert.rejects(c.ranges.create({ name: '', timeRange: [0n, 1n] }), { code: 'range.invalid' })
  await assert.rejects(c.ranges.create({ name: 'x', timeRange: [2n, 1n] }), (e) => e.code === 'invalid_argument' || e.code === 'range.invalid')
  await assert.rejects(c.ranges.retrieve('not-a-uuid'), { code: 'invalid_argument' })
})

each(test, 'child ranges, labels, and search by labels, exact metadata and parent', async (t, c) => {
  const campaign = unique('campaign') // metadata value that only this test's ranges carry
  const mk = (name, start, extra = {}) =>
    c.ranges.create({ name, timeRange: [start, start + 100n], labels: ['hotfire'], metaData: { campaign, stand: 'B' }, ...extra })
  const a = await mk('run a', 0n)
  const b = await mk('run b', 1000n, { metaData: { campaign, stand: 'C' } })
  assert.equal(a.parent, undefined)
  const ignition = await a.createChild({ name: 'ignition', timeRange: [10n, 20n], labels: ['Ignition'], metaData: { campaign } })
  const whole = await a.createChild({ name: 'whole run', metaData: { campaign } })
  const pulse = await c.ranges.create({ name: 'pulse', timeRange: [11n, 12n], parent: ignition.key, metaData: { campaign } })
  assert.equal(ignition.parent, a.key)
  assert.deepEqual(whole.timeRange, a.timeRange)
  assert.equal((await c.ranges.retrieve(pulse.key)).parent, ignition.key)
  assert.deepEqual((await a.children()).map((r) => r.name), ['whole run', 'ignition'])
  assert.deepEqual(await b.children(), [])
  const names = async (...args) => (await c.ranges.search(...args)).map((r) => r.name)
  assert.deepEqual(await names('', null, { metaData: { campaign, stand: 'C' } }), ['run b'])
  assert.deepEqual(await names('', null, { metaData: { campaign, stand: 'c' } }), [], 'metadata values match exactly')
  assert.deepEqual(await names(campaign, null, { labels: ['HOTFIRE'] }), ['run a', 'run b'])
  assert.deepEqual(await names('', undefined, { labels: 'ignition', metaData: { campaign } }), ['ignition'])
  assert.deepEqual(await names('run', null, { parent: a }), ['whole run'])
  assert.deepEqual(await names(campaign, [15n, 16n], { parent: a.key }), ['whole run', 'ignition'])
  const relabelled = await b.setLabels(['cold flow', 'anomaly'])
  assert.deepEqual(relabelled.labels, ['cold flow', 'anomaly'])
  assert.deepEqual(b.labels, ['cold flow', 'anomaly'])
  assert.deepEqual(await names(campaign, null, { labels: ['anomaly'] }), ['run b'])
  await assert.rejects(b.setLabels(['']), { code: 'range.invalid' })
  await assert.rejects(
    c.ranges.create({ name: 'orphan', timeRange: [0n, 1n], parent: '00000000-0000-0000-0000-000000000007' }),
    (e) => e instanceof tn.RangerError && e.code === 'range.invalid' && /parent/.test(e.message),
  )
  await assert.rejects(c.ranges.search('', null, { parent: 'nope' }), { code: 'invalid_argument' })
  await c.ranges.delete(a)
  for (const r of [a, ignition, whole, pulse]) await assert.rejects(c.ranges.retrieve(r.key), { code: 'range.not_found' })
  assert.deepEqual(await names(campaign), ['run b'])
  await c.ranges.delete(b)
})
