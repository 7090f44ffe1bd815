/**
 * Writes firmware-bridge/test-vectors.json: every frame type of both versions with its fields,
 * its line form (the C++ vector tool's format, PROTOCOL.md §6) and its exact bytes; decode cases
 * (bytes on the wire and the counter a receiver puts them in, §2.2); HELLOs a gateway must refuse
 * (§3.1); plus CRC-32C and COBS cases whose expected bytes come from outside this code (the CRC
 * catalogue's check value, the COBS examples of Cheshire and Baker / Wikipedia).
 * Version 1 entries are kept byte for byte as they were. `--check` exits 1 if the file is out of date.
 *
 *   node dist/scripts/make-serial-vectors.js [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cobsEncode } from '../agent/sources/serial/cobs.js';
import { crc32c } from '../agent/sources/serial/crc32c.js';
import { encodeFrame, FRAME_TYPE, type Frame } from '../agent/sources/serial/protocol.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const bytes = (...parts: number[][]) => hex(Uint8Array.from(parts.flat()));

/** The C++ tool's line form of a frame (PROTOCOL.md §6, firmware-bridge/tools/vectors.cpp). */
export function frameLine(f: Frame): string {
  const v = f.version === 1 ? '' : `version=${f.version} `;
  switch (f.type) {
    case 'hello':
      return [
        `${v}type=hello session=${f.session} uid=${hex(f.uid)}${f.version === 2 ? ` uptime=${f.uptimeMs}` : ''} firmware=${f.firmware} fw_version=${f.fwVersion}`,
        ...f.sensors.map((s) => `sensor_info=${s.index}:${s.periodMs}:${s.id}:${s.unit}`),
      ].join(' ');
    case 'reading':
      return `${v}type=reading${f.version === 2 ? ` session=${f.session}` : ''} sensor=${f.sensor} seq=${f.seq} uptime=${f.uptimeMs} values=${f.values.join(',')}`;
    case 'ack':
      return `${v}type=ack session=${f.session} sensor=${f.sensor} seq=${f.seq}`;
    case 'error':
      return `${v}type=error code=${f.code} message=${f.message}`;
    case 'heartbeat':
      return `${v}type=heartbeat${f.version === 2 ? ` session=${f.session}` : ''} uptime=${f.uptimeMs} buffered=${f.buffered}`;
    case 'hello-request':
      return `${v}type=hello-request`;
    case 'hello-ack':
      return `${v}type=hello-ack session=${f.session} uptime=${f.uptimeMs} state=${f.state}`;
    case 'lost':
      return `${v}type=lost session=${f.session} sensor=${f.sensor} through=${f.throughSeq}`;
    case 'set-interval':
      return `${v}type=set-interval session=${f.session} sensor=${f.sensor} request=${f.request} period=${f.periodMs}`;
    case 'interval-ack':
      return `${v}type=interval-ack session=${f.session} sensor=${f.sensor} request=${f.request} status=${f.status} period=${f.periodMs} min=${f.minMs} max=${f.maxMs}`;
    case 'attest':
      return `${v}type=attest session=${f.session} sensor=${f.sensor} first=${f.firstSeq} last=${f.lastSeq} sig=${hex(f.sig)}`;
  }
}

const UID = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
const TWO_SENSORS = [
  { index: 0, periodMs: 1000, id: 'pump1/temp', unit: 'Cel' },
  { index: 1, periodMs: 100, id: 'pump1/vib', unit: '' },
];
// Every field of a version 2 HELLO at its limit (PROTOCOL.md §3.1): a 443-byte body.
const MAX_SENSORS = Array.from({ length: 8 }, (_, i) => ({ index: i, periodMs: 0xffffffff, id: `s${i}/${'x'.repeat(29)}`, unit: 'u'.repeat(8) }));

