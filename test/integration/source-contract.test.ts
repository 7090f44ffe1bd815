import { createSocket, type Socket } from 'node:dgram';
import { generate, parse } from 'coap-packet';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coapServerSourcePlugin } from '../../agent/sources/coap-server/plugin.js';
import { mqttSourcePlugin } from '../../agent/sources/mqtt/plugin.js';
import type { Source } from '../../agent/sources/source.js';
import { ContractSink } from '../helpers/contract-sink.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher } from '../helpers/publisher.js';
import { freshStore, sourceContext } from '../helpers/store.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The source contract (design.md "Data flow", style.md "contract suites"), run against every
 * source whose sender expects an acknowledgement, each with its real peer:
 *   - nothing is acknowledged before its commit, and a failed commit is never acknowledged;
 *   - bad input is counted, and the source goes on;
 *   - after the link breaks, the source takes input again.
 * A source is driven through its plugin (plugin.ts) and a ContractSink; the peer reports, on the
 * wire, every acknowledgement it saw and whether that reading was committed at that moment.
 * Not here: coap-observe (RFC 7641 notifications have no acknowledgement after a commit: its README
 * says so), simulator (no sender), serial (its acknowledgements are checked frame by frame against
 * the firmware simulator in serial.test.ts).
 */
interface Peer {
  /** Sends one reading whose value is `tag`; does not wait for the acknowledgement. */
  send(tag: number): void;
  /** Acknowledgements seen for `tag`, each with whether the reading was committed when it was seen. */
  acks(tag: number): boolean[];
  /** For a refused commit, what the sender is told instead (CoAP 5.03), if the protocol says anything. */
  refused(tag: number): boolean;
  sendBad(): void;
  /** Breaks the link the way the field does (a cut TCP connection; a sensor that reboots on a new port). */
  breakLink(): Promise<void>;
  close(): Promise<void>;
}

interface SourceCase {
  name: string;
  /** How the sender learns of a failed commit: it resends (MQTT: the broker redelivers after a reconnect) or it is refused. */
  onFailedCommit: 'redelivered' | 'refused';
  start(sink: ContractSink): Promise<{ source: Source; peer: Peer }>;
}

let broker: Broker;
let n = 0;

const mqttCase: SourceCase = {
  name: 'mqtt',
  onFailedCommit: 'redelivered',
  async start(sink) {
    // The source reaches the real broker through a relay that reads its PUBACKs off the wire.
    const acks = new Map<number, boolean[]>();
    const parsers = new Map<number, { up: mqttPacket.Parser; down: mqttPacket.Parser; ids: Map<number, number> }>();
    const proxy: TcpProxy = await startTcpProxy(broker.port, {
      tap: (conn, dir, chunk) => {
        let p = parsers.get(conn);
        if (!p) {
          const ids = new Map<number, number>();
          const up = mqttPacket.parser({ protocolVersion: 5 });
          const down = mqttPacket.parser({ protocolVersion: 5 });
          down.on('packet', (pk) => {
            if (pk.cmd === 'publish' && pk.messageId !== undefined) ids.set(pk.messageId, Number(pk.payload.toString()));
          });
          up.on('packet', (pk) => {
            if (pk.cmd !== 'puback') return;
            const tag = ids.get(pk.messageId!);
            if (tag !== undefined) acks.set(tag, [...(acks.get(tag) ?? []), sink.committed.has(tag)]);
          });
          parsers.set(conn, (p = { up, down, ids }));
        }
        p[dir].parse(chunk);
      },
    });
    const cfg = mqttSourcePlugin.schema.parse({ type: 'mqtt', url: `mqtt://127.0.0.1:${proxy.port}`, topics: ['contract/#'], client_id: `contract-${process.pid}-${++n}` });
    const { writer } = freshStore('contract-mqtt');
    const source = (await mqttSourcePlugin.load())(cfg, { ...sourceContext('mqtt', writer), sink });
    await source.start();
    await source.ready!();
    const pub = await connectPublisher(broker.url);
    return {
      source,
      peer: {
        send: (tag) => void pub.publishAsync('contract/c', String(tag), { qos: 1 }),
        acks: (tag) => acks.get(tag) ?? [],
        refused: () => false,
        sendBad: () => void pub.publishAsync('contract/c', '{not json', { qos: 1 }),
        breakLink: async () => proxy.cut(),
        async close() {
          await pub.endAsync();
          await source.stop();
          await proxy.close();
        },
      },
    };
  },
};

