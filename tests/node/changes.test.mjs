import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, unique, tn } from './support/backends.mjs'

each(test, 'channel and range changes arrive once, in order', async (t, c) => {
  const w = await c.watchChanges()
  const [ti, p] = [unique('cw_t'), unique('cw_p')]
  const made = await c.channels.create([
    { name: ti, isIndex: true },
    { name: p, dataType: 'f64', index: ti },
  ])
  await assert.rejects(c.channels.create({ name: ti, isIndex: true }), { code: 'channel.name_taken' })
  await c.channels.rename(p, `${p}_2`)
  await c.channels.setCompression(`${p}_2`, 'lz4')
  const r = await c.ranges.create({ name: unique('run'), timeRange: { start: 10n, end: 20n } })
  await r.meta.set('operator', 'ada')
  await c.channels.delete([`${p}_2`, ti])
  const seen = []
  for await (const change of w) {
    seen.push(change)
    if (seen.length === 6) break
  }
  assert.deepEqual(
    seen.map((x) => x.op),
    ['channel.create', 'channel.rename', 'channel.update', 'range.create', 'range.meta', 'channel.delete'],
  )
  assert.deepEqual(
    seen[0].channels.map((x) => x.key),
    made.map((x) => x.key),
  )
  assert.equal(seen[1].channels[0].name, `${p}_2`)
  assert.deepEqual([seen[2].channels[0].name, seen[2].channels[0].compression], [`${p}_2`, 'lz4'])
  assert.ok(seen[3].ranges[0] instanceof tn.Range)
  assert.equal(seen[3].ranges[0].key, r.key)
  assert.deepEqual([seen[4].key, seen[4].set, seen[4].deleted], [r.key, { operator: 'ada' }, []])
  assert.deepEqual(seen[5].keys, [made[1].key, made[0].key])
  // Closing ends a pending next() with null.
  const pending = w.next()
  await w.close()
  assert.equal(await pending, null)
  assert.equal(await w.next(), null)
})
