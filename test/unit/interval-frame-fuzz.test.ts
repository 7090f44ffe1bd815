import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildFirmwareTools } from '../helpers/serial.js';
import { cobsEncode } from '../../agent/sources/serial/cobs.js';
import { crc32c } from '../../agent/sources/serial/crc32c.js';
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';
import { encodeFrame, FRAME_TYPE, INTERVAL_BOUNDS, type Frame } from '../../agent/sources/serial/protocol.js';
import { seededRandom } from '../helpers/seeded.js';

const ROOT = join(import.meta.dirname, '../..');

/** A frame with a good CRC around any body: what a broken or hostile device could send. */
function rawFrame(version: number, type: number, body: Uint8Array): Uint8Array {
  const p = new Uint8Array(body.length + 6);
  p[0] = version;
  p[1] = type;
  p.set(body, 2);
  new DataView(p.buffer).setUint32(p.length - 4, crc32c(p, 0, p.length - 4), true);
  return Uint8Array.from([...cobsEncode(p), 0]);
}

describe('SET_INTERVAL / INTERVAL_ACK fuzz (firmware-bridge/PROTOCOL.md §3.10-§3.11)', () => {
  beforeAll(() => {
    buildFirmwareTools();
  });

  it('TypeScript: 60,000 random bodies with good CRCs decode to a frame that re-encodes byte for byte, or are counted malformed; never a throw', () => {
    const random = seededRandom('interval frame fuzz');
    const decoder = new FrameDecoder();
    let decoded = 0;
    const sent = 60_000;
    for (let i = 0; i < sent; i++) {
      const type = random.int(0, 1) === 0 ? FRAME_TYPE.setInterval : FRAME_TYPE.intervalAck;
      // Around the right lengths (11 and 20 bytes) and far from them.
      const len = random.int(0, 3) === 0 ? random.int(0, 40) : type === FRAME_TYPE.setInterval ? 11 : 20;
      const body = Uint8Array.from({ length: len }, () => (random.int(0, 3) === 0 ? random.int(0, 3) : random.int(0, 255)));
      const wire = rawFrame(random.int(0, 9) === 0 ? 1 : 2, type, body);
      const frames = decoder.push(wire);
      for (const f of frames) {
        decoded++;
        expect(Buffer.from(encodeFrameLoose(f)).toString('hex'), random.describe()).toBe(Buffer.from(wire).toString('hex'));
        if (f.type === 'interval-ack' && f.status === 0) expect(f.periodMs >= f.minMs && f.periodMs <= f.maxMs).toBe(true);
      }
    }
    const c = decoder.counters;
    console.log(`interval frame fuzz (${random.describe()}): ${sent} frames, ${decoded} decoded, ${c.malformed} malformed, ${c['unknown-type']} unknown-type (version 1)`);
    expect(decoded + c.malformed + c['unknown-type']).toBe(sent);
    expect(decoded).toBeGreaterThan(10_000);
    expect(c.malformed).toBeGreaterThan(10_000);
  });

  it('TypeScript: the gateway never encodes a period outside 10 .. 86,400,000 ms', () => {
    const f = (periodMs: number): Frame => ({ version: 2, type: 'set-interval', session: 1, sensor: 0, request: 1, periodMs });
    for (const bad of [0, 9, 86_400_001, 2 ** 32 - 1, 1.5, Number.NaN]) expect(() => encodeFrame(f(bad)), String(bad)).toThrow(/outside 10\.\.86400000 \(PROTOCOL\.md §3\.10\)/);
    expect(encodeFrame(f(INTERVAL_BOUNDS.minMs)).length).toBeGreaterThan(0);
    expect(encodeFrame(f(INTERVAL_BOUNDS.maxMs)).length).toBeGreaterThan(0);
  });

  it('C++ device: 100,000 random SET_INTERVALs and 100,000 runs of random bytes keep its periods within its bounds, one INTERVAL_ACK each', () => {
    const seed = String(seededRandom('interval device fuzz').int(1, 2 ** 31));
    const run = spawnSync(join(ROOT, 'firmware-bridge/build/vectors'), ['interval-fuzz', seed, '100000'], { encoding: 'utf8' });
    // Seen failing twice under load with no output kept: the exit status, signal and stderr say why next time.
    expect({ status: run.status, signal: run.signal, error: run.error?.message, stderr: run.stderr.slice(-2000) }).toEqual({ status: 0, signal: null, error: undefined, stderr: '' });
    const out = run.stdout.trim();
    console.log(`C++ interval fuzz (seed ${seed}): ${out}`);
    expect(out).toMatch(/^ok set_interval=100000 applied=[1-9]\d* out_of_range=[1-9]\d* unknown_sensor=[1-9]\d* fixed=[1-9]\d* other_session=[1-9]\d* garbage_bytes=\d+$/);
  });
});

/** encodeFrame, minus the gateway's own bound on SET_INTERVAL periods: a device may be sent nothing else, but may decode anything. */
function encodeFrameLoose(f: Frame): Uint8Array {
  if (f.type !== 'set-interval' || (f.periodMs >= INTERVAL_BOUNDS.minMs && f.periodMs <= INTERVAL_BOUNDS.maxMs)) return encodeFrame(f);
  const body = new Uint8Array(11);
  const v = new DataView(body.buffer);
  v.setUint32(0, f.session, true);
  v.setUint8(4, f.sensor);
  v.setUint16(5, f.request, true);
  v.setUint32(7, f.periodMs, true);
  return rawFrame(2, FRAME_TYPE.setInterval, body);
}
