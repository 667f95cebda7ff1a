// The README's TypeScript quick start runs as written (it is plain JS as well as TS).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { tempDir } from './support/backends.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

test('README TypeScript quick start runs', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.split('## TypeScript quick start')[1]
  assert.ok(section, 'README has a TypeScript quick start')
  const code = /```ts\n([\s\S]*?)```/.exec(section)[1]
  const dir = tempDir()
  const file = join(dir, 'quickstart.mjs')
  writeFileSync(file, code.replace("from 'telemetron'", `from '${pathToFileURL(join(ROOT, 'lib/index.mjs')).href}'`))
  const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /Float64Array\(3\) \[ 14\.7, 15\.2, 15\.9 \]/)
  assert.match(r.stdout, /live 16\.1/)
  assert.match(r.stdout, /pressurised: true/)
})
