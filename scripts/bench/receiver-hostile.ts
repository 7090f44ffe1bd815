/**
 * `npm run bench:receiver`: the reference receiver (`edge-agent receive`, its own process) against
 * the requests of issue 12, each repeated; prints min/median/max answer times, the receiver's peak
 * RSS (VmHWM) and the load average, then a JSON summary as the last line. Targets (docs/wire-format.md
 * §6.3, docs/performance.md): a 4xx within 1 s, peak RSS under 300 MiB, the next valid batch accepted.
 *
 *   node dist/scripts/bench/receiver-hostile.js [--runs N]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { buildBatch, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import { intArg } from './lib/args.js';
import { CLI, startProc, tempDir } from './lib/processes.js';
import { fmt, spread } from './lib/stats.js';

const runs = intArg('runs', 5);
const T = 1_763_000_000_000;
const device = Identity.generate();
const log = (s: string) => process.stdout.write(`${s}\n`);

function bodyWithR(array: Uint8Array): Uint8Array {
  const b = buildBatch(device, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: T }, [{ id: 1, sensor: 's', ts: T, timeSource: 'sensor', value: 1, source: 'x', boot: 1 }]);
  const fill = new Uint8Array(32).fill(0xee);
  const marker = Buffer.from(canonicalEncode({ ...b.body, r: fill }));
  const at = marker.indexOf(Buffer.from([0x61, 0x72, 0x58, 0x20, ...fill]));
  return Buffer.concat([marker.subarray(0, at + 2), array, marker.subarray(at + 36)]);
}
const header = (n: number) => Buffer.from([0x9a, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const envelope = (body: Uint8Array) => canonicalEncode({ body, sig: new Uint8Array(64) });

const cases: [string, Uint8Array][] = [
  ['2,000,000 empty maps in r (2 MB)', envelope(bodyWithR(Buffer.concat([header(2_000_000), Buffer.alloc(2_000_000, 0xa0)])))],
  ['1,000,000 empty maps in a reading', envelope(bodyWithR(Buffer.concat([Buffer.from([0x81, 0xa1, 0x61, 0x78]), header(1_000_000), Buffer.alloc(1_000_000, 0xa0)])))],
  ['200,000 nested arrays', envelope(bodyWithR(Buffer.concat([Buffer.alloc(200_000, 0x81), Buffer.from([0])])))],
  ['valid batch of 100,000 readings', buildBatch(device, { seq: 7, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: T }, Array.from({ length: 100_000 }, (_, k) => ({ id: k + 1, sensor: `s${k % 50}`, ts: T + k, timeSource: 'sensor' as const, value: k / 7, source: 'mqtt', boot: 1 }))).envelope],
];

const receiver = startProc(0, process.execPath, [CLI, 'receive', '--listen', '127.0.0.1:0', '--data-dir', tempDir('receiver'), '--log-level', 'error', '--rate-limit', '0']);
const base = (await receiver.waitFor(/receiver listening on (http:\/\/\S+)/))[1]!.replace(/\/$/, '');
const peakMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${receiver.pid}/status`, 'utf8'))![1]) / 1024;
const post = async (body: Uint8Array) => {
  const t = performance.now();
  const res = await fetch(`${base}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor', connection: 'close' }, body });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t };
};

log(`receiver under hostile input: ${runs} runs per case, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const summary: Record<string, unknown> = {};
let seq = 1;
let prev: Uint8Array = ZERO_HASH;
for (const [name, bytes] of cases) {
  const times: number[] = [];
  const statuses = new Set<number>();
  for (let k = 0; k < runs; k++) {
    const r = await post(bytes);
    times.push(r.ms);
    statuses.add(r.status);
  }
  // The next valid batch after each case is accepted.
  const next = buildBatch(device, { seq, prevHash: prev, bootCounter: 1, clockSynced: true, createdMs: T }, [{ id: seq, sensor: 's', ts: T + seq, timeSource: 'sensor', value: seq, source: 'x', boot: 1 }]);
  const after = await post(next.envelope);
  seq++;
  prev = next.hash;
  const s = spread(times);
  log(`${name} (${bytes.length} bytes): status ${[...statuses].join(',')}, ${fmt(s, ' ms')} (min/median/max); next valid batch ${after.status}; receiver peak RSS ${peakMb().toFixed(0)} MiB`);
  summary[name] = { bytes: bytes.length, statuses: [...statuses], ms: s, next_valid: after.status, peak_rss_mib: Math.round(peakMb()) };
}
await receiver.stop();
log(JSON.stringify({ load: loadavg(), cases: summary }));