const V1_FRAMES: [string, Frame][] = [
  ['hello-two-sensors', { version: 1, type: 'hello', session: 3_000_000_001, uid: UID, firmware: 'pump-node', fwVersion: '1.2.0', sensors: TWO_SENSORS }],
  ['reading-one-value', { version: 1, type: 'reading', sensor: 0, seq: 1, uptimeMs: 1000, values: [21.5] }],
  ['reading-three-values', { version: 1, type: 'reading', sensor: 1, seq: 4_294_967_295, uptimeMs: 0, values: [-3.25, 0, 100000.5] }],
  ['ack', { version: 1, type: 'ack', session: 3_000_000_001, sensor: 1, seq: 65_536 }],
  ['error', { version: 1, type: 'error', code: 2, message: 'ring_buffer_overflow' }],
  ['heartbeat', { version: 1, type: 'heartbeat', uptimeMs: 123_456, buffered: 17 }],
  ['hello-request', { version: 1, type: 'hello-request' }],
];

const V2_FRAMES: [string, Frame][] = [
  ['v2-hello-two-sensors', { version: 2, type: 'hello', session: 3_000_000_001, uid: UID, uptimeMs: 12, firmware: 'pump-node', fwVersion: '2.0.0', sensors: TWO_SENSORS }],
  ['v2-hello-max', { version: 2, type: 'hello', session: 0xffffffff, uid: UID, uptimeMs: 0xffffffff, firmware: 'f'.repeat(32), fwVersion: 'v'.repeat(16), sensors: MAX_SENSORS }],
  ['v2-reading-one-value', { version: 2, type: 'reading', session: 7, sensor: 0, seq: 1, uptimeMs: 1000, values: [21.5] }],
  ['v2-reading-first-of-session', { version: 2, type: 'reading', session: 3_000_000_001, sensor: 1, seq: 0, uptimeMs: 20, values: [-3.25, 0, 100000.5] }],
  ['v2-ack', { version: 2, type: 'ack', session: 3_000_000_001, sensor: 1, seq: 65_536 }],
  ['v2-error', { version: 2, type: 'error', code: 1, message: 'sensor_read_failed' }],
  ['v2-heartbeat', { version: 2, type: 'heartbeat', session: 3_000_000_001, uptimeMs: 123_456, buffered: 17 }],
  ['v2-hello-request', { version: 2, type: 'hello-request' }],
  ['v2-hello-ack-new', { version: 2, type: 'hello-ack', session: 3_000_000_001, uptimeMs: 12, state: 0 }],
  ['v2-hello-ack-known', { version: 2, type: 'hello-ack', session: 3_000_000_001, uptimeMs: 5012, state: 1 }],
  ['v2-hello-ack-refused', { version: 2, type: 'hello-ack', session: 3_000_000_001, uptimeMs: 12, state: 2 }],
  ['v2-lost', { version: 2, type: 'lost', session: 3_000_000_001, sensor: 2, throughSeq: 4_294_967_295 }],
  // §3.10, §3.11: interval control (appended, so every entry above keeps its place and bytes).
  ['v2-set-interval', { version: 2, type: 'set-interval', session: 3_000_000_001, sensor: 1, request: 513, periodMs: 5000 }],
  ['v2-set-interval-max', { version: 2, type: 'set-interval', session: 0xffffffff, sensor: 7, request: 0xffff, periodMs: 86_400_000 }],
  ['v2-interval-ack-applied', { version: 2, type: 'interval-ack', session: 3_000_000_001, sensor: 1, request: 513, status: 0, periodMs: 5000, minMs: 100, maxMs: 600_000 }],
  ['v2-interval-ack-out-of-range', { version: 2, type: 'interval-ack', session: 3_000_000_001, sensor: 1, request: 514, status: 1, periodMs: 5000, minMs: 100, maxMs: 600_000 }],
  ['v2-interval-ack-unknown-sensor', { version: 2, type: 'interval-ack', session: 3_000_000_001, sensor: 9, request: 515, status: 2, periodMs: 0, minMs: 0, maxMs: 0 }],
];

