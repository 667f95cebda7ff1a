// Bad input never crashes the process: it is an Error with a stable code.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { each, stand, tn } from './support/backends.mjs'

test('open() refuses a bad path and a directory in use', async () => {
  await assert.rejects(tn.open(''), { code: 'invalid_argument' })
  await assert.rejects(tn.open('/proc/version'), (e) => e instanceof tn.TelemetronError && e.code.length > 0)
})

test('times: bigint, Date, ISO string, number; bad values are coded errors', () => {
  assert.equal(tn.toNanos(5n), 5n)
  assert.equal(tn.toNanos(new Date(1)), 1_000_000n)
  assert.equal(tn.toNanos('1970-01-01T00:00:00.002Z'), 2_000_000n)
  assert.equal(tn.toNanos(7), 7n)
  assert.throws(() => tn.toNanos('soon'), { code: 'invalid_argument' })
  assert.throws(() => tn.toNanos(NaN), { code: 'invalid_argument' })
  assert.ok(tn.now() > 1_700_000_000_000_000_000n)
  assert.equal(tn.TimeSpan.millis(2), 2_000_000n)
})

each(test, 'wrong argument types reject with codes, and the client keeps working', async (t, c) => {
  const s = await stand(c)
  const bad = [
    () => c.write(0n, 'nope'),
    () => c.write(0n, { [s.time]: { a: 1 } }),
    () => c.write(0n, { [s.time]: [1n, 'x'] }),
    () => c.write(2n ** 70n, { [s.time]: [1n] }),
    () => c.write(0n, { [s.time]: new Uint8ClampedArray(1) }),
    () => c.read({ start: 5n, end: 1n }, [s.pressure]),
    () => c.read('all', [s.pressure]),
    () => c.openWriter({ start: 0n, channels: [s.pressure], mode: 'sometimes' }),
    () => c.openWriter({ start: 0n, channels: [s.pressure], authorities: [1, 2, 3] }),
    () => c.openWriter({ start: 0n, channels: [] }),
    () => c.openWriter({ start: 0n, channels: [s.pressure], autoCommitIntervalMs: -1 }),
    () => c.channels.retrieve([{}]),
    () => c.channels.create([{ name: 5 }]),
    () => c.openIterator(undefined, [s.pressure], { chunkSize: 0.5 }),
  ]
  for (const f of bad) {
    await assert.rejects(f, (e) => {
      assert.ok(e instanceof tn.TelemetronError, `${f}: ${e}`)
      assert.match(e.code, /^[a-z_.]+$/)
      return true
    })
  }
  await c.write(0n, { [s.time]: [1n], [s.pressure]: [1] })
  assert.equal((await c.read(undefined, s.pressure)).length, 1)
})

test('connect: an unreachable node and contradictory credentials are coded errors', async () => {
  await assert.rejects(tn.connect('http://127.0.0.1:1', { timeoutMs: 2000 }), (e) => {
    assert.ok(e instanceof tn.TransportError, String(e))
    assert.match(e.code, /^net\./)
    assert.match(e.message, /telemetron serve/)
    return true
  })
  await assert.rejects(tn.connect('http://127.0.0.1:1', { token: 't', username: 'u' }), { code: 'invalid_argument' })
  await assert.rejects(tn.connect('http://127.0.0.1:1', { timeoutMs: -1 }), { code: 'invalid_argument' })
})

test('every code of the native module has its class, from the generated table', async () => {
  const { createRequire } = await import('node:module')
  const require = createRequire(import.meta.url)
  const native = require('../../lib/native.js')
  const errors = require('../../lib/errors.js')
  const codes = native.errorCodes()
  assert.ok(codes.length > 40)
  // lib/codes.js is generated from the same Rust table (core/tests/error_codes.rs checks it).
  assert.deepEqual(errors.CODES.map((c) => ({ ...c })), codes.map((c) => ({ ...c })))
  const missing = codes.filter(({ code }) => errors.classFor(code) === tn.TelemetronError)
  assert.deepEqual(missing, [], 'codes without a class: add their family to lib/errors.js')
  for (const { code, family } of codes) {
    const e = errors.make(code, 'm')
    assert.ok(e instanceof tn.TelemetronError && e.constructor !== tn.TelemetronError, code)
    assert.equal(e.code, code)
    assert.equal(typeof tn[e.constructor.name], 'function', `${code}: ${e.constructor.name} is exported`)
    assert.equal(errors.classFor(`${family}.something_new`), e.constructor, `${family} has one class`)
  }
  assert.equal(errors.make('server.busy', 'm').constructor, tn.TransportError)
  assert.equal(errors.make('range.not_found', 'm').constructor, tn.RangerError)
})
