import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cobsDecode, cobsEncode } from '../../agent/sources/serial/cobs.js';
import { crc32c } from '../../agent/sources/serial/crc32c.js';
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';
import { LineDecoder } from '../../agent/sources/serial/line-decoder.js';
import { encodeFrame } from '../../agent/sources/serial/protocol.js';
import { frameLine, makeSerialVectors } from '../../scripts/make-serial-vectors.js';

const ROOT = join(import.meta.dirname, '../..');
const V = JSON.parse(readFileSync(join(ROOT, 'firmware-bridge/test-vectors.json'), 'utf8')) as ReturnType<typeof makeSerialVectors>;
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const tool = (...args: string[]) => execFileSync(join(ROOT, 'firmware-bridge/build/vectors'), args, { encoding: 'utf8' }).trim();

describe('serial protocol test vectors (firmware-bridge/test-vectors.json)', () => {
  beforeAll(() => {
    execFileSync('make', ['-s', '-C', join(ROOT, 'firmware-bridge')]); // the C++ library, built with -Werror
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

  it('C++ device logic: ring buffer, ACK, resend on HELLO_REQUEST, overflow report', () => {
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
