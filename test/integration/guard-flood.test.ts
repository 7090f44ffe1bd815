/**
 * Issue 14, "what it must show": a rogue MQTT client floods never-seen sensor ids while four
 * sensors publish at QoS 1. Real mosquitto, agent and receiver processes; the rogue is four
 * mosquitto_pub processes under one topic branch (test/helpers/flood-publisher.mjs), paced to
 * FLOOD_RATE in total, and the rate offered is measured by PUBACKs and by the broker's own
 * received counter ($SYS), both printed.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import type { Broker } from '../helpers/mosquitto.js';
import { useBrokerAndReceiver } from '../helpers/peers.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir, type RunningReceiver } from '../helpers/setup.js';
import { SIGNED_READING_BYTES } from '../../agent/store/budget-shares.js';
import { query } from '../helpers/db-query.js';

const FLOOD_IDS = 2000;
const FLOOD_SECONDS = 4;
/** Paced a little above 20,000/s: the measured rate includes the last acknowledgements' drain after the pacing ends. */
const FLOOD_RATE = 21_000;
const FLOOD_PUBLISHERS = 4;
const NEW_IDS_PER_10S = 200;
const KEEP_MAX = 100;

interface FloodReport {
  sent: number;
  acked: number;
  ms: number;
  rate: number;
  publishers: number;
  broker_best_1s: number;
  broker_received: number;
  started_at: number;
}

