/**
 * The reference receiver alone (`edge-agent receive` pinned to its own core): a chain of signed
 * batches of 1,000 readings each, built beforehand with the agent's encoder, POSTed one after the
 * other as the agent's uplink does (each waits for its receipt). Readings verified per second:
 * `receiver_verify_per_s`, to set against the agent's own commit rate (`detail.committed_per_s`).
 */
import { buildBatch } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import type { StoredReading } from '../../agent/types.js';
import { HttpUplink } from '../../agent/uplink/http/http-uplink.js';
import { startReceiver } from './lib/processes.js';

export async function receiverVerifyRun(opts: { batches: number; perBatch: number; core: number; nodeArgs?: string[] }): Promise<{ perS: number; readings: number }> {
  const identity = Identity.generate();
  let prevHash = new Uint8Array(32);
  const envelopes: { seq: number; hash: Uint8Array; envelope: Uint8Array }[] = [];
  for (let b = 0; b < opts.batches; b++) {
    const readings: StoredReading[] = Array.from({ length: opts.perBatch }, (_, i) => {
      const id = b * opts.perBatch + i + 1;
      return { id, sensor: `bench/s${id % 8}`, ts: 1_763_000_000_000 + id, timeSource: 'sensor', value: Math.sin(id / 10), source: 'mqtt', boot: 1 };
    });
    const batch = buildBatch(identity, { seq: b + 1, prevHash, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_000_000 + b }, readings);
    envelopes.push({ seq: b + 1, hash: batch.hash, envelope: batch.envelope });
    prevHash = new Uint8Array(batch.hash);
  }
  const receiver = await startReceiver(opts.core, opts.nodeArgs);
  try {
    const uplink = new HttpUplink({ url: receiver.url, timeoutMs: 60_000 });
    const signal = new AbortController().signal;
    const t0 = performance.now();
    for (const e of envelopes) {
      const out = await uplink.deliver({ seq: e.seq, hash: e.hash, device: identity.publicKey, envelope: e.envelope }, signal);
      if (out.kind !== 'delivered') throw new Error(`receiver bench: batch ${e.seq} ${out.kind}: ${'error' in out ? out.error : ''}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const readings = opts.batches * opts.perBatch;
    return { perS: readings / seconds, readings };
  } finally {
    await receiver.proc.stop();
  }
}
