import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, startReceiverProcess, tempDir } from '../helpers/setup.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);

describe('bad days: uplink outage and broker restart (real processes)', () => {
  it('keeps readings while the receiver is down, retries with back-off, then drains the backlog in order', async () => {
    const broker = await startMosquitto();
    const receiverPort = await freePort();
    const receiverDir = tempDir('receiver');
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `http://127.0.0.1:${receiverPort}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [
      [['batch', 'max_age_ms'], 200],
      [['batch', 'max_readings'], 100],
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 1000],
      [['uplink', 'max_batches_per_s'], 50],
    ]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      const total = 3000;
      await publishAll(pub, Array.from({ length: total }, (_, i) => ({ topic: `sensors/o${i % 5}`, payload: JSON.stringify({ v: i, t: 1_763_000_000 + i }) })));
      await pub.endAsync();
      const during = await waitFor('a backlog of 30 batches', () => {
        const s = status(dir);
        return s.batches.pending >= 30 ? s : undefined;
      }, 30_000, 200);
      await new Promise((r) => setTimeout(r, 3000)); // a longer outage
      const oldest = status(dir);
      expect(oldest.uplink.last_error).toMatch(/ECONNREFUSED/);
      expect(during.batches.delivered).toBe(0);
      // Back-off: retries from 100 ms capped at 1 s with equal jitter (util/backoff.ts) wait at least
      // 50, 100, 200, 400 ms, then 500 ms each: at most 5 + 2 per second since the batch was cut,
      // however long a loaded machine took to get here; a retry storm would be hundreds.
      const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
      const first = db.prepare('SELECT attempts, created_at FROM batches WHERE seq = 1').get() as { attempts: number; created_at: number };
      db.close();
      const outageSeconds = (Date.now() - first.created_at) / 1000;
      expect(first.attempts).toBeGreaterThan(2);
      expect(first.attempts, `${first.attempts} attempts in ${outageSeconds.toFixed(1)} s`).toBeLessThanOrEqual(5 + 2 * Math.ceil(outageSeconds));

      const receiver = await (async () => {
        const r = cliBackground(['receive', '--listen', `127.0.0.1:${receiverPort}`, '--data-dir', receiverDir]);
        await r.waitForOutput(/public key/);
        return r;
      })();
      try {
        const started = Date.now();
        await waitFor('backlog drained', () => status(dir).batches.pending === 0, 60_000, 200);
        const drainSeconds = (Date.now() - started) / 1000;
        const s = status(dir);
        // max_batches_per_s 50: 30 batches take at least ~0.6 s.
        expect(drainSeconds).toBeGreaterThan((s.batches.delivered - 1) / 50 - 0.1);
        const stats = await (await fetch(`http://127.0.0.1:${receiverPort}/v1/stats`)).json();
        expect(stats).toMatchObject({ readings: total, rejected: 0, gaps: 0, batches: s.batches.delivered });
      } finally {
        await receiver.stop();
      }
    } finally {
      await agent.stop('SIGKILL');
      await broker.stop();
    }
  });

  it('survives a broker restart under load: the persistent session resumes and nothing is lost or doubled', async () => {
    const broker = await startMosquitto([], { persistent: true });
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `${receiver.baseUrl}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [[['batch', 'max_age_ms'], 200]]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      const total = 3000;
      const messages = Array.from({ length: total }, (_, i) => ({ topic: `sensors/b${i % 4}`, payload: JSON.stringify({ v: i, t: 1_763_100_000 + i }) }));
      const publishing = (async () => {
        for (let i = 0; i < total; i += 100) {
          await publishAll(pub, messages.slice(i, i + 100)); // mqtt.js queues and resends across the restart
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      await broker.restart(1500);
      await publishing;
      await pub.endAsync();
      await waitFor(`${total} readings at the receiver`, async () => (await receiver.stats()).readings >= total, 60_000, 200);
      // A duplicate could only come from the agent: once it has stopped with nothing pending, the receiver's count is final.
      expect(await agent.stop()).toBe(0);
      expect(status(dir).batches.pending).toBe(0);
      expect(await receiver.stats()).toMatchObject({ readings: total, rejected: 0, gaps: 0 });
      expect(agent.output()).toMatch(/broker connection closed; reconnecting/);
      expect(agent.output()).toMatch(/"session_present":true/);
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
      await broker.stop();
    }
  });
});
