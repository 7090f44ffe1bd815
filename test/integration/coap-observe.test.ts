import { generate, parse } from 'coap-packet';
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { CoapObserveSource } from '../../agent/sources/coap-observe/coap-observe-source.js';
import { coapObserveSourceSchema } from '../../agent/sources/coap-observe/config.js';
import { waitFor } from '../helpers/ports.js';
import { freshStore, sourceContext } from '../helpers/store.js';

describe('CoAP observe source', () => {
  it('polls with GET at the configured interval when the resource is not observable', async () => {
    let gets = 0;
    // A resource that answers GET but does not support observation: 2.05 without an Observe option (RFC 7641 §3.1).
    const server = createSocket('udp4');
    server.on('message', (msg, remote) => {
      const req = parse(msg);
      if (req.code !== '0.01') return;
      gets++;
      const res = generate({ messageId: req.messageId, token: req.token, ack: true, code: '2.05', options: [{ name: 'Content-Format', value: Buffer.alloc(0) }], payload: Buffer.from(String(20 + gets)) });
      server.send(res, remote.port, remote.address);
    });
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
    const port = server.address().port;

    const { db, writer } = freshStore('observe');
    const cfg = coapObserveSourceSchema.parse({ type: 'coap-observe', url: `coap://127.0.0.1:${port}/level`, poll_interval_ms: 200 });
    const source = new CoapObserveSource(cfg, sourceContext('tank', writer));
    await source.start();
    try {
      await waitFor('4 polled readings', () => (db.prepare('SELECT count(*) FROM readings').pluck().get() as number) >= 4, 10_000);
      expect(source.health().endpoint).toMatch(/\(polling\)/);
      const rows = db.prepare('SELECT sensor, value FROM readings ORDER BY id LIMIT 3').all();
      expect(rows).toEqual([
        { sensor: 'level', value: 21 },
        { sensor: 'level', value: 22 },
        { sensor: 'level', value: 23 },
      ]);
    } finally {
      await source.stop();
      await new Promise<void>((r) => server.close(() => r()));
      db.close();
    }
  });
});
