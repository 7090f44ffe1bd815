import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyAnyBatchEnvelope } from '../../agent/identity/batch-any.js';
import type { BatchAttestation } from '../../agent/identity/batch-v3.js';
import { verifySignature } from '../../agent/identity/keys.js';
import { checkAttestationBindings, decodeAttestationMessage } from '../../agent/identity/sensor-attestation.js';
import { cli, type LongRunning } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { buildFirmwareTools, startPtyPair, startSimulator } from '../helpers/serial.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';
import { cliBackground } from '../helpers/cli.js';

/**
 * Sensor-signed readings end to end (firmware-bridge/PROTOCOL.md §3.9, wire-format.md §12.7):
 * the g++-built simulator signs its readings with a key made by `edge-agent sensor-key generate`,
 * over a socat pty to the agent, whose batches go to a real `edge-agent receive`.
 */
const UID = '514d000000000001'; // the simulator's board uid

interface ReceivedBatch {
  readings: { i: number; s: string; v: number; n?: number }[];
  att: BatchAttestation[];
}

/** Every batch the receiver stored, verified again from its bytes (as a buyer would). */
function receivedBatches(receiver: RunningReceiver): ReceivedBatch[] {
  const db = new Database(join(receiver.dataDir, 'receiver.db'), { readonly: true });
  try {
    return (db.prepare('SELECT envelope FROM batches ORDER BY seq').all() as { envelope: Buffer }[]).map((row) => {
      const b = verifyAnyBatchEnvelope(new Uint8Array(row.envelope));
      const data = b.v3?.data;
      return { readings: (data?.r ?? b.body.r) as ReceivedBatch['readings'], att: data?.att ?? [] };
    });
  } finally {
    db.close();
  }
}

function agentWith(gateway: string, receiver: RunningReceiver, edits: [string[], unknown][] = []): { dir: string; start(): LongRunning } {
  const dir = tempDir('agent');
  const r = cli(['init', '--data-dir', dir, '--serial-path', gateway, '--uplink-url', `${receiver.baseUrl}/v1/batches`]);
  expect(r.code, r.stderr).toBe(0);
  patchConfig(dir, [[['batch', 'max_age_ms'], 300], [['uplink', 'retry_initial_ms'], 100], [['uplink', 'retry_max_ms'], 1000], ...edits]);
  return { dir, start: () => cliBackground(['run', '--data-dir', dir]) };
}

/** The receiver's /v1/stats, read again if a kept-alive connection was closed under us (a loaded CI machine). */
async function statsOf(receiver: RunningReceiver): Promise<{ readings: number; rejected: number; rejected_by_reason: Record<string, number> }> {
  let stats: unknown;
  await waitFor('receiver stats', async () => ((stats = await receiver.stats()), true), 30_000, 200);
  return stats as Awaited<ReturnType<typeof statsOf>>;
}

const serialHealth = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout).sources.serial as { accepted: number; counters: Record<string, number> };

function generateKey(dir: string): { keyFile: string; publicKey: string } {
  const keyFile = join(dir, 'board.key');
  const g = cli(['sensor-key', 'generate', '--data-dir', dir, '--source', 'serial', '--device', UID, '--out', keyFile, '--json']);
  expect(g.code, g.stderr).toBe(0);
  return { keyFile, publicKey: JSON.parse(g.stdout).public_key as string };
}

