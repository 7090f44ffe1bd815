import { ATTEST_BODY_BYTES, decodeAttestBody, encodeAttestBody } from './attest-frame.js';
import { cobsEncode } from './cobs.js';
import { crc32c } from './crc32c.js';

// Frame layouts of firmware-bridge/PROTOCOL.md §3, versions 1 and 2 (§7). A payload is
// version | type | body | crc32c (§2.2).

export type ProtocolVersion = 1 | 2;
export const PROTOCOL_VERSIONS: readonly ProtocolVersion[] = [1, 2];
/** §2.2: the payload limit of each version; every other limit is derived from it. */
export const MAX_PAYLOAD: Record<ProtocolVersion, number> = { 1: 256, 2: 512 };
/** §2.2: the longest COBS encoding of a payload of n bytes (n ≥ 1) is n + 1 + ⌊(n − 1)/254⌋. */
export const cobsMaxEncoded = (n: number) => n + 1 + Math.floor((n - 1) / 254);
/** §2.2: the longest frame a receiver buffers, before its 0x00 (515 bytes: version 2's). */
export const MAX_ENCODED = cobsMaxEncoded(MAX_PAYLOAD[2]);

export const FRAME_TYPE = { hello: 0x01, reading: 0x02, ack: 0x03, error: 0x04, heartbeat: 0x05, helloRequest: 0x06, helloAck: 0x07, lost: 0x08, attest: 0x09, setInterval: 0x0a, intervalAck: 0x0b } as const;
/** §3.7 HELLO_ACK states. */
export const HELLO_STATE = { new: 0, known: 1, refused: 2 } as const;
export type HelloState = (typeof HELLO_STATE)[keyof typeof HELLO_STATE];
/** §3.10: the reporting periods a SET_INTERVAL may ask for, in ms (10 ms .. 1 day). */
export const INTERVAL_BOUNDS = { minMs: 10, maxMs: 86_400_000 } as const;
/** §3.11 INTERVAL_ACK statuses. */
export const INTERVAL_STATUS = { applied: 0, outOfRange: 1, unknownSensor: 2, fixed: 3 } as const;
export type IntervalStatus = (typeof INTERVAL_STATUS)[keyof typeof INTERVAL_STATUS];
export const INTERVAL_STATUS_NAMES = ['applied', 'out_of_range', 'unknown_sensor', 'fixed'] as const;

// Field limits of §3.1-§3.4.
const MAX_FIRMWARE = 32;
const MAX_FW_VERSION = 16;
const MAX_SENSOR_ID = 32;
const MAX_UNIT = 8;
const MAX_ERROR_MESSAGE = 64;
export const MAX_SENSORS = 8;
export const MAX_VALUES = 8;

export interface SensorInfo {
  index: number;
  periodMs: number;
  id: string;
  unit: string;
}

/** `uptimeMs` (HELLO) and `session` (READING, HEARTBEAT) are version 2 fields (§3.1, §3.2, §3.5). */
export type Frame =
  | { version: ProtocolVersion; type: 'hello'; session: number; uid: Uint8Array; uptimeMs?: number; firmware: string; fwVersion: string; sensors: SensorInfo[] }
  | { version: ProtocolVersion; type: 'reading'; session?: number; sensor: number; seq: number; uptimeMs: number; values: number[] }
  | { version: ProtocolVersion; type: 'ack'; session: number; sensor: number; seq: number }
  | { version: ProtocolVersion; type: 'error'; code: number; message: string }
  | { version: ProtocolVersion; type: 'heartbeat'; session?: number; uptimeMs: number; buffered: number }
  | { version: ProtocolVersion; type: 'hello-request' }
  | { version: 2; type: 'hello-ack'; session: number; uptimeMs: number; state: HelloState }
  | { version: 2; type: 'lost'; session: number; sensor: number; throughSeq: number }
  // §3.9 (optional): a sensor's signature over its readings first_seq..last_seq.
  | { version: 2; type: 'attest'; session: number; sensor: number; firstSeq: number; lastSeq: number; sig: Uint8Array }
  | { version: 2; type: 'set-interval'; session: number; sensor: number; request: number; periodMs: number }
  | { version: 2; type: 'interval-ack'; session: number; sensor: number; request: number; status: IntervalStatus; periodMs: number; minMs: number; maxMs: number };

export type DecodeFailure = 'bad-version' | 'crc' | 'unknown-type' | 'malformed' | 'too-short' | 'oversize';

