import { createServer, type Server } from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBatch, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { publicKeyFromDeviceId } from '../../agent/identity/device-id.js';
import { Identity } from '../../agent/identity/keys.js';
import { httpUplinkPlugin } from '../../agent/uplink/http/plugin.js';
import { mqttUplinkPlugin } from '../../agent/uplink/mqtt/plugin.js';
import type { OutgoingBatch, Uplink } from '../../agent/uplink/uplink.js';
import { cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The uplink contract, run against every uplink with the real reference receiver
 * (`edge-agent receive`, over HTTP, or bridged to a real mosquitto):
 *   - a batch counts as delivered only once the receiver holds it (its signed receipt verified);
 *   - a bad answer (a receipt by another key, a reply that is not one) is a failed attempt, never a delivery;
 *   - after the link breaks, the next attempt delivers.
 * Each uplink makes one attempt per call (agent/uplink/uplink.ts); retries belong to the forwarder.
 */
const device = Identity.generate();
const silent = pino({ level: 'silent' });
let prev = ZERO_HASH;
let seq = 0;
/** The batch built last. */
let last: OutgoingBatch | undefined;

/** The next batch of the device's chain: one reading whose value is its seq. */
function nextBatch(): OutgoingBatch {
  seq++;
  const b = buildBatch(device, { seq, prevHash: prev, bootCounter: 1, clockSynced: true, createdMs: 1_700_000_000_000 + seq }, [
    { id: seq, sensor: 'contract', ts: 1_700_000_000_000 + seq, timeSource: 'sensor', value: seq, source: 'contract', boot: 1 },
  ]);
  prev = b.hash;
  last = { seq, hash: b.hash, device: device.publicKey, envelope: b.envelope };
  return last;
}

const attempt = (uplink: Uplink, batch: OutgoingBatch) => uplink.deliver(batch, AbortSignal.timeout(20_000));

async function receivedSeqs(baseUrl: string): Promise<number[]> {
  const res = await fetch(`${baseUrl}/v1/devices/${device.deviceId}/batches`);
  if (!res.ok) return [];
  return ((await res.json()) as { seq: number }[]).map((b) => b.seq);
}

interface UplinkCase {
  name: string;
  /** The uplink under test, reaching the receiver through `proxy`, expecting receipts signed by `receiverKey`. */
  uplink(receiverKey: Uint8Array): Promise<Uplink>;
  /** A peer answering something that is not a valid reply, when the protocol has such a thing to test. */
  badReply?(): Promise<Uplink>;
}

let broker: Broker;
let receiver: RunningReceiver | undefined;
let bridged: { proc: LongRunning; baseUrl: string; key: string } | undefined;
let proxy: TcpProxy;
let scripted: Server | undefined;

const httpCase: UplinkCase = {
  name: 'http',
  async uplink(receiverKey) {
    const cfg = httpUplinkPlugin.schema.parse({ type: 'http', url: `http://127.0.0.1:${proxy.port}/v1/batches`, timeout_ms: 5000 });
    return (await httpUplinkPlugin.load())(cfg, { deviceId: device.deviceId, receiverKey, resolvePath: (p) => p, log: silent });
  },
  async badReply() {
    // A 200 whose body is not an acknowledgement: what a captive portal or a misrouted proxy answers.
    scripted = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>welcome</html>'));
    });
    await new Promise<void>((r) => scripted!.listen(0, '127.0.0.1', r));
    const cfg = httpUplinkPlugin.schema.parse({ type: 'http', url: `http://127.0.0.1:${(scripted.address() as { port: number }).port}/v1/batches` });
    return (await httpUplinkPlugin.load())(cfg, { deviceId: device.deviceId, resolvePath: (p) => p, log: silent });
  },
};

const mqttCase: UplinkCase = {
  name: 'mqtt',
  async uplink(receiverKey) {
    // Its own client id per expected key: two uplinks of one device must not take over each other's session.
    const clientId = `contract-${Buffer.from(receiverKey.subarray(0, 6)).toString('hex')}`;
    const cfg = mqttUplinkPlugin.schema.parse({ type: 'mqtt', url: `mqtt://127.0.0.1:${proxy.port}`, client_id: clientId, timeout_ms: 5000, retry_initial_ms: 100, retry_max_ms: 500 });
    return (await mqttUplinkPlugin.load())(cfg, { deviceId: device.deviceId, receiverKey, resolvePath: (p) => p, log: silent });
  },
};

describe.each([httpCase, mqttCase])('uplink contract: $name', (c) => {
  let uplink: Uplink;
  let baseUrl: string;
  let receiverKey: Uint8Array;
  beforeAll(async () => {
    if (c.name === 'http') {
      receiver = await startReceiverProcess(tempDir('contract-receiver'));
      proxy = await startTcpProxy(receiver.port);
      baseUrl = receiver.baseUrl;
      receiverKey = publicKeyFromDeviceId(receiver.publicKey);
    } else {
      broker = await startMosquitto();
      const proc = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', tempDir('contract-bridge'), '--mqtt-url', broker.url]);
      const m = await proc.waitForOutput(/listening on (http:\/\/\S+) public key (did:key:\w+)/);
      await proc.waitForOutput(/receiver subscribed to batches over MQTT/);
      bridged = { proc, baseUrl: m[1]!, key: m[2]! };
      proxy = await startTcpProxy(broker.port);
      baseUrl = bridged.baseUrl;
      receiverKey = publicKeyFromDeviceId(bridged.key);
    }
    seq = 0;
    prev = ZERO_HASH;
    uplink = await c.uplink(receiverKey);
  });
  afterAll(async () => {
    await uplink?.close?.();
    await proxy?.close();
    await receiver?.proc.stop();
    await bridged?.proc.stop();
    await broker?.stop();
    scripted?.close();
    receiver = undefined;
    bridged = undefined;
  });

  it('counts a batch delivered only once the receiver holds it, with its receipt verified', async () => {
    const batch = nextBatch();
    const outcome = await attempt(uplink, batch);
    expect(outcome).toMatchObject({ kind: 'delivered', receipt: { receiverKey } });
    // The fact behind "delivered": the receiver already serves it.
    expect(await receivedSeqs(baseUrl)).toContain(batch.seq);
  });

  it('takes a receipt signed by another key as a failed attempt, not a delivery', async () => {
    const other = await c.uplink(Identity.generate().publicKey);
    try {
      const outcome = await attempt(other, nextBatch());
      expect(outcome).toMatchObject({ kind: 'retry', error: expect.stringMatching(/receiver key/) });
    } finally {
      await other.close?.();
    }
    // The batch stays to be sent again: the uplink under test delivers it with the right key.
    const again = await attempt(uplink, last!);
    expect(again).toMatchObject({ kind: 'delivered' });
  });

  it.runIf(c.badReply !== undefined)('takes a reply that is no acknowledgement as a failed attempt', async () => {
    const bad = await c.badReply!();
    // A batch the scripted peer keeps nothing of; the next test sends the chain on from the receiver's view.
    const outcome = await attempt(bad, last!);
    expect(outcome.kind).toBe('retry');
  });

  it('delivers on the next attempt after the link breaks', async () => {
    proxy.cut();
    const batch = nextBatch();
    let outcome = await attempt(uplink, batch);
    // The cut may cost this attempt (a passing failure, to retry) but never a false delivery.
    for (let i = 0; i < 5 && outcome.kind === 'retry'; i++) outcome = await attempt(uplink, batch);
    expect(outcome).toMatchObject({ kind: 'delivered' });
    expect(await receivedSeqs(baseUrl)).toContain(batch.seq);
  });
});
