// Compiled with `tsc --strict` by types.test.mjs: the browser client's declarations.
import { connect, decodeFrame, encodeFrame, TelemetronError, type Change, type Frame } from 'telemetron/web'

async function main(): Promise<void> {
  const client = await connect('http://127.0.0.1:9090', { username: 'vic', password: 'secret-password' })
  await client.channels.create([
    { name: 'time', isIndex: true },
    { name: 'pressure', dataType: 'f64', index: 'time' },
  ])
  const end: bigint = await client.write(0n, { time: BigInt64Array.of(1n, 2n), pressure: Float64Array.of(1, 2) })
  const frame: Frame = await client.read([0n, end], ['pressure'], { points: 2000, reduce: 'minmax' })
  const p = frame.get('pressure') as Float64Array
  for await (const f of await client.openStreamer(['pressure'], { throttleHz: 30 })) {
    console.log(f.samples('pressure'), p.length)
    break
  }
  const w = await client.openWriter({ channels: ['valve_cmd'], authority: 100, name: 'panel' })
  const held: boolean = w.hasControl('valve_cmd')
  await w.write({ valve_cmd: Uint8Array.of(1) })
  await w.setAuthority(0)
  await w.close()
  for await (const chunk of client.iterate(undefined, ['pressure'], { chunkSize: 10_000, points: 100 })) console.log(chunk.length, held)
  const changes = await client.watchChanges()
  const c: Change | null = await changes.next()
  if (c?.op === 'channel.create' || c?.op === 'channel.update') console.log(c.channels?.map((x) => [x.name, x.compression]))
  await client.channels.setCompression('pressure', 'pcodec')
  await changes.close()
  const bytes: Uint8Array = encodeFrame([{ key: 1, dataType: 'f64', data: Float64Array.of(1) }])
  console.log(decodeFrame(bytes)[0].data)
  try {
    await client.channels.retrieve('missing')
  } catch (e) {
    if (e instanceof TelemetronError) console.log(e.code)
  }
}

void main