function flood(url: string): Promise<FloodReport> {
  const script = resolve(import.meta.dirname, '../helpers/flood-publisher.mjs');
  const child = spawn(process.execPath, [script, url, 'sensors/flood', String(FLOOD_IDS), String(FLOOD_SECONDS), String(FLOOD_RATE), String(FLOOD_PUBLISHERS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // Its stderr goes into the failure message: CI shows the failure summary, not a child's inherited stderr.
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return new Promise((res, rej) =>
    child.once('close', (code) => (code === 0 ? res(JSON.parse(out) as FloodReport) : rej(new Error(`flood publisher exited ${code}: ${err || out}`)))),
  );
}

describe('a rogue MQTT client flooding new sensor ids (real mosquitto, agent, receiver)', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  // $SYS every second: the flood's rate as the broker counted it.
  useBrokerAndReceiver('guard-receiver', (p) => ({ broker, receiver } = p), ['sys_interval 1']);

  it('delivers every good reading, quarantines the rogue within 5 s, holds its disk share, and reports it upstream', async () => {
    const dir = tempDir('guard-agent');
    const init = cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey]);
    expect(init.code, init.stderr).toBe(0);
    const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    patchConfig(dir, [
      [['batch', 'max_age_ms'], 300],
      [['guard', 'defaults', 'new_ids_per_10s'], NEW_IDS_PER_10S],
      [['guard', 'quarantine', 'keep_max'], KEEP_MAX],
    ]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const good = await connectPublisher(broker.url);
      const goodMessages = Array.from({ length: 2000 }, (_, i) => ({ topic: `sensors/plant/p${(i % 4) + 1}`, payload: String(20 + i / 100) }));
      const [report] = await Promise.all([flood(broker.url), publishAll(good, goodMessages, 50)]);
      await good.endAsync();
      console.log(
        `rogue: ${report.acked} QoS 1 messages on ${FLOOD_IDS} ids from ${report.publishers} publishers, acknowledged in ${(report.ms / 1000).toFixed(2)} s = ${report.rate} messages/s offered (target 20,000/s); ` +
          `the broker counted ${report.broker_received} publishes meanwhile (good sensors' included), best second ${report.broker_best_1s}/s`,
      );
      // The broker took every rogue message (its own counter; the good sensors' add to it).
      expect(report.broker_received).toBeGreaterThanOrEqual(report.acked);

      // Every good reading at the receiver, in verified batches, unflagged.
      const receiverDb = join(receiver.dataDir, 'receiver.db');
      const goodAtReceiver = await waitFor(
        'the 2,000 good readings at the receiver',
        () => {
          const rows = query<{ n: number; quarantined: number; distinct_values: number }>(receiverDb, "SELECT count(*) AS n, count(CASE WHEN flags & 32 THEN 1 END) AS quarantined, count(DISTINCT sensor || '=' || value) AS distinct_values FROM readings WHERE sensor LIKE 'plant/%'")[0]!;
          return rows.n >= 2000 && rows;
        },
        180_000,
        250,
      );
      expect(goodAtReceiver).toEqual({ n: 2000, quarantined: 0, distinct_values: 2000 });
      // Quality flags may annotate them (a pause while the broker delivered the flood's backlog is a gap_before); none is quarantined.
      console.log(`good readings at the receiver by flags: ${JSON.stringify(query(receiverDb, "SELECT coalesce(flags, 0) AS flags, count(*) AS n FROM readings WHERE sensor LIKE 'plant/%' GROUP BY 1"))}`);

      // Quarantined, within 5 s of the flood's first message.
      const list = JSON.parse(cli(['quarantine', 'list', '--json', '--data-dir', dir]).stdout) as { key: string; reason: string; since: number; counts: { kept: number; dropped: number } }[];
      const q = list.find((x) => x.key === 'source:mqtt:sensors/flood');
      expect(q, JSON.stringify(list)).toMatchObject({ reason: 'new_id_burst' });
      const afterMs = q!.since - report.started_at;
      console.log(`rogue quarantined ${afterMs} ms after its first message; quarantine list: kept ${q!.counts.kept}, dropped ${q!.counts.dropped}`);
      expect(afterMs).toBeLessThan(5000);

      // The quarantine event in a verified batch at the receiver.
      const events = await waitFor('quarantine.start at the receiver', async () => {
        const res = await fetch(`${receiver.baseUrl}/v1/devices/${device}/events`);
        const list = res.status === 200 ? ((await res.json()) as { kind: string; key: string; detail: Record<string, unknown> }[]) : [];
        const hit = list.filter((e) => e.kind === 'quarantine.start' && e.key === 'source:mqtt:sensors/flood');
        return hit.length > 0 && hit;
      }, 60_000);
      expect(events[0]!.detail).toMatchObject({ reason: 'new_id_burst', by: 'guard' });

      // The flood's share of the disk: what the id-burst watch let through before it tripped, plus at most keep_max quarantined.
      const agentDb = join(dir, 'edge-agent.db');
      // Once the agent has judged every flood message the broker took (stored, or dropped by the guard or
      // by the store budget and counted), the figures are final. On a loaded machine the budget drops some
      // of what waits for a batch (counted `dropped`, folded past 4,096 labels); the good sensors' are
      // checked apart: all of them arrive.
      await waitFor(
        'every flood message judged',
        () => {
          const stored = query<{ n: number }>(agentDb, "SELECT count(*) AS n FROM readings WHERE sensor LIKE 'flood/%'")[0]!.n;
          const dropped = query<{ n: number }>(agentDb, "SELECT coalesce(sum(value), 0) AS n FROM counters WHERE name IN ('guard_dropped', 'dropped')")[0]!.n;
          return stored + dropped >= report.acked;
        },
        240_000,
        500,
      );
      const floodRows = query<{ n: number; quarantined: number }>(agentDb, "SELECT count(*) AS n, count(flags) AS quarantined FROM readings WHERE sensor LIKE 'flood/%'")[0]!;
      // Dropped by the guard's budget, and by the store's if a loaded machine made it drop: all reported upstream.
      const dropped = query<{ n: number }>(agentDb, "SELECT coalesce(sum(value), 0) AS n FROM counters WHERE name IN ('guard_dropped', 'dropped')")[0]!.n;
      const budgetRows = NEW_IDS_PER_10S * 2 + KEEP_MAX;
      console.log(
        `flood in the store: ${floodRows.n} readings (${floodRows.quarantined} flagged quarantined) ≈ ${floodRows.n * SIGNED_READING_BYTES} bytes at the ${SIGNED_READING_BYTES}-byte planning figure; budget ${budgetRows} readings ≈ ${budgetRows * SIGNED_READING_BYTES} bytes; ${dropped} dropped and counted`,
      );
      // Every drop reported upstream: the signed batches' drops add up to what the agent counted.
      await waitFor('the drops at the receiver', async () => ((await receiver.stats()) as unknown as { dropped: number }).dropped === dropped, 60_000);
      expect(floodRows.n).toBeLessThanOrEqual(budgetRows);
      expect(floodRows.quarantined).toBeLessThanOrEqual(KEEP_MAX);
      expect(floodRows.quarantined).toBeGreaterThan(0);

      // Released by the operator: an event upstream, and new readings of the branch are no longer flagged.
      const release = cli(['quarantine', 'release', 'source:mqtt:sensors/flood', '--data-dir', dir]);
      expect(release.code, release.stderr).toBe(0);
      expect(release.stdout).toMatch(/quarantine release source:mqtt:sensors\/flood: released/);
      await waitFor('quarantine.release at the receiver', async () => {
        const res = await fetch(`${receiver.baseUrl}/v1/devices/${device}/events`);
        const list = (await res.json()) as { kind: string; key: string; detail: Record<string, unknown> }[];
        return list.some((e) => e.kind === 'quarantine.release' && e.key === 'source:mqtt:sensors/flood' && e.detail['by'] === 'operator');
      }, 60_000);
      expect(JSON.parse(cli(['quarantine', 'list', '--json', '--data-dir', dir]).stdout)).toEqual([]);
    } finally {
      await agent.stop();
    }
  }, 600_000);
});
