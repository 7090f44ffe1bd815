import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cobsEncode } from '../../agent/sources/serial/cobs.js';
import { crc32c } from '../../agent/sources/serial/crc32c.js';
import type { Frame, ProtocolVersion } from '../../agent/sources/serial/protocol.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { startPtyPair } from '../helpers/serial.js';
import { DeviceLine } from '../helpers/serial-line.js';
import { tempDir } from '../helpers/setup.js';

// Issue 19's "Found" items, each played by hand on the device end of a pty against a running agent
// (firmware-bridge/PROTOCOL.md). While a test holds the store's write lock nothing can commit, so an
// ACK that reaches the device meanwhile is an ACK before commit, whatever the timing.
// The hold is bounded: a gateway that has not read the frames by then can only make the check miss.
const HOLD_MS = 600;

let dir: string;
let ptyDir: string;
let ptys: Awaited<ReturnType<typeof startPtyPair>>;
let agent: LongRunning;
let line: DeviceLine;

const uid = (n: number) => Uint8Array.from([0xee, 0x19, 0, 0, 0, 0, 0, n]);
const hello = (v: ProtocolVersion, session: number, dev: number, ids: string[], uptimeMs = 1): Frame => ({
  version: v,
  type: 'hello',
  session,
  uid: uid(dev),
  ...(v === 2 ? { uptimeMs } : {}),
  firmware: 'by-hand',
  fwVersion: '1',
  sensors: ids.map((id, index) => ({ index, periodMs: 100, id, unit: '' })),
});
const reading = (v: ProtocolVersion, session: number, sensor: number, seq: number, value = seq): Frame =>
  v === 2 ? { version: 2, type: 'reading', session, sensor, seq, uptimeMs: 10 + seq, values: [value] } : { version: 1, type: 'reading', sensor, seq, uptimeMs: 10 + seq, values: [value] };
const hold = () => new Promise((r) => setTimeout(r, HOLD_MS));
const status = () => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout).sources.serial;

/** HELLO, and wait until the gateway has taken it: the HELLO_ACK (v2) or its log line (v1). */
async function join(v: ProtocolVersion, session: number, dev: number, ids: string[], uptimeMs = 1): Promise<void> {
  const from = line.received.length;
  await line.send(hello(v, session, dev, ids, uptimeMs));
  if (v === 2) await line.expect('hello-ack', (f) => f.session === session && f.uptimeMs === uptimeMs, from);
  else await agent.waitForOutput(new RegExp(`"session":${session},[^\\n]*"msg":"device said hello"`));
}

