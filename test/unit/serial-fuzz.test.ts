import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';
import { encodeFrame, type Frame } from '../../agent/sources/serial/protocol.js';

describe('serial frame decoder fuzz (PROTOCOL.md §2)', () => {
  it('survives 100,000 random and mutated frames in random chunks; every good frame after garbage still decodes', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const decoder = new FrameDecoder();
    const good: Frame[] = [];
    const decoded: Frame[] = [];
    let mutated = 0;
    let stream: number[] = [];
    const flush = () => {
      const bytes = Uint8Array.from(stream);
      stream = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 300); // serial ports deliver arbitrary chunk sizes
        decoded.push(...decoder.push(bytes.subarray(at, at + n)));
        at += n;
      }
    };
    for (let i = 0; i < 100_000; i++) {
      const frame: Frame = { version: 1, type: 'reading', sensor: i % 8, seq: i, uptimeMs: i * 10, values: [Math.fround(rand() * 100)] };
      const wire = Array.from(encodeFrame(frame));
      const kind = i % 5;
      if (kind === 0) {
        good.push(frame);
        stream.push(...wire);
      } else {
        mutated++;
        if (kind === 1) wire[Math.floor(rand() * (wire.length - 1))]! ^= 1 << Math.floor(rand() * 8); // bit flip
        else if (kind === 2) wire.splice(1 + Math.floor(rand() * (wire.length - 4)), 3); // truncated, keeping its delimiter (without it two frames merge and count once)
        else if (kind === 3) wire.splice(0, wire.length, ...Array.from({ length: 516 + Math.floor(rand() * 300) }, () => 1 + Math.floor(rand() * 255)), 0); // oversized (PROTOCOL.md §2.2: over 515 bytes), no zero inside
        else wire.splice(0, wire.length, 1 + Math.floor(rand() * 255), ...Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)), 0); // garbage
        stream.push(...wire);
        // Every bad frame ends at its own delimiter, so the good one after it must decode.
      }
      if (stream.length > 64_000) flush();
    }
    flush();
    // Every good frame comes out, in order; a mutation can only rarely yield a valid frame (it then has its own CRC).
    const goodOut = decoded.filter((f) => f.type === 'reading' && f.seq % 5 === 0);
    expect(goodOut).toEqual(good);
    const c = decoder.counters;
    const bad = c.cobs + c.oversize + c.crc + c['bad-version'] + c['unknown-type'] + c.malformed + c['too-short'];
    // A garbage run may hold several 0x00 and so count as several bad frames; a mutated frame counts at least once.
    expect(bad + (decoded.length - good.length)).toBeGreaterThanOrEqual(mutated);
    expect(c.oversize).toBeGreaterThanOrEqual(20_000);
    expect(c.frames).toBe(decoded.length);
  });
});
