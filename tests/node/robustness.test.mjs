// Every native export is called with wrong arguments: each call must end in an Error (never
// a crash or a hang), and the client must keep working afterwards.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, tn } from './support/backends.mjs'
import native from '../../bindings-node/native/index.js'

const BAD = [
  [], [undefined], [null], [{}], [[]], ['x'], [-1], [2 ** 40], [NaN], [1n], [[{}]], [[null, 1]],
  [new Float32Array(3)], [{ start: 'x', end: 2 }], [{ start: 5n, end: 1n }], [[1, 2], [3]],
  [['x'], [{ a: 1 }]], [2n ** 64n, [], []], [{ channels: 'nope', start: 0n }], [{ bounds: {}, channels: [] }],
]
const SKIP = new Set(['constructor', 'close', 'abort'])

function methods(obj) {
  return Object.getOwnPropertyNames(Object.getPrototypeOf(obj)).filter((m) => !SKIP.has(m) && typeof obj[m] === 'function')
}

async function hammer(obj, label) {
  let calls = 0
  for (const m of methods(obj)) {
    for (const args of BAD) {
      calls += 1
      try {
        await obj[m](...args)
      } catch (e) {
        assert.ok(e instanceof Error, `${label}.${m}(${args.map(String)}) threw a non-Error: ${e}`)
      }
    }
  }
  return calls
}

each(test, 'native methods survive wrong arguments', async (t, c) => {
  const s = await stand(c)
  const n = c._native
  const w = await n.openWriter({ start: 0n, channels: [s.pressure] })
  const st = await n.openStreamer([s.pressure])
  const it = await n.openIterator({ bounds: { start: 0n, end: 10n }, channels: [s.pressure] })
  // a pending streamer next() must not stop the hammering of the other methods
  let calls = 0
  calls += await hammer(n, 'Client')
  calls += await hammer(w, 'Writer')
  calls += await hammer(it, 'Iterator')
  const pending = st.next()
  for (const args of BAD) {
    try {
      await st.updateChannels(...args)
    } catch (e) {
      assert.ok(e instanceof Error)
    }
  }
  await st.close()
  // some "bad" arguments are valid keys (e.g. the control channel), so the pending next()
  // may have received a frame; it must settle either way
  assert.ok(typeof (await pending) === 'object')
  for (const f of ['now', 'debugAddressOf', 'debugInputAddress']) {
    for (const args of BAD) {
      try {
        native[f](...args)
      } catch (e) {
        assert.ok(e instanceof Error)
      }
    }
  }
  t.diagnostic(`${calls} bad calls`)
  await w.close()
  // still usable
  await c.write(0n, { [s.time]: [100n], [s.pressure]: [1] })
  assert.equal((await c.read(undefined, s.pressure)).length, 1)
})
