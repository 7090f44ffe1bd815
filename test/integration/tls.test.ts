import mqtt from 'mqtt';
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { verifyAnyBatchEnvelope as verifyBatchEnvelope } from '../../agent/identity/batch-any.js';
import { buildBatch, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { startReceiver } from '../../agent/receiver/server.js';
import { HttpUplink } from '../../agent/uplink/http/http-uplink.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';
import { makeTestPki, mosquittoTlsConfig, type TestPki } from '../helpers/tls.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

function runAgent(dir: string): LongRunning {
  const agent = cliBackground(['run', '--data-dir', dir, '--log-level', 'debug']);
  cleanups.push(() => agent.stop('SIGKILL'));
  return agent;
}

async function tlsBroker(requireClientCert: boolean) {
  const broker = await startMosquitto(mosquittoTlsConfig(pki, requireClientCert));
  cleanups.push(() => broker.stop());
  return { ...broker, url: `mqtts://127.0.0.1:${broker.port}` };
}

/** The test's own MQTT clients (sensor publisher, network subscriber) present the client certificate too. */
const clientTls = () => ({ ca: readFileSync(pki.caCert), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) });
const mutualTls = () => ({ ca_file: pki.caCert, cert_file: pki.clientCert, key_file: pki.clientKey });

describe('TLS with certificate verification on (test CA made by openssl, real mosquitto)', () => {
  it('mqtts source, mqtts uplink and receive --mqtt-url over mutual TLS: readings in, signed batches out, signed receipts back', async () => {
    const sensors = await tlsBroker(true);
    const upstream = await tlsBroker(true);
    const got: number[] = [];
    const net = await mqtt.connectAsync(upstream.url, { ...clientTls(), protocolVersion: 5 });
    cleanups.push(() => net.endAsync());
    net.on('message', (_t, payload) => got.push(...verifyBatchEnvelope(new Uint8Array(payload)).body.r.map((r) => r.v)));
    await net.subscribeAsync('edge/+/batches', { qos: 1 });

    // The reference receiver on the same broker, over mutual TLS too, signing the receipts the agent requires.
    const receiver = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', tempDir('receiver'), '--mqtt-url', upstream.url,
      '--mqtt-ca-file', pki.caCert, '--mqtt-cert-file', pki.clientCert, '--mqtt-key-file', pki.clientKey]);
    cleanups.push(() => receiver.stop());
    const [, baseUrl, receiverKey] = await receiver.waitForOutput(/listening on (http:\/\/\S+) public key (did:key:\w+)/);
    await receiver.waitForOutput(/receiver subscribed to batches over MQTT/);

    const dir = tempDir('agent');
    expect(
      cli(['init', '--data-dir', dir, '--mqtt-url', sensors.url, '--uplink-url', upstream.url, '--receiver-key', receiverKey!, '--anomaly-sensors', '#', '--alert-topic', 'site/alerts']).code,
    ).toBe(0);
    patchConfig(dir, [
      [['sources', 'mqtt', 'tls'], mutualTls()],
      [['uplink', 'tls'], mutualTls()],
      [['batch', 'max_age_ms'], 100],
    ]);
    const agent = runAgent(dir);
    await agent.waitForReady();
    // Alerts go to the sensors' broker the way the source reaches it: this one demands a client certificate.
    await agent.waitForOutput(/alert publisher connected/);
    const pub = await mqtt.connectAsync(sensors.url, clientTls());
    for (let i = 0; i < 50; i++) await pub.publishAsync(`sensors/t${i % 2}`, JSON.stringify({ v: i, t: 1_763_300_000 + i }), { qos: 1 });
    await pub.endAsync();
    await waitFor('50 readings upstream', () => got.length >= 50, 20_000);
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await waitFor('receipts for every batch', () => {
      const b = status(dir).batches;
      return b.pending === 0 && b.receipts === b.delivered && b.delivered > 0;
    }, 15_000, 200);
    expect(await (await fetch(`${baseUrl}/v1/stats`)).json()).toMatchObject({ readings: 50, rejected: 0, gaps: 0 });
  });

  it('refuses a broker whose certificate the configured CA did not sign, and says what to fix', async () => {
    const broker = await tlsBroker(false);
    const dir = tempDir('agent');
    // The simulator makes batches for the uplink to try (the MQTT source cannot connect either).
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', broker.url, '--simulator', '1']).code).toBe(0);
    patchConfig(dir, [
      [['sources', 'simulator', 'interval_ms'], 20],
      [['sources', 'mqtt', 'tls'], { ca_file: pki.otherCaCert }],
      [['uplink', 'tls'], { ca_file: pki.otherCaCert }],
      [['batch', 'max_age_ms'], 100],
      [['uplink', 'retry_initial_ms'], 100],
    ]);
    const agent = runAgent(dir);
    await agent.waitForOutput(/"source":"mqtt".*server certificate not trusted \(\w+\): set tls.ca_file/);
    await agent.waitForOutput(/"component":"uplink".*server certificate not trusted/);
    expect(agent.output()).not.toMatch(/connected to broker/);
    expect(status(dir).batches.delivered).toBe(0);
  });

  it('mutual TLS: a client without a certificate is refused by the broker; with one it connects', async () => {
    const broker = await tlsBroker(true);
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url]).code).toBe(0);
    patchConfig(dir, [[['sources', 'mqtt', 'tls'], { ca_file: pki.caCert }]]);
    const without = runAgent(dir);
    const refusal = /"source":"mqtt".*the server requires a client certificate \(\w+\): set tls.cert_file and tls.key_file/g;
    // A fact, not a pause: the broker refused the agent twice (at start and at its reconnect), and it never got in.
    await waitFor('two refused connection attempts', () => (without.output().match(refusal) ?? []).length >= 2, 20_000);
    expect(without.output()).not.toMatch(/connected to broker/);
    await without.stop('SIGKILL');

    patchConfig(dir, [[['sources', 'mqtt', 'tls'], mutualTls()]]);
    const withCert = runAgent(dir);
    await withCert.waitForOutput(/connected to broker/);
  });

  it('https uplink to `edge-agent receive --tls-cert`: trusted through tls.ca_file, refused without it', async () => {
    const port = await freePort();
    const receiver = cliBackground(['receive', '--listen', `127.0.0.1:${port}`, '--data-dir', tempDir('receiver'), '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey]);
    cleanups.push(() => receiver.stop());
    await receiver.waitForOutput(/listening on https:/);
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--simulator', '2', '--uplink-url', `https://localhost:${port}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [
      [['sources', 'simulator', 'interval_ms'], 20],
      [['batch', 'max_age_ms'], 100],
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 300],
    ]);
    const untrusting = runAgent(dir);
    await waitFor('a TLS refusal', () => /server certificate not trusted/.test(status(dir).uplink.last_error ?? ''), 15_000, 200);
    await untrusting.stop('SIGKILL');
    expect(status(dir).batches.delivered).toBe(0);

    // The explicit opt-out works, and says loudly what it gives up.
    patchConfig(dir, [[['uplink', 'tls'], { insecure_skip_verify: true }]]);
    const insecure = runAgent(dir);
    await insecure.waitForOutput(/"level":40,[^\n]*uplink\.tls\.insecure_skip_verify is true: the server's certificate is NOT verified/);
    await waitFor('a batch delivered without verification', () => status(dir).batches.delivered >= 1, 15_000, 200);
    await insecure.stop('SIGKILL');

    patchConfig(dir, [[['uplink', 'tls'], { ca_file: pki.caCert }]]);
    const before = status(dir).batches.delivered as number;
    const trusting = runAgent(dir);
    await waitFor('batches delivered over https', () => status(dir).batches.delivered >= before + 3, 15_000, 200);
    expect(trusting.output()).not.toMatch(/insecure_skip_verify/);
    const stats = await (await fetch(`http://127.0.0.1:${port}/v1/stats`).catch(() => undefined))?.json().catch(() => undefined);
    expect(stats).toBeUndefined(); // plain http is not served on the TLS port
  });

  it('tls.servername: verifies the certificate against that name instead of the URL host', async () => {
    const receiver = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: tempDir('receiver'), logger: pino({ level: 'silent' }), tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) } });
    cleanups.push(() => receiver.close());
    const device = Identity.generate();
    const b = buildBatch(device, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1 }, [{ id: 1, sensor: 's', ts: 1, timeSource: 'sensor', value: 1, source: 't', boot: 1 }]);
    const attempt = (servername: string) =>
      new HttpUplink({ url: `${receiver.url}/v1/batches`, timeoutMs: 5000, tls: { ca: readFileSync(pki.caCert), servername, rejectUnauthorized: true } })
        .deliver({ seq: 1, hash: b.hash, device: device.publicKey, envelope: b.envelope }, new AbortController().signal);
    expect(await attempt('wrong.example')).toMatchObject({ kind: 'retry', error: expect.stringMatching(/server certificate does not name this host \(ERR_TLS_CERT_ALTNAME_INVALID\)/) });
    expect(await attempt('localhost')).toEqual({ kind: 'delivered' });
  });

  it('refuses to start with a TLS client key readable by others, naming the fix', async () => {
    const broker = await tlsBroker(true);
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url]).code).toBe(0);
    const key = `${tempDir('key')}/client.key`;
    copyFileSync(pki.clientKey, key);
    chmodSync(key, 0o644);
    patchConfig(dir, [[['sources', 'mqtt', 'tls'], { ca_file: pki.caCert, cert_file: pki.clientCert, key_file: key }]]);
    const agent = runAgent(dir);
    await agent.waitForOutput(/sources\.mqtt\.tls\.key_file: .*mode 644.*\(fix: chmod 600 /);
  });
});
