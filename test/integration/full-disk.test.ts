import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig } from '../helpers/setup.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);

/** A real, small file system: ENOSPC as a full SD card gives it (needs root, as CI has). */
function smallDisk(sizeMb: number): { dir: string; release(): void } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'ea-fulldisk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    dir,
    release: () => {
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const disk = smallDisk(5);
// Also when a test times out: never leave a mount behind.
afterAll(() => disk?.release());

describe('a full disk (ENOSPC on a real 5 MiB tmpfs), no budget configured, uplink down', () => {
  it.skipIf(!disk)('keeps running, acknowledges nothing it could not commit, frees the oldest unbatched readings and goes on', { timeout: 150_000 }, async () => {
    const dir = join(disk!.dir, 'agent');
    const broker = await startMosquitto();
        try {
      const deadPort = await freePort();
      expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `http://127.0.0.1:${deadPort}/v1/batches`]).code).toBe(0);
      patchConfig(dir, [
        [['batch', 'max_readings'], 200],
        [['batch', 'max_pending'], 2],
        [['uplink', 'retry_max_ms'], 500],
      ]);
      const agent = cliBackground(['run', '--data-dir', dir]);
      try {
        await agent.waitForOutput(/connected to broker/);
        const pub = await connectPublisher(broker.url);
        // The ballast is an eighth of the disk (640 KiB here): 70,000 readings are more than the disk holds.
        const messages = 3500;
        const perMessage = 20;
        await publishAll(
          pub,
          Array.from({ length: messages }, (_, m) => ({
            topic: 'sensors/pack',
            payload: JSON.stringify(Array.from({ length: perMessage }, (_, k) => ({ n: `d${k % 2}`, t: 1_763_300_000 + m * perMessage + k, v: k }))),
          })),
          100,
        );
        await pub.endAsync();
        await agent.waitForOutput(/SQLITE_FULL/, 30_000);
        // Every message is eventually committed (room is made by dropping the oldest unbatched ones).
        const total = messages * perMessage;
        const s = await waitFor('every reading committed or dropped', () => {
          const st = status(dir);
          return st.readings.total + st.dropped.total >= total ? st : undefined;
        }, 60_000, 500);
        expect(s.dropped.total).toBeGreaterThan(0);
        expect(s.readings.total + s.dropped.total).toBe(total);
        expect(agent.proc.exitCode).toBeNull();
        await agent.waitForOutput(/released the disk reserve/, 10_000);
        console.log(`full disk: ${total} readings published, ${s.readings.total} kept, ${s.dropped.total} dropped (counted), store ${s.store.file_bytes} + WAL ${s.store.wal_bytes} bytes on a 5 MiB disk`);
        const v = cli(['verify', '--data-dir', dir, '--json']);
        expect(v.code, v.stdout + v.stderr).toBe(0);
      } catch (err) {
        await agent.stop('SIGTERM');
        const st = cli(['status', '--data-dir', dir, '--json']);
        throw new Error(`${(err as Error).message}\nstatus: ${st.stdout.slice(0, 1500)}${st.stderr}\nagent log tail:\n${agent.output().slice(-4000)}`);
      } finally {
        await agent.stop('SIGKILL');
      }
    } finally {
      await broker.stop();
    }
  });
});