describe('sensor-signed readings over the firmware bridge (simulator, socat pty, real receiver)', () => {
  beforeAll(() => buildFirmwareTools());

  it('with a provisioned key every reading reaches the receiver under a sensor signature it verifies', async () => {
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const ptys = await startPtyPair(tempDir('pty'));
    const a = agentWith(ptys.gateway, receiver);
    const { keyFile, publicKey } = generateKey(a.dir);
    expect(cli(['sensor-key', 'list', '--data-dir', a.dir, '--json']).stdout).toContain(publicKey);
    const agent = a.start();
    try {
      await agent.waitForOutput(/serial port open/);
      const count = 480; // 2 sensors x 240: 60 signed runs of 8 each
      const sim = startSimulator(['--path', ptys.device, '--sensors', '2', '--rate', '400', '--count', String(count), '--key', keyFile, '--attest-every', '8']);
      expect(await sim.exited, `simulator:\n${sim.output().slice(-400)}\nagent:\n${agent.output().slice(-800)}`).toBe(0);
      expect(sim.output()).toContain(`key public_key=${publicKey}`);
      expect(sim.output()).toMatch(/attested=60 attest_dropped=0\b/); // each run signed once, none evicted
      await waitFor('every reading at the receiver', async () => (await receiver.stats()).readings === count, 60_000, 200);
      expect((await statsOf(receiver)).rejected).toBe(0);

      const batches = receivedBatches(receiver);
      const attested = new Set<number>();
      for (const b of batches) {
        expect(checkAttestationBindings({ r: b.readings, vd: [], ev: [], ...(b.att.length ? { att: b.att } : {}) } as never)).toEqual([]);
        for (const att of b.att) {
          expect(Buffer.from(att.k).toString('hex')).toBe(publicKey); // the provisioned key, not one the line offered
          expect(verifySignature(att.k, att.msg, att.sig)).toBe(true);
          expect(Buffer.from(decodeAttestationMessage(att.msg)!.uid).toString('hex')).toBe(UID);
          for (const id of att.r) attested.add(id);
        }
      }
      const all = batches.flatMap((b) => b.readings.map((r) => r.i));
      expect(all).toHaveLength(count);
      // None unattested: each run rode with its readings (the counters say which path let one go).
      expect(all.filter((id) => !attested.has(id)), JSON.stringify(serialHealth(a.dir).counters)).toEqual([]);
      // The status snapshot is written every few seconds: wait for it to show the last commits.
      await waitFor('status shows 60 attestations', () => serialHealth(a.dir).counters.attest_stored === 60, 30_000, 200);
      expect(serialHealth(a.dir).counters).toMatchObject({ attest_stored: 60, attest_bad_signature: 0, attest_unprovisioned: 0, attest_incomplete: 0 });
    } finally {
      await agent.stop('SIGKILL');
      await ptys.stop();
      await receiver.proc.stop('SIGKILL');
    }
  }, 180_000);

  it('a reading altered in the gateway store before the batch is cut makes the receiver refuse the batch: bad-attestation', async () => {
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const ptys = await startPtyPair(tempDir('pty'));
    // No batch is cut while the board talks (max_age 1 h): the readings and their attestations sit in the store.
    const a = agentWith(ptys.gateway, receiver, [[['batch', 'max_age_ms'], 3_600_000]]);
    const { keyFile } = generateKey(a.dir);
    let agent = a.start();
    try {
      await agent.waitForOutput(/serial port open/);
      const sim = startSimulator(['--path', ptys.device, '--sensors', '1', '--rate', '200', '--count', '32', '--key', keyFile, '--attest-every', '8']);
      expect(await sim.exited, sim.output().slice(-400)).toBe(0);
      await waitFor('4 attestations stored', () => serialHealth(a.dir).counters.attest_stored === 4, 30_000, 200);
      await agent.stop('SIGKILL'); // no shutdown cut
      const db = new Database(join(a.dir, 'edge-agent.db'));
      try {
        expect(db.prepare('SELECT count(*) FROM readings WHERE batch_seq IS NULL').pluck().get()).toBe(32);
        // The gateway (or anyone with its disk) changes one value the sensor signed.
        expect(db.prepare("UPDATE readings SET value = value + 0.5 WHERE sensor = 'sim/s0' AND seq = 13").run().changes).toBe(1);
      } finally {
        db.close();
      }
      patchConfig(a.dir, [[['batch', 'max_age_ms'], 300]]);
      agent = a.start();
      await waitFor('the receiver refuses the batch', async () => ((await receiver.stats()) as unknown as { rejected_by_reason: Record<string, number> }).rejected_by_reason['bad-attestation'] === 1, 60_000, 200);
      expect((await statsOf(receiver)).readings).toBe(0);
      await waitFor('the agent marks it rejected', () => {
        const batches = JSON.parse(cli(['status', '--data-dir', a.dir, '--json']).stdout).batches as { rejected: number };
        return batches.rejected === 1;
      }, 30_000, 200);
    } finally {
      await agent.stop('SIGKILL');
      await ptys.stop();
      await receiver.proc.stop('SIGKILL');
    }
  }, 180_000);

  it('a board whose key is not the one provisioned, or that has none provisioned, is flagged and its readings still arrive, unattested', async () => {
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const ptys = await startPtyPair(tempDir('pty'));
    const a = agentWith(ptys.gateway, receiver, [[['sources', 'serial', 'attest_wait_ms'], 2000]]);
    generateKey(a.dir); // registered for the uid; the board below signs with another key
    const otherKey = join(a.dir, 'other.key');
    writeFileSync(otherKey, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    let agent = a.start();
    try {
      await agent.waitForOutput(/serial port open/);
      let sim = startSimulator(['--path', ptys.device, '--sensors', '1', '--rate', '200', '--count', '16', '--key', otherKey, '--attest-every', '8']);
      expect(await sim.exited, sim.output().slice(-400)).toBe(0);
      await waitFor('16 readings at the receiver', async () => (await receiver.stats()).readings === 16, 60_000, 200);
      // The counters count ATTEST frames: one the board resent (its ACK was late) counts again.
      await waitFor('status shows both runs refused', () => serialHealth(a.dir).counters.attest_bad_signature >= 2, 30_000, 200);
      expect(serialHealth(a.dir).counters).toMatchObject({ attest_stored: 0, attest_unprovisioned: 0 });
      expect(agent.output()).toMatch(/sensor attestation bad-signature.*does not verify under the key provisioned/);

      // Now no key at all for the board: its ATTEST frames are counted unprovisioned.
      await agent.stop('SIGKILL');
      patchConfig(a.dir, [[['sources', 'serial', 'attest_keys'], {}]]);
      agent = a.start();
      await agent.waitForOutput(/serial port open/);
      sim = startSimulator(['--path', ptys.device, '--sensors', '1', '--rate', '200', '--count', '16', '--key', otherKey, '--attest-every', '8', '--session', '9000']);
      expect(await sim.exited, sim.output().slice(-400)).toBe(0);
      await waitFor('32 readings at the receiver', async () => (await receiver.stats()).readings === 32, 60_000, 200);
      await waitFor('status shows both ATTESTs unprovisioned', () => serialHealth(a.dir).counters.attest_unprovisioned >= 2, 30_000, 200);
      expect(serialHealth(a.dir).counters).toMatchObject({ attest_stored: 0, attest_bad_signature: 0 });
      expect(agent.output()).toMatch(/sensor attestation unprovisioned/);
      expect((await statsOf(receiver)).rejected).toBe(0);
      expect(receivedBatches(receiver).flatMap((b) => b.att)).toEqual([]); // nothing unverifiable was carried
      // The network is told, by events in the batches.
      const kinds = receivedEventKinds(receiver);
      expect(kinds).toContain('serial.attest_bad');
      expect(kinds).toContain('serial.attest_unprovisioned');
    } finally {
      await agent.stop('SIGKILL');
      await ptys.stop();
      await receiver.proc.stop('SIGKILL');
    }
  }, 180_000);
});

function receivedEventKinds(receiver: RunningReceiver): string[] {
  const db = new Database(join(receiver.dataDir, 'receiver.db'), { readonly: true });
  try {
    return (db.prepare('SELECT envelope FROM batches ORDER BY seq').all() as { envelope: Buffer }[]).flatMap((row) => (verifyAnyBatchEnvelope(new Uint8Array(row.envelope)).v3?.data?.ev ?? []).map((e) => e.k));
  } finally {
    db.close();
  }
}
