// Control sequences: same semantics as the Python SDK's client.control.acquire.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, unique, tn } from './support/backends.mjs'

const rig = (c) => stand(c, { valve: 'u8', press: 'f64' })

each(test, 'acquire, set, waitUntil, release', async (t, c) => {
  const s = await rig(c)
  const ctrl = await c.control.acquire({ name: 'press seq', write: [s.valve], read: [s.press], authority: 200 })
  assert.equal(ctrl.hasControl(s.valve), true)
  assert.equal(ctrl.hasControl(), true)
  await ctrl.set(s.valve, 1)
  assert.equal(ctrl.get(s.valve), 1, 'a write channel reads as the last command')
  assert.equal(ctrl.get(s.press), undefined)
  assert.equal(await ctrl.waitUntil((x) => x.get(s.press) > 100, { timeout: 50 }), false, 'times out -> false')
  const states = await c.control.states([s.valve])
  assert.equal(states.length, 1)
  assert.equal(states[0].authority, 200)
  assert.equal(states[0].subjectName, 'press seq')
  assert.equal(states[0].subjectKey, ctrl.subjectKey)
  await ctrl.release()
  await ctrl.release() // idempotent
  assert.deepEqual(await c.control.states([s.valve]), [])
  const stored = await c.read(undefined, [s.valve])
  assert.deepEqual([...stored.get(s.valve)], [1], 'commands are stored with a timestamp on their index')
  await assert.rejects(ctrl.set(s.valve, 0), { code: 'engine.closed' })
})

each(test, 'read channels are seeded with the last stored sample', async (t, c) => {
  const s = await rig(c)
  await c.write(0n, { [s.time]: [1n, 2n], [s.press]: [10, 42.5] })
  const ctrl = await c.control.acquire({ name: 'seq', read: [s.press] })
  assert.equal(ctrl.get(s.press), 42.5)
  assert.equal(await ctrl.waitUntil((x) => x.get(s.press) > 40), true)
  await ctrl.release()
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
  assert.equal(await ctrl.waitWhile((x) => x.get(press.name) < 100), true)
  await w.close()
  await ctrl.release()
})

each(test, "losing control: 'lost' event, control.lost from the next call, and handback", async (t, c) => {
  const s = await rig(c)
  const low = await c.control.acquire({ name: 'low', write: [s.valve], authority: 100 })
  const lost = new Promise((r) => low.once('lost', r))
  const high = await c.control.acquire({ name: 'high', write: [s.valve], authority: 200 })
  assert.equal(low.hasControl(s.valve), false)
  assert.equal(high.hasControl(s.valve), true)
  assert.ok((await lost).includes(s.valve), 'the transfer on the control channel is noticed')
  await assert.rejects(low.set(s.valve, 1), (e) => {
    assert.ok(e instanceof tn.ControlError)
    assert.equal(e.code, 'control.lost')
    assert.deepEqual(e.channels, [s.valve])
    assert.match(e.message, /Raise its authority or wait for release/)
    return true
  })
  // the error is reported once; a command while not in control is dropped and reported again
  await assert.rejects(low.set(s.valve, 1), { code: 'control.lost' })
  await high.setAuthority(50)
  assert.equal(low.hasControl(s.valve), true, 'lowering the authority hands control back')
  await high.setAuthority({ [s.valve]: 250 })
  assert.equal(high.hasControl(s.valve), true)
  await high.release()
  assert.equal(low.hasControl(s.valve), true)
  await low.release()
})

