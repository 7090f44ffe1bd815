/**
 * Issue 14, "a CoAP source whose address changes mid-stream is flagged", for CoAP observe
 * (RFC 7641) as for POST (guard-signals.test.ts): the agent observes libcoap's real coap-server
 * on 127.0.0.1; mid-stream a notification for the same observation (its token, a newer Observe
 * number) arrives from 127.0.0.2, as an off-path spoofer who learnt the token would send it.
 * node-coap matches notifications by token alone, so it is accepted; the guard must see that
 * the sensor's origin changed: event sensor.origin_change, the sensor quarantined, the
 * spoofed reading flagged quarantined. Real coap-server, agent process, CLI.
 */
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READING_FLAGS as F } from '../../agent/identity/batch-v3.js';
import { cli, cliBackground } from '../helpers/cli.js';
import { freeUdpPort, startLibcoapServer } from '../helpers/libcoap.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';
import { query } from '../helpers/db-query.js';

/** A NON 2.05 notification (RFC 7252 §3, RFC 7641 §2: Observe is option 6) with a text payload. */
function notification(token: Buffer, observe: number, payload: string): Buffer {
  const obs = observe < 256 ? [observe] : observe < 65_536 ? [observe >> 8, observe & 255] : [(observe >> 16) & 255, (observe >> 8) & 255, observe & 255];
  return Buffer.concat([Buffer.from([0x50 | token.length, 0x45, 0x12, 0x34]), token, Buffer.from([(6 << 4) | obs.length, ...obs, 0xff]), Buffer.from(payload)]);
}

describe('a CoAP observe source whose notifications change address mid-stream (libcoap coap-server, agent)', () => {
  let port: number;
  let server: ReturnType<typeof startLibcoapServer>;
  beforeAll(async () => {
    port = await freeUdpPort();
    server = startLibcoapServer(port, { debug: true });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('reports sensor.origin_change, quarantines the sensor and flags the notification from the new address', async () => {
    const dir = tempDir('guard-observe');
    expect(cli(['init', '--data-dir', dir, '--coap-observe', `coap://127.0.0.1:${port}/time?ticks`]).code).toBe(0);
    patchConfig(dir, [[['sources', 'coap-observe-1', 'request_timeout_ms'], 2000]]);
    const agentDb = join(dir, 'edge-agent.db');
    const agent = cliBackground(['run', '--data-dir', dir]);
    const spoofer = createSocket('udp4');
    try {
      await agent.waitForReady();
      // The real server's notifications, from 127.0.0.1: three of them stored, none flagged.
      await waitFor('3 notifications of the real server stored', () => query<{ n: number }>(agentDb, "SELECT count(*) AS n FROM readings WHERE sensor = 'time'")[0]!.n >= 3, 60_000);
      // What the server's log says of the observation: the agent's port, the token, the newest Observe number.
      const sent = [...server.log().matchAll(/127\.0\.0\.1:\d+ <-> 127\.0\.0\.1:(\d+) \S+ UDP : sent \d+ bytes\s*\nv:1 t:\w+ c:2\.05 i:\w+ \{([0-9a-f]+)\} \[ Observe:(\d+)/g)];
      expect(sent.length, server.log().slice(-2000)).toBeGreaterThan(0);
      const [, agentPort, token, observe] = sent[sent.length - 1]!;
      await new Promise<void>((resolve) => spoofer.bind(0, '127.0.0.2', resolve));
      spoofer.send(notification(Buffer.from(token!, 'hex'), Number(observe) + 1000, '4242'), Number(agentPort), '127.0.0.1');

      const quarantined = await waitFor('sensor:time quarantined', () => {
        const list = JSON.parse(cli(['quarantine', 'list', '--json', '--data-dir', dir]).stdout) as { key: string; reason: string }[];
        return list.find((q) => q.key === 'sensor:time');
      }, 60_000);
      expect(quarantined.reason).toBe('origin_change');
      const events = query<{ detail: string }>(agentDb, "SELECT detail FROM events WHERE kind = 'sensor.origin_change' AND key = 'time'");
      expect(events.map((e) => JSON.parse(e.detail) as unknown)).toEqual([{ from: 'coap-observe-1:127.0.0.1', to: 'coap-observe-1:127.0.0.2' }]);
      // The quarantine is decided before the reading's commit (store.commit_interval_ms later at most).
      const spoofed = await waitFor('the spoofed notification stored', () => {
        const rows = query<{ f: number }>(agentDb, "SELECT coalesce(flags, 0) AS f FROM readings WHERE sensor = 'time' AND value = 4242");
        return rows.length > 0 ? rows : undefined;
      }, 30_000);
      expect(spoofed).toHaveLength(1);
      expect(spoofed[0]!.f & F.quarantined).toBe(F.quarantined);
      // The real server's readings before it were never flagged.
      expect(query<{ n: number }>(agentDb, "SELECT count(*) AS n FROM readings WHERE sensor = 'time' AND value <> 4242 AND id < (SELECT id FROM readings WHERE value = 4242) AND flags & ?", F.quarantined)[0]!.n).toBe(0);
    } finally {
      spoofer.close();
      await agent.stop();
    }
  }, 180_000);
});
