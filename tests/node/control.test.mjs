import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, unique, tn } from './support/backends.mjs'

async function rig(c) {
  const s = await stand(c, { valve: 'u8', press: 'f64' })
  return s
}

each(test, 'acquire, set, waitUntil, release', async (t, c) => {
  const s = await rig(c)
  const ctrl = await c.control.acquire({ name: 'press seq', write: [s.valve], read: [s.press], authority: 200 })
  assert.equal(ctrl.hasControl(s.valve), true)
  await ctrl.set(s.valve, 1)
  assert.equal(await ctrl.waitUntil((x) => x.get(s.valve) === 1, { timeout: 5000 }), true)
  // another writer (the "stand") answers on the pressure channel
  const pressTime = await c.channels.retrieve(s.time)
  assert.ok(pressTime.isIndex)
  assert.equal(await ctrl.waitUntil((x) => x.get(s.press) > 100, { timeout: 50 }), false, 'times out -> false')
  const states = await c.control.states([s.valve])
  assert.equal(states.length, 1)
  assert.equal(states[0].authority, 200)
  assert.equal(states[0].subjectName, 'press seq')
  await ctrl.release()
  assert.deepEqual(await c.control.states([s.valve]), [])
  const stored = await c.read(undefined, [s.valve])
  assert.deepEqual([...stored.get(s.valve)], [1], 'commands are stored with a timestamp on their index')
})

each(test, 'waitUntil sees values written by another writer', async (t, c) => {
  const s = await rig(c)
  const press = await c.channels.create({ name: unique('press_v'), dataType: 'f64', virtual: true })
  const ctrl = await c.control.acquire({ name: 'seq', write: [s.valve], read: [press.name] })
  const waiting = ctrl.waitUntil((x) => x.get(press.name) > 100, { timeout: 10_000 })
  const w = await c.openWriter({ start: tn.now(), channels: [press.key], mode: 'stream' })
  for (const v of [50, 90, 120]) await w.write(press.name, [v])
  assert.equal(await waiting, true)
  assert.equal(ctrl.get(press.name), 120)
  assert.equal(ctrl.state[press.name], 120)
  await w.close()
  await ctrl.release()
})

each(test, 'a higher authority takes control; release hands it back', async (t, c) => {
  const s = await rig(c)
  const low = await c.control.acquire({ name: 'low', write: [s.valve], authority: 100 })
  const high = await c.control.acquire({ name: 'high', write: [s.valve], authority: 200 })
  assert.equal(low.hasControl(s.valve), false)
  assert.equal(high.hasControl(s.valve), true)
  const lost = new Promise((r) => low.once('unauthorized', r))
  const report = await low.set(s.valve, 1)
  assert.deepEqual(report.unauthorized.sort(), [s.time, s.valve].sort().filter((n) => report.unauthorized.includes(n)))
  assert.ok(report.unauthorized.includes(s.valve))
  assert.ok((await lost).includes(s.valve))
  await high.setAuthority(50)
  assert.equal(low.hasControl(s.valve), true, 'lowering the authority hands control back')
  await high.setAuthority({ [s.valve]: 250 })
  assert.equal(high.hasControl(s.valve), true)
  await high.release()
  assert.equal(low.hasControl(s.valve), true)
  await low.release()
})

each(test, 'errOnUnauthorized rejects with control.unauthorized', async (t, c) => {
  const s = await rig(c)
  const high = await c.control.acquire({ name: 'high', write: [s.valve], authority: 250 })
  await assert.rejects(c.control.acquire({ name: 'strict', write: [s.valve], authority: 10, errOnUnauthorized: true }), (e) => {
    assert.ok(e instanceof tn.ControlError)
    assert.equal(e.code, 'control.unauthorized')
    assert.match(e.message, /raise this writer's authority or wait for release/)
    return true
  })
  await assert.rejects(high.set(unique('nope'), 1), { code: 'write.not_in_writer' })
  await assert.rejects(c.control.acquire({ write: [s.valve], authority: 300 }), { code: 'invalid_argument' })
  await high.release()
  await assert.rejects(high.set(s.valve, 1), { code: 'engine.closed' })
})
