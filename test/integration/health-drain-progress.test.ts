import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

interface LogLine {
  msg: string;
  backlog_delivered?: number;
  backlog_total?: number;
  backlog_batches?: number;
}

const logLines = (out: string): LogLine[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

describe('uplink backlog drain progress in the agent log', () => {
  let broker: Broker;
  let receiver: LongRunning | undefined;
  let agent: LongRunning | undefined;
  let receiverPort: number;
  const A = tempDir('drain');
  const R = tempDir('drain-receiver');
  const pending = () => (JSON.parse(cli(['status', '--data-dir', A, '--json']).stdout) as { batches: { pending: number } }).batches.pending;
  const publish = async (n: number, from: number) => {
    const pub = await connectPublisher(broker.url);
    await publishAll(pub, Array.from({ length: n }, (_, i) => ({ topic: 'sensors/tank', payload: String(from + i) })));
    await pub.endAsync();
  };
  const startReceiver = async () => {
    receiver = cliBackground(['receive', '--listen', `127.0.0.1:${receiverPort}`, '--data-dir', R]);
    await receiver.waitForOutput(/public key/);
  };

  beforeAll(async () => {
    broker = await startMosquitto();
    receiverPort = await freePort();
    expect(cli(['init', '--data-dir', A, '--no-http', '--mqtt-url', broker.url, '--uplink-url', `http://127.0.0.1:${receiverPort}/v1/batches`]).code).toBe(0);
    patchConfig(A, [
      [['batch', 'max_readings'], 1], // one batch per reading: a backlog of N batches from N readings
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 300],
      [['uplink', 'max_batches_per_s'], 2],
      // These tests count batches, one per reading: no heartbeat batches in between.
      [['heartbeat', 'interval_s'], 0],
    ]);
  });
  afterAll(async () => {
    await agent?.stop();
    await receiver?.stop();
    await broker?.stop();
  });

  it('reports a backlog found at start with periodic delivered/total lines and rate, until drained', async () => {
    // The receiver is not there yet: 16 batches pile up, then the agent stops.
    agent = cliBackground(['run', '--data-dir', A]);
    await agent.waitForReady();
    await publish(16, 0);
    await waitFor('16 pending batches', () => pending() >= 16 || undefined);
    await agent.stop();
    // Stopping cuts what is left: a loaded run found 17 batches at the next start, not 16 (what the
    // 17th carried was not kept). The backlog the next start must report is what the store holds now.
    const backlog = pending();
    expect(backlog).toBeGreaterThanOrEqual(16);

    await startReceiver();
    agent = cliBackground(['run', '--data-dir', A]);
    const done = await agent.waitForOutput(new RegExp(`uplink backlog: done, ${backlog}/${backlog} batches \\(100\\.0%\\), \\d+ batches/s, [\\d.]+ s`), 20_000);
    const lines = logLines(agent.output());
    const start = lines.find((l) => l.msg === `uplink backlog: delivering ${backlog} pending batches`);
    expect(start).toMatchObject({ backlog_batches: backlog });
    // max_batches_per_s 2: 16 batches take ~7.5 s, so a periodic line (every 5 s) comes well before the end.
    const periodic = lines.filter((l) => new RegExp(`^uplink backlog: \\d+/${backlog} batches \\(\\d+\\.\\d%\\), \\d+ batches/s`).test(l.msg));
    expect(periodic.length, agent.output()).toBeGreaterThanOrEqual(1);
    expect(periodic[0]!.backlog_delivered).toBeGreaterThan(0);
    expect(periodic[0]!.backlog_delivered).toBeLessThan(backlog);
    expect(lines.find((l) => l.msg === done[0])).toMatchObject({ backlog_delivered: backlog, backlog_total: backlog });
    expect(pending()).toBe(0);
  });

  it('reports the backlog left by an outage once the uplink recovers, and is quiet in normal flow', async () => {
    await receiver!.stop();
    await publish(7, 100);
    await waitFor('7 pending batches', () => pending() === 7 || undefined);
    const before = agent!.output().length;
    await startReceiver();
    // The first delivery after the outage is the recovery; the 6 batches still pending then are the backlog.
    await agent!.waitForOutput(/uplink backlog: done, 6\/6 batches/, 20_000);
    expect(agent!.output().slice(before)).toMatch(/uplink recovered[\s\S]*uplink backlog: delivering 6 pending batches/);

    // Two batches at a time are normal flow, not a backlog: no progress report.
    const quiet = agent!.output().length;
    await publish(2, 200);
    await waitFor('delivered', () => pending() === 0 || undefined);
    expect(agent!.output().slice(quiet)).not.toMatch(/uplink backlog/);
  });
});
