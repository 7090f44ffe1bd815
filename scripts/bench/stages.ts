/**
 * Per-stage costs, each stage alone in this process, so the next bottleneck is visible:
 * decode (payload parse), store commit (grouped as under load, and one commit per message),
 * batch cut (select + sign + Merkle + insert; from the store alone, and as the agent cuts with its
 * leaf cache, the cache's note apart), sign+Merkle alone, uplink round trip to a real
 * `edge-agent receive` process. Figures are microseconds per reading (CPU and wall).
 * Bytes written to storage per reading (write_bytes of /proc/self/io) compare group commits
 * with one commit per message: the SD-card wear figure.
 */
import { join } from 'node:path';
import { buildBatch } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { parsePayload } from '../../agent/payloads/parse.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase } from '../../agent/store/database.js';
import { ReadingStore, type Submission } from '../../agent/store/reading-store.js';
import type { StoredReading } from '../../agent/types.js';
import { HttpUplink } from '../../agent/uplink/http/http-uplink.js';
import { openModel } from '../../agent/inference/index.js';
import type { BenchModel } from './lib/bench-model.js';
import { writeBytes } from './lib/procfs.js';
import { startReceiver, tempDir } from './lib/processes.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';
import { ReadingLeafCache } from '../../agent/pipeline/leaf-cache.js';
import { buildGuard } from '../../agent/guard/build.js';
import { guardSchema } from '../../agent/guard/config.js';
import pino from 'pino';

export interface StageCost {
  us_per_reading: number;
  /** Where it differs from wall time (I/O waits): CPU microseconds per reading. */
  cpu_us_per_reading?: number;
}

function timed<T>(fn: () => T): { wallUs: number; cpuUs: number; value: T } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const wallUs = (performance.now() - t0) * 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs, cpuUs: cpu.user + cpu.system, value };
}

const round = (v: number) => +v.toFixed(2);

function submissions(n: number, offset: number): Submission[] {
  return Array.from({ length: n }, (_, i) => ({
    source: 'mqtt',
    readings: [{ sensor: `bench/s${i % 8}`, ts: 1_763_000_000_000 + offset + i, timeSource: 'sensor' as const, value: i * 0.25 }],
  }));
}

/** Readings stored with `perCommit` messages per transaction: cost and bytes written per reading. */
function storeCommit(readings: number, perCommit: number) {
  const dir = tempDir('stage-store');
  const db = openDatabase(join(dir, 'edge-agent.db'));
  const store = new ReadingStore(db, 1);
  const subs = submissions(readings, 0);
  const before = writeBytes();
  const t = timed(() => {
    for (let i = 0; i < subs.length; i += perCommit) store.commit(subs.slice(i, i + perCommit));
  });
  const after = writeBytes();
  db.close();
  return {
    cost: { us_per_reading: round(t.wallUs / readings), cpu_us_per_reading: round(t.cpuUs / readings) },
    bytesPerReading: before !== undefined && after !== undefined ? Math.round((after - before) / readings) : null,
    dir,
  };
}

/** One model runner fed rows of one series, 1000 per push, after its warm-up: microseconds per reading. */
async function inferenceCost(model: BenchModel, readings: number): Promise<StageCost> {
  const runner = await openModel(model.modelsDir, model.id);
  const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ key: 'bench/s0', ts: 1_763_000_000_000 + from + i, values: [Math.sin((from + i) / 10)] }));
  await runner.push(rows(0, 2000)); // warm-up and calibration
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let at = 2000; at < 2000 + readings; at += 1000) await runner.push(rows(at, 1000));
  const wallUs = (performance.now() - t0) * 1000;
  const cpu = process.cpuUsage(cpu0);
  await runner.close();
  return { us_per_reading: round(wallUs / readings), cpu_us_per_reading: round((cpu.user + cpu.system) / readings) };
}

/**
 * The guard stage's checks (agent/guard/, every one with its defaults) over one-reading
 * submissions of 8 sensors in front of a sink that commits nothing: what guarding costs per reading.
 */
export async function guardCost(readings: number): Promise<StageCost> {
  const db = openDatabase(join(tempDir('stage-guard'), 'edge-agent.db'));
  const sink = { submit: () => Promise.resolve({ accepted: 1, duplicates: 0 }) };
  const guard = buildGuard(guardSchema.parse({}), sink, { db, reports: { event: () => undefined }, count: () => undefined, assets: {}, log: pino({ level: 'silent' }) });
  const subs = submissions(readings, 0).map((s) => ({ ...s, origin: 'bench', bytes: 32, readings: s.readings.map((r) => ({ ...r, unit: 'Cel' })) }));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const sub of subs) await guard.submit(sub);
  const wallUs = (performance.now() - t0) * 1000;
  const cpu = process.cpuUsage(cpu0);
  db.close();
  return { us_per_reading: round(wallUs / readings), cpu_us_per_reading: round((cpu.user + cpu.system) / readings) };
}

