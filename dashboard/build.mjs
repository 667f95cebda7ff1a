#!/usr/bin/env node
// Bundle the dashboard (dashboard/src, TypeScript) into dashboard/dist, which the node
// embeds and serves at `/`. `npm run build:dashboard`; the tests build into a scratch
// directory (`node dashboard/build.mjs OUT`) and check dist is current.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const out = process.argv[2] ?? join(here, 'dist')
await build({
  entryPoints: [join(here, 'src/main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
})
const uplotCss = readFileSync(join(here, '../node_modules/uplot/dist/uPlot.min.css'), 'utf8')
writeFileSync(join(out, 'app.css'), `${uplotCss}\n${readFileSync(join(here, 'src/style.css'), 'utf8')}`)
copyFileSync(join(here, 'index.html'), join(out, 'index.html'))
