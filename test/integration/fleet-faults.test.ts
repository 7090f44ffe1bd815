import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkFleet } from '../../scripts/fleet/lib/check.js';
import { fleetUp, makeReceiverKey, startReplica, type Fleet, type Replica } from '../../scripts/fleet/lib/harness.js';
import { startLoad, type LoadRun } from '../../scripts/fleet/lib/load.js';
import { seededRandom } from '../../scripts/fleet/lib/random.js';
import { waitFor } from '../helpers/ports.js';

/**
 * Issue 17, "what it must show": 200 simulated gateways send for 60 s to three fleet replicas
 * while one NATS node is SIGKILLed and restarted, one replica is SIGKILLed, and then PostgreSQL
 * is restarted under load. Everything a gateway saw acknowledged must be in PostgreSQL exactly
 * once, every receipt must verify, and the only gaps are those the gateways really skipped.
 * Fault points are facts (stored batches counted through GET /v1/stats), offset by a seeded draw.
 */
const SEED = Number(process.env.FLEET_SEED ?? Date.now() % 2 ** 31);

describe('fleet backend under faults (real nats-server cluster, PostgreSQL 15, replicas)', () => {
  let fleet: Fleet | undefined;
  const replicas: Replica[] = [];
  let load: LoadRun | undefined;
  afterAll(async () => {
    load?.kill();
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    fleet?.down();
  });

  const dumpOnFailure = async (run: () => Promise<void>) => {
    try {
      await run();
    } catch (err) {
      // The replicas' own warnings and errors say why.
      for (const r of replicas) console.log(`--- ${r.name}\n${r.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-25).join('\n')}`);
      throw err;
    }
  };

  it(`loses nothing acknowledged through a NATS node kill, a replica SIGKILL and a PostgreSQL restart (seed ${SEED})`, { timeout: 300_000 }, () => dumpOnFailure(async () => {
    console.log(`fleet fault test seed ${SEED} (FLEET_SEED=${SEED} replays it)`);
    const random = seededRandom(SEED);
    fleet = fleetUp();
    const f = fleet;
    const key = makeReceiverKey();
    for (const name of ['r1', 'r2', 'r3']) replicas.push(await startReplica(f, name, key.file));
    const [r1, r2, r3] = replicas as [Replica, Replica, Replica];

    let t0 = Date.now();
    const stored = async (via: Replica) => ((await (await fetch(`${via.url}/v1/stats`)).json()) as { batches: number }).batches;
    // Waits until `more` batches beyond the count now are stored: the fleet makes progress. Small
    // counts, so all faults fit in the 60 s the gateways send even on a loaded machine.
    const progress = async (what: string, more: number, via: Replica = r1) => {
      const from = await waitFor(`stats before ${what}`, () => stored(via), 30_000, 100);
      await waitFor(`${more} more batches stored ${what} (from ${from})`, async () => (await stored(via)) >= from + more, 45_000, 100);
      console.log(`${Date.now() - t0} ms: ${more} more batches stored ${what}`);
    };

    const holdFile = join(mkdtempSync(join(tmpdir(), 'edge-fleet-hold-')), 'faults-done');
    const run = (load = startLoad({
      urls: replicas.map((r) => r.url),
      receiverKey: key.identity.publicKey,
      gateways: 200,
      processes: 2,
      plans: [
        { batchSize: 10, intervalMs: 1000, skipProbability: 0.01 },
        { batchSize: 50, intervalMs: 2000, skipProbability: 0.01 },
        { batchSize: 2, intervalMs: 700, skipProbability: 0 },
      ],
      durationMs: 60_000,
      drainMs: 90_000,
      // The gateways send for 60 s and on until the last fault has been recovered from, so on a
      // loaded machine too every fault happens while they send.
      holdFile,
      seed: SEED,
    }));
    await run.started;
    t0 = Date.now();
    const draw = (lo: number, hi: number) => Math.floor(lo + random() * (hi - lo));

    await progress('before the faults', draw(20, 60));
    f.ctl('kill', 'nats-2');
    const natsKilledAt = Date.now() - t0;
    await progress('with nats-2 down', draw(20, 60), r2);
    f.ctl('start', 'nats-2');
    await progress('after nats-2 restarted', draw(20, 60));
    await r3.stop('SIGKILL');
    expect(r3.proc.signalCode).toBe('SIGKILL');
    const replicaKilledAt = Date.now() - t0;
    await progress('with r3 killed', draw(20, 60));
    f.ctl('stop', 'pg');
    const pgStoppedAt = Date.now() - t0;
    f.ctl('start', 'pg');
    await progress('after the PostgreSQL restart', draw(20, 60), r2);
    const faultsDoneAt = Date.now() - t0;
    writeFileSync(holdFile, '');

    const { gateways } = await run.done;
    const check = await checkFleet(f.postgresUrl, r1.url, key.identity.publicKey, gateways);
    const attempts = gateways.reduce((n, g) => n + g.attempts, 0);
    console.log(JSON.stringify({ seed: SEED, natsKilledAt, replicaKilledAt, pgStoppedAt, faultsDoneAt, attempts, ...check, receipt_problems: check.receipt_problems.slice(0, 5), gap_mismatches: check.gap_mismatches.slice(0, 5) }));

    expect(check.unfinished).toBe(0);
    expect(check.rejected).toBe(0);
    expect(check.batches_acked).toBe(check.batches_sent);
    expect(check.lost).toBe(0);
    expect(check.duplicated).toBe(0);
    expect(check.receipt_problems).toEqual([]);
    expect(check.receipts_verified).toBe(check.batches_stored);
    expect(check.gap_mismatches).toEqual([]);
    expect(check.gaps_reported).toBe(check.gaps_skipped);
    expect(check.readings_stored).toBe(check.readings_acked);
    // The faults were felt: gateways had to retry (a replica gone, PostgreSQL down).
    expect(attempts).toBeGreaterThan(check.batches_sent);
    expect(r1.output() + r2.output()).toMatch(/store unavailable \(503\)|postgresql connection lost/);
  }));
});