describe('serial: acknowledged means committed, in every interleaving (issue 19)', () => {
  beforeAll(async () => {
    ptyDir = tempDir('pty');
    ptys = await startPtyPair(ptyDir);
    dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--serial-path', ptys.gateway]).code).toBe(0);
    agent = cliBackground(['run', '--data-dir', dir]);
    await agent.waitForOutput(/serial port open/);
    line = await DeviceLine.open(ptys.device, dir);
  });
  afterAll(async () => {
    await line?.close();
    await agent?.stop('SIGKILL');
    await ptys?.stop();
  });

  for (const v of [1, 2] as const) {
    it(`v${v}, Found 1: a READING and a HELLO of its session in one write get no ACK before the reading is committed`, async () => {
      for (let trial = 0; trial < 3; trial++) {
        const session = 100 * v + trial;
        const name = `i1v${v}/t${trial}`;
        await join(v, session, 10 + v, [name]);
        const from = line.received.length;
        await line.whileStoreLocked(async () => {
          await line.send(reading(v, session, 0, 0, 42), hello(v, session, 10 + v, [name], 2));
          await hold();
        });
        expect(line.acksWhileLocked(), 'ACK while the store could not commit').toEqual([]);
        await line.expect('ack', (f) => f.session === session && f.seq === 0, from);
        // At the moment the ACK arrived the reading was in the store (and the lock proves it was not before).
        expect(line.store().values(name)).toEqual([42]);
        expect(line.store().progress(session, 0)).toBe(0);
      }
    });

    it(`v${v}, Found 2: READING of the old session then HELLO of a new one in one write: the ACK names the old session, the new one holds nothing`, async () => {
      const [s1, s2] = [1000 + v, 2000 + v];
      await join(v, s1, 20 + v, [`i2v${v}/a`]);
      await line.send(...[0, 1, 2, 3, 4].map((q) => reading(v, s1, 0, q)));
      await line.expect('ack', (f) => f.session === s1 && f.seq === 4);
      const from = line.received.length;
      await line.whileStoreLocked(async () => {
        await line.send(reading(v, s1, 0, 5), hello(v, s2, 20 + v, [`i2v${v}/b`]));
        await hold();
      });
      expect(line.acksWhileLocked(), 'ACK while the store could not commit').toEqual([]);
      await line.expect('ack', (f) => f.session === s1 && f.seq === 5, from);
      if (v === 2) expect(await line.expect('hello-ack', (f) => f.session === s2, from)).toMatchObject({ state: 0 });
      await line.send(reading(v, s2, 0, 0, 7));
      await line.expect('ack', (f) => f.session === s2, from);
      expect(line.acks(s2).map((a) => a.seq)).toEqual([0]); // never ACK(new session, 5)
      const st = line.store();
      expect([st.progress(s1, 0), st.progress(s2, 0)]).toEqual([5, 0]);
      expect(st.values(`i2v${v}/b`)).toEqual([7]);
    });

    it(`v${v}, Found 4: a lost seq 0 is waited for, then stored once, not taken for a duplicate`, async () => {
      const session = 4000 + v;
      await join(v, session, 40 + v, [`i4v${v}/a`, `i4v${v}/b`]);
      const from = line.received.length;
      // seq 0 of sensor 0 lost on the line; sensor 1's reading marks when the gateway has judged the rest.
      await line.send(reading(v, session, 0, 1), reading(v, session, 0, 2), reading(v, session, 0, 3), reading(v, session, 1, 0));
      await line.expect('ack', (f) => f.session === session && f.sensor === 1, from);
      expect(line.acks(session).filter((a) => a.sensor === 0)).toEqual([]);
      await line.send(...[0, 1, 2, 3].map((q) => reading(v, session, 0, q)));
      await line.expect('ack', (f) => f.session === session && f.sensor === 0 && f.seq === 3, from);
      expect(line.store().values(`i4v${v}/a`)).toEqual([0, 1, 2, 3]);
    });

    it(`v${v}, Found 9: a reading of an index not in HELLO, and a non-finite value, are refused for good, counted and acknowledged`, async () => {
      const session = 9000 + v;
      await join(v, session, 90 + v, [`i9v${v}/a`]);
      const before = line.store();
      const [unknown, nonFinite] = [before.counter('rejected', 'serial: sensor index 3 not in HELLO'), before.counter('rejected', 'serial: non-finite value')];
      const from = line.received.length;
      await line.send(reading(v, session, 3, 0), reading(v, session, 0, 0, Number.NaN), reading(v, session, 0, 1, 5));
      await line.expect('ack', (f) => f.session === session && f.sensor === 3 && f.seq === 0, from);
      await line.expect('ack', (f) => f.session === session && f.sensor === 0 && f.seq === 1, from);
      const st = line.store();
      expect(st.values(`i9v${v}/a`)).toEqual([5]);
      expect([st.counter('rejected', 'serial: sensor index 3 not in HELLO') - unknown, st.counter('rejected', 'serial: non-finite value') - nonFinite]).toEqual([1, 1]);
    });
  }

  it('v2, Found 9: HELLOs with a duplicate index, an index out of range or a non-SenML id are refused (HELLO_ACK 2), counted, and no reading is filed under them', async () => {
    const cases: [Frame, string][] = [
      [{ ...(hello(2, 9100, 99, ['r/a', 'r/b']) as Extract<Frame, { type: 'hello' }>), sensors: [{ index: 0, periodMs: 1, id: 'r/a', unit: '' }, { index: 0, periodMs: 1, id: 'r/b', unit: '' }] }, 'hello refused: sensor index 0 listed twice'],
      [{ ...(hello(2, 9101, 99, ['r/a']) as Extract<Frame, { type: 'hello' }>), sensors: [{ index: 1, periodMs: 1, id: 'r/a', unit: '' }] }, 'hello refused: sensor index 1 not below sensor_count 1'],
      [hello(2, 9102, 99, ['-r']), 'hello refused: sensor 0 id "-r" is not a valid SenML name (RFC 8428 §4.5.1)'],
    ];
    for (const [frame, reason] of cases) {
      const session = (frame as { session: number }).session;
      const from = line.received.length;
      await line.send(frame);
      expect(await line.expect('hello-ack', (f) => f.session === session, from)).toMatchObject({ state: 2 });
      await line.send(reading(2, session, 0, 0));
      await line.expect('hello-request', () => true, from);
      await waitFor(`counter ${reason}`, () => line.store().counter('rejected', `serial: ${reason}`) === 1);
    }
    expect(line.store().values('r/a')).toEqual([]);
    expect(line.store().events('serial.hello_refused').map((e) => e.detail.reason)).toEqual(cases.map(([, reason]) => reason));
  });

  it('v2, Found 3: a lost boot HELLO: the new boot\'s READING is not filed under the old boot\'s names; HELLO_REQUEST, then the right name', async () => {
    const [s1, s2] = [3001, 3002];
    await join(2, s1, 30, ['i3/a', 'i3/b']);
    await line.send(reading(2, s1, 0, 0, 100));
    await line.expect('ack', (f) => f.session === s1);
    // Reboot: the indexes swap; its HELLO is lost on the line.
    const from = line.received.length;
    await line.send(reading(2, s2, 0, 0, 200));
    await line.expect('hello-request', () => true, from);
    expect(line.acks(s2)).toEqual([]);
    await join(2, s2, 30, ['i3/b', 'i3/a'], 5);
    await line.send(reading(2, s2, 0, 0, 200));
    await line.expect('ack', (f) => f.session === s2 && f.seq === 0, from);
    const st = line.store();
    expect([st.values('i3/a'), st.values('i3/b')]).toEqual([[100], [200]]);
  });

  it('v2, Found 5: a lost LOST notice holds the readings after the hole until it is repeated; only the declared jump is accepted', async () => {
    const session = 5002;
    await join(2, session, 50, ['i5/a', 'i5/b']);
    await line.send(...[0, 1, 2].map((q) => reading(2, session, 0, q)));
    await line.expect('ack', (f) => f.session === session && f.seq === 2);
    let from = line.received.length;
    // The ring overflowed: 3..5 are gone, and LOST(through 5) is lost on the line.
    await line.send(reading(2, session, 0, 6), reading(2, session, 0, 7), reading(2, session, 1, 0));
    await line.expect('ack', (f) => f.session === session && f.sensor === 1, from);
    expect(line.acks(session).filter((a) => a.sensor === 0).map((a) => a.seq)).toEqual([2]);
    await line.send({ version: 2, type: 'lost', session, sensor: 0, throughSeq: 5 }, reading(2, session, 0, 6), reading(2, session, 0, 7));
    await line.expect('ack', (f) => f.session === session && f.sensor === 0 && f.seq === 7, from);
    expect(line.store().counter('serial_lost', 'serial: i5/a')).toBe(3);
    expect(line.store().events('serial.lost')).toContainEqual({ key: 'i5/a', detail: { source: 'serial', device: 'ee19000000000032', session, count: 3, through_seq: 5 } });
    // A later line error (8 lost) is not an overflow: 9 waits for 8.
    from = line.received.length;
    await line.send(reading(2, session, 0, 9), reading(2, session, 1, 1));
    await line.expect('ack', (f) => f.session === session && f.sensor === 1 && f.seq === 1, from);
    expect(line.acks(session).filter((a) => a.sensor === 0 && a.seq > 7)).toEqual([]);
    await line.send(reading(2, session, 0, 8), reading(2, session, 0, 9));
    await line.expect('ack', (f) => f.session === session && f.sensor === 0 && f.seq === 9, from);
    expect(line.store().values('i5/a')).toEqual([0, 1, 2, 6, 7, 8, 9]);
  });

  it('v1, Found 5: after ERROR 2 only the first jump of a sensor is taken for the overflow hole; a later line error waits for the resend', async () => {
    const session = 5001;
    await join(1, session, 51, ['i5v1/a', 'i5v1/b']);
    let from = line.received.length;
    await line.send({ version: 1, type: 'error', code: 2, message: 'ring_buffer_overflow' }, reading(1, session, 0, 0), reading(1, session, 0, 4));
    await line.expect('ack', (f) => f.session === session && f.sensor === 0 && f.seq === 4, from);
    from = line.received.length;
    await line.send(reading(1, session, 0, 6), reading(1, session, 1, 0));
    await line.expect('ack', (f) => f.session === session && f.sensor === 1, from);
    expect(line.acks(session).filter((a) => a.sensor === 0 && a.seq > 4)).toEqual([]);
    await line.send(reading(1, session, 0, 5), reading(1, session, 0, 6));
    await line.expect('ack', (f) => f.session === session && f.sensor === 0 && f.seq === 6, from);
    expect(line.store().values('i5v1/a')).toEqual([0, 4, 5, 6]);
  });

  it('v2, Found 6: a reused session number gets HELLO_ACK "known" before any reading, so the device takes another', async () => {
    const session = 6002;
    await join(2, session, 60, ['i6/a']);
    await line.send(...Array.from({ length: 10 }, (_, q) => reading(2, session, 0, q)));
    await line.expect('ack', (f) => f.session === session && f.seq === 9);
    // Reboot with the same number: the first answer says the gateway holds readings of it.
    const from = line.received.length;
    await line.send(hello(2, session, 60, ['i6/a'], 3));
    expect(await line.expect('hello-ack', (f) => f.session === session && f.uptimeMs === 3, from)).toMatchObject({ state: 1 });
    await join(2, session + 1, 60, ['i6/a'], 4);
    await line.send(reading(2, session + 1, 0, 0, 1000));
    await line.expect('ack', (f) => f.session === session + 1 && f.seq === 0, from);
    expect(line.store().values('i6/a')).toEqual([...Array.from({ length: 10 }, (_, q) => q), 1000]);
  });

  it('Found 8: the line counters survive a port reopen (unplug and replug)', async () => {
    const crcBefore = status().counters.crc_errors as number;
    await line.sendRaw(badCrcFrame());
    await waitFor('crc error counted', () => status().counters.crc_errors === crcBefore + 1);
    const reopens = status().counters.reopens as number;
    await line.close();
    await ptys.stop(); // unplug
    ptys = await startPtyPair(ptyDir); // replug
    line = await DeviceLine.open(ptys.device, dir);
    await waitFor('port reopened', () => status().connected === true && status().counters.reopens > reopens, 30_000, 200);
    expect(status().counters.crc_errors).toBe(crcBefore + 1);
  });
});

/** A HELLO_REQUEST frame whose CRC is off by one bit. */
function badCrcFrame(): Uint8Array {
  const p = Uint8Array.from([2, 6, 0, 0, 0, 0]);
  new DataView(p.buffer).setUint32(2, (crc32c(p, 0, 2) ^ 1) >>> 0, true);
  return Uint8Array.from([...cobsEncode(p), 0]);
}
