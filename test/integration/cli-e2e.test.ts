import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';

describe('edge-agent as a user types it: init, receive, run, mosquitto_pub, stats', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  const A = tempDir('agent');
  const R = tempDir('receiver');

  beforeAll(async () => {
    broker = await startMosquitto();
    receiver = await startReceiverProcess(R);
  });
  afterAll(async () => {
    await receiver?.proc.stop();
    await broker?.stop();
  });

  it('delivers SenML published to sensors/<id> to the receiver, verified, and shows it in status and verify', async () => {
    const init = cli(['init', '--data-dir', A, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--uplink-url', `http://127.0.0.1:${receiver.port}/v1/batches`]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    const deviceId = /device id (did:key:\w+)/.exec(init.stdout)![1]!;

    const agent = cliBackground(['run', '--data-dir', A]);
    await agent.waitForReady();
    const second = cli(['run', '--data-dir', A]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/another edge-agent \(pid \d+\) is running/);
    const pub = (topic: string, message: string) =>
      execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', topic, '-m', message]);
    pub('sensors/pump1', '[{"bn":"pump1/","bt":1763000000,"n":"temp","u":"Cel","v":21.5},{"n":"rpm","v":1450}]');
    pub('sensors/kitchen/temp', '22.25');
    pub('sensors/kitchen/temp', 'not a reading');

    const stats = await waitFor('3 readings at the receiver', async () => {
      const s = await receiver.stats();
      return s.readings >= 3 ? s : undefined;
    });
    expect(stats).toMatchObject({ devices: 1, readings: 3, rejected: 0 });
    const batches = (await (await fetch(`${receiver.baseUrl}/v1/devices/${deviceId}/batches`)).json()) as unknown[];
    expect(batches.length).toBeGreaterThanOrEqual(1);

    const status = JSON.parse(cli(['status', '--data-dir', A, '--json']).stdout);
    expect(status.running).toBe(true);
    expect(status.readings.total).toBe(3);
    expect(status.batches.pending).toBe(0);
    expect(status.uplink.last_success_at).toBeGreaterThan(0);
    expect(status.counters).toContainEqual({ name: 'rejected', label: 'mqtt: not JSON, SenML or a number', value: 1 });

    expect(await agent.stop('SIGTERM')).toBe(0);
    expect(agent.output()).toMatch(/agent stopped/);

    const verify = cli(['verify', '--data-dir', A]);
    expect(verify.stdout).toMatch(/chain OK/);
    expect(verify.code).toBe(0);
    const file = join(A, 'batch-1.cbor');
    expect(cli(['export', '--data-dir', A, '--seq', '1', '--out', file]).code).toBe(0);
    const one = cli(['verify', file, '--json']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ valid: true, seq: 1, device: deviceId });

    const again = cli(['init', '--data-dir', A]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists.*--force/);
  });

  it('answers usage errors with exit code 2 and a message naming the flag or file', () => {
    const noConfig = cli(['run', '--data-dir', tempDir('empty')]);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/no config at .*edge-agent init/);
    const badListen = cli(['receive', '--listen', 'localhost', '--data-dir', tempDir('r')]);
    expect(badListen.code).toBe(2);
    expect(badListen.stderr).toMatch(/--listen/);
    const fresh = tempDir('fresh');
    expect(cli(['init', '--data-dir', fresh]).code).toBe(0);
    const early = cli(['status', '--data-dir', fresh]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/no store at .* yet: the agent has not run/);
    const badTopic = cli(['init', '--data-dir', tempDir('a'), '--mqtt-url', 'mqtt://127.0.0.1:1', '--mqtt-topic', 'a/#/b']);
    expect(badTopic.code).toBe(2);
    expect(badTopic.stderr).toMatch(/--mqtt-topic: is not a valid MQTT topic filter/);
  });

  it('runs the demo (the README\'s first command): simulated sensors, the failing one caught by the shipped model, all verified', () => {
    const r = cli(['demo', '--seconds', '20', '--sensors', '2', '--data-dir', tempDir('demo')]);
    expect(r.code, r.stderr).toBe(0);
    const stored = Number(/stored\s+(\d+) readings/.exec(r.stdout)![1]);
    expect(stored).toBeGreaterThan(0);
    expect(r.stdout).toMatch(new RegExp(`receiver\\s+${stored} readings and \\d+ verdicts in \\d+ batches verified, 0 rejected`));
    // sim-01 fails after 600 readings; sim-02 stays healthy and never alerts.
    expect(r.stdout).toMatch(/alert\s+raised sim-01 by stream-ad \(sha256 [0-9a-f]{12}\.\.\.\)/);
    expect(r.stdout).not.toMatch(/alert\s+raised sim-02/);
    expect(r.stdout).toMatch(/chain\s+\d+ batches re-verified, \d+ signed receipts verified, 0 problems/);
  });
});
