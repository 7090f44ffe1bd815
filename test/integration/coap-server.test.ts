import { createSocket, type Socket } from 'node:dgram';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoapServerSource } from '../../agent/sources/coap-server/coap-server-source.js';
import { coapServerSourceSchema } from '../../agent/sources/coap-server/config.js';
import { type Db } from '../../agent/store/database.js';
import { readCounters } from '../../agent/store/reading-store.js';
import { waitFor } from '../helpers/ports.js';
import { freshStore, sourceContext } from '../helpers/store.js';

interface Harness {
  db: Db;
  source: CoapServerSource;
  port: number;
}

async function startSource(extra: Record<string, unknown> = {}): Promise<Harness> {
  const { db, writer } = freshStore('coap');
  const cfg = coapServerSourceSchema.parse({ type: 'coap-server', listen: '127.0.0.1:0', max_payload_bytes: 2048, ...extra });
  const source = new CoapServerSource(cfg, sourceContext('coap', writer));
  await source.start();
  return { db, source, port: Number(/:(\d+)\//.exec(source.url)![1]) };
}

let mid = 1;
type Opt = { name: string; value: Buffer };
const path = (...segments: string[]): Opt[] => segments.map((s) => ({ name: 'Uri-Path', value: Buffer.from(s) }));
const format = (id: number): Opt => ({ name: 'Content-Format', value: id === 0 ? Buffer.alloc(0) : Buffer.from([id]) });

class Client {
  readonly sock: Socket = createSocket('udp4');
  private waiting = new Map<number, (p: ParsedPacket) => void>();
  constructor(private readonly port: number) {
    this.sock.on('message', (msg) => {
      const p = parse(msg);
      this.waiting.get(p.messageId)?.(p);
    });
  }
  send(packet: Parameters<typeof generate>[0]): Promise<ParsedPacket> {
    const messageId = packet.messageId ?? mid++ % 65536;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response to MID ${messageId}`)), 3000);
      this.waiting.set(messageId, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
      this.sock.send(generate({ confirmable: true, token: Buffer.from([1, 2]), ...packet, messageId }, 65_000), this.port, '127.0.0.1');
    });
  }
  post(options: Opt[], payload: string | Buffer, extra: Partial<Parameters<typeof generate>[0]> = {}) {
    return this.send({ code: '0.02', options, payload: Buffer.from(payload), ...extra });
  }
  close() {
    this.sock.close();
  }
}

describe('CoAP server source: response codes (RFC 7252, RFC 7959)', () => {
  let h: Harness;
  let c: Client;
  beforeAll(async () => {
    h = await startSource();
    c = new Client(h.port);
  });
  afterAll(async () => {
    c.close();
    await h.source.stop();
  });

  it('answers 2.04 Changed once the reading is committed, piggybacked on the ACK', async () => {
    const res = await c.post([...path('readings', 'boiler'), format(0)], '71.5');
    expect(res).toMatchObject({ code: '2.04', ack: true });
    expect(h.db.prepare('SELECT sensor, value FROM readings').all()).toEqual([{ sensor: 'boiler', value: 71.5 }]);
  });

  it('answers each error with its code, a diagnostic payload, and counts it', async () => {
    const cases: [string, Promise<ParsedPacket>, RegExp][] = [
      ['4.15', c.post([...path('readings'), { name: 'Content-Format', value: Buffer.from([41]) }], '<x/>'), /content format 41 not accepted/],
      ['4.00', c.post([...path('readings', 'a'), format(0)], 'warm'), /not JSON, SenML or a number/],
      ['4.00', c.post([...path('readings'), format(110)], '[{"n":"x","vs":"on"}]'), /record 0: string\/data values/],
      ['4.04', c.post([...path('nowhere'), format(0)], '1'), /post readings to \/readings/],
      ['4.05', c.send({ code: '0.01', options: path('readings') }), /use POST or PUT/],
      ['4.13', c.post([...path('readings'), format(110)], 'x'.repeat(3000)), /larger than 2048 bytes/],
      ['4.02', c.post([...path('readings'), { name: '2049', value: Buffer.from('x') }], '1'), /critical option 2049/],
      ['5.05', c.post([{ name: 'Proxy-Uri', value: Buffer.from('coap://10.0.0.1/') }], '1'), /not a proxy/],
    ];
    for (const [code, pending, diagnostic] of cases) {
      const res = await pending;
      expect(res.code, diagnostic.source).toBe(code);
      expect(res.payload.toString()).toMatch(diagnostic);
    }
    const big = await c.post([...path('readings'), format(110)], 'x'.repeat(3000));
    expect(big.options.find((o) => o.name === 'Size1')?.value).toEqual(Buffer.from([0x08, 0x00])); // Size1 = 2048 (RFC 7959 §4)
    await h.source.stop(); // flushes counted refusals into the store
    const counters = readCounters(h.db).filter((x) => x.name === 'rejected');
    expect(counters.map((x) => x.label)).toEqual(
      expect.arrayContaining(['coap: unsupported content format', 'coap: unknown path', 'coap: method not allowed', 'coap: payload too large', 'coap: unknown critical option']),
    );
    h = await startSource();
    c.close();
    c = new Client(h.port);
  });

  it('stores a retransmitted Confirmable request once and replays the same response (RFC 7252 §4.5)', async () => {
    const messageId = 4242;
    const first = await c.post([...path('readings', 'dup'), format(0)], '5', { messageId });
    const again = await c.post([...path('readings', 'dup'), format(0)], '5', { messageId });
    expect(again).toEqual(first);
    expect(h.db.prepare("SELECT count(*) FROM readings WHERE sensor = 'dup'").pluck().get()).toBe(1);
  });

  it('reassembles Block1 uploads in order, refuses a block out of order with 4.08, and answers a ping with RST', async () => {
    const body = Buffer.from(JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ n: `blk${i}`, v: i }))));
    const blocks = Math.ceil(body.length / 64);
    for (let num = 0; num < blocks; num++) {
      const more = num < blocks - 1 ? 1 : 0;
      const option = { name: 'Block1', value: Buffer.from([(num << 4) | (more << 3) | 2]) }; // SZX 2: 64 bytes
      // A new token per block, as libcoap sends them (RFC 7959 §2.5 allows it).
      const res = await c.send({ code: '0.02', token: Buffer.from([num]), options: [...path('readings'), format(110), option], payload: body.subarray(num * 64, num * 64 + 64) });
      expect(res.code).toBe(more ? '2.31' : '2.04');
    }
    expect(h.db.prepare("SELECT count(*) FROM readings WHERE sensor LIKE 'blk%'").pluck().get()).toBe(20);
    const skipped = await c.post([...path('readings'), format(110), { name: 'Block1', value: Buffer.from([(3 << 4) | 8 | 2]) }], 'x'.repeat(64));
    expect(skipped.code).toBe('4.08');
    const pong = await c.send({ code: '0.00' });
    expect(pong.reset).toBe(true);
  });

  it('refuses sources outside allow_from with 4.03', async () => {
    const guarded = await startSource({ allow_from: ['10.0.0.0/8'] });
    const other = new Client(guarded.port);
    const res = await other.post([...path('readings', 'x'), format(0)], '1');
    expect(res.code).toBe('4.03');
    other.close();
    await guarded.source.stop();
  });
});

describe('CoAP server source: fuzz', () => {
  it('survives 50,000 random and mutated datagrams, accounts for every one, and still serves', async () => {
    const h = await startSource();
    const sock = createSocket('udp4');
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const valid = generate({ confirmable: true, code: '0.02', messageId: 1, token: Buffer.from([9]), options: [...path('readings'), format(110)], payload: Buffer.from('[{"n":"fz","v":1}]') });
    const total = 50_000;
    // Exactly one of these per datagram; the refusal reasons inside a request are counted by the source.
    const perDatagram = ['request', 'duplicate', 'ping', 'malformed datagram', 'unexpected ACK or RST', 'not a request'];
    const accounted = () => perDatagram.reduce((n, k) => n + (h.source.health().counters?.[k] ?? 0), 0);
    for (let i = 0; i < total; i++) {
      let d: Buffer;
      if (i % 3 === 0) d = Buffer.from(Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256)));
      else {
        d = Buffer.from(valid);
        d.writeUInt16BE(i % 65536, 2); // fresh MID, so it is not a retransmission
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) d[Math.floor(rand() * d.length)] = Math.floor(rand() * 256);
        if (rand() < 0.2) d = d.subarray(0, Math.floor(rand() * d.length));
      }
      sock.send(d, h.port, '127.0.0.1');
      // Windows of 250, so the receive buffer never overflows and no datagram is lost on loopback.
      if (i % 250 === 249) await waitFor(`datagram ${i + 1} accounted for`, () => accounted() === i + 1, 10_000, 1);
    }
    await waitFor('every datagram accounted for', () => accounted() === total, 10_000, 5);
    expect(h.source.health().counters?.['malformed datagram']).toBeGreaterThan(10_000);
    const health = h.source.health();
    expect(health.rejected).toBeGreaterThan(10_000);

    const c = new Client(h.port);
    const res = await c.post([...path('readings', 'after-fuzz'), format(0)], '1');
    expect(res.code).toBe('2.04');
    c.close();
    sock.close();
    await h.source.stop();
  });
});
