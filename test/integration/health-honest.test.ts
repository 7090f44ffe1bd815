/**
 * Honest health (issue 16 item 6), through /healthz and `status` of real agents with a real
 * mosquitto and a real receiver: a clock nobody vouches for is degraded (200), not a failure; a
 * disabled model, an agent none of whose sources started, and a receiver whose receipts are signed
 * by another key than uplink.receiver_key are failures (503), each with its reason.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../../agent/identity/keys.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';

interface Health {
  status: 'ok' | 'degraded' | 'fail';
  ready: boolean;
  checks: Record<string, { ok: boolean; degraded?: boolean; reason: string }>;
}

const health = async (port: number) => {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { code: res.status, body: (await res.json()) as Health };
};

describe('honest /healthz: degraded is 200, failures are 503 with the reason', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  const running: LongRunning[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    receiver = await startReceiverProcess(tempDir('honest-receiver'));
  });
  afterAll(async () => {
    for (const a of running) await a.stop();
    await receiver?.proc.stop();
    await broker?.stop();
  });

  /** An agent on the broker and receiver, http on port 0; `patch` edits its config before it runs. */
  async function agentWith(name: string, initArgs: string[], patch: [string[], unknown][] = [], env: NodeJS.ProcessEnv = {}) {
    const dir = tempDir(name);
    const init = cli(['init', '--data-dir', dir, '--http-listen', '127.0.0.1:0', ...initArgs]);
    expect(init.code, init.stderr).toBe(0);
    const pacing: [string[], unknown][] = initArgs.includes('--uplink-url') ? [[['uplink', 'retry_initial_ms'], 100], [['uplink', 'retry_max_ms'], 500]] : [];
    patchConfig(dir, [[['batch', 'max_age_ms'], 200], ...pacing, ...patch]);
    const agent = cliBackground(['run', '--data-dir', dir], { env });
    running.push(agent);
    // Not the ready line: an agent whose sources never connect never reports ready; the endpoint is up before.
    const served = await agent.waitForOutput(/health, metrics and status page on http:\/\/127\.0\.0\.1:(\d+)/, 60_000);
    return { dir, agent, port: Number(served[1]) };
  }
  const uplink = () => ['--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--uplink-url', `${receiver.baseUrl}/v1/batches`];

  it('answers 200 on this machine, degraded when the OS does not vouch for the clock, naming who was asked', { timeout: 120_000 }, async () => {
    const { port, dir } = await agentWith('honest-here', [...uplink(), '--receiver-key', receiver.publicKey]);
    const here = await waitFor('a healthy source', async () => {
      const r = await health(port);
      return r.body.checks.sources!.ok ? r : undefined;
    }, 30_000);
    expect(here.code).toBe(200);
    // Whatever this machine's clock state, some probe answered (timedatectl, chronyc or the kernel's adjtimex state through perl).
    expect(here.body.checks.clock!.reason).toMatch(/\((systemd-timesyncd|timedatectl|chronyc tracking|kernel \(adjtimex\))/);
    expect(here.body.status).toBe(here.body.checks.clock!.ok ? 'ok' : 'degraded');
    console.log(`this machine: /healthz ${here.code} ${here.body.status}; clock: ${here.body.checks.clock!.reason}`);
    await waitFor('status shows the checks', () => / {2}[✓!] clock {5}gateway clock/.test(cli(['status', '--data-dir', dir]).stdout) || undefined, 30_000);

    // With no tool to ask at all (an empty PATH: no timedatectl, chronyc or perl), the state is unknown: degraded, still 200.
    const blind = await agentWith('honest-blind', [...uplink(), '--receiver-key', receiver.publicKey], [], { PATH: mkdtempSync(join(tmpdir(), 'ea-empty-path-')) });
    const r = await waitFor('sources up', async () => {
      const h = await health(blind.port);
      return h.body.checks.sources!.ok ? h : undefined;
    }, 30_000);
    expect(r.code).toBe(200);
    expect(r.body).toMatchObject({ status: 'degraded', ready: true });
    expect(r.body.checks.clock).toEqual({ ok: false, degraded: true, reason: expect.stringMatching(/^gateway clock is not known to be synchronised \(no timedatectl, chronyc or kernel .*answer\).*clock\.synced: always/) });
  });

  it('fails (503) on a disabled model, with the binding, the model and why', { timeout: 120_000 }, async () => {
    const models = join(tempDir('honest-models'), 'models');
    cpSync(join(import.meta.dirname, '../../models'), models, { recursive: true });
    const onnx = join(models, 'stream-ad.onnx');
    const bad = readFileSync(onnx);
    bad[bad.length >> 1] ^= 0x01;
    writeFileSync(onnx, bad);
    const { port, dir } = await agentWith('honest-model', [...uplink(), '--receiver-key', receiver.publicKey, '--anomaly-sensors', 'pump1/#'], [[['clock', 'synced'], 'always'], [['inference', 'models_dir'], models]]);
    const r = await health(port);
    expect(r.code).toBe(503);
    expect(r.body).toMatchObject({ status: 'fail', ready: false });
    expect(r.body.checks.inference).toEqual({ ok: false, reason: expect.stringMatching(/^binding anomaly disabled \(model stream-ad\): model stream-ad: .*stream-ad\.onnx has sha256 [0-9a-f]{64}, but the manifest says [0-9a-f]{64}.*readings are stored and delivered unscored/) });
    await waitFor('status names the failing check', () => / {2}✗ inference binding anomaly disabled/.test(cli(['status', '--data-dir', dir]).stdout) || undefined, 30_000);
  });

  it('fails (503) when no source started; one source of two down is degraded (200)', { timeout: 120_000 }, async () => {
    const dead = 'mqtt://127.0.0.1:1';
    const none = await agentWith('honest-nosource', ['--mqtt-url', dead, '--serial-path', join(tempDir('honest-tty'), 'ttyGone')], [[['clock', 'synced'], 'always']]);
    const r = await waitFor('503 for the sources', async () => {
      const h = await health(none.port);
      return h.code === 503 ? h : undefined;
    }, 30_000);
    expect(r.body.checks.sources).toEqual({ ok: false, reason: expect.stringMatching(/^every source failed to start: mqtt \(mqtt\) on mqtt:\/\/127\.0\.0\.1:1 .*failed to start: not connected once since the agent started \(last error: connect ECONNREFUSED[^)]*\); serial \(serial\) on \S*ttyGone .*failed to start: .*No such file or directory/) });

    // A live broker beside the dead serial line: the agent stores what MQTT brings, so it is degraded, not failed.
    const half = await agentWith('honest-half', ['--mqtt-url', broker.url, '--serial-path', join(tempDir('honest-tty2'), 'ttyGone')], [[['clock', 'synced'], 'always']]);
    const h = await waitFor('degraded for one source down', async () => {
      const x = await health(half.port);
      return x.body.status === 'degraded' ? x : undefined;
    }, 30_000);
    expect(h.code).toBe(200);
    expect(h.body.checks.sources).toEqual({ ok: false, degraded: true, reason: expect.stringMatching(/^serial \(serial\) on \S*ttyGone .*failed to start: not connected once since the agent started/) });
  });

  it('fails (503) when the receiver signs its receipts with another key than uplink.receiver_key, naming both', { timeout: 120_000 }, async () => {
    const wrong = Identity.generate().deviceId;
    const { port, dir } = await agentWith('honest-key', [...uplink(), '--receiver-key', wrong], [[['clock', 'synced'], 'always']]);
    const pub = await connectPublisher(broker.url);
    await publishAll(pub, [{ topic: 'sensors/pump9/temp', payload: '21.5' }]);
    await pub.endAsync();
    const r = await waitFor('503 for the key mismatch', async () => {
      const h = await health(port);
      return h.code === 503 && /mismatch/.test(h.body.checks.uplink!.reason) ? h : undefined;
    }, 30_000);
    expect(r.body.checks.uplink).toEqual({
      ok: false,
      reason: `receiver key mismatch: the receiver at ${receiver.baseUrl}/v1/batches signs its receipts with ${receiver.publicKey}, but uplink.receiver_key is ${wrong}; nothing is delivered until they agree: set uplink.receiver_key to the key the receiver prints (edge-agent receive), or point uplink.url at the right receiver`,
    });
    await waitFor('status shows it', () => / {2}✗ uplink +receiver key mismatch/.test(cli(['status', '--data-dir', dir]).stdout) || undefined, 30_000);
  });
});
