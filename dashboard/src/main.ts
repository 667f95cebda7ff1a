// The node's dashboard: channels, live plots with zoom into history, ranges, control
// state and an operator panel. Served by `telemetron serve` at `/` (bundled with esbuild
// into dashboard/dist by `npm run build:dashboard`). It is a client of the node like any
// other: everything goes through `telemetron/web` (lib/web), with the user's role.
import uPlot from 'uplot'
import {
  type Channel,
  type Client,
  connect,
  type Frame,
  type Range,
  type Streamer,
  TelemetronError,
  type Writer,
} from '../../lib/web/index.mjs'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

/** What the page shows, for tests and for people: the last error and the plotted values. */
const state = {
  client: undefined as Client | undefined,
  channels: new Map<number, Channel>(),
  selected: [] as number[],
  live: true,
  windowS: 30,
  /** Per plotted channel: times (s since epoch) and values received live. */
  buffers: new Map<number, { t: number[]; v: number[] }>(),
  plots: new Map<number, { u: uPlot; value: HTMLElement }>(),
  streamer: undefined as Streamer | undefined,
  writer: undefined as Writer | undefined,
  control: new Map<number, { name: string; authority: number }>(),
  frames: 0,
  /** Something to draw: new live data, a new plot, a new window, back to live. */
  dirty: true,
}
;(globalThis as unknown as { telemetron: typeof state }).telemetron = state

function show(e: unknown) {
  const text = e instanceof TelemetronError ? `${e.code}: ${e.message}` : String((e as Error)?.message ?? e)
  $('error').textContent = text
  console.error(text)
}

const secs = (ns: bigint) => Number(ns) / 1e9
const nanos = (s: number) => BigInt(Math.round(s * 1e9))

async function start(client: Client, who: string) {
  state.client = client
  $('login').hidden = true
  $('app').hidden = false
  $('node').textContent = `node ${client.node.version}`
  $('who').textContent = who
  for (const c of await client.channels.search('')) state.channels.set(c.key, c)
  renderChannels()
  await renderRanges()
  watchChanges(client).catch(show)
  watchControl(client).catch(show)
  renderPanelChannels()
  requestAnimationFrame(draw)
}

// ---- channels ---------------------------------------------------------------------------

function plottable(c: Channel) {
  return !c.isIndex && !c.isVirtual && !['string', 'json', 'bytes', 'uuid'].includes(c.dataType)
}

function renderChannels() {
  const term = ($('search') as HTMLInputElement).value.toLowerCase()
  const ul = $('channels')
  ul.replaceChildren()
  const list = [...state.channels.values()].filter((c) => c.name.toLowerCase().includes(term)).sort((a, b) => a.name.localeCompare(b.name))
  for (const c of list) {
    const li = document.createElement('li')
    li.dataset.key = String(c.key)
    li.dataset.name = c.name
    li.textContent = c.name
    const kind = document.createElement('small')
    kind.textContent = ` ${c.isIndex ? 'index' : c.isVirtual ? 'virtual' : c.dataType}`
    li.append(kind)
    if (state.selected.includes(c.key)) li.classList.add('selected')
    if (plottable(c)) li.onclick = () => toggle(c.key).catch(show)
    ul.append(li)
  }
}

async function watchChanges(client: Client) {
  const w = await client.watchChanges()
  for await (const change of w) {
    if (change.op === 'channel.create' || change.op === 'channel.rename' || change.op === 'channel.update') {
      for (const c of change.channels ?? []) state.channels.set(c.key, c)
    } else if (change.op === 'channel.delete') {
      for (const k of (change.keys ?? []) as number[]) {
        state.channels.delete(k)
        if (state.selected.includes(k)) await toggle(k)
      }
    } else if (change.op.startsWith('range.')) {
      await renderRanges()
    }
    renderChannels()
    renderPanelChannels()
  }
}

// ---- live plots ---------------------------------------------------------------------------

async function toggle(key: number) {
  const at = state.selected.indexOf(key)
  if (at >= 0) {
    state.selected.splice(at, 1)
    state.plots.get(key)?.u.destroy()
    state.plots.get(key)?.value.parentElement?.remove()
    state.plots.delete(key)
    state.buffers.delete(key)
  } else {
    state.selected.push(key)
    addPlot(key)
  }
  renderChannels()
  await restream()
}

function addPlot(key: number) {
  const c = state.channels.get(key)
  const box = document.createElement('div')
  box.className = 'plot'
  box.dataset.name = c?.name ?? String(key)
  const h = document.createElement('h4')
  h.textContent = c?.name ?? String(key)
  const value = document.createElement('span')
  value.className = 'value'
  h.append(value)
  box.append(h)
  $('plots').append(box)
  const u = new uPlot(
    {
      width: Math.max(300, $('plots').clientWidth - 8),
      height: 180,
      series: [{}, { label: c?.name, stroke: '#2550c0', width: 1 }],
      scales: { x: { time: true } },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: { setSelect: [(self) => zoom(self).catch(show)] },
    },
    [[], []],
    box,
  )
  state.plots.set(key, { u, value })
  state.dirty = true
  state.buffers.set(key, { t: [], v: [] })
}

