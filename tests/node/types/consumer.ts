// Compiled with `tsc --strict` by types.test.mjs: the declarations cover the README example.
import { open, connect, loop, Frame, TelemetronError, type Client, type Control, type LoopStats, type Range, type ExportReport, type FlowInfo, type Reconfigured, FlowError } from 'telemetron'

async function main(client: Client): Promise<void> {
  await client.channels.create([
    { name: 'time', isIndex: true },
    { name: 'pressure', dataType: 'f64', index: 'time' },
  ])
  const zstd: string = (await client.channels.setCompression('pressure', 'zstd')).compression
  console.log(zstd)
  const end: bigint = await client.write(0n, { time: BigInt64Array.of(1n, 2n), pressure: Float64Array.of(1, 2) })
  const w = await client.openWriter({ start: end, channels: ['pressure'], authorities: [200], mode: 'persist_stream' })
  const report = await w.write({ time: [3n], pressure: [3] })
  const unauthorized: string[] = report.unauthorized
  await w.commit()
  await w.close()
  const frame: Frame = await client.read({ start: 0n, end: 10n }, ['time', 'pressure'])
  const p = frame.get('pressure') as Float64Array
  const samples = await client.read([0n, 10n], 'pressure')
  const s = await client.openStreamer(['pressure'], { onLag: 'warn' })
  await (await client.openStreamer(['pressure'], { lag: 'event' })).close() // deprecated, still typed
  s.on('lag', ({ dropped }) => console.log(dropped))
  for await (const f of s) {
    console.log(f.get('pressure'))
    break
  }
  await s.close()
  const control: Control = client.control
  const ctrl = await control.acquire({ name: 'seq', write: ['pressure'], read: ['time'], authority: 200 })
  await ctrl.set('pressure', 1)
  const ok: boolean = await ctrl.waitUntil((c) => (c.get('pressure') as number) > 0, { timeout: 1000 })
  const held: boolean = await ctrl.remainsTrueFor((c) => (c.get('pressure') as number) > 0, 200, { timeout: 1000 })
  for await (const tick of ctrl.loop(1000, { duration: 10 })) {
    const late: number = tick.late
    console.log(late, held)
  }
  const stats: LoopStats = loop(100, { count: 1 }).stats()
  console.log(stats.lateP99, ctrl.recordChannels.length)
  await ctrl.abort()
  await ctrl.release()
  const r = await client.ranges.create({ name: 'run', timeRange: [0n, end], metaData: { operator: 'ada' } })
  await r.meta.set('stand', 'B')
  const exported: ExportReport = await r.toParquet('run.parquet', ['pressure'], { onProgress: (p) => p.fraction.toFixed(2) })
  const csvRows: number = (await client.export('run.csv', 'pressure', { range: [0n, end], format: 'csv', memoryBudget: 1 << 20 })).rows + exported.rows
  const child: Range = await r.createChild({ name: 'ignition', labels: ['ignition'] })
  const parentKey: string | undefined = child.parent
  const kids: Range[] = await r.children()
  await child.setLabels(['ignition', 'nominal'])
  const found: Range[] = await client.ranges.search('', null, { labels: 'ignition', metaData: { stand: 'B' }, parent: r })
  console.log(parentKey, kids.length, found.length)
  const flow: FlowInfo = await client.flows.deploy(new URL('file:///etc/flow.yaml'))
  const out: number = flow.nodes.filter((n) => n.type === 'discard').reduce((a, n) => a + n.received, 0)
  const changed: Reconfigured = await client.flows.reconfigure(flow.name, 'flow: x\nnodes: {}', { drain: 2 })
  const live: boolean = changed.applied === 'live' && (await client.flows.stop(flow.name)).drained === true
  console.log(out, live, flow.started > 0n, (await client.flows.list()).length, FlowError)
  console.log(unauthorized, p, samples, ok)
}

open('/tmp/x').then(main).catch((e: unknown) => {
  if (e instanceof TelemetronError) console.error(e.code)
})
void connect('http://127.0.0.1:9090', { token: 't' })
