import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, PACKAGE_BIN, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/setup.js';

/**
 * The other tests spawn tsc's output (dist/agent/cli/main.js); users run the package's bin, the
 * esbuild bundle (scripts/build-bundle.mjs). This one runs that bin itself, as a program (its
 * shebang and mode), through init, run, a QoS 1 reading from a real mosquitto, status and the
 * status page: what moves when code is bundled (the shipped models and the page's files found from
 * the package root, the native addons left outside, the health worker, lazy imports).
 */
describe('the package bin (the bundle) as a user runs it', () => {
  const bin = PACKAGE_BIN;
  const A = tempDir('bundled-bin');
  let broker: Broker;
  let agent: LongRunning | undefined;

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await agent?.stop('SIGKILL');
    await broker?.stop();
  });

  it('is the bundle and executable', () => {
    expect(bin).toMatch(/dist\/bundle\/edge-agent\.mjs$/);
    expect(statSync(bin).mode & 0o111, `${bin} is not executable: run npm run build`).not.toBe(0);
    const v = cli(['--version'], { bin });
    expect(v.stderr).toBe('');
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('init, run, a QoS 1 reading committed and shown by status, the status page served, a clean stop', async () => {
    const init = cli(['init', '--data-dir', A, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--anomaly-sensors', '#'], { bin });
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);

    agent = cliBackground(['run', '--data-dir', A], { bin });
    const ready = await agent.waitForReady(60_000);
    expect(ready.http).not.toBeNull();

    const pub = await connectPublisher(broker.url);
    try {
      // resolves on the broker's PUBACK; the agent acknowledges its copy only after the commit
      await pub.publishAsync('sensors/pump1', '[{"bn":"pump1/","bt":1763000000,"n":"temp","u":"Cel","v":21.5}]', { qos: 1 });
    } finally {
      await pub.endAsync();
    }

    const status = await waitFor(
      'status --json to show the reading committed',
      () => {
        const r = cli(['status', '--data-dir', A, '--json'], { bin });
        if (r.code !== 0) throw new Error(`status exited ${r.code}: ${r.stderr}`);
        const s = JSON.parse(r.stdout) as { running: boolean; readings: { total: number }; inference: unknown };
        return s.readings.total >= 1 ? s : undefined;
      },
      30_000,
      200,
    );
    expect(status.running).toBe(true);
    expect(status.readings.total).toBe(1);

    // the status page's files, read from agent/health/static at the package root, and uPlot,
    // resolved from node_modules by a require() made in the bundle
    const base = `http://${ready.http!.host}:${ready.http!.port}`;
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    for (const asset of ['/static/app.js', '/static/style.css', '/vendor/uplot.js']) expect((await fetch(`${base}${asset}`)).status, asset).toBe(200);
    // the health worker and the lazily imported metrics, inside the bundle
    const health = await fetch(`${base}/healthz`);
    expect([200, 503]).toContain(health.status);
    expect(((await health.json()) as { status?: unknown }).status).toBeDefined();
    const metrics = await waitFor('/metrics to answer 200', async () => ((await fetch(`${base}/metrics`)).status === 200 ? true : undefined), 20_000, 200);
    expect(metrics).toBe(true);

    expect(await agent.stop('SIGTERM')).toBe(0);
    expect(agent.output()).toMatch(/agent stopped/);
    agent = undefined;

    // the shipped models (models/ at the package root), verified by the bundle
    const models = cli(['models', 'verify'], { bin });
    expect(models.stderr, models.stdout).toBe('');
    expect(models.code).toBe(0);
  });
});
