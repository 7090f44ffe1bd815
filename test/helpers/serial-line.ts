import Database from 'better-sqlite3';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';
import { keepPollerEvents } from '../../agent/sources/serial/poller-events.js';
import { encodeFrame, type Frame } from '../../agent/sources/serial/protocol.js';
import { waitFor } from './ports.js';

export type Received = { frame: Frame; at: number; lockedHold: number | undefined };

/**
 * The device end of a pty, played by hand: writes frames (several in one write, when the test
 * wants one read chunk at the gateway), decodes what the gateway answers, and can hold the agent's
 * store write lock so that anything acknowledged meanwhile was, by construction, not committed.
 */
export class DeviceLine {
  readonly received: Received[] = [];
  private readonly decoder = new FrameDecoder();
  private lock: Database.Database | undefined;
  private holds = 0;

  private constructor(
    private readonly port: SerialPort,
    private readonly dbPath: string,
  ) {
    port.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.received.push({ frame, at: Date.now(), lockedHold: this.lock ? this.holds : undefined });
    });
  }

  static async open(path: string, dataDir: string): Promise<DeviceLine> {
    const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
    // Closing a port cancels its pending read ("Canceled"): that is how the line ends, not a fault.
    port.on('error', (err) => {
      if (!/Canceled/.test(err.message)) console.error(`serial test line ${path}: ${err.message}`);
    });
    await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
    keepPollerEvents(port); // else a write the agent holds up can wait for its next byte for ever
    return new DeviceLine(port, join(dataDir, 'edge-agent.db'));
  }

  /** All frames in one write: the gateway reads them as one chunk. */
  async send(...frames: Frame[]): Promise<void> {
    const bytes = Buffer.concat(frames.map((f) => Buffer.from(encodeFrame(f))));
    await new Promise<void>((res, rej) => this.port.write(bytes, (e) => (e ? rej(e) : this.port.drain(() => res()))));
  }

  async sendRaw(bytes: Uint8Array): Promise<void> {
    await new Promise<void>((res, rej) => this.port.write(Buffer.from(bytes), (e) => (e ? rej(e) : this.port.drain(() => res()))));
  }

  /** The first frame received from `from` on that matches. */
  async expect<T extends Frame['type']>(type: T, match: (f: Extract<Frame, { type: T }>) => boolean = () => true, from = 0, timeoutMs = 15_000): Promise<Extract<Frame, { type: T }>> {
    return waitFor(
      `a ${type} from the gateway (received: ${this.received.map((r) => JSON.stringify(r.frame)).slice(-6).join(' ')})`,
      () => this.received.slice(from).find((r) => r.frame.type === type && match(r.frame as Extract<Frame, { type: T }>))?.frame as Extract<Frame, { type: T }> | undefined,
      timeoutMs,
      20,
    );
  }

  acks(session?: number): Extract<Frame, { type: 'ack' }>[] {
    return this.received.map((r) => r.frame).filter((f): f is Extract<Frame, { type: 'ack' }> => f.type === 'ack' && (session === undefined || f.session === session));
  }

  /** Holds the store's write lock (BEGIN IMMEDIATE): the agent cannot commit until `unlock()`. */
  lockStore(): void {
    const db = new Database(this.dbPath, { timeout: 10_000 });
    db.prepare('BEGIN IMMEDIATE').run();
    this.lock = db;
    this.holds++;
  }

  /** Runs `during` with the store locked; unlocked whatever happens, so one failure cannot lock the next test out. */
  async whileStoreLocked(during: () => Promise<void>): Promise<void> {
    this.lockStore();
    try {
      await during();
    } finally {
      this.unlockStore();
    }
  }

  unlockStore(): void {
    this.lock?.prepare('ROLLBACK').run();
    this.lock?.close();
    this.lock = undefined;
  }

  /** ACK frames that reached the device during the last hold of the lock, when the store could not commit: each one is a premature ACK. */
  acksWhileLocked(): Extract<Frame, { type: 'ack' }>[] {
    return this.received.filter((r) => r.lockedHold === this.holds && r.frame.type === 'ack').map((r) => r.frame as Extract<Frame, { type: 'ack' }>);
  }

  /** What the store holds: committed progress per (session, sensor) and readings per sensor name. */
  store(): { progress(session: number, sensor: number): number | undefined; values(sensor: string): number[]; counter(name: string, label: string): number; events(kind: string): { key: string; detail: Record<string, unknown> }[] } {
    const db = new Database(this.dbPath, { readonly: true });
    try {
      // The serial source's progress: stream cursors named device/session/sensor (agent/sources/serial/stream-cursors.ts).
      const progress = (db.prepare("SELECT stream, position FROM source_cursors WHERE source = 'serial'").all() as { stream: string; position: number }[]).map((c) => {
        const [, session, sensor] = c.stream.split('/');
        return { session: Number(session), sensor: Number(sensor), last_seq: c.position };
      });
      const readings = db.prepare('SELECT sensor, value FROM readings ORDER BY id').all() as { sensor: string; value: number }[];
      const counters = db.prepare('SELECT name, label, value FROM counters').all() as { name: string; label: string; value: number }[];
      const events = db.prepare('SELECT kind, key, detail FROM events ORDER BY id').all() as { kind: string; key: string; detail: string | null }[];
      return {
        progress: (session, sensor) => progress.find((p) => p.session === session && p.sensor === sensor)?.last_seq,
        values: (sensor) => readings.filter((r) => r.sensor === sensor).map((r) => r.value),
        counter: (name, label) => counters.find((c) => c.name === name && c.label === label)?.value ?? 0,
        events: (kind) => events.filter((e) => e.kind === kind).map((e) => ({ key: e.key, detail: e.detail ? (JSON.parse(e.detail) as Record<string, unknown>) : {} })),
      };
    } finally {
      db.close();
    }
  }

  async close(): Promise<void> {
    this.unlockStore();
    if (this.port.isOpen) await new Promise<void>((r) => this.port.close(() => r()));
  }
}
