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
