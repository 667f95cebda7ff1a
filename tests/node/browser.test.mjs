// The dashboard in a real browser: Debian's Chromium driven by puppeteer-core, against
// `telemetron serve --demo` with a viewer and an operator. Screenshots go to
// target/test-artifacts/. Chromium comes from scripts/ensure-chromium.sh (make test-node);
// without it this test fails rather than skip.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import puppeteer from 'puppeteer-core'
import { startNode, tn } from './support/backends.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const ARTIFACTS = join(ROOT, 'target/test-artifacts')
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))
const PYTHON = join(ROOT, '.venv/bin/python')

function addUser(bin, data, name, role, ...extra) {
  const r = spawnSync(bin, ['users', 'add', name, '--role', role, ...extra, '--data', data], { input: `${name}-password\n`, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
}

async function login(browser, url, user) {
  const page = await browser.newPage()
  await page.setViewport({ width: 1400, height: 900 })
  page.on('pageerror', (e) => console.error(`page error (${user}): ${e.message}`))
  await page.goto(url)
  await page.waitForSelector('#login:not([hidden])')
  await page.type('#login input[name=username]', user)
  await page.type('#login input[name=password]', `${user}-password`)
  await page.click('#login button')
  await page.waitForSelector('#app:not([hidden])')
  await page.waitForSelector('#channels li[data-name="pressure_1"]')
  return page
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`) })

test('the dashboard in Chromium: live plot, history, refusals, control, change capture', { timeout: 120_000 }, async (t) => {
  assert.ok(CHROMIUM, 'Chromium is missing: run scripts/ensure-chromium.sh (make test-node does)')
  mkdirSync(ARTIFACTS, { recursive: true })
  const node = await startNode(['--demo'], {
    setup: (data, bin) => {
      addUser(bin, data, 'vic', 'viewer')
      addUser(bin, data, 'olga', 'operator', '--max-authority', '150', '--channels', 'valve_*')
      addUser(bin, data, 'ada', 'admin')
    },
  })
  t.after(() => node.stop())
  const sdk = await tn.connect(node.url, { username: 'vic', password: 'vic-password' })
  t.after(() => sdk.close())
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.after(() => browser.close())

  // A viewer logs in and plots pressure_1: the plot moves.
  const viewer = await login(browser, node.url, 'vic')
  await viewer.click('#channels li[data-name="pressure_1"]')
  await viewer.waitForSelector('.plot[data-name="pressure_1"] canvas')
  const frames0 = await viewer.evaluate(() => globalThis.telemetron.frames)
  await viewer.waitForFunction((n) => globalThis.telemetron.frames > n + 3, { timeout: 10_000 }, frames0)
  const drawn = await viewer.evaluate(() => {
    const key = globalThis.telemetron.selected[0]
    const u = globalThis.telemetron.plots.get(key).u
    return u.data[0].length
  })
  assert.ok(drawn > 10, `the live plot shows ${drawn} points`)
  await shot(viewer, 'live')

  // The value it shows is the stored value at that time, read through the SDK.
  const shown = await viewer.evaluate(() => {
    const key = globalThis.telemetron.selected[0]
    const b = globalThis.telemetron.buffers.get(key)
    return { t: b.t[b.t.length - 1], v: b.v[b.v.length - 1], text: globalThis.telemetron.plots.get(key).value.textContent }
  })
  assert.equal(Number(shown.text), shown.v)
  // (Live frames reach the page before the demo commits them: wait for the commit. The
  // page keeps times as float seconds, exact to a few hundred ns.)
  const at = BigInt(Math.round(shown.t * 1e9))
  let stored = []
  for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    stored = [...((await sdk.read([at - 1000n, at + 1000n], 'pressure_1')) ?? [])]
    if (stored.length) break
  }
  assert.ok(
    stored.some((x) => x === shown.v),
    `shown ${shown.v} at ${shown.t} is among the stored values ${stored}`,
  )

  // Zoom into history by dragging across the plot.
  const over = await viewer.$('.plot[data-name="pressure_1"] .u-over')
  const box = await over.boundingBox()
  await viewer.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2)
  await viewer.mouse.down()
  await viewer.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 })
  await viewer.mouse.up()
  await viewer.waitForFunction(() => document.getElementById('mode').textContent === 'history')
  await viewer.waitForFunction(() => {
    const key = globalThis.telemetron.selected[0]
    return globalThis.telemetron.plots.get(key).u.data[0].length > 0
  })
  await shot(viewer, 'history')

  // The viewer may not take valve_cmd: the page says so.
  await viewer.select('#cmd-channel', 'valve_cmd')
  await viewer.click('#acquire')
  await viewer.waitForFunction(() => document.getElementById('panel-status').textContent.includes('refused'))
  const refusal = await viewer.$eval('#panel-status', (e) => e.textContent)
  assert.match(refusal, /auth\.forbidden/)
  await shot(viewer, 'viewer-refused')

  // An operator takes valve_cmd at 100 and opens the valve; the demo's valve follows.
  const op = await login(browser, node.url, 'olga')
  await op.select('#cmd-channel', 'valve_cmd')
  await op.$eval('#cmd-authority', (e) => {
    e.value = '100'
  })
  await op.click('#acquire')
  await op.waitForFunction(() => document.getElementById('panel-status').textContent.startsWith('holding valve_cmd'))
  await op.$eval('#cmd-value', (e) => {
    e.value = '1'
  })
  await op.click('#set')
  const deadline = Date.now() + 10_000
  let valve = 0
  while (Date.now() < deadline) {
    const f = await sdk.readLatest(['valve_state'])
    valve = f.get('valve_state')?.at(-1) ?? 0
    if (valve === 1) break
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.equal(valve, 1, 'the demo valve follows the operator')
  await viewer.waitForSelector('#control tr[data-channel="valve_cmd"]')
  const holder = await viewer.$eval('#control tr[data-channel="valve_cmd"]', (e) => e.textContent)
  assert.match(holder, /dashboard \(olga\)/)
  await shot(op, 'operator')

  // A channel created from Python (an admin) appears in the open page's list.
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: the Python SDK is installed into .venv by make check`)
  const script = [
    'import sys, telemetron as tn',
    'c = tn.connect(sys.argv[1], username="ada", password="ada-password")',
    'c.channels.create(name="from_python", data_type="f64", index="stand_time")',
  ].join('\n')
  const py = spawnSync(PYTHON, ['-c', script, node.url], { encoding: 'utf8' })
  assert.equal(py.status, 0, py.stderr)
  await viewer.waitForSelector('#channels li[data-name="from_python"]', { timeout: 10_000 })
  await shot(viewer, 'changes')
  await op.click('#release')
})
