import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Frame } from '../../agent/sources/serial/protocol.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { FaultyLine, seededRandom } from '../helpers/line-faults.js';
import { waitFor } from '../helpers/ports.js';
import { buildFirmwareTools, startPtyPair, startSimulator } from '../helpers/serial.js';
import { patchConfig, startReceiverProcess, tempDir } from '../helpers/setup.js';

// Issue 19, "what it must show": readings from 3 sensors over device reboots (reusing their session
// number, with the sensor indexes rotated at each boot) through a line that drops, duplicates,
// corrupts and reorders whole frames and splits and merges writes, with the gateway SIGKILLed
// along the way, reach the receiver exactly once under the right names, and no ACK reaches the
// device for a reading the store had not committed at that moment.
// Sized by env so CI stays short; the full size is `npm run soak:serial` (100,000 readings, 10 kills).
const READINGS = Number(process.env.SERIAL_SOAK_READINGS ?? 30_000);
const KILLS = Number(process.env.SERIAL_SOAK_KILLS ?? 4);
const REBOOTS = Number(process.env.SERIAL_SOAK_REBOOTS ?? 2);
const RATE = Number(process.env.SERIAL_SOAK_RATE ?? 1500);
const RESEND_MS = Number(process.env.SERIAL_SOAK_RESEND_MS ?? 1000); // PROTOCOL.md §4.2's SHOULD
const SEED = Number(process.env.SERIAL_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SENSORS = 3;
const DEVICE = '514d000000000001'; // the simulator's uid

const FAULTS = {
  toGateway: { drop: 0.01, duplicate: 0.01, corrupt: 0.005, reorder: 0.01 },
  toDevice: { drop: 0.02, duplicate: 0.01, corrupt: 0.01, reorder: 0.01 },
};

describe('serial soak: faulty line, gateway kills, device reboots (issue 19)', () => {
  it(`${READINGS} readings from ${SENSORS} sensors, ${REBOOTS} reboots, ${KILLS} SIGKILLs: exactly once at the receiver, under the right names, no ACK before commit`, { timeout: 30 * 60_000 }, async () => {
    console.log(`serial soak: seed ${SEED} (replay with SERIAL_SOAK_SEED=${SEED}), ${READINGS} readings, ${KILLS} kills, ${REBOOTS} reboots, ${RATE}/s, resend after ${RESEND_MS} ms`);
    buildFirmwareTools();
    const rand = seededRandom(SEED ^ 0x5eed);
    const started = performance.now();
    const deviceSide = await startPtyPair(tempDir('pty-dev'));
    const gatewaySide = await startPtyPair(tempDir('pty-gw'));
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--serial-path', gatewaySide.gateway, '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey]).code).toBe(0);
    patchConfig(dir, [
      [['batch', 'max_age_ms'], 300],
      [['sources', 'serial', 'silence_timeout_ms'], 20_000], // the line is faulty, not dead
    ]);
    let agent: LongRunning = cliBackground(['run', '--data-dir', dir]);
    await agent.waitForOutput(/serial port open/);
    const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
    let progress: Database.Statement | undefined;
    // Every ACK that reaches the device intact, checked against the store at that moment (§3.3).
    const acked = new Map<string, number>();
    const violations: string[] = [];
    let acksChecked = 0;
    const onGatewayFrame = (f: Frame) => {
      if (f.type !== 'ack') return;
      // The serial source's progress: the stream cursor device/session/sensor (agent/sources/serial/stream-cursors.ts).
      progress ??= db.prepare("SELECT position FROM source_cursors WHERE source = 'serial' AND stream = ?").pluck();
      const committed = (progress.get(`${DEVICE}/${f.session}/${f.sensor}`) as number | undefined) ?? null;
      acksChecked++;
      if (committed === null || committed < f.seq) violations.push(`ACK(session ${f.session}, sensor ${f.sensor}, seq ${f.seq}) while the store held ${committed}`);
      const key = `${f.session}/${f.sensor}`;
      acked.set(key, Math.max(acked.get(key) ?? -1, f.seq));
    };
    const line = await FaultyLine.start(deviceSide.gateway, gatewaySide.device, SEED, FAULTS, onGatewayFrame);
    const sim = startSimulator(['--path', deviceSide.device, '--sensors', String(SENSORS), '--rate', String(RATE), '--count', String(READINGS), '--reboots', String(REBOOTS), '--reuse-session', '--session', '424242', '--linger-ms', '60000', '--resend-ms', String(RESEND_MS)]);
    // The last stat line's count (a regex with a lookahead over the whole output was quadratic, and starved the line's event loop).
    const sent = () => {
      const out = sim.output();
      return Number(/^stat sent=(\d+)/.exec(out.slice(out.lastIndexOf('stat sent=')))?.[1] ?? 0);
    };
    const afterKill: string[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        const at = Math.floor(((k + 0.3 + 0.6 * rand()) * READINGS) / (KILLS + 1));
        await waitFor(`simulator past ${at} samples`, () => sent() >= at || sim.output().includes('done'), 10 * 60_000, 50);
        await agent.stop('SIGKILL');
        // After the kill the store is exactly what was committed: every ACK the device got must be in it.
        const check = db.prepare("SELECT position FROM source_cursors WHERE source = 'serial' AND stream = ?").pluck();
        for (const [key, seq] of acked) {
          const held = (check.get(`${DEVICE}/${key}`) as number | undefined) ?? null;
          if (held === null || held < seq) afterKill.push(`kill ${k + 1}: ACK ${key} seq ${seq}, store ${held}`);
        }
        agent = cliBackground(['run', '--data-dir', dir]);
        await agent.waitForOutput(/serial port open/);
      }
      const code = await sim.exited;
      expect(code, `simulator:\n${sim.output().slice(-600)}\nagent:\n${agent.output().slice(-800)}`).toBe(0);
      await waitFor('every batch delivered', () => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout).batches.pending === 0, 5 * 60_000, 500);
      const seconds = (performance.now() - started) / 1000;
      const health = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout).sources.serial;
      await agent.stop();

      const rdb = new Database(join(receiver.dataDir, 'receiver.db'), { readonly: true });
      const rows = rdb.prepare('SELECT sensor, value FROM readings').all() as { sensor: string; value: number }[];
      rdb.close();
      const byName = new Map<string, number[]>();
      for (const r of rows) {
        const list = byName.get(r.sensor);
        if (list) list.push(r.value);
        else byName.set(r.sensor, [r.value]);
      }
      const done = /done (.*)/.exec(sim.output())?.[1];
      console.log(
        `serial soak: ${rows.length} readings at the receiver of ${READINGS} sampled in ${seconds.toFixed(1)} s; simulator: ${done}; ` +
          `line to gateway ${JSON.stringify(line.stats.toGateway)}, to device ${JSON.stringify(line.stats.toDevice)}; ` +
          `${acksChecked} ACKs checked at arrival, ${violations.length} before commit, ${afterKill.length} missing after a kill; ` +
          `agent counters (last run) ${JSON.stringify(health.counters)}; boots: ${(sim.output().match(/^boot .*/gm) ?? []).join(', ')}`,
      );
      expect(violations.slice(0, 5), 'ACKs before commit').toEqual([]);
      expect(afterKill.slice(0, 5), 'acknowledged but not in the store after a kill').toEqual([]);
      // Each sensor's values are 0, 1, 2, ... over all boots: exactly once each, under its own name.
      expect([...byName.keys()].sort()).toEqual(Array.from({ length: SENSORS }, (_, i) => `sim/s${i}`));
      for (const [name, values] of byName) {
        const sorted = [...values].sort((a, b) => a - b);
        const wrong = sorted.filter((v, i) => v !== i);
        expect({ name, count: values.length, firstWrong: wrong.slice(0, 5) }).toEqual({ name, count: sorted.length, firstWrong: [] });
      }
      expect(rows.length).toBe(READINGS);
      expect(sim.output()).toMatch(/session_changes=[1-9]/); // the reused session numbers were caught (§3.7)
    } finally {
      sim.kill();
      await agent.stop('SIGKILL');
      await line.stop();
      db.close();
      await receiver.proc.stop();
      await deviceSide.stop();
      await gatewaySide.stop();
    }
  });
});
