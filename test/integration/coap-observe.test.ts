import { generate, parse } from 'coap-packet';
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ClockStatus } from '../../agent/clock/clock-status.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import { CoapObserveSource } from '../../agent/sources/coap-observe/coap-observe-source.js';
import { coapObserveSourceSchema } from '../../agent/sources/coap-observe/config.js';
import { openDatabase } from '../../agent/store/database.js';
import { ReadingStore } from '../../agent/store/reading-store.js';
import { waitFor } from '../helpers/ports.js';

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

    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-observe-')), 'edge-agent.db'));
    const cfg = coapObserveSourceSchema.parse({ type: 'coap-observe', url: `coap://127.0.0.1:${port}/level`, poll_interval_ms: 200 });
    const source = new CoapObserveSource(cfg, {
      id: 'tank',
      writer: new GroupCommitWriter(new ReadingStore(db, 1)),
      clock: new ClockStatus('always'),
      log: pino({ level: 'silent' }),
      resolvePath: (p) => p,
    });
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
