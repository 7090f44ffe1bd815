import Database from 'better-sqlite3';
import { encode } from 'cborg';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { coapClient, freeUdpPort, startLibcoapServer } from '../helpers/libcoap.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';

const T = 1_763_000_000; // s

/** Readings of the agent's store by sensor, straight from its SQLite file. */
function stored(dir: string, sensorLike: string): { sensor: string; value: number; ts: number }[] {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return db.prepare('SELECT sensor, value, ts FROM readings WHERE sensor LIKE ? ORDER BY id').all(sensorLike) as { sensor: string; value: number; ts: number }[];
  } finally {
    db.close();
  }
}

describe('CoAP interop with libcoap (coap-client, coap-server) through the CLI', () => {
  let receiver: RunningReceiver;
  beforeAll(async () => {
    receiver = await startReceiverProcess(tempDir('receiver'));
  });
  afterAll(async () => {
    await receiver?.proc.stop();
  });

  it('SenML JSON, SenML CBOR and a block-wise pack from coap-client end up in signed batches at the receiver', async () => {
    const port = await freeUdpPort();
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--coap-listen', `127.0.0.1:${port}`, '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey]).code).toBe(0);
    patchConfig(dir, [[['batch', 'max_age_ms'], 300]]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForOutput(/CoAP server listening/);
      const url = `coap://127.0.0.1:${port}/readings`;
      coapClient(['-m', 'post', '-t', '110', '-e', JSON.stringify([{ bn: 'pump1/', bt: T, n: 'temp', u: 'Cel', v: 21.5 }, { n: 'rpm', v: 1450 }]), url]);
      const cborFile = join(dir, 'pack.cbor');
      // RFC 8428 §6 integer labels: -2 bn, -3 bt, 0 n, 1 u, 2 v
      writeFileSync(cborFile, encode([new Map<number, unknown>([[-2, 'pump2/'], [-3, T], [0, 'pressure'], [1, 'Pa'], [2, 101325]])]));
      coapClient(['-m', 'post', '-t', '112', '-f', cborFile, url]);
      const bigFile = join(dir, 'big.json');
      writeFileSync(bigFile, JSON.stringify(Array.from({ length: 150 }, (_, i) => ({ bn: 'bulk/', bt: T, n: `s${i}`, v: i }))));
      coapClient(['-m', 'post', '-t', '110', '-b', '256', '-f', bigFile, url]); // ~5 kB in 256-byte blocks (RFC 7959)
      coapClient(['-m', 'put', '-t', '0', '-e', '7.25', `${url}/cellar-temp`]);

      const total = 2 + 1 + 150 + 1;
      await waitFor(`${total} readings at the receiver`, async () => (await receiver.stats()).readings >= total, 30_000);
      // At the receiver, in verified batches: the same readings.
      const rdb = new Database(join(receiver.dataDir, 'receiver.db'), { readonly: true });
      const atReceiver = rdb.prepare("SELECT sensor, value FROM readings WHERE sensor LIKE 'pump%' OR sensor = 'cellar-temp' ORDER BY id").all();
      const bulk = rdb.prepare("SELECT count(*) FROM readings WHERE sensor LIKE 'bulk/%'").pluck().get();
      rdb.close();
      expect(atReceiver).toEqual([
        { sensor: 'pump1/temp', value: 21.5 },
        { sensor: 'pump1/rpm', value: 1450 },
        { sensor: 'pump2/pressure', value: 101325 },
        { sensor: 'cellar-temp', value: 7.25 },
      ]);
      expect(bulk).toBe(150);
      expect(stored(dir, 'pump%').map((r) => [r.sensor, r.value])).toEqual([['pump1/temp', 21.5], ['pump1/rpm', 1450], ['pump2/pressure', 101325]]);
      expect(stored(dir, 'bulk/%')).toHaveLength(150);
      expect(stored(dir, 'cellar-temp')[0]!.value).toBe(7.25);
      await waitFor('all delivered', () => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout).batches.pending === 0);
      expect(await agent.stop()).toBe(0);
      expect(JSON.parse(cli(['verify', '--data-dir', dir, '--json']).stdout)).toMatchObject({ valid: true, readings: total, deliveredWithoutReceipt: 0 });
    } finally {
      await agent.stop('SIGKILL');
    }
  });

  it("observes libcoap's coap-server and recovers when that server is stopped and started again", async () => {
    const serverPort = await freeUdpPort();
    let server = startLibcoapServer(serverPort);
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--coap-observe', `coap://127.0.0.1:${serverPort}/time?ticks`]).code).toBe(0);
    patchConfig(dir, [
      [['sources', 'coap-observe-1', 'silence_timeout_ms'], 2500],
      [['sources', 'coap-observe-1', 'request_timeout_ms'], 1000],
    ]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      // /time?ticks notifies the server's clock in seconds, once a second.
      await waitFor('3 notifications', () => stored(dir, 'time').length >= 3, 15_000, 200);
      await server.stop();
      const stoppedAt = Math.floor(Date.now() / 1000);
      await new Promise((r) => setTimeout(r, 3000));
      server = startLibcoapServer(serverPort);
      await waitFor('notifications from the restarted server', () => stored(dir, 'time').some((r) => r.value > stoppedAt + 2), 30_000, 200);
      expect(agent.output()).toMatch(/notifications stopped; registering again/);
      const status = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
      expect(status.sources['coap-observe-1']).toMatchObject({ type: 'coap-observe' });
    } finally {
      await agent.stop('SIGKILL');
      await server.stop();
    }
  });
});