class Writer {
  private readonly buf = new Uint8Array(MAX_PAYLOAD[2]);
  private readonly view = new DataView(this.buf.buffer);
  length = 0;
  private room(n: number) {
    if (this.length + n > this.buf.length - 4) throw new Error(`frame body longer than ${this.buf.length - 6} bytes (PROTOCOL.md §2.2)`);
  }
  u8(v: number) {
    this.room(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u16(v: number) {
    this.room(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number) {
    this.room(4);
    this.view.setUint32(this.length, v >>> 0, true);
    this.length += 4;
  }
  f32(v: number) {
    this.room(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  bytes(b: Uint8Array) {
    this.room(b.length);
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

function v2Field(frame: Frame, name: string, value: number | undefined): number {
  if (value === undefined) throw new Error(`a version 2 ${frame.type} needs ${name}`);
  return value;
}

function body(frame: Frame): { type: number; body: Uint8Array } {
  const w = new Writer();
  const v2 = frame.version === 2;
  switch (frame.type) {
    case 'hello':
      w.u32(frame.session);
      if (frame.uid.length !== 8) throw new Error('uid must be 8 bytes');
      w.bytes(frame.uid);
      if (v2) w.u32(v2Field(frame, 'uptimeMs', frame.uptimeMs));
      w.str8(frame.firmware, MAX_FIRMWARE);
      w.str8(frame.fwVersion, MAX_FW_VERSION);
      if (frame.sensors.length < 1 || frame.sensors.length > MAX_SENSORS) throw new Error(`1..${MAX_SENSORS} sensors`);
      w.u8(frame.sensors.length);
      for (const s of frame.sensors) {
        w.u8(s.index);
        w.u32(s.periodMs);
        w.str8(s.id, MAX_SENSOR_ID);
        w.str8(s.unit, MAX_UNIT);
      }
      return { type: FRAME_TYPE.hello, body: w.done() };
    case 'reading':
      if (frame.values.length < 1 || frame.values.length > MAX_VALUES) throw new Error(`1..${MAX_VALUES} values`);
      if (v2) w.u32(v2Field(frame, 'session', frame.session));
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
      w.str8(frame.message, MAX_ERROR_MESSAGE);
      return { type: FRAME_TYPE.error, body: w.done() };
    case 'heartbeat':
      if (v2) w.u32(v2Field(frame, 'session', frame.session));
      w.u32(frame.uptimeMs);
      w.u16(frame.buffered);
      return { type: FRAME_TYPE.heartbeat, body: w.done() };
    case 'hello-request':
      return { type: FRAME_TYPE.helloRequest, body: new Uint8Array(0) };
    case 'hello-ack':
      w.u32(frame.session);
      w.u32(frame.uptimeMs);
      w.u8(frame.state);
      return { type: FRAME_TYPE.helloAck, body: w.done() };
    case 'lost':
      w.u32(frame.session);
      w.u8(frame.sensor);
      w.u32(frame.throughSeq);
      return { type: FRAME_TYPE.lost, body: w.done() };
    case 'attest':
      w.bytes(encodeAttestBody(frame));
      return { type: FRAME_TYPE.attest, body: w.done() };
    case 'set-interval':
      // §3.10: a gateway never asks for a period outside the protocol's bounds.
      if (!Number.isInteger(frame.periodMs) || frame.periodMs < INTERVAL_BOUNDS.minMs || frame.periodMs > INTERVAL_BOUNDS.maxMs) throw new Error(`period_ms ${frame.periodMs} outside ${INTERVAL_BOUNDS.minMs}..${INTERVAL_BOUNDS.maxMs} (PROTOCOL.md §3.10)`);
      w.u32(frame.session);
      w.u8(frame.sensor);
      w.u16(frame.request);
      w.u32(frame.periodMs);
      return { type: FRAME_TYPE.setInterval, body: w.done() };
    case 'interval-ack':
      w.u32(frame.session);
      w.u8(frame.sensor);
      w.u16(frame.request);
      w.u8(frame.status);
      w.u32(frame.periodMs);
      w.u32(frame.minMs);
      w.u32(frame.maxMs);
      return { type: FRAME_TYPE.intervalAck, body: w.done() };
  }
}

/** The payload (version | type | body | crc) of a frame, before COBS. */
export function framePayload(frame: Frame): Uint8Array {
  const { type, body: b } = body(frame);
  const out = new Uint8Array(b.length + 6);
  if (out.length > MAX_PAYLOAD[frame.version]) throw new Error(`a version ${frame.version} payload is at most ${MAX_PAYLOAD[frame.version]} bytes (PROTOCOL.md §2.2); this ${frame.type} needs ${out.length}`);
  out[0] = frame.version;
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

function decodeBody(version: ProtocolVersion, type: number, r: Reader): Frame | 'unknown-type' | 'malformed' {
  const v2 = version === 2;
  switch (type) {
    case FRAME_TYPE.hello: {
      const session = r.u32();
      const uid = r.bytes(8);
      const uptimeMs = v2 ? r.u32() : undefined;
      const firmware = r.str8(MAX_FIRMWARE);
      const fwVersion = r.str8(MAX_FW_VERSION);
      const count = r.u8();
      if (count < 1 || count > MAX_SENSORS) return 'malformed';
      const sensors: SensorInfo[] = [];
      for (let i = 0; i < count; i++) sensors.push({ index: r.u8(), periodMs: r.u32(), id: r.str8(MAX_SENSOR_ID), unit: r.str8(MAX_UNIT) });
      if (sensors.some((s) => s.id.length === 0)) return 'malformed';
      return v2 ? { version, type: 'hello', session, uid, uptimeMs, firmware, fwVersion, sensors } : { version, type: 'hello', session, uid, firmware, fwVersion, sensors };
    }
    case FRAME_TYPE.reading: {
      const session = v2 ? r.u32() : undefined;
      const sensor = r.u8();
      const seq = r.u32();
      const uptimeMs = r.u32();
      const count = r.u8();
      if (count < 1 || count > MAX_VALUES) return 'malformed';
      const values: number[] = [];
      for (let i = 0; i < count; i++) values.push(r.f32());
      return v2 ? { version, type: 'reading', session, sensor, seq, uptimeMs, values } : { version, type: 'reading', sensor, seq, uptimeMs, values };
    }
    case FRAME_TYPE.ack:
      return { version, type: 'ack', session: r.u32(), sensor: r.u8(), seq: r.u32() };
    case FRAME_TYPE.error:
      return { version, type: 'error', code: r.u8(), message: r.str8(MAX_ERROR_MESSAGE) };
    case FRAME_TYPE.heartbeat:
      return v2 ? { version, type: 'heartbeat', session: r.u32(), uptimeMs: r.u32(), buffered: r.u16() } : { version, type: 'heartbeat', uptimeMs: r.u32(), buffered: r.u16() };
    case FRAME_TYPE.helloRequest:
      return { version, type: 'hello-request' };
    case FRAME_TYPE.helloAck: {
      if (!v2) return 'unknown-type';
      const session = r.u32();
      const uptimeMs = r.u32();
      const state = r.u8();
      if (state !== HELLO_STATE.new && state !== HELLO_STATE.known && state !== HELLO_STATE.refused) return 'malformed';
      return { version, type: 'hello-ack', session, uptimeMs, state };
    }
    case FRAME_TYPE.lost:
      if (!v2) return 'unknown-type';
      return { version, type: 'lost', session: r.u32(), sensor: r.u8(), throughSeq: r.u32() };
    case FRAME_TYPE.attest: {
      if (!v2) return 'unknown-type';
      const f = decodeAttestBody(r.bytes(ATTEST_BODY_BYTES));
      return f === 'malformed' ? f : { version, type: 'attest', ...f };
    }
    case FRAME_TYPE.setInterval:
      if (!v2) return 'unknown-type';
      return { version, type: 'set-interval', session: r.u32(), sensor: r.u8(), request: r.u16(), periodMs: r.u32() };
    case FRAME_TYPE.intervalAck: {
      if (!v2) return 'unknown-type';
      const session = r.u32();
      const sensor = r.u8();
      const request = r.u16();
      const status = r.u8();
      const periodMs = r.u32();
      const minMs = r.u32();
      const maxMs = r.u32();
      // §3.11: a known status, and bounds that hold the period in force.
      if (status > INTERVAL_STATUS.fixed || minMs > maxMs || (status === INTERVAL_STATUS.applied && (periodMs < minMs || periodMs > maxMs))) return 'malformed';
      return { version, type: 'interval-ack', session, sensor, request, status: status as IntervalStatus, periodMs, minMs, maxMs };
    }
    default:
      return 'unknown-type';
  }
}

/** Decodes a payload (after COBS); never throws. */
export function decodePayload(p: Uint8Array): Frame | DecodeFailure {
  if (p.length < 6) return 'too-short';
  const crc = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(p.length - 4, true);
  if (crc32c(p, 0, p.length - 4) !== crc) return 'crc';
  const version = p[0] as ProtocolVersion;
  if (!PROTOCOL_VERSIONS.includes(version)) return 'bad-version';
  if (p.length > MAX_PAYLOAD[version]) return 'oversize'; // §2.2: a version's payload limit
  const r = new Reader(p.subarray(2, p.length - 4));
  try {
    const frame = decodeBody(version, p[1]!, r);
    if (typeof frame === 'string') return frame;
    r.end();
    return frame;
  } catch {
    return 'malformed'; // short body, trailing bytes, over-long or non-UTF-8 string
  }
}
