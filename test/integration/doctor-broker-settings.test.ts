import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { tempDir } from '../helpers/setup.js';

interface Finding {
  check: string;
  status: string;
  detail: string;
  fix?: string;
}

const doctor = (dir: string, conf: string) => JSON.parse(cli(['doctor', '--data-dir', dir, '--json', '--broker-config', conf, '--min-free-mb', '0']).stdout) as { checks: Finding[] };

describe('doctor checks what it can see of the broker settings that keep QoS 1 messages (real mosquitto)', () => {
  it('a default queue and no persistence fail with the fix; a broker that keeps sessions passes the session check', async () => {
    const broker = await startMosquitto(['max_queued_messages 1000']);
    try {
      const dir = tempDir('agent');
      expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--no-http']).code).toBe(0);
      const found = doctor(dir, broker.conf).checks;
      const config = found.filter((c) => c.check === 'broker-config');
      expect(config).toEqual([
        expect.objectContaining({ status: 'fail', detail: expect.stringMatching(/^max_queued_messages 1000: /), fix: expect.stringMatching(/max_queued_messages 1000000/) }),
        expect.objectContaining({ status: 'fail', detail: expect.stringMatching(/^persistence is off/), fix: expect.stringMatching(/persistence true/) }),
        // Latency, not loss: a warning with the line to add.
        expect.objectContaining({ status: 'warn', detail: expect.stringMatching(/^set_tcp_nodelay is off/), fix: `set set_tcp_nodelay true in ${broker.conf}` }),
      ]);
      // mosquitto keeps sessions in memory between connections even without persistence.
      expect(found.find((c) => c.check === 'broker-session')).toMatchObject({ status: 'pass' });
    } finally {
      await broker.stop();
    }
  });

  it('a persistence location the broker user cannot write fails; a writable one (and set_tcp_nodelay) passes', async () => {
    const dir = tempDir('agent');
    const broker = await startMosquitto(['set_tcp_nodelay true'], { persistent: true });
    try {
      expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--no-http']).code).toBe(0);
      const ok = doctor(dir, broker.conf).checks.filter((c) => c.check === 'broker-config');
      expect(ok.map((c) => c.status)).toEqual(['pass', 'pass', 'pass']);
      expect(ok[2]!.detail).toBe('set_tcp_nodelay true');
      expect(ok[1]!.detail).toMatch(/^persistence true in .*, writable by mosquitto$/);
    } finally {
      await broker.stop();
    }
    const locked = mkdtempSync(join(tmpdir(), 'ea-mosq-locked-'));
    chmodSync(locked, 0o755); // root's, not mosquitto's
    const broken = await startMosquitto([`persistence true`, `persistence_location ${locked}/`]);
    try {
      const bad = doctor(dir, broken.conf).checks.filter((c) => c.check === 'broker-config');
      expect(bad[1]).toMatchObject({ status: 'fail', detail: expect.stringMatching(/is not writable by the broker's user mosquitto/), fix: `chown mosquitto ${locked}/` });
    } finally {
      await broken.stop();
    }
  });
});
