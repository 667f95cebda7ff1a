import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, unique, tn } from './support/backends.mjs'

each(test, 'create one and many channels, retrieve by name and key', async (t, c) => {
  const time = unique('time')
  const idx = await c.channels.create({ name: time, isIndex: true })
  assert.equal(idx.dataType, 'timestamp')
  assert.equal(idx.isIndex, true)
  assert.equal(idx.index, idx.key)
  const [p, v] = await c.channels.create([
    { name: unique('pressure'), dataType: 'f64', index: time },
    { name: unique('valve'), dataType: 'u8', virtual: true },
  ])
  assert.equal(p.index, idx.key)
  assert.equal(p.isVirtual, false)
  assert.equal(v.isVirtual, true)
  assert.equal(v.index, undefined)
  assert.deepEqual(await c.channels.retrieve(p.name), p)
  assert.deepEqual(await c.channels.retrieve(p.key), p)
  assert.deepEqual(await c.channels.retrieve([v.key, p.name]), [v, p])
  assert.deepEqual(await c.channels.retrieve(p), p)
})

each(test, 'compression is part of the definition; a codec that does not fit is refused', async (t, c) => {
  const time = unique('time')
  const [idx, strain] = await c.channels.create([
    { name: time, isIndex: true },
    { name: unique('strain'), dataType: 'f32', index: time, compression: 'pcodec' },
  ])
  assert.equal(idx.compression, 'default')
  assert.equal(strain.compression, 'pcodec')
  assert.equal((await c.channels.retrieve(strain.key)).compression, 'pcodec')
  await assert.rejects(c.channels.create({ name: unique('x'), dataType: 'f64', index: time, compression: 'gzip' }), (e) => {
    assert.equal(e.code, 'invalid_argument')
    assert.match(e.message, /"pcodec"/)
    return true
  })
  const name = unique('valve')
  await assert.rejects(c.channels.create({ name, dataType: 'u8', index: time, compression: 'pcodec' }), (e) => {
    assert.equal(e.code, 'channel.invalid')
    assert.match(e.message, /"zstd"/)
    return true
  })
  await assert.rejects(c.channels.retrieve(name), { code: 'channel.not_found' })
})

each(test, 'compression changes after creation; a choice that does not fit is refused', async (t, c) => {
  const time = unique('time')
  const [idx, strain] = await c.channels.create([
    { name: time, isIndex: true },
    { name: unique('strain'), dataType: 'f32', index: time },
  ])
  const changed = await c.channels.setCompression(strain.name, 'zstd')
  assert.deepEqual([changed.key, changed.compression], [strain.key, 'zstd'])
  assert.equal((await c.channels.retrieve(strain.key)).compression, 'zstd')
  await assert.rejects(c.channels.setCompression(strain.key, 'gzip'), (e) => {
    assert.equal(e.code, 'invalid_argument')
    assert.match(e.message, /"lz4"/)
    return true
  })
  await assert.rejects(c.channels.setCompression(idx.key, 'pcodec'), (e) => {
    assert.equal(e.code, 'channel.invalid')
    assert.match(e.message, /index channels stay raw/)
    return true
  })
  assert.equal((await c.channels.retrieve(idx.key)).compression, 'default')
})

each(test, 'retrieveIfNameExists returns the existing channel', async (t, c) => {
  const name = unique('time')
  const a = await c.channels.create({ name, isIndex: true })
  const b = await c.channels.create({ name, isIndex: true }, { retrieveIfNameExists: true })
  assert.equal(b.key, a.key)
  await assert.rejects(c.channels.create({ name, isIndex: true }), (e) => {
    assert.ok(e instanceof tn.ChannelError)
    assert.ok(e instanceof tn.TelemetronError)
    assert.equal(e.code, 'channel.name_taken')
    assert.match(e.message, /pick another name/)
    return true
  })
})

each(test, 'search, rename and delete', async (t, c) => {
  const base = unique('srch')
  const [a] = await c.channels.create([{ name: `${base}_a`, isIndex: true }, { name: `${base}_b`, isIndex: true }])
  assert.equal((await c.channels.search(base)).length, 2)
  const renamed = await c.channels.rename(a.key, `${base}_renamed`)
  assert.equal(renamed.key, a.key)
  assert.equal((await c.channels.retrieve(`${base}_renamed`)).key, a.key)
  await c.channels.delete(`${base}_renamed`)
  await assert.rejects(c.channels.retrieve(a.key), { code: 'channel.not_found' })
  assert.equal((await c.channels.search(base)).length, 1)
})

each(test, 'bad definitions are coded errors', async (t, c) => {
  await assert.rejects(c.channels.create({ name: unique('x'), dataType: 'float128' }), (e) => {
    assert.equal(e.code, 'invalid_argument')
    assert.match(e.message, /expected one of/)
    return true
  })
  await assert.rejects(c.channels.create({ name: unique('x') }), { code: 'invalid_argument' })
  await assert.rejects(c.channels.create({ name: unique('d'), dataType: 'f64', index: unique('missing') }), (e) => e.code.startsWith('channel.'))
  await assert.rejects(c.channels.create({ name: unique('c'), isIndex: true, concurrency: 'sometimes' }), { code: 'invalid_argument' })
  await assert.rejects(c.channels.retrieve(unique('nope')), tn.ChannelError)
})

each(test, 'placement names a cluster node: refused outside a cluster, nothing created', async (t, c) => {
  const name = unique('placed')
  await assert.rejects(c.channels.create({ name, isIndex: true }, { place: 'daq-2' }), (e) => {
    assert.equal(e.code, 'invalid_argument')
    assert.match(e.message, /cluster/)
    return true
  })
  await assert.rejects(c.channels.retrieve(name), (e) => e.code === 'channel.not_found')
})
