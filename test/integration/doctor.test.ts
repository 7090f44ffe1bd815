import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cli, cliBackground, CLI } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { writeFixtureModels } from '../helpers/onnx-fixtures.js';
import { startPtyPair } from '../helpers/serial.js';
import { patchConfig, tempDir } from '../helpers/setup.js';
import { makeTestPki, mosquittoTlsConfig, type TestPki } from '../helpers/tls.js';

interface Finding {
  check: string;
  subject: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

/** Runs the doctor without blocking this process: the https and http peers below live in it. */
async function doctor(dataDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'doctor', '--data-dir', dataDir, '--json', '--timeout-ms', '3000', ...extra], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  if (!r.stdout) throw new Error(`doctor printed nothing; stderr: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { ok: boolean; failed: number; checks: Finding[] };
  const find = (check: string) => {
    const f = out.checks.filter((c) => c.check === check);
    expect(f.length, `${check} in ${r.stdout}`).toBeGreaterThan(0);
    return f[0]!;
  };
  return { code: r.code, ...out, find };
}

/** A data dir with no sources and no uplink, clock trusted: every check passes or is skipped. */
function baseDir(name: string, init: string[] = []): string {
  const dir = tempDir(`doctor-${name}`);
  expect(cli(['init', '--data-dir', dir, '--no-http', ...init]).code).toBe(0);
  patchConfig(dir, [[['clock', 'synced'], 'always']]);
  return dir;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('edge-agent doctor', () => {
  let broker: Broker;
  let certs: TestPki;
  let soonExpiring: TestPki;
  const servers: Server[] = [];


  beforeAll(async () => {
    broker = await startMosquitto();
    certs = makeTestPki();
    soonExpiring = makeTestPki({ days: 5 });
  });
  afterAll(async () => {
    await broker?.stop();
    for (const s of servers) s.close();
  });

  it('passes on a healthy setup and exits 0; a missing config is one clear failure with exit 1', async () => {
    const ok = await doctor(baseDir('ok'));
    expect(ok.code).toBe(0);
    expect(ok.ok).toBe(true);
    expect(ok.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(ok.find('serial').status).toBe('skip');

    const none = await doctor(join(tempDir('doctor-none'), 'missing'));
    expect(none.code).toBe(1);
    expect(none.checks).toEqual([expect.objectContaining({ check: 'config', status: 'fail', fix: expect.stringMatching(/edge-agent init/) })]);
  });

  it('serial: a present pty passes; a missing device and a regular file fail with a fix', async () => {
    const ptyDir = tempDir('doctor-pty');
    const pty = await startPtyPair(ptyDir);
    try {
      const present = await doctor(baseDir('serial-ok', ['--serial-path', pty.gateway]));
      expect(present.find('serial')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/opens for reading and writing/) });
      expect(present.code).toBe(0);
    } finally {
      await pty.stop();
    }
    const missing = await doctor(baseDir('serial-missing', ['--serial-path', join(ptyDir, 'gone')]));
    expect(missing.code).toBe(1);
    expect(missing.find('serial')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/does not exist/), fix: expect.stringMatching(/\/dev\/serial\/by-id/) });
    const file = join(ptyDir, 'plain-file');
    writeFileSync(file, 'x');
    const notDevice = await doctor(baseDir('serial-file', ['--serial-path', file]));
    expect(notDevice.find('serial')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/not a character device \(a regular file\)/) });
  });

  it('broker: a real MQTT CONNECT to mosquitto passes; a port nobody listens on fails with a fix', async () => {
    const up = await doctor(baseDir('mqtt-ok', ['--mqtt-url', broker.url]));
    expect(up.find('broker')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/MQTT CONNECT accepted/) });
    expect(up.code).toBe(0);
    const down = await doctor(baseDir('mqtt-down', ['--mqtt-url', `mqtt://127.0.0.1:${await freePort()}`]));
    expect(down.code).toBe(1);
    expect(down.find('broker')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ECONNREFUSED/), fix: expect.stringMatching(/start the broker/) });
  });

  it('uplink: http reachable passes, refused fails; https with an untrusted CA fails, trusted passes, near expiry warns', async () => {
    const plain = createHttpServer((_req, res) => res.writeHead(405).end());
    servers.push(plain);
    const httpOk = await doctor(baseDir('up-http', ['--uplink-url', `http://127.0.0.1:${await listen(plain)}/v1/batches`]));
    expect(httpOk.find('uplink')).toMatchObject({ status: 'pass', detail: 'reachable: HTTP 405' });

    const refused = await doctor(baseDir('up-refused', ['--uplink-url', `http://127.0.0.1:${await freePort()}/v1/batches`]));
    expect(refused.code).toBe(1);
    expect(refused.find('uplink')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/nothing listens/) });

    const secure = createHttpsServer({ key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) }, (_req, res) => res.writeHead(404).end());
    servers.push(secure);
    const dir = baseDir('up-https', ['--uplink-url', `https://127.0.0.1:${await listen(secure)}/v1/batches`]);
    const untrusted = await doctor(dir);
    expect(untrusted.code).toBe(1);
    expect(untrusted.find('uplink')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^TLS failed: .*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify)/),
      fix: expect.stringMatching(/NODE_EXTRA_CA_CERTS/),
    });
    const trusted = await doctor(dir, [], { NODE_EXTRA_CA_CERTS: certs.caCert });
    expect(trusted.code).toBe(0);
    expect(trusted.find('uplink')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/HTTP 404, TLS certificate for localhost valid until .* \((29|30) days\)/) });

    const short = createHttpsServer({ key: readFileSync(soonExpiring.serverKey), cert: readFileSync(soonExpiring.serverCert) }, (_req, res) => res.writeHead(404).end());
    servers.push(short);
    const expiring = await doctor(baseDir('up-short', ['--uplink-url', `https://127.0.0.1:${await listen(short)}/v1/batches`]), [], { NODE_EXTRA_CA_CERTS: soonExpiring.caCert });
    expect(expiring.find('uplink')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/renew/) });
    expect(expiring.code).toBe(0);
  });

  it('uplink TLS as the agent does it: uplink.tls.ca_file trusted passes, another CA fails naming the key', async () => {
    const secure = createHttpsServer({ key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) }, (_req, res) => res.writeHead(404).end());
    servers.push(secure);
    const dir = baseDir('up-ca-file', ['--uplink-url', `https://127.0.0.1:${await listen(secure)}/v1/batches`]);
    patchConfig(dir, [[['uplink', 'tls'], { ca_file: certs.caCert }]]);
    const ok = await doctor(dir);
    expect(ok.find('uplink')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/TLS certificate for localhost/) });
    patchConfig(dir, [[['uplink', 'tls'], { ca_file: certs.otherCaCert }]]);
    const other = await doctor(dir);
    expect(other.code).toBe(1);
    expect(other.find('uplink')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/set uplink\.tls\.ca_file to the CA that signed it/) });
    patchConfig(dir, [[['uplink', 'tls'], { insecure_skip_verify: true }]]);
    expect((await doctor(dir)).find('uplink')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/not verified/) });
  });

  it('MQTT uplink and mqtts source: a real CONNECT with the configured TLS; an untrusted broker certificate fails with the key to set', async () => {
    const tlsBroker = await startMosquitto(mosquittoTlsConfig(certs));
    try {
      const mqtts = `mqtts://127.0.0.1:${tlsBroker.port}`;
      const dir = baseDir('mqtt-uplink', ['--mqtt-url', mqtts]);
      patchConfig(dir, [
        [['sources', 'mqtt', 'tls'], { ca_file: certs.caCert }],
        [['uplink'], { type: 'mqtt', url: broker.url }],
      ]);
      const ok = await doctor(dir);
      expect(ok.find('broker')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/MQTT CONNECT accepted in \d+ ms over verified TLS/) });
      expect(ok.find('uplink')).toMatchObject({ status: 'pass', subject: `uplink ${broker.url}`, detail: expect.stringMatching(/MQTT CONNECT accepted/) });
      expect(ok.code).toBe(0);

      patchConfig(dir, [
        [['sources', 'mqtt', 'tls'], { ca_file: certs.otherCaCert }],
        [['uplink'], { type: 'mqtt', url: `mqtt://127.0.0.1:${await freePort()}` }],
      ]);
      const bad = await doctor(dir);
      expect(bad.code).toBe(1);
      expect(bad.find('broker')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/set sources\.mqtt\.tls\.ca_file/) });
      expect(bad.find('uplink')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/fix the host and port in uplink\.url/) });
    } finally {
      await tlsBroker.stop();
    }
  });

  it('http: a free port passes, another program on it fails, the running agent is asked for its readiness', async () => {
    const port = await freePort();
    const dir = baseDir('http');
    patchConfig(dir, [[['http'], { listen: `127.0.0.1:${port}` }]]);
    expect((await doctor(dir)).find('http')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/is free for the health endpoint/) });

    const other = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'));
    await new Promise<void>((r) => other.listen(port, '127.0.0.1', () => r()));
    const taken = await doctor(dir);
    other.close();
    expect(taken.code).toBe(1);
    expect(taken.find('http')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/something else answers on 127\.0\.0\.1:\d+ \(HTTP 200/), fix: expect.stringMatching(/choose another http\.listen/) });

    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForOutput(/status page on/);
      const running = await doctor(dir);
      expect(running.find('http')).toMatchObject({ status: 'pass', detail: `the running agent answers http://127.0.0.1:${port}/healthz: ready` });
    } finally {
      await agent.stop();
    }
    patchConfig(dir, [[['clock', 'synced'], 'never']]);
    const unready = cliBackground(['run', '--data-dir', dir]);
    try {
      await unready.waitForOutput(/status page on/);
      // An untrusted clock degrades the agent, it does not fail it (issue 16): /healthz stays 200.
      expect((await doctor(dir)).find('http')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/ready but degraded \(clock: gateway clock is not known to be synchronised \(clock\.synced: never\)/) });
    } finally {
      await unready.stop();
    }
  });

  it('clock: a trusted clock passes; clock.synced: never fails with a fix', async () => {
    const dir = baseDir('clock');
    expect((await doctor(dir)).find('clock').status).toBe('pass');
    patchConfig(dir, [[['clock', 'synced'], 'never']]);
    const never = await doctor(dir);
    expect(never.code).toBe(1);
    expect(never.find('clock')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/set it to auto/) });
  });

  it('disk: enough free space passes; below --min-free-mb fails with a fix', async () => {
    const dir = baseDir('disk');
    expect((await doctor(dir)).find('disk')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/MiB free of/) });
    const tight = await doctor(dir, ['--min-free-mb', '999999999']);
    expect(tight.code).toBe(1);
    expect(tight.find('disk')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/below the 999999999 MiB minimum/), fix: expect.stringMatching(/free space/) });
  });

  it('key permissions: 600 passes; a group-readable device key or password file fails with chmod as the fix', async () => {
    const dir = baseDir('keys', ['--mqtt-url', broker.url]);
    const key = join(dir, 'device.key');
    expect((await doctor(dir)).find('key-permissions')).toMatchObject({ status: 'pass', subject: key });
    chmodSync(key, 0o640);
    const open = await doctor(dir);
    expect(open.code).toBe(1);
    expect(open.find('key-permissions')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/mode 640: readable or writable by its group/), fix: `chmod 600 ${key} (and chown it to the agent's user)` });

    chmodSync(key, 0o600);
    writeFileSync(join(dir, 'mqtt.pass'), 'secret\n', { mode: 0o604 });
    patchConfig(dir, [
      [['sources', 'mqtt', 'username'], 'gw1'],
      [['sources', 'mqtt', 'password_file'], 'mqtt.pass'],
    ]);
    const pass = (await doctor(dir)).checks.find((c) => c.subject === join(dir, 'mqtt.pass'));
    expect(pass).toMatchObject({ check: 'key-permissions', status: 'fail', detail: expect.stringMatching(/sources\.mqtt\.password_file .* mode 604: readable or writable by other users/) });
  });

  it('models: files matching the manifest sha256 pass; a changed model file fails, naming it', async () => {
    const dir = baseDir('models');
    const models = join(tempDir('doctor-models'), 'models');
    writeFixtureModels(models);
    const ok = await doctor(dir, ['--models-dir', models]);
    expect(ok.code).toBe(0);
    expect(ok.checks.filter((c) => c.check === 'models').map((c) => [c.subject, c.status])).toEqual([
      ['mean-square', 'pass'],
      ['window-mean', 'pass'],
    ]);
    const file = join(models, 'window-mean.onnx');
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from([0])]));
    const tampered = await doctor(dir, ['--models-dir', models]);
    expect(tampered.code).toBe(1);
    expect(tampered.checks.find((c) => c.subject === 'window-mean')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/has sha256 [0-9a-f]{64}, but the manifest says/),
      fix: expect.stringMatching(/reinstall the model files/),
    });
    expect(tampered.checks.find((c) => c.subject === 'mean-square')?.status).toBe('pass');
    const missing = await doctor(dir, ['--models-dir', join(models, 'nope')]);
    expect(missing.find('models')).toMatchObject({ status: 'fail', detail: 'not found' });
  });

  it('prints a readable report with a fix line under each failure', () => {
    const dir = baseDir('text');
    patchConfig(dir, [[['clock', 'synced'], 'never']]);
    const r = cli(['doctor', '--data-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL clock +gateway clock: not known to be synchronised.*\n +fix: clock\.synced is never/m);
    expect(r.stdout).toMatch(/^ok {3}disk /m);
    expect(r.stdout).toMatch(/1 check failed\n$/);
  });
});