/** A frame with a good CRC around any body: for bodies the encoder (rightly) refuses. */
function rawFrame(version: number, type: number, body: number[]): string {
  const p = new Uint8Array(body.length + 6);
  p[0] = version;
  p[1] = type;
  p.set(body, 2);
  new DataView(p.buffer).setUint32(p.length - 4, crc32c(p, 0, p.length - 4), true);
  return hex(Uint8Array.from([...cobsEncode(p), 0]));
}
const str8 = (s: string) => [s.length, ...new TextEncoder().encode(s)];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const v1HelloBody = (sensors: number[][]) => [...u32(1), ...UID, ...str8('fw'), ...str8('1'), sensors.length, ...sensors.flat()];
const v1Sensor = (index: number, id: string) => [index, ...u32(1000), ...str8(id), ...str8('')];

/** §2.2: what a receiver makes of bytes at and around the limits. */
const DECODE_CASES = [
  // 515 bytes before the 0x00 are buffered and decoded (515 × 0x01 is COBS for 514 zero bytes: a CRC failure)...
  { name: 'frame-515-bytes-decoded', note: 'PROTOCOL.md §2.2: 515 bytes before 0x00 are decoded', wire: bytes(Array(515).fill(1), [0]), counter: 'crc' },
  // ...516 are oversize, skipped to the next 0x00, and the frame after it still decodes.
  { name: 'frame-516-bytes-oversize', note: 'PROTOCOL.md §2.2: 516 bytes before 0x00 are oversize', wire: bytes(Array(516).fill(1), [0]) + hex(encodeFrame(V2_FRAMES[7]![1])), counter: 'oversize', then: 'version=2 type=hello-request' },
  // A version 1 payload of 257 bytes (a 251-byte HELLO body) is over version 1's limit.
  { name: 'v1-payload-257-oversize', note: 'PROTOCOL.md §2.2: version 1 payload at most 256 bytes', wire: rawFrame(1, FRAME_TYPE.hello, [...v1HelloBody([v1Sensor(0, 'a')]), ...Array(251 - v1HelloBody([v1Sensor(0, 'a')]).length).fill(0x41)]), counter: 'oversize' },
  // A version 2 payload of 513 bytes is over version 2's limit.
  { name: 'v2-payload-513-oversize', note: 'PROTOCOL.md §2.2: version 2 payload at most 512 bytes', wire: rawFrame(2, FRAME_TYPE.error, [1, ...Array(506).fill(0x41)]), counter: 'oversize' },
  { name: 'v1-hello-ack-unknown', note: 'PROTOCOL.md §3: HELLO_ACK is a version 2 type', wire: rawFrame(1, FRAME_TYPE.helloAck, [...u32(1), ...u32(2), 0]), counter: 'unknown-type' },
  { name: 'v2-hello-ack-bad-state', note: 'PROTOCOL.md §3.7: state is 0, 1 or 2', wire: rawFrame(2, FRAME_TYPE.helloAck, [...u32(1), ...u32(2), 3]), counter: 'malformed' },
  { name: 'v1-set-interval-unknown', note: 'PROTOCOL.md §3.10: SET_INTERVAL is a version 2 type', wire: rawFrame(1, FRAME_TYPE.setInterval, [...u32(1), 0, 1, 0, ...u32(1000)]), counter: 'unknown-type' },
  { name: 'v2-set-interval-short', note: 'PROTOCOL.md §3.10: the body is 11 bytes', wire: rawFrame(2, FRAME_TYPE.setInterval, [...u32(1), 0, 1, 0, 0xe8, 0x03]), counter: 'malformed' },
  { name: 'v2-interval-ack-bad-status', note: 'PROTOCOL.md §3.11: status is 0..3', wire: rawFrame(2, FRAME_TYPE.intervalAck, [...u32(1), 0, 1, 0, 4, ...u32(1000), ...u32(10), ...u32(2000)]), counter: 'malformed' },
  { name: 'v2-interval-ack-applied-outside-bounds', note: 'PROTOCOL.md §3.11: an applied period lies within min..max', wire: rawFrame(2, FRAME_TYPE.intervalAck, [...u32(1), 0, 1, 0, 0, ...u32(5000), ...u32(10), ...u32(2000)]), counter: 'malformed' },
  { name: 'version-3-dropped', note: 'PROTOCOL.md §2.2: another version is dropped', wire: rawFrame(3, FRAME_TYPE.helloRequest, []), counter: 'bad-version' },
];