each(test, "onLost 'ignore' silences the notice, never a command; a function is called", async (t, c) => {
  const s = await rig(c)
  const calls = []
  const a = await c.control.acquire({ name: 'a', write: [s.valve], authority: 10, onLost: (ctrl, names) => calls.push([ctrl.name, names]) })
  const b = await c.control.acquire({ name: 'b', write: [s.valve], authority: 20 })
  const quiet = await c.control.acquire({ name: 'quiet', write: [s.valve], authority: 5, onLost: 'ignore' })
  // A command that was not written rejects whatever onLost says.
  await assert.rejects(quiet.set(s.valve, 1), (e) => e.code === 'control.lost' && e.channels.includes(s.valve))
  await assert.rejects(a.set(s.valve, 1), { code: 'control.lost' })
  for (let i = 0; i < 500 && !calls.length; i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(calls.some(([n, names]) => n === 'a' && names.includes(s.valve)), 'the function is told of the loss')
  await assert.rejects(c.control.acquire({ write: [s.valve], onLost: 'sometimes' }), { code: 'invalid_argument' })
  await assert.rejects(c.control.acquire({ write: [s.valve], authority: 300 }), { code: 'invalid_argument' })
  await assert.rejects(b.set(unique('nope'), 1), { code: 'invalid_argument' })
  for (const x of [a, b, quiet]) await x.release()
})

each(test, 'client.control is a Control, as in the Python SDK; ControlClient is its deprecated alias', async (t, c) => {
  assert.ok(c.control instanceof tn.Control)
  assert.equal(tn.ControlClient, tn.Control)
})

each(test, 'writer confirm: a write either took effect or its report names what did not', async (t, c) => {
  const s = await stand(c)
  const start = tn.now()
  const low = await c.openWriter({ start, channels: [s.pressure], authority: 100 })
  assert.deepEqual(await low.write({ [s.time]: [start], [s.pressure]: [1] }, undefined, { confirm: true }), { unauthorized: [] })
  assert.deepEqual(await low.confirm(), { unauthorized: [] })
  const high = await c.openWriter({ start: start + 10n ** 12n, channels: [s.pressure], authority: 200 })
  // Refused at once or dropped by the node in flight: either way, named in this report.
  const r = await low.write({ [s.time]: [start + 1n], [s.pressure]: [2] }, undefined, { confirm: true })
  assert.deepEqual([...r.unauthorized].sort(), [s.pressure, s.time].sort())
  await high.close()
  await low.close()
  assert.deepEqual([...(await c.read([start, start + 10n], [s.pressure])).get(s.pressure)], [1])
})

each(test, 'waitWhile and remainsTrueFor follow the core rules; a throwing condition rejects', async (t, c) => {
  const press = await c.channels.create({ name: unique('press_v'), dataType: 'f64', virtual: true })
  const ctrl = await c.control.acquire({ name: unique('holds'), read: [press.name] })
  const w = await c.openWriter({ start: tn.now(), channels: [press.key], mode: 'stream' })
  const feed = (async () => {
    for (let i = 0; i < 40; i++) {
      await w.write(press.name, [i < 5 ? 50 : 150])
      await new Promise((r) => setTimeout(r, 10))
    }
  })()
  assert.equal(await ctrl.waitWhile((x) => !(x.get(press.name) > 100), { timeout: 5_000 }), true)
  const t0 = Date.now()
  assert.equal(await ctrl.remainsTrueFor((x) => x.get(press.name) > 100, 150, { timeout: 5_000 }), true)
  assert.ok(Date.now() - t0 >= 145, 'answered only after the condition held for the whole duration')
  assert.equal(await ctrl.remainsTrueFor((x) => x.get(press.name) > 1000, 10, { timeout: 60 }), false)
  await assert.rejects(ctrl.waitUntil(() => { throw new RangeError('bad condition') }), RangeError)
  await feed
  await w.close()
  await ctrl.release()
})

each(test, 'loop: fixed rate, jitter stats, overruns skip ticks', async (t) => {
  const ticks = []
  for await (const tick of tn.loop(500, { count: 50 })) ticks.push(tick)
  // Numbering counts skipped ticks: under load a tick may be skipped, never bunched.
  assert.equal(ticks[0].index, 0)
  for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i].index, ticks[i - 1].index + 1 + ticks[i].missed)
  const lp = tn.loop(200, { duration: 100 })
  let n = 0
  for await (const _ of lp) n++
  const st = lp.stats()
  assert.equal(n + st.overruns, 20, 'delivered plus skipped ticks fill the 100 ms at 200 Hz')
  assert.equal(st.ticks, n)
  assert.ok(st.lateP50 <= st.lateP99 && st.lateP99 <= st.lateMax)
  const slow = tn.loop(1000, { count: 3 })
  const seen = []
  for await (const tick of slow) {
    seen.push(tick)
    const until = Date.now() + 4
    while (Date.now() < until) {} // a body that overruns its 1 ms period
  }
  assert.ok(seen[1].missed >= 2 && slow.stats().overruns >= 2)
  assert.throws(() => tn.loop(0), { code: 'invalid_argument' })
})

each(test, 'abort writes the safe values and every command is recorded', async (t, c) => {
  const s = await rig(c)
  const name = unique('burn')
  const ctrl = await c.control.acquire({ name, write: [s.valve], safe: { [s.valve]: 0 } })
  let i = 0
  for await (const _ of ctrl.loop(1000, { count: 3 })) await ctrl.set(s.valve, ++i)
  await ctrl.abort()
  await ctrl.abort() // idempotent
  assert.deepEqual([...(await c.read(undefined, [s.valve])).get(s.valve)], [1, 2, 3, 0])
  const rec = await c.read(undefined, ctrl.recordChannels)
  assert.deepEqual([...rec.get(`${name}/commands/channel`)], [s.valve, s.valve, s.valve, s.valve])
  assert.deepEqual([...rec.get(`${name}/commands/value`)], [1, 2, 3, 0])
  assert.deepEqual([...rec.get(`${name}/commands/authority`)], [200, 200, 200, 200])
  assert.deepEqual([...rec.get(`${name}/commands/outcome`)], ['ok', 'ok', 'ok', 'ok'])
  await assert.rejects(c.control.acquire({ name: unique('bad'), write: [s.valve], safe: { [s.press]: 0 } }), { code: 'invalid_argument' })
})

each(test, 'a loop in a sequence rejects with control.lost when a higher authority takes over', async (t, c) => {
  const s = await rig(c)
  const ctrl = await c.control.acquire({ name: unique('low'), write: [s.valve], authority: 100, record: false })
  await ctrl.set(s.valve, 1)
  const ops = await c.control.acquire({ name: unique('ops'), write: [s.valve], authority: 250, record: false })
  await assert.rejects(
    (async () => {
      for await (const _ of ctrl.loop(100, { duration: 5_000 })) {
      }
    })(),
    { code: 'control.lost' },
  )
  await ops.release()
  await ctrl.release()
})