export async function stageCosts(readings: number, model: BenchModel) {
  // decode: an MQTT JSON object payload to a Reading
  const payloads = Array.from({ length: readings }, (_, i) => Buffer.from(`{"v":${i * 0.25},"t":${1_763_000_000 + i}}`));
  const decode = timed(() => {
    let n = 0;
    for (const p of payloads) n += parsePayload(p, { defaultSensor: 'bench', nowMs: Date.now(), clockSynced: true }).readings.length;
    return n;
  });
  if (decode.value !== readings) throw new Error(`decode produced ${decode.value} readings of ${readings}`);

  const grouped = storeCommit(readings, 200);
  const single = storeCommit(Math.min(readings, 2000), 1);

  // batch cut over the grouped store: select, sign, Merkle, insert, mark
  const identity = Identity.generate();
  const db = openDatabase(join(grouped.dir, 'edge-agent.db'));
  const batches = new BatchStore(db);
  const cut = timed(() => {
    let n = 0;
    for (;;) {
      const b = batches.cutBatch(1000, batchEncoder(identity, { bootCounter: 1, clockSynced: true, now: Date.now() }));
      if (!b) return n;
      n += b.body.n;
    }
  });
  // The batch cut as the agent makes it at a high rate: each commit's readings noted in the leaf
  // cache (pipeline/leaf-cache.ts), a batch of 1000 cut after every 1000 committed. Timed apart:
  // the note (encode each leaf and its hash, on the commit's side) and the cut (ids, concatenation,
  // inner Merkle nodes, sign, insert, UPDATE batch_seq). `batch_cut` above is the cut from the store
  // alone (after a restart, or a backlog past the cache's bounds).
  const cachedDb = openDatabase(join(tempDir('stage-cut-cached'), 'edge-agent.db'));
  const cachedStore = new ReadingStore(cachedDb, 1);
  const cachedBatches = new BatchStore(cachedDb);
  const cache = new ReadingLeafCache();
  const cachedSubs = submissions(readings, 0);
  let noteCpu = 0;
  let noteWall = 0;
  let cutCpu = 0;
  let cutWall = 0;
  for (let i = 0; i < cachedSubs.length; i += 200) {
    const stored: StoredReading[] = [];
    cachedStore.commit(cachedSubs.slice(i, i + 200), Date.now(), stored);
    const note = timed(() => cache.note(stored));
    noteCpu += note.cpuUs;
    noteWall += note.wallUs;
    if ((i + 200) % 1000 === 0 || i + 200 >= cachedSubs.length) {
      const c = timed(() => cachedBatches.cutBatch(1000, batchEncoder(identity, { bootCounter: 1, clockSynced: true, now: Date.now() }, cache)));
      cutCpu += c.cpuUs;
      cutWall += c.wallUs;
    }
  }
  if (cache.misses > 0) throw new Error(`batch cut from the cache: ${cache.misses} cuts missed it`);
  cachedDb.close();

  // sign + Merkle alone, in memory
  const stored: StoredReading[] = Array.from({ length: 1000 }, (_, i) => ({ id: i + 1, sensor: `bench/s${i % 8}`, ts: 1_763_000_000_000 + i, timeSource: 'sensor', value: i, source: 'mqtt', boot: 1 }));
  const signRuns = Math.max(1, Math.floor(readings / 1000));
  const sign = timed(() => {
    for (let i = 0; i < signRuns; i++) buildBatch(identity, { seq: i + 1, prevHash: new Uint8Array(32), bootCounter: 1, clockSynced: true, createdMs: 0 }, stored);
  });

  // uplink: POST every cut batch, in order, to a real receiver process (it verifies and signs a receipt)
  const receiver = await startReceiver(1);
  let uplinkWallUs = 0;
  let uplinkCpuUs = 0;
  try {
    const uplink = new HttpUplink({ url: receiver.url, timeoutMs: 30_000 });
    const signal = new AbortController().signal;
    const rows = batches.all();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const row of rows) {
      const out = await uplink.deliver({ seq: row.seq, hash: new Uint8Array(row.hash), device: identity.publicKey, envelope: new Uint8Array(row.envelope) }, signal);
      if (out.kind !== 'delivered') throw new Error(`uplink stage: batch ${row.seq} ${out.kind}: ${'error' in out ? out.error : ''}`);
    }
    uplinkWallUs = (performance.now() - t0) * 1000;
    const cpu = process.cpuUsage(cpu0);
    uplinkCpuUs = cpu.user + cpu.system;
  } finally {
    await receiver.proc.stop();
    db.close();
  }

  const inference = await inferenceCost(model, readings);
  const guard = await guardCost(readings);

  return {
    readings,
    stages: {
      decode: { us_per_reading: round(decode.wallUs / readings) },
      guard,
      inference,
      store_commit_grouped: grouped.cost,
      store_commit_per_message: single.cost,
      batch_cut: { us_per_reading: round(cut.wallUs / cut.value), cpu_us_per_reading: round(cut.cpuUs / cut.value) },
      batch_cut_cached: { us_per_reading: round(cutWall / readings), cpu_us_per_reading: round(cutCpu / readings) },
      leaf_cache_note: { us_per_reading: round(noteWall / readings), cpu_us_per_reading: round(noteCpu / readings) },
      sign_merkle: { us_per_reading: round(sign.wallUs / (signRuns * 1000)) },
      uplink_post: { us_per_reading: round(uplinkWallUs / cut.value), cpu_us_per_reading: round(uplinkCpuUs / cut.value) },
    } satisfies Record<string, StageCost>,
    store_bytes_written_per_reading: { grouped_200: grouped.bytesPerReading, per_message: single.bytesPerReading },
  };
}
