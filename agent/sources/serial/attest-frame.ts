import { cobsEncode } from './cobs.js';
import { crc32c } from './crc32c.js';

/**
 * The ATTEST frame of firmware-bridge/PROTOCOL.md §3.9 (type 0x09, version 2, optional):
 * `session u32 | sensor u8 | first_seq u32 | last_seq u32 | sig 64`: the body codec the frame
 * decoder (protocol.ts) uses, and the whole frame for the vectors.
 */
export const ATTEST_TYPE = 0x09;
export const ATTEST_BODY_BYTES = 77;

export interface AttestFrame {
  session: number;
  sensor: number;
  firstSeq: number;
  lastSeq: number;
  sig: Uint8Array;
}

export function encodeAttestBody(f: AttestFrame): Uint8Array {
  if (f.sig.length !== 64) throw new Error('ATTEST: sig is 64 bytes (PROTOCOL.md §3.9)');
  const b = Buffer.alloc(ATTEST_BODY_BYTES);
  b.writeUInt32LE(f.session >>> 0, 0);
  b.writeUInt8(f.sensor, 4);
  b.writeUInt32LE(f.firstSeq >>> 0, 5);
  b.writeUInt32LE(f.lastSeq >>> 0, 9);
  Buffer.from(f.sig).copy(b, 13);
  return new Uint8Array(b);
}

/** The frame's fields, or 'malformed' for a body of another length, a sensor index over 7, or last_seq before first_seq. */
export function decodeAttestBody(body: Uint8Array): AttestFrame | 'malformed' {
  if (body.length !== ATTEST_BODY_BYTES) return 'malformed';
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const f = { session: b.readUInt32LE(0), sensor: b.readUInt8(4), firstSeq: b.readUInt32LE(5), lastSeq: b.readUInt32LE(9), sig: body.slice(13) };
  // §3.9: at most 10,000 readings, one of the (at most 8) sensors of the HELLO.
  if (f.sensor > 7 || f.lastSeq < f.firstSeq || f.lastSeq - f.firstSeq >= 10_000) return 'malformed';
  return f;
}

/** The bytes on the line: COBS(version 2 | 0x09 | body | CRC-32C) and the 0x00 (PROTOCOL.md §2). */
export function encodeAttestFrame(f: AttestFrame): Uint8Array {
  const body = encodeAttestBody(f);
  const payload = new Uint8Array(body.length + 6);
  payload[0] = 2;
  payload[1] = ATTEST_TYPE;
  payload.set(body, 2);
  new DataView(payload.buffer).setUint32(body.length + 2, crc32c(payload, 0, body.length + 2), true);
  const enc = cobsEncode(payload);
  const out = new Uint8Array(enc.length + 1);
  out.set(enc);
  return out;
}
