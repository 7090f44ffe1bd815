import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, TEST_RESULTS } from '../helpers/chromium.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

/** Pixels of a PNG (decoded by the page itself) within `tolerance` of an RGB colour. */
async function countColour(page: Page, png: Buffer, rgb: [number, number, number], tolerance = 40): Promise<number> {
  return page.evaluate(
    async ({ b64, rgb, tolerance }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const c = new OffscreenCanvas(img.width, img.height);
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, img.width, img.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i]! - rgb[0]) + Math.abs(d[i + 1]! - rgb[1]) + Math.abs(d[i + 2]! - rgb[2]) < tolerance) n++;
      }
      return n;
    },
    { b64: png.toString('base64'), rgb, tolerance },
  );
}

describe('status page in headless Chromium', () => {
  let broker: Broker;
  let agent: LongRunning;
  let browser: BrowserContext;
  let port: number;
  const A = tempDir('status-page');
  const temps = [20, 21.5, 23, 22.25, 24.5, 26, 25.75, 27.25];

  beforeAll(async () => {
    broker = await startMosquitto();
    expect(cli(['init', '--data-dir', A, '--mqtt-url', broker.url, '--http-listen', '127.0.0.1:0']).code).toBe(0);
    patchConfig(A, [[['clock', 'synced'], 'always']]);
    agent = cliBackground(['run', '--data-dir', A]);
    // The agent binds port 0 itself and reports the port it got on its ready line.
    port = (await agent.waitForReady()).http!.port;
    const pub = await connectPublisher(broker.url);
    const t0 = Date.now() - 60_000;
    // Sensor-timed readings a few seconds apart, so the chart has a time axis to draw on.
    await publishAll(pub, temps.map((v, i) => ({ topic: 'sensors/pump1/temp', payload: JSON.stringify({ v, t: t0 + i * 5000, u: 'Cel' }) })));
    await publishAll(pub, [1450, 1460, 1455].map((v, i) => ({ topic: 'sensors/pump1/rpm', payload: JSON.stringify({ v, t: t0 + i * 5000 }) })));
    await publishAll(pub, [{ topic: 'sensors/pump1/rpm', payload: 'not a number' }]);
    await pub.endAsync();

    const db = new Database(join(A, 'edge-agent.db'));
    db.pragma('busy_timeout = 5000');
    // Verdicts as the inference runtime stores them (store migration 3).
    const insert = db.prepare(
      `INSERT INTO verdicts (key, model_id, model_sha256, window_start, ts, score, outputs, value, threshold, alert, changed, boot, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
    );
    const scores = [0.1, 0.15, 0.2, 0.35, 0.7, 0.92, 0.95, 0.5];
    scores.forEach((s, i) => {
      // The alert is raised by the verdict at 0.92 (changed = 1) and stays raised at 0.95.
      const alert = s >= 0.9 ? 1 : 0;
      const changed = i === 5 ? 1 : 0;
      insert.run('pump1/temp', 'pump-ae-v1', Buffer.alloc(32, 1), t0 + i * 5000 - 5000, t0 + i * 5000, s, JSON.stringify({ score: s }), s, 0.9, alert, changed, Date.now());
    });
    db.close();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    await broker?.stop();
  });

  it('draws each sensor with its values and anomaly score, shows alerts, backlog and health, and refreshes live', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`http://127.0.0.1:${port}/`);

    const temp = page.locator('.chart[data-sensor="pump1/temp"]');
    await temp.locator('.latest[data-value="27.25"]').waitFor({ timeout: 15_000 });
    expect(await temp.locator('.latest').textContent()).toBe('27.25 Cel');
    expect(await temp.locator('.score').textContent()).toBe('score 0.500');
    expect(await page.locator('.chart[data-sensor="pump1/rpm"] .latest').textContent()).toBe('1455');
    expect(await page.locator('#health').textContent()).toBe('healthy');
    expect(await page.locator('#checks li[data-check="sources"]').textContent()).toBe('✓ sources: 1 connected: mqtt');
    expect(await page.locator('#backlog').textContent()).toMatch(/readings not batched/);
    expect(await page.locator('#uplink').textContent()).toMatch(/none configured/);
    // The rejection may commit up to one commit interval after the readings (store.commit_interval_ms): wait for it.
    await page.locator('#counters li[data-counter="rejected"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#counters li[data-counter="rejected"]').textContent()).toBe('rejected · mqtt: not JSON, SenML or a number: 1');
    // Nothing overflows the window: the panels wrap instead.
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    const alertRow = page.locator('#alerts tbody tr');
    expect(await alertRow.count()).toBe(1);
    expect(await alertRow.first().textContent()).toMatch(/pump1\/temppump-ae-v1raised0\.920\.9$/);

    // The chart canvas, as a screenshot: the value line (blue) and score line (red) are drawn.
    const canvas = temp.locator('canvas');
    const png = await canvas.screenshot();
    const blue = await countColour(page, png, [31, 119, 180]);
    const red = await countColour(page, png, [214, 39, 40]);
    expect(blue, 'value line pixels').toBeGreaterThan(100);
    expect(red, 'score line pixels').toBeGreaterThan(100);

    // Live: a new reading appears without reloading the page.
    const pub = await connectPublisher(broker.url);
    await publishAll(pub, [{ topic: 'sensors/pump1/temp', payload: JSON.stringify({ v: 31.5, t: Date.now(), u: 'Cel' }) }]);
    await pub.endAsync();
    await temp.locator('.latest[data-value="31.5"]').waitFor({ timeout: 10_000 });

    // A phone-sized window: everything wraps, the charts shrink with their column and still draw.
    await page.setViewportSize({ width: 400, height: 900 });
    await waitFor('charts resized', () => page.evaluate(() => document.querySelector('.chart canvas')!.getBoundingClientRect().width < 400));
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    expect(await countColour(page, await canvas.screenshot(), [31, 119, 180])).toBeGreaterThan(50);
    await page.screenshot({ path: join(TEST_RESULTS, 'status-page-narrow.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    const shot = join(TEST_RESULTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`status page screenshot: ${shot}\n`);
    expect(errors).toEqual([]);
  });

  it('serves the same numbers as JSON at /api/status', async () => {
    const s = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as {
      sensors: { key: string; values: [number, number][]; scores: [number, number][]; unit: string }[];
      alerts: { key: string; raised: boolean }[];
      verdicts_available: boolean;
    };
    const temp = s.sensors.find((x) => x.key === 'pump1/temp')!;
    expect(temp.values.map((p) => p[1]).slice(0, temps.length)).toEqual(temps);
    expect(temp.unit).toBe('Cel');
    expect(temp.scores).toHaveLength(8);
    expect(s.verdicts_available).toBe(true);
    expect(s.alerts).toEqual([expect.objectContaining({ key: 'pump1/temp', raised: true })]);
    await waitFor('rpm listed', () => s.sensors.some((x) => x.key === 'pump1/rpm'));
  });
});
