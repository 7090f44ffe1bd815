import { cobsDecode } from './cobs.js';
import { decodePayload, MAX_ENCODED, type DecodeFailure, type Frame } from './protocol.js';

export type FrameCounters = Record<'frames' | 'cobs' | 'oversize' | 'bytesDiscarded' | DecodeFailure, number>;

/**
 * Turns a byte stream (chunks as the serial port delivers them) into frames (PROTOCOL.md §2).
 * Memory is bounded whatever arrives: a frame that grows past MAX_ENCODED bytes (§2.2) is dropped
 * and the decoder skips to the next 0x00. Every discarded frame is counted by reason; nothing
 * throws. The counters run for the decoder's life: `resync()` (a reopened port) keeps them.
 */
export class FrameDecoder {
  readonly counters: FrameCounters = { frames: 0, cobs: 0, oversize: 0, bytesDiscarded: 0, 'bad-version': 0, crc: 0, 'unknown-type': 0, malformed: 0, 'too-short': 0 };
  private readonly buf = new Uint8Array(MAX_ENCODED);
  private len = 0;
  private skipping = false;

  /** Forgets a partial frame (a new line starts mid-nothing), keeping the counters. */
  resync(): void {
    this.len = 0;
    this.skipping = false;
  }

  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = [];
    for (const b of chunk) {
      if (b !== 0) {
        if (this.skipping) this.counters.bytesDiscarded++;
        else if (this.len === MAX_ENCODED) {
          // §2.2: byte MAX_ENCODED + 1 before a 0x00: oversize, whatever it would have decoded to.
          this.counters.oversize++;
          this.counters.bytesDiscarded += this.len + 1;
          this.len = 0;
          this.skipping = true;
        } else this.buf[this.len++] = b;
        continue;
      }
      // 0x00: end of a frame, and the resynchronisation point.
      if (this.skipping) this.skipping = false;
      else if (this.len > 0) {
        const frame = this.decode(this.buf.subarray(0, this.len));
        if (frame) out.push(frame);
      }
      this.len = 0;
    }
    return out;
  }

  private decode(encoded: Uint8Array): Frame | undefined {
    const payload = cobsDecode(encoded);
    if (!payload) {
      this.counters.cobs++;
      this.counters.bytesDiscarded += encoded.length;
      return undefined;
    }
    const frame = decodePayload(payload);
    if (typeof frame === 'string') {
      this.counters[frame]++;
      this.counters.bytesDiscarded += encoded.length;
      return undefined;
    }
    this.counters.frames++;
    return frame;
  }
}
