import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPubackHook, DeferredPubacks, PINNED_MQTT_VERSION } from '../../agent/sources/mqtt/deferred-puback.js';
import { waitFor } from '../helpers/ports.js';

/**
 * The mqtt.js PUBACK hook against a scripted broker: a loopback TCP server that speaks MQTT 5
 * through mqtt-packet, sends the client QoS 1 messages and records, in order, every packet the
 * client writes. Facts are orderings on that one TCP stream, never "nothing happened for a while".
 */
interface ScriptedBroker {
  server: Server;
  port: number;
  received: mqttPacket.Packet[];
  send(packet: Record<string, unknown>): void;
}

async function scriptedBroker(): Promise<ScriptedBroker> {
  const received: mqttPacket.Packet[] = [];
  let socket: Socket | undefined;
  const send = (packet: Record<string, unknown>) => socket!.write(mqttPacket.generate(packet as unknown as mqttPacket.Packet, { protocolVersion: 5 }));
  const server = createServer((s) => {
    socket = s;
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p) => {
      received.push(p);
      if (p.cmd === 'connect') send({ cmd: 'connack', reasonCode: 0, sessionPresent: false });
    });
    s.on('data', (d) => parser.parse(d));
    s.on('error', () => undefined);
  });
  // Port 0: the kernel picks a free port at bind time, nothing can take it between find and bind.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, received, send };
}

function deferred(): { promise: Promise<void>; resolve(): void; reject(err: Error): void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const pubackIds = (b: ScriptedBroker) => b.received.filter((p) => p.cmd === 'puback').map((p) => (p as mqttPacket.IPubackPacket).messageId);

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('mqtt.js PUBACK hook (agent/sources/mqtt/deferred-puback.ts)', () => {
  it('passes its startup self-check on the pinned mqtt.js, whose version package.json pins exactly', async () => {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { dependencies: Record<string, string> };
    expect(pkg.dependencies.mqtt).toBe(PINNED_MQTT_VERSION);
    const client = mqtt.connect('mqtt://127.0.0.1:9', { manualConnect: true });
    expect(checkPubackHook(client)).toEqual({ ok: true });
  });

  it('fails the self-check, and leaves the client untouched, on another mqtt.js release or without the hook point', () => {
    const client = mqtt.connect('mqtt://127.0.0.1:9', { manualConnect: true });
    const before = (client as unknown as { _sendPacket: unknown })._sendPacket;
    const other = checkPubackHook(client, '5.99.0');
    expect(other).toEqual({ ok: false, reason: expect.stringContaining('mqtt.js 5.99.0 installed') });
    const hook = new DeferredPubacks(client, other);
    expect(hook.supported).toBe(false);
    expect(hook.reason).toContain('5.99.0');
    expect((client as unknown as { _sendPacket: unknown })._sendPacket).toBe(before);
    expect(checkPubackHook(new EventEmitter() as unknown as MqttClient, PINNED_MQTT_VERSION)).toEqual({ ok: false, reason: 'mqtt.js client has no _sendPacket' });
  });

  it('reads on while commits run, sends each PUBACK only after its commit, and none for a failed commit', async () => {
    const broker = await scriptedBroker();
    cleanup.push(() => new Promise((r) => broker.server.close(() => r())));
    const commits = new Map<number, ReturnType<typeof deferred>>();
    let hook: DeferredPubacks | undefined;
    const client = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      customHandleAcks: (_topic, _payload, packet, done) => {
        const commit = deferred();
        commits.set(packet.messageId!, commit);
        hook!.track(packet.messageId!, commit.promise);
        done(0);
      },
    });
    hook = new DeferredPubacks(client);
    cleanup.push(() => new Promise((r) => client.end(true, {}, () => r())));
    expect(hook.supported).toBe(true);
    await waitFor('the client connected', () => client.connected, 10_000);

    for (const id of [1, 2, 3]) broker.send({ cmd: 'publish', topic: 's/a', payload: Buffer.from(String(id)), qos: 1, messageId: id, dup: false, retain: false });
    // All three handed over while no commit has settled: mqtt.js did not wait on a PUBACK to read on.
    await waitFor('three messages handed to the commit', () => commits.size === 3, 10_000);

    commits.get(2)!.resolve();
    await waitFor('PUBACK 2 after its commit', () => pubackIds(broker).includes(2), 10_000);
    // One TCP stream, written in order: a PUBACK 1 or 3 written earlier would have arrived first.
    expect(pubackIds(broker)).toEqual([2]);

    commits.get(3)!.reject(new Error('SQLITE_FULL'));
    await commits.get(3)!.promise.catch(() => undefined);
    commits.get(1)!.resolve();
    await waitFor('PUBACK 1 after its commit', () => pubackIds(broker).includes(1), 10_000);
    // Commit 3 failed before commit 1 settled: had a PUBACK 3 been written, it would be ahead of 1.
    expect(pubackIds(broker)).toEqual([2, 1]);
  });
});