/** (Re)open the streamer on the plotted channels and their indexes. */
async function restream() {
  const client = state.client
  if (!client) return
  await state.streamer?.close()
  state.streamer = undefined
  if (!state.selected.length) return
  const keys = new Set<number>()
  for (const k of state.selected) {
    keys.add(k)
    const i = state.channels.get(k)?.index
    if (i !== undefined) keys.add(i)
  }
  // At most one merged frame per display refresh: drawing more often shows nothing new.
  const s = await client.openStreamer([...keys], { throttleHz: 60 })
  state.streamer = s
  ;(async () => {
    for await (const f of s) take(f)
  })().catch(show)
}

/** Append a live frame to the buffers of the plotted channels. */
function take(f: Frame) {
  state.frames++
  for (const key of state.selected) {
    const c = state.channels.get(key)
    if (!c || c.index === undefined) continue
    const ts = f.get(c.index) as BigInt64Array | undefined
    const vs = f.get(key) as ArrayLike<number> | undefined
    if (!ts || !vs || ts.length !== vs.length) continue
    const b = state.buffers.get(key)
    if (!b) continue
    for (let i = 0; i < ts.length; i++) {
      b.t.push(secs(ts[i]))
      b.v.push(Number(vs[i]))
    }
    // Keep twice the window (older points are history, read on demand).
    const keepFrom = b.t[b.t.length - 1] - 2 * state.windowS
    let cut = 0
    while (cut < b.t.length && b.t[cut] < keepFrom) cut++
    if (cut > 0) {
      b.t.splice(0, cut)
      b.v.splice(0, cut)
    }
    const p = state.plots.get(key)
    if (p) p.value.textContent = String(b.v[b.v.length - 1])
    state.dirty = true
  }
}

/** Redraw the live plots once per animation frame, and only when something changed. */
function draw() {
  if (state.live && state.dirty) {
    state.dirty = false
    for (const [key, p] of state.plots) {
      const b = state.buffers.get(key)
      if (!b || !b.t.length) continue
      const end = b.t[b.t.length - 1]
      let from = 0
      while (from < b.t.length && b.t[from] < end - state.windowS) from++
      p.u.setData([b.t.slice(from), b.v.slice(from)])
    }
  }
  requestAnimationFrame(draw)
}

/**
 * A drag selects a time span: read it reduced to the plot's width on the node, then
 * stitch the live points after the history's last timestamp, so no gap and no repeat.
 */
async function zoom(u: uPlot) {
  const client = state.client
  if (!client || u.select.width < 2) return
  const from = u.posToVal(u.select.left, 'x')
  const to = u.posToVal(u.select.left + u.select.width, 'x')
  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
  state.live = false
  ;($('live') as HTMLButtonElement).disabled = false
  $('mode').textContent = 'history'
  for (const [key, p] of state.plots) {
    const c = state.channels.get(key)
    if (!c || c.index === undefined) continue
    const f = await client.read([nanos(from), nanos(to)], [key], { points: Math.max(100, Math.round(p.u.width)) })
    const ts = (f.get(c.index) as BigInt64Array | undefined) ?? new BigInt64Array()
    const vs = (f.get(key) as ArrayLike<number> | undefined) ?? []
    const t = Array.from(ts, secs)
    const v = Array.from(vs, Number)
    const last = t.length ? t[t.length - 1] : -Infinity
    const b = state.buffers.get(key)
    if (b) {
      for (let i = 0; i < b.t.length; i++) {
        if (b.t[i] > last && b.t[i] <= to) {
          t.push(b.t[i])
          v.push(b.v[i])
        }
      }
    }
    p.u.setData([t, v])
    p.u.setScale('x', { min: from, max: to })
  }
}

// ---- ranges ---------------------------------------------------------------------------

async function renderRanges() {
  const client = state.client
  if (!client) return
  const ul = $('ranges')
  ul.replaceChildren()
  const ranges: Range[] = await client.ranges.search('')
  for (const r of ranges) {
    const li = document.createElement('li')
    li.textContent = r.name
    li.dataset.key = r.key
    li.onclick = async () => {
      try {
        const meta = await client.ranges.meta(r.key)
        const when = `${new Date(Number(r.timeRange.start / 1_000_000n)).toISOString()} → ${new Date(Number(r.timeRange.end / 1_000_000n)).toISOString()}`
        $('range-meta').textContent = [r.name, when, ...r.labels.map((l) => `#${l}`), ...Object.entries(meta).map(([k, v]) => `${k}: ${v}`)].join('\n')
      } catch (e) {
        show(e)
      }
    }
    ul.append(li)
  }
}

