import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const shipped = join(import.meta.dirname, '../../models');

interface DeviceEvent {
  kind: string;
  key: string | null;
  detail: Record<string, unknown> | null;
}

/** A model set of the shipped streaming detector alone, its manifest edited by `edit`, its ONNX file replaced by `onnx`. */
function modelSet(name: string, edit: (m: Record<string, any>) => void = () => undefined, onnx?: Buffer): string {
  const dir = join(tempDir('set'), name);
  mkdirSync(dir);
  const manifest = JSON.parse(readFileSync(join(shipped, 'manifest.json'), 'utf8'));
  manifest.models = manifest.models.filter((m: { id: string }) => m.id === 'stream-ad');
  const bytes = onnx ?? readFileSync(join(shipped, 'stream-ad.onnx'));
  writeFileSync(join(dir, 'stream-ad.onnx'), bytes);
  manifest.models[0].sha256 = createHash('sha256').update(bytes).digest('hex');
  edit(manifest.models[0]);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

/** A static file server: the URLs a bundle names (a real HTTP peer for the agent's fetch). */
async function serveDir(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    try {
      const body = readFileSync(join(dir, (req.url ?? '/').replace(/^\/+/, '').replace(/\.\./g, '')));
      res.writeHead(200, { 'content-length': body.length }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/**
 * GET as JSON. One retry when a kept-alive socket turns out closed by the receiver (its idle
 * timeout raced our reuse, undici's "other side closed"): that is the test client's pool, not the product.
 */
async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const once = async () => {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as T };
  };
  try {
    return await once();
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
    return once();
  }
}

describe('signed remote updates, over HTTP and MQTT', () => {
  let broker: Broker;
  let receiver: LongRunning;
  let baseUrl = '';
  let receiverKey = '';
  const R = tempDir('upd-receiver');
  const keyFile = join(tempDir('publisher'), 'publisher.key');
  let publisher = '';

  beforeAll(async () => {
    broker = await startMosquitto();
    receiver = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', R, '--mqtt-url', broker.url]);
    const m = await receiver.waitForOutput(/receiver listening on (http:\/\/127\.0\.0\.1:\d+)\S* public key (did:key:\w+)/);
    [baseUrl, receiverKey] = [m[1]!, m[2]!];
    const gen = cli(['keys', 'generate', '--publisher', '--out', keyFile, '--json']);
    expect(gen.code, gen.stderr).toBe(0);
    publisher = (JSON.parse(gen.stdout) as { public_key: string }).public_key;
  }, 60_000);
  afterAll(async () => {
    await receiver?.stop();
    await broker?.stop();
  });

  /** An agent scoring one fast simulated sensor with the streaming detector, taking updates from `publisher`. */
  async function startAgent(uplinkUrl: string, healthTimeoutS = 10): Promise<{ dir: string; device: string; agent: LongRunning }> {
    const dir = tempDir('upd-agent');
    const init = cli(['init', '--data-dir', dir, '--simulator', '1', '--anomaly-sensors', '#', '--no-http', '--uplink-url', uplinkUrl, '--receiver-key', receiverKey, '--update-publisher-key', publisher]);
    expect(init.code, init.stderr).toBe(0);
    const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    patchConfig(dir, [
      [['sources', 'simulator', 'interval_ms'], 20],
      [['batch', 'max_age_ms'], 300],
      [['update', 'health_timeout_s'], healthTimeoutS],
      [['update', 'shadow', 'readings'], 2000],
    ]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    await agent.waitForReady(30_000);
    return { dir, device, agent };
  }

  const events = async (device: string): Promise<DeviceEvent[]> => {
    const res = await getJson<DeviceEvent[]>(`${baseUrl}/v1/devices/${device}/events`);
    return res.status === 200 ? res.body : [];
  };

  /** Signs, publishes to `device` and waits for the device's signed word on it (an update.* event at the receiver). */
  async function push(device: string, id: string, what: string[], extra: string[] = []): Promise<DeviceEvent> {
    const out = join(tempDir('bundle'), `${id}.cbor`);
    const made = cli(['update', 'bundle', '--key', keyFile, '--id', id, '--bundle-version', `v-${id}`, ...what, '--out', out, ...extra]);
    expect(made.code, made.stderr).toBe(0);
    return publishAndWait(device, id, out);
  }

  async function publishAndWait(device: string, id: string, bundle: string): Promise<DeviceEvent> {
    const pub = cli(['fleet', 'publish', '--receiver', baseUrl, '--bundle', bundle, '--device', device]);
    expect(pub.code, pub.stderr).toBe(0);
    return waitFor(`the device's word on bundle ${id}`, async () => (await events(device)).find((e) => e.key === id && e.kind.startsWith('update.')), 90_000, 200);
  }

  /** Readings the agent stored equal readings the receiver holds (after a clean stop that delivers the rest). */
  async function noneLost(dir: string, agent: LongRunning, device: string): Promise<void> {
    expect(await agent.stop()).toBe(0);
    const stored = (JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as { readings: { total: number }; batches: { pending: number } });
    expect(stored.batches.pending).toBe(0);
    const batches = (await getJson<{ readings: number }[]>(`${baseUrl}/v1/devices/${device}/batches`)).body;
    expect(batches.reduce((s, b) => s + b.readings, 0)).toBe(stored.readings.total);
    expect(cli(['verify', '--data-dir', dir]).code).toBe(0);
  }

  const readingsAt = async (device: string) => {
    const res = await getJson<{ readings: number }[]>(`${baseUrl}/v1/devices/${device}/batches`);
    return res.status === 200 ? res.body.reduce((s, b) => s + b.readings, 0) : 0;
  };

  it('over HTTP: broken bundles are refused with their reason, a good model set is applied and shown in status and the batches; no reading lost', async () => {
    const { dir, device, agent } = await startAgent(`${baseUrl}/v1/batches`);
    // Enough readings for the shadow run: the detector's warm-up is 150 rows.
    await waitFor('400 readings at the receiver', async () => (await readingsAt(device)) >= 400 && true, 60_000, 200);

    // A signature that does not verify.
    const good = modelSet('good', (m) => (m.version = '2.0'));
    const badSigOut = join(tempDir('bundle'), 'badsig.cbor');
    expect(cli(['update', 'bundle', '--key', keyFile, '--id', 'badsig', '--bundle-version', 'v', '--models-dir', good, '--out', badSigOut]).code).toBe(0);
    const bytes = readFileSync(badSigOut);
    bytes[8] ^= 0x01; // inside sig (the envelope map's first value)
    writeFileSync(badSigOut, bytes);
    const badSig = await publishAndWait(device, 'badsig', badSigOut);
    expect(badSig.kind).toBe('update.refused');
    expect(String(badSig.detail?.reason)).toMatch(/^bad-signature: /);

    // A model that fails its probe: onnxruntime cannot load these bytes (the manifest's sha256 matches them).
    const broken = await push(device, 'probe', ['--models-dir', modelSet('broken', () => undefined, Buffer.from('not an onnx graph at all'))]);
    expect(broken.kind).toBe('update.refused');
    expect(String(broken.detail?.reason)).toMatch(/^probe-failed: .*onnxruntime cannot load it/);

    // A set whose verdicts disagree with the running one: it alerts on every window.
    const eager = await push(device, 'eager', ['--models-dir', modelSet('eager', (m) => Object.assign(m.alert, { on: 0, off: 0 }))]);
    expect(eager.kind).toBe('update.refused');
    expect(String(eager.detail?.reason)).toMatch(/^shadow-disagrees: shadow run: \d+ of \d+ verdicts differ/);

    // A config that fails validation.
    const badConfig = join(tempDir('cfg'), 'edge-agent.yaml');
    const doc = parseDocument(readFileSync(join(dir, 'edge-agent.yaml'), 'utf8'));
    doc.setIn(['batch', 'max_readingz'], 5);
    writeFileSync(badConfig, doc.toString());
    const invalid = await push(device, 'badcfg', ['--config', badConfig]);
    expect(invalid.kind).toBe('update.refused');
    expect(String(invalid.detail?.reason)).toMatch(/^invalid: config: .*batch\.max_readingz: unknown key/);

    // The good set: applied, in status, and in a signed batch at the receiver.
    const applied = await push(device, 'models-2', ['--models-dir', good]);
    expect(applied.kind).toBe('update.applied');
    expect(applied.detail).toMatchObject({ version: 'v-models-2', bundle_kind: 'models' });
    const status = await waitFor('status shows the new set', () => {
      const s = cli(['status', '--data-dir', dir]).stdout;
      return /models {5}v-models-2 \(bundle models-2, applied .*\); previous as installed \(bundle initial\)/.test(s) && s;
    });
    expect(status).toMatch(/update {5}last: bundle models-2 v-models-2 applied/);
    const scored = await waitFor('the new set scores readings', () => {
      const s = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as { inference: { scored: number; disabled: object } | null };
      return s.inference && s.inference.scored > 0 && s.inference;
    }, 30_000);
    expect(scored.disabled).toEqual({});
    const fleet = JSON.parse(cli(['fleet', 'status', '--receiver', baseUrl, '--json']).stdout) as { devices: { device: string; updates: Record<string, { outcome: string }> }[] };
    expect(fleet.devices.find((d) => d.device === device)?.updates).toMatchObject({ badsig: { outcome: 'refused' }, 'models-2': { outcome: 'applied' } });

    await noneLost(dir, agent, device);
    // The store, keys and chain are the same device's: a restart resumes the applied set.
    const again = cliBackground(['run', '--data-dir', dir]);
    await again.waitForOutput(/inference running/);
    expect(await again.stop()).toBe(0);
    expect(cli(['status', '--data-dir', dir]).stdout).toMatch(/models {5}v-models-2/);
  }, 300_000);

  it('over MQTT: a model set fetched by URL is applied, a wrong sha256 refused, a config whose health does not return rolled back, also across a kill -9 inside the health watch; no reading lost', async () => {
    // A longer health watch, so the agent can be killed inside it below.
    const { dir, device, agent } = await startAgent(broker.url, 20);
    await waitFor('400 readings at the receiver', async () => (await readingsAt(device)) >= 400 && true, 60_000, 200);
    const served = modelSet('by-url', (m) => (m.version = '3.0'));
    const files = await serveDir(served);
    try {
      // The manifest served is not the one signed.
      const tampered = await serveDir(modelSet('tampered', (m) => (m.description = 'changed after signing')));
      const out = join(tempDir('bundle'), 'sha.cbor');
      expect(cli(['update', 'bundle', '--key', keyFile, '--id', 'sha', '--bundle-version', 'v', '--models-dir', modelSet('tampered-signed'), '--url-base', tampered.url, '--out', out]).code).toBe(0);
      const sha = await publishAndWait(device, 'sha', out);
      tampered.server.close();
      expect(sha.kind).toBe('update.refused');
      expect(String(sha.detail?.reason)).toMatch(/^bad-sha256: bundle sha: manifest\.json has \d+ bytes with sha256 [0-9a-f]{64}, the signed bundle says/);

      const applied = await push(device, 'models-3', ['--models-dir', served], ['--url-base', files.url]);
      expect(applied.kind).toBe('update.applied');
      await waitFor('status shows it', () => /models {5}v-models-3/.test(cli(['status', '--data-dir', dir]).stdout) && true);
    } finally {
      files.server.close();
    }

    // A valid config whose binding matches no sensor: nothing is scored, health does not return.
    // The agent is killed inside the health watch; the restarted agent watches again and rolls back.
    const cfg = join(tempDir('cfg'), 'edge-agent.yaml');
    const doc = parseDocument(readFileSync(join(dir, 'edge-agent.yaml'), 'utf8'));
    doc.setIn(['inference', 'bindings', 'anomaly', 'sensors'], ['nothing/here/#']);
    writeFileSync(cfg, doc.toString());
    const applied = await push(device, 'cfg-1', ['--config', cfg]);
    expect(applied.kind).toBe('update.applied');
    // Named per key since the SIGHUP reload (issue 16 item 2) carries config updates too.
    expect(String(applied.detail?.reason)).toBe('applied live: inference.bindings.anomaly');
    await agent.stop('SIGKILL');
    expect(readFileSync(join(dir, 'edge-agent.yaml'), 'utf8')).toContain('nothing/here/#');
    const restarted = cliBackground(['run', '--data-dir', dir]);
    await restarted.waitForReady(30_000);
    const back = await waitFor('the rollback at the receiver', async () => (await events(device)).find((e) => e.key === 'cfg-1' && e.kind === 'update.rolled_back'), 90_000, 200);
    expect(String(back.detail?.reason)).toMatch(/health did not return within 20 s: no reading scored by the new model set yet/);
    expect(readFileSync(join(dir, 'edge-agent.yaml'), 'utf8')).not.toContain('nothing/here/#');
    await waitFor('the restored binding scores again', () => {
      const s = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as { inference: { scored: number } | null };
      return (s.inference?.scored ?? 0) > 0;
    }, 30_000);
    await noneLost(dir, restarted, device);
  }, 300_000);
});
