import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildFirmwareTools } from '../helpers/serial.js';
import { cobsDecode, cobsEncode } from '../../agent/sources/serial/cobs.js';
import { crc32c } from '../../agent/sources/serial/crc32c.js';
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';
import { LineDecoder } from '../../agent/sources/serial/line-decoder.js';
import { helloRefusal } from '../../agent/sources/serial/hello-check.js';
import { decodePayload, encodeFrame, framePayload, MAX_ENCODED, type Frame } from '../../agent/sources/serial/protocol.js';
import { frameLine, makeSerialVectors } from '../../scripts/make-serial-vectors.js';

const ROOT = join(import.meta.dirname, '../..');
const V = JSON.parse(readFileSync(join(ROOT, 'firmware-bridge/test-vectors.json'), 'utf8')) as ReturnType<typeof makeSerialVectors>;
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const tool = (...args: string[]) => execFileSync(join(ROOT, 'firmware-bridge/build/vectors'), args, { encoding: 'utf8' }).trim();

describe('serial protocol test vectors (firmware-bridge/test-vectors.json)', () => {
  beforeAll(() => {
    buildFirmwareTools(); // the C++ library, built with -Werror
  });

  it('is what scripts/make-serial-vectors.ts generates', () => {
    expect(JSON.parse(JSON.stringify(makeSerialVectors()))).toEqual(V);
  });

  it('TypeScript: CRC-32C and COBS match the published cases', () => {
    for (const c of V.crc32c) expect(crc32c(bytes(c.input)).toString(16).padStart(8, '0')).toBe(c.crc);
    for (const c of V.cobs) {
      expect(hex(cobsEncode(bytes(c.decoded)))).toBe(c.encoded);
      expect(hex(cobsDecode(bytes(c.encoded))!)).toBe(c.decoded);
    }
  });

  it('TypeScript decodes every vector to its fields', () => {
    for (const v of V.frames) {
      const d = new FrameDecoder();
      const frames = d.push(bytes(v.wire));
      expect(frames).toHaveLength(1);
      expect(frameLine(frames[0]!), v.name).toBe(v.line);
      expect(hex(encodeFrame(frames[0]!))).toBe(v.wire);
    }
  });

  it('C++: the same CRC, the same bytes from the same fields, and the same fields from the same bytes', () => {
    for (const c of V.crc32c.filter((x) => x.input !== '')) expect(tool('crc', c.input)).toBe(c.crc);
    for (const v of V.frames) {
      expect(tool('encode', v.line), v.name).toBe(v.wire);
      expect(tool('decode', v.wire), v.name).toBe(v.line);
    }
  });

  it('keeps every version 1 vector of PROTOCOL.md version 1 byte for byte, and has a version 2 vector of every frame type', () => {
    const names = V.frames.map((f) => f.name);
    expect(names.slice(0, 7)).toEqual(['hello-two-sensors', 'reading-one-value', 'reading-three-values', 'ack', 'error', 'heartbeat', 'hello-request']);
    expect(V.frames[1]!.wire).toBe('0301020201010103e8030102010107ac41d971ee6d00'); // the worked example of version 1
    const v2Types = new Set(V.frames.filter((f) => f.name.startsWith('v2-')).map((f) => (f.fields as { type: string }).type));
    expect([...v2Types].sort()).toEqual(['ack', 'error', 'heartbeat', 'hello', 'hello-ack', 'hello-request', 'interval-ack', 'lost', 'reading', 'set-interval']);
  });

  it('limits agree (PROTOCOL.md §2.2): the largest version 2 HELLO fits, 515 bytes before 0x00 are decoded, 516 are oversize', () => {
    const max = V.frames.find((f) => f.name === 'v2-hello-max')!;
    const payload = framePayload(new FrameDecoder().push(bytes(max.wire))[0]!);
    expect(payload.length - 6).toBe(443); // every field at its limit
    expect(MAX_ENCODED).toBe(515);
    // A version 1 HELLO body of 251 bytes cannot be built (payload limit 256).
    const big: Frame = { version: 1, type: 'hello', session: 1, uid: new Uint8Array(8), firmware: 'f'.repeat(32), fwVersion: 'v'.repeat(16), sensors: Array.from({ length: 5 }, (_, i) => ({ index: i, periodMs: 1, id: 'i'.repeat(32), unit: 'u'.repeat(8) })) };
    expect(() => encodeFrame(big)).toThrow(/at most 250 bytes|at most 256 bytes/);
    for (const c of V.decode) {
      const d = new FrameDecoder();
      const frames = d.push(bytes(c.wire));
      expect(d.counters[c.counter as keyof typeof d.counters], `${c.name}: ${JSON.stringify(d.counters)}`).toBe(1);
      expect(frames.map(frameLine), c.name).toEqual('then' in c ? [c.then] : []);
    }
  });

  it('C++: the same decode outcome for every decode case', () => {
    for (const c of V.decode) {
      const out = tool('decode', c.wire).split('\n');
      expect(out, c.name).toEqual([...('then' in c ? [c.then] : []), c.counter === 'oversize' ? 'oversize=1' : 'bad_frames=1']);
    }
  });

  it('refuses the HELLOs PROTOCOL.md §3.1 forbids, with the reason it counts', () => {
    for (const c of V.hello_refused) {
      const frames = new FrameDecoder().push(bytes(c.wire));
      expect(frames, c.name).toHaveLength(1);
      expect(helloRefusal(frames[0] as Extract<Frame, { type: 'hello' }>), c.name).toBe(c.reason);
    }
    const ok = new FrameDecoder().push(bytes(V.frames[0]!.wire))[0] as Extract<Frame, { type: 'hello' }>;
    expect(helloRefusal(ok)).toBeUndefined();
    expect(decodePayload(new Uint8Array(5))).toBe('too-short');
  });

  it('C++ device logic (version 2): no reading before HELLO_ACK, ring, ACK, LOST until acknowledged, resend on the oldest, a reused session given up', () => {
    expect(tool('bridge-check', '-')).toBe('ok');
  });
});

describe('text line mode (PROTOCOL.md §5)', () => {
  it('turns name=value pairs into samples and counts what it refuses', () => {
    const d = new LineDecoder();
    const text = 'temp=21.5,hum=40\r\nbad line\nx=abc,ok=1\n' + 'y'.repeat(300) + '\npres=1e3';
    const got = d.push(new TextEncoder().encode(text));
    expect(got).toEqual([
      { sensor: 'temp', value: 21.5 },
      { sensor: 'hum', value: 40 },
      { sensor: 'ok', value: 1 },
    ]);
    expect(d.push(new TextEncoder().encode('\n'))).toEqual([{ sensor: 'pres', value: 1000 }]);
    expect(Object.fromEntries(d.rejected)).toEqual({ 'no "=" in pair': 1, 'value is not a finite decimal number': 1, 'line longer than 256 bytes': 1 });
  });
});