// ---- control ----------------------------------------------------------------------------

type Transfer = { from?: { resource: number } | null; to?: { resource: number; authority: number; subject: { name: string } } | null }

async function watchControl(client: Client) {
  const key = await client.controlChannel()
  const s = await client.openStreamer([key])
  for await (const f of s) {
    for (const msg of (f.get(key) ?? []) as { transfers: Transfer[] }[]) {
      for (const t of msg.transfers) {
        if (t.to) state.control.set(t.to.resource, { name: t.to.subject.name, authority: t.to.authority })
        else if (t.from) state.control.delete(t.from.resource)
      }
    }
    renderControl()
  }
}

function renderControl() {
  const body = $('control').querySelector('tbody') as HTMLElement
  body.replaceChildren()
  for (const [key, c] of state.control) {
    // The node's own self-telemetry writer holds its `_telemetron/` channels: not news.
    if (state.channels.get(key)?.name.startsWith('_telemetron/')) continue
    const tr = document.createElement('tr')
    tr.dataset.channel = state.channels.get(key)?.name ?? String(key)
    for (const text of [tr.dataset.channel, c.name, String(c.authority)]) {
      const td = document.createElement('td')
      td.textContent = text
      tr.append(td)
    }
    body.append(tr)
  }
}

// ---- operator panel -----------------------------------------------------------------------

function renderPanelChannels() {
  const sel = $('cmd-channel') as HTMLSelectElement
  const current = sel.value
  sel.replaceChildren()
  for (const c of [...state.channels.values()].filter((x) => x.isVirtual && !x.internal).sort((a, b) => a.name.localeCompare(b.name))) {
    const o = document.createElement('option')
    o.value = c.name
    o.textContent = c.name
    sel.append(o)
  }
  if (current) sel.value = current
}

function panelStatus(text: string) {
  $('panel-status').textContent = text
}

async function acquire() {
  const client = state.client
  if (!client) return
  const channel = ($('cmd-channel') as HTMLSelectElement).value
  const authority = Number(($('cmd-authority') as HTMLInputElement).value)
  try {
    state.writer = await client.openWriter({ channels: [channel], authority, name: `dashboard (${$('who').textContent})` })
    panelStatus(state.writer.hasControl(channel) ? `holding ${channel} at ${authority}` : `waiting: a higher authority holds ${channel}`)
    ;($('acquire') as HTMLButtonElement).disabled = true
    ;($('release') as HTMLButtonElement).disabled = false
    ;($('set') as HTMLButtonElement).disabled = false
  } catch (e) {
    panelStatus(`refused: ${e instanceof TelemetronError ? e.code : ''} ${(e as Error).message}`)
    show(e)
  }
}

async function set() {
  const w = state.writer
  if (!w) return
  const channel = ($('cmd-channel') as HTMLSelectElement).value
  try {
    await w.write({ [channel]: [Number(($('cmd-value') as HTMLInputElement).value)] })
    panelStatus(w.hasControl(channel) ? `set ${channel}` : `not applied: another writer holds ${channel}`)
  } catch (e) {
    show(e)
  }
}

async function release() {
  await state.writer?.close()
  state.writer = undefined
  panelStatus('not holding control')
  ;($('acquire') as HTMLButtonElement).disabled = false
  ;($('release') as HTMLButtonElement).disabled = true
  ;($('set') as HTMLButtonElement).disabled = true
}

// ---- start ----------------------------------------------------------------------------------

async function main() {
  $('search').oninput = renderChannels
  ;($('window') as HTMLSelectElement).onchange = (e) => {
    state.windowS = Number((e.target as HTMLSelectElement).value)
    state.dirty = true
  }
  $('live').onclick = () => {
    state.live = true
    state.dirty = true
    ;($('live') as HTMLButtonElement).disabled = true
    $('mode').textContent = 'live'
  }
  $('acquire').onclick = () => acquire().catch(show)
  $('set').onclick = () => set().catch(show)
  $('release').onclick = () => release().catch(show)
  const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? undefined
  try {
    await start(await connect(undefined, { token }), token ? 'token' : 'anonymous')
    return
  } catch (e) {
    if (!(e instanceof TelemetronError) || e.code !== 'auth.required') return show(e)
  }
  const form = $('login') as HTMLFormElement
  form.hidden = false
  form.onsubmit = async (ev) => {
    ev.preventDefault()
    const data = new FormData(form)
    const username = String(data.get('username'))
    try {
      $('error').textContent = ''
      await start(await connect(undefined, { username, password: String(data.get('password')) }), username)
    } catch (e) {
      show(e)
    }
  }
}

main().catch(show)
