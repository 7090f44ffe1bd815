import Database from 'better-sqlite3';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { coapClient, freeUdpPort } from '../helpers/libcoap.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const SHIPPED_MODELS = join(import.meta.dirname, '../../models');

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);

function initDir(extra: string[] = []): string {
  const dir = tempDir('agent');
  const r = cli(['init', '--data-dir', dir, '--simulator', '1', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

/** `edge-agent run` that must refuse to start: exit code and what it said. */
function runRefuses(dir: string): { code: number | null; error: string } {
  const r = cli(['run', '--data-dir', dir]);
  return { code: r.code, error: r.stderr };
}

describe('bad input everywhere: each names the thing at fault', () => {
  it('a truncated config, a binary config, a config with a wrong value: exit 2 naming the file, line and key', () => {
    const dir = initDir();
    const file = join(dir, 'edge-agent.yaml');
    const good = readFileSync(file, 'utf8');

    writeFileSync(file, good.slice(0, good.indexOf('sources:') + 20)); // cut mid-way, as a full disk or power cut may leave it
    let r = runRefuses(dir);
    expect(r.code).toBe(2);
    expect(r.error).toContain(file);
    expect(r.error).not.toMatch(/\n\s+at /); // a message, not a stack trace

    writeFileSync(file, Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x0a, 0x5b, 0x3a]));
    r = runRefuses(dir);
    expect(r.code).toBe(2);
    expect(r.error).toContain(file);

    writeFileSync(file, good.replace(/max_readings: \d+/, 'max_readings: lots'));
    const full = cli(['run', '--data-dir', dir]);
    expect(full.code).toBe(2);
    expect(full.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: batch\\.max_readings: `));
  });

  it('a store left by a newer version, and a store that is not a database: exit 1 naming the file, the store untouched', () => {
    const dir = initDir();
    expect(cli(['init', '--data-dir', dir, '--simulator', '1', '--force']).code).toBe(0);
    const store = join(dir, 'edge-agent.db');
    const db = new Database(store);
    db.pragma('user_version = 99');
    db.close();
    let r = runRefuses(dir);
    expect(r.code).toBe(1);
    expect(r.error).toContain(store);
    expect(r.error).toMatch(/schema version 99, newer than this agent understands/);
    const again = new Database(store, { readonly: true });
    expect(again.pragma('user_version', { simple: true })).toBe(99); // not "migrated" down
    again.close();
    expect(cli(['status', '--data-dir', dir]).stderr).toMatch(/schema version 99/);

    writeFileSync(store, Buffer.alloc(8192, 0x5a));
    r = runRefuses(dir);
    expect(r.code).toBe(1);
    expect(r.error).toContain(store);
    expect(r.error).toMatch(/not a database|integrity/);
  });

  it('a corrupt device key: exit naming the key file', () => {
    const dir = initDir();
    writeFileSync(join(dir, 'device.key'), '-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
    const r = runRefuses(dir);
    expect(r.code).not.toBe(0);
    expect(r.error).toContain(join(dir, 'device.key'));
  });

  it('a corrupt model file and a corrupt model manifest: that model never runs, the error names the file (and both hashes), the rest keeps running', async () => {
    const dir = initDir(['--anomaly-sensors', 'sim/#', '--no-http']);
    const models = join(dir, 'models');
    cpSync(SHIPPED_MODELS, models, { recursive: true });
    patchConfig(dir, [[['inference', 'models_dir'], models]]);
    const onnxFile = join(models, 'stream-ad.onnx');
    const bytes = readFileSync(onnxFile);
    bytes[100] = bytes[100]! ^ 0xff; // one flipped byte, as a bad SD card sector would leave it
    writeFileSync(onnxFile, bytes);
    const storedReadings = () => (JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as { readings: { total: number } }).readings.total;
    let agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForOutput(/sha256 [0-9a-f]{64}, but the manifest says [0-9a-f]{64}; refusing to load it/);
      expect(agent.output()).toContain(onnxFile);
      await agent.waitForOutput(/inference binding anomaly disabled/);
      const before = storedReadings();
      await waitFor('readings still stored', () => storedReadings() > before, 15_000);
    } finally {
      expect(await agent.stop()).toBe(0);
    }

    writeFileSync(join(models, 'manifest.json'), '{"format": "edge-agent/models/1", "models": [');
    agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForOutput(/inference binding anomaly disabled/);
      expect(agent.output()).toContain(join(models, 'manifest.json'));
      const before = storedReadings();
      await waitFor('readings still stored', () => storedReadings() > before, 15_000);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  it('NaN, Infinity, non-UTF-8 and oversize payloads over MQTT and CoAP are refused with their reason, counted, and the rest keeps flowing', async () => {
    const broker = await startMosquitto();
    const coapPort = await freeUdpPort();
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--coap-listen', `127.0.0.1:${coapPort}`]).code).toBe(0);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      const bad: [string, string | Buffer, RegExp][] = [
        ['sensors/bad/nan', 'NaN', /not JSON, SenML or a number/],
        ['sensors/bad/inf', 'Infinity', /not JSON, SenML or a number/],
        ['sensors/bad/overflow', '{"v": 1e999}', /"v" is not a finite number/],
        ['sensors/bad/senml', '[{"n":"x","v":1e400},{"n":"y","v":2}]', /finite/],
        ['sensors/bad/utf8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8/],
        ['sensors/bad/huge', Buffer.alloc(300 * 1024, 0x31), /payload of 307200 bytes exceeds max_payload_bytes 262144/],
      ];
      for (const [topic, payload] of bad) {
        await pub.publishAsync(topic, payload, { qos: 1 });
        await pub.publishAsync('sensors/ok', '21.5', { qos: 1 });
      }
      await pub.endAsync();
      const coapUrl = `coap://127.0.0.1:${coapPort}/readings/coap-ok`;
      expect(coapClient(['-m', 'post', '-t', '0', '-e', 'NaN', coapUrl])).toMatch(/4\.00/);
      expect(coapClient(['-m', 'post', '-t', '50', '-e', '{"v": 1e999}', coapUrl])).toMatch(/4\.00/);
      const big = join(dir, 'big.json');
      writeFileSync(big, JSON.stringify(Array.from({ length: 1500 }, (_, i) => ({ n: `s${i}`, v: i }))));
      expect(coapClient(['-m', 'post', '-t', '110', '-b', '1024', '-f', big, `coap://127.0.0.1:${coapPort}/readings`])).toMatch(/4\.13/);
      coapClient(['-m', 'post', '-t', '0', '-e', '7.5', coapUrl]);

      // Every good reading arrived: 6 over MQTT (one after each bad message), 1 over CoAP, plus "y" from the mixed SenML pack.
      const s = await waitFor('the good readings', () => {
        const st = status(dir);
        return st.readings.total >= 8 ? st : undefined;
      }, 20_000, 200);
      const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
      const sensors = db.prepare('SELECT sensor, count(*) AS n FROM readings GROUP BY sensor ORDER BY sensor').all();
      db.close();
      expect(sensors).toEqual([{ sensor: 'coap-ok', n: 1 }, { sensor: 'ok', n: 6 }, { sensor: 'y', n: 1 }]);
      const rejected = s.counters.filter((c: { name: string }) => c.name === 'rejected').map((c: { label: string }) => c.label).join('\n');
      for (const [, , reason] of bad) expect(rejected).toMatch(reason);
      // The log names the topic of each refused message (pino writes asynchronously: wait for it).
      for (const [topic] of bad) await agent.waitForOutput(new RegExp(`"topic":"${topic}"`), 10_000);
      expect(agent.proc.exitCode).toBeNull();
    } finally {
      await agent.stop('SIGKILL');
      await broker.stop();
    }
  });
});
