/**
 * Writes firmware-bridge/test-vectors.json: every frame type with its fields, its line form
 * (the C++ vector tool's format: space-separated key=value, so strings in vectors have no
 * spaces) and its exact bytes, plus CRC-32C and COBS cases whose expected
 * bytes come from outside this code (the CRC catalogue's check value, the COBS examples of
 * Cheshire and Baker / Wikipedia). `--check` exits 1 if the file is out of date.
 *
 *   node dist/scripts/make-serial-vectors.js [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeFrame, type Frame } from '../agent/sources/serial/protocol.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const bytes = (...parts: number[][]) => hex(Uint8Array.from(parts.flat()));

/** The C++ tool's line form of a frame (firmware-bridge/tools/vectors.cpp). */
export function frameLine(f: Frame): string {
  switch (f.type) {
    case 'hello':
      return [
        `type=hello session=${f.session} uid=${hex(f.uid)} firmware=${f.firmware} fw_version=${f.fwVersion}`,
        ...f.sensors.map((s) => `sensor_info=${s.index}:${s.periodMs}:${s.id}:${s.unit}`),
      ].join(' ');
    case 'reading':
      return `type=reading sensor=${f.sensor} seq=${f.seq} uptime=${f.uptimeMs} values=${f.values.join(',')}`;
    case 'ack':
      return `type=ack session=${f.session} sensor=${f.sensor} seq=${f.seq}`;
    case 'error':
      return `type=error code=${f.code} message=${f.message}`;
    case 'heartbeat':
      return `type=heartbeat uptime=${f.uptimeMs} buffered=${f.buffered}`;
    case 'hello-request':
      return 'type=hello-request';
  }
}

const FRAMES: [string, Frame][] = [
  ['hello-two-sensors', { type: 'hello', session: 3_000_000_001, uid: Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]), firmware: 'pump-node', fwVersion: '1.2.0', sensors: [{ index: 0, periodMs: 1000, id: 'pump1/temp', unit: 'Cel' }, { index: 1, periodMs: 100, id: 'pump1/vib', unit: '' }] }],
  ['reading-one-value', { type: 'reading', sensor: 0, seq: 1, uptimeMs: 1000, values: [21.5] }],
  ['reading-three-values', { type: 'reading', sensor: 1, seq: 4_294_967_295, uptimeMs: 0, values: [-3.25, 0, 100000.5] }],
  ['ack', { type: 'ack', session: 3_000_000_001, sensor: 1, seq: 65_536 }],
  ['error', { type: 'error', code: 2, message: 'ring_buffer_overflow' }],
  ['heartbeat', { type: 'heartbeat', uptimeMs: 123_456, buffered: 17 }],
  ['hello-request', { type: 'hello-request' }],
];

export function makeSerialVectors() {
  return {
    description: 'firmware-bridge/PROTOCOL.md version 1 test vectors. Frames: fields, line form, wire bytes (COBS + 0x00).',
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
    frames: FRAMES.map(([name, frame]) => ({
      name,
      fields: frame.type === 'hello' ? { ...frame, uid: hex(frame.uid) } : frame,
      line: frameLine(frame),
      wire: hex(encodeFrame(frame)),
    })),
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