/** §3.1: HELLOs that decode but that a gateway refuses whole, with the reason it counts. */
const REFUSED_HELLOS = [
  { name: 'hello-duplicate-index', wire: rawFrame(1, FRAME_TYPE.hello, v1HelloBody([v1Sensor(0, 'a'), v1Sensor(0, 'b')])), reason: 'hello refused: sensor index 0 listed twice' },
  { name: 'hello-index-out-of-range', wire: rawFrame(1, FRAME_TYPE.hello, v1HelloBody([v1Sensor(0, 'a'), v1Sensor(2, 'b')])), reason: 'hello refused: sensor index 2 not below sensor_count 2' },
  { name: 'hello-bad-senml-id', wire: rawFrame(1, FRAME_TYPE.hello, v1HelloBody([v1Sensor(0, '-bad id')])), reason: 'hello refused: sensor 0 id "-bad id" is not a valid SenML name (RFC 8428 §4.5.1)' },
];

const fieldsOf = (frame: Frame) => {
  // Version 1 entries keep their original shape (no `version` key).
  const { version, ...rest } = frame;
  const f = version === 1 ? rest : frame;
  return f.type === 'hello' ? { ...f, uid: hex(f.uid) } : f;
};

export function makeSerialVectors() {
  return {
    description: 'firmware-bridge/PROTOCOL.md test vectors, versions 1 and 2 (with the interval control frames of §3.10-§3.11). Frames: fields, line form (PROTOCOL.md §6), wire bytes (COBS + 0x00). decode: bytes and the counter a receiver puts them in (§2.2). hello_refused: HELLOs a gateway refuses (§3.1).',
    crc32c: [
      { input: hex(new TextEncoder().encode('123456789')), crc: 'e3069283' }, // CRC catalogue check value
      { input: '', crc: '00000000' },
    ],
    cobs: [
      { decoded: '', encoded: '01' },
      { decoded: '00', encoded: '0101' },
      { decoded: '0000', encoded: '010101' },
      { decoded: '001100', encoded: '01021101' },
      { decoded: '11220033', encoded: '0311220233' },
      { decoded: '11223344', encoded: '0511223344' },
      { decoded: '11000000', encoded: '0211010101' },
      { decoded: bytes(range(1, 254)), encoded: bytes([0xff], range(1, 254)) },
      { decoded: bytes([0], range(1, 254)), encoded: bytes([0x01, 0xff], range(1, 254)) },
      { decoded: bytes(range(1, 255)), encoded: bytes([0xff], range(1, 254), [0x02, 0xff]) },
      { decoded: bytes(range(2, 255), [0]), encoded: bytes([0xff], range(2, 255), [0x01, 0x01]) },
      { decoded: bytes(range(3, 255), [0, 1]), encoded: bytes([0xfe], range(3, 255), [0x02, 0x01]) },
    ],
    frames: [...V1_FRAMES, ...V2_FRAMES].map(([name, frame]) => ({ name, fields: fieldsOf(frame), line: frameLine(frame), wire: hex(encodeFrame(frame)) })),
    decode: DECODE_CASES,
    hello_refused: REFUSED_HELLOS,
  };
}

export const VECTORS_FILE = join(import.meta.dirname, '../../firmware-bridge/test-vectors.json');

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = `${JSON.stringify(makeSerialVectors(), null, 2)}\n`;
  if (process.argv.includes('--check')) {
    if (readFileSync(VECTORS_FILE, 'utf8') !== text) {
      console.error(`${VECTORS_FILE} is out of date: run node dist/scripts/make-serial-vectors.js`);
      process.exit(1);
    }
  } else writeFileSync(VECTORS_FILE, text);
}
