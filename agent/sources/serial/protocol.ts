import { cobsEncode } from './cobs.js';
import { crc32c } from './crc32c.js';

// Frame layouts of PROTOCOL.md §3. A payload is version | type | body | crc32c (§2.2).

export const PROTOCOL_VERSION = 1;
export const MAX_PAYLOAD = 256;
export const FRAME_TYPE = { hello: 0x01, reading: 0x02, ack: 0x03, error: 0x04, heartbeat: 0x05, helloRequest: 0x06 } as const;

export interface SensorInfo {
  index: number;
  periodMs: number;
  id: string;
  unit: string;
}

export type Frame =
  | { type: 'hello'; session: number; uid: Uint8Array; firmware: string; fwVersion: string; sensors: SensorInfo[] }
  | { type: 'reading'; sensor: number; seq: number; uptimeMs: number; values: number[] }
  | { type: 'ack'; session: number; sensor: number; seq: number }
  | { type: 'error'; code: number; message: string }
  | { type: 'heartbeat'; uptimeMs: number; buffered: number }
  | { type: 'hello-request' };

export type DecodeFailure = 'bad-version' | 'crc' | 'unknown-type' | 'malformed' | 'too-short';

class Writer {
  private readonly buf = new Uint8Array(MAX_PAYLOAD + 16);
  private readonly view = new DataView(this.buf.buffer);
  length = 0;
  u8(v: number) {
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u16(v: number) {
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number) {
    this.view.setUint32(this.length, v >>> 0, true);
    this.length += 4;
  }
  f32(v: number) {
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  bytes(b: Uint8Array) {
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  str8(s: string, max: number) {
    const b = new TextEncoder().encode(s);
    if (b.length > max) throw new Error(`string "${s.slice(0, 40)}" longer than ${max} bytes`);
    this.u8(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

class Reader {
  private readonly view: DataView;
  private at = 0;
  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  private need(n: number) {
    if (this.at + n > this.b.length) throw new RangeError('body too short');
  }
  u8() {
    this.need(1);
    return this.view.getUint8(this.at++);
  }
  u16() {
    this.need(2);
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32() {
    this.need(4);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  f32() {
    this.need(4);
    const v = this.view.getFloat32(this.at, true);
    this.at += 4;
    return v;
  }
  bytes(n: number) {
    this.need(n);
    const v = this.b.slice(this.at, this.at + n);
    this.at += n;
    return v;
  }
  str8(max: number) {
    const n = this.u8();
    if (n > max) throw new RangeError(`string longer than ${max}`);
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(n));
  }
  end() {
    if (this.at !== this.b.length) throw new RangeError('trailing bytes');
  }
}

function body(frame: Frame): { type: number; body: Uint8Array } {
  const w = new Writer();
  switch (frame.type) {
    case 'hello':
      w.u32(frame.session);
      if (frame.uid.length !== 8) throw new Error('uid must be 8 bytes');
      w.bytes(frame.uid);
      w.str8(frame.firmware, 32);
      w.str8(frame.fwVersion, 16);
      if (frame.sensors.length < 1 || frame.sensors.length > 8) throw new Error('1..8 sensors');
      w.u8(frame.sensors.length);
      for (const s of frame.sensors) {
        w.u8(s.index);
        w.u32(s.periodMs);
        w.str8(s.id, 32);
        w.str8(s.unit, 8);
      }
      return { type: FRAME_TYPE.hello, body: w.done() };
    case 'reading':
      if (frame.values.length < 1 || frame.values.length > 8) throw new Error('1..8 values');
      w.u8(frame.sensor);
      w.u32(frame.seq);
      w.u32(frame.uptimeMs);
      w.u8(frame.values.length);
      for (const v of frame.values) w.f32(v);
      return { type: FRAME_TYPE.reading, body: w.done() };
    case 'ack':
      w.u32(frame.session);
      w.u8(frame.sensor);
      w.u32(frame.seq);
      return { type: FRAME_TYPE.ack, body: w.done() };
    case 'error':
      w.u8(frame.code);
      w.str8(frame.message, 64);
      return { type: FRAME_TYPE.error, body: w.done() };
    case 'heartbeat':
      w.u32(frame.uptimeMs);
      w.u16(frame.buffered);
      return { type: FRAME_TYPE.heartbeat, body: w.done() };
    case 'hello-request':
      return { type: FRAME_TYPE.helloRequest, body: new Uint8Array(0) };
  }
}

/** The payload (version | type | body | crc) of a frame, before COBS. */
export function framePayload(frame: Frame): Uint8Array {
  const { type, body: b } = body(frame);
  const out = new Uint8Array(b.length + 6);
  out[0] = PROTOCOL_VERSION;
  out[1] = type;
  out.set(b, 2);
  new DataView(out.buffer).setUint32(b.length + 2, crc32c(out, 0, b.length + 2), true);
  return out;
}

/** The bytes to write on the line: COBS(payload) and the 0x00 delimiter (§2.1). */
export function encodeFrame(frame: Frame): Uint8Array {
  const enc = cobsEncode(framePayload(frame));
  const out = new Uint8Array(enc.length + 1);
  out.set(enc);
  return out;
}

/** Decodes a payload (after COBS); never throws. */
export function decodePayload(p: Uint8Array): Frame | DecodeFailure {
  if (p.length < 6) return 'too-short';
  const crc = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(p.length - 4, true);
  if (crc32c(p, 0, p.length - 4) !== crc) return 'crc';
  if (p[0] !== PROTOCOL_VERSION) return 'bad-version';
  const r = new Reader(p.subarray(2, p.length - 4));
  try {
    let frame: Frame;
    switch (p[1]) {
      case FRAME_TYPE.hello: {
        const session = r.u32();
        const uid = r.bytes(8);
        const firmware = r.str8(32);
        const fwVersion = r.str8(16);
        const count = r.u8();
        if (count < 1 || count > 8) return 'malformed';
        const sensors: SensorInfo[] = [];
        for (let i = 0; i < count; i++) sensors.push({ index: r.u8(), periodMs: r.u32(), id: r.str8(32), unit: r.str8(8) });
        if (sensors.some((s) => s.id.length === 0)) return 'malformed';
        frame = { type: 'hello', session, uid, firmware, fwVersion, sensors };
        break;
      }
      case FRAME_TYPE.reading: {
        const sensor = r.u8();
        const seq = r.u32();
        const uptimeMs = r.u32();
        const count = r.u8();
        if (count < 1 || count > 8) return 'malformed';
        const values: number[] = [];
        for (let i = 0; i < count; i++) values.push(r.f32());
        frame = { type: 'reading', sensor, seq, uptimeMs, values };
        break;
      }
      case FRAME_TYPE.ack:
        frame = { type: 'ack', session: r.u32(), sensor: r.u8(), seq: r.u32() };
        break;
      case FRAME_TYPE.error:
        frame = { type: 'error', code: r.u8(), message: r.str8(64) };
        break;
      case FRAME_TYPE.heartbeat:
        frame = { type: 'heartbeat', uptimeMs: r.u32(), buffered: r.u16() };
        break;
      case FRAME_TYPE.helloRequest:
        frame = { type: 'hello-request' };
        break;
      default:
        return 'unknown-type';
    }
    r.end();
    return frame;
  } catch {
    return 'malformed'; // short body, trailing bytes, over-long or non-UTF-8 string
  }
}