const coapCase: SourceCase = {
  name: 'coap-server',
  onFailedCommit: 'refused',
  async start(sink) {
    const cfg = coapServerSourcePlugin.schema.parse({ type: 'coap-server', listen: '127.0.0.1:0' });
    const { writer } = freshStore('contract-coap');
    const source = (await coapServerSourcePlugin.load())(cfg, { ...sourceContext('coap', writer), sink });
    await source.start();
    const port = Number(/:(\d+)\//.exec(source.health().endpoint)?.[1] ?? /:(\d+)$/.exec(source.health().endpoint)![1]);
    const acks = new Map<number, boolean[]>();
    const refusals = new Set<number>();
    const tags = new Map<number, number>();
    let mid = 0;
    let sock: Socket;
    const open = () => {
      sock = createSocket('udp4');
      sock.on('message', (msg) => {
        const p = parse(msg);
        const tag = tags.get(p.messageId);
        if (tag === undefined) return;
        if (p.code === '2.04') acks.set(tag, [...(acks.get(tag) ?? []), sink.committed.has(tag)]);
        else if (p.code === '5.03') refusals.add(tag);
      });
    };
    open();
    const post = (payload: string, format: number, tag: number) => {
      const messageId = ++mid % 65536;
      tags.set(messageId, tag);
      const options = [{ name: 'Uri-Path', value: Buffer.from('readings') }, { name: 'Uri-Path', value: Buffer.from('c') }, { name: 'Content-Format', value: format === 0 ? Buffer.alloc(0) : Buffer.from([format]) }];
      sock.send(generate({ confirmable: true, code: '0.02', messageId, token: Buffer.from([mid & 0xff]), options, payload: Buffer.from(payload) }), port, '127.0.0.1');
    };
    return {
      source,
      peer: {
        send: (tag) => post(String(tag), 0, tag),
        acks: (tag) => acks.get(tag) ?? [],
        refused: (tag) => refusals.has(tag),
        sendBad: () => post('{not json', 50, -1),
        // A sensor that reboots: a new socket (new source port), its message ids starting over.
        async breakLink() {
          sock.close();
          mid = 0;
          open();
        },
        async close() {
          sock.close();
          await source.stop();
        },
      },
    };
  },
};

describe.each([mqttCase, coapCase])('source contract: $name', (c) => {
  let sink: ContractSink;
  let source: Source;
  let peer: Peer;
  beforeAll(async () => {
    broker ??= await startMosquitto();
    sink = new ContractSink(freshStore(`contract-${c.name}-sink`).writer);
    ({ source, peer } = await c.start(sink));
  });
  afterAll(async () => {
    await peer.close();
  });

  it('acknowledges a reading only once it is committed', async () => {
    sink.hold();
    peer.send(1);
    peer.send(2);
    await waitFor('both readings handed to the sink', () => sink.seen(1) === 1 && sink.seen(2) === 1, 15_000);
    sink.release();
    await waitFor('both acknowledged', () => peer.acks(1).length > 0 && peer.acks(2).length > 0, 15_000);
    // Each acknowledgement the sender saw came when its reading was already committed.
    expect([...peer.acks(1), ...peer.acks(2)]).toEqual([true, true]);
  });

  it('never acknowledges a reading whose commit failed', async () => {
    sink.fail();
    peer.send(3);
    await waitFor('the failed commit', () => sink.seen(3) >= 1, 15_000);
    sink.release();
    if (c.onFailedCommit === 'refused') {
      await waitFor('the sender told the commit failed', () => peer.refused(3), 15_000);
      peer.send(3); // the sensor retries
    }
    // MQTT: not acknowledged, so the broker redelivers it after the source reconnects; only that copy is acknowledged.
    await waitFor('acknowledged after a commit that succeeded', () => peer.acks(3).length > 0, 30_000);
    expect(sink.seen(3)).toBeGreaterThanOrEqual(2);
    expect(peer.acks(3)).toEqual([true]);
  });

  it('counts bad input and goes on taking good input', async () => {
    const before = source.health().rejected;
    peer.sendBad();
    await waitFor('the bad payload counted', () => source.health().rejected > before && sink.rejectedReasons.length > 0, 15_000);
    peer.send(4);
    await waitFor('a good reading after it acknowledged', () => peer.acks(4).length > 0, 15_000);
    expect(peer.acks(4)).toEqual([true]);
  });

  it('takes input again after the link breaks', async () => {
    await peer.breakLink();
    peer.send(5);
    await waitFor('a reading sent after the break acknowledged', () => peer.acks(5).length > 0, 30_000);
    expect(peer.acks(5)).toEqual([true]);
    expect(source.health().connected).toBe(true);
  });
});

afterAll(async () => {
  await broker?.stop();
});
