import { SerialPort } from 'serialport';
import { backoffDelay } from '../../util/backoff.js';
import { checkSensorId } from '../../payloads/types.js';
import type { Reading } from '../../types.js';
import type { Source, SourceContext, SourceHealth } from '../source.js';
import type { SerialSourceConfig } from './config.js';
import { FrameDecoder } from './frame-decoder.js';
import { LineDecoder } from './line-decoder.js';
import { cursorsOf, progressOf, sessionPrefix } from './stream-cursors.js';
import { encodeFrame, type Frame, type SensorInfo } from './protocol.js';

interface Device {
  uid: string;
  session: number;
  firmware: string;
  sensors: Map<number, SensorInfo>;
  /** Highest contiguous sequence per sensor taken for commit (optimistic: resends in flight are dropped). */
  taken: Map<number, number>;
  /** The device reported ring overflow (ERROR 2): readings it lost will never come, so gaps are accepted. */
  overflowed: boolean;
}

/** RFC 1982 serial number arithmetic on 32 bits: is a after b? */
const after = (a: number, b: number) => a !== b && ((a - b) >>> 0) < 0x80000000;

/**
 * Reads a sensor microcontroller over a serial line (firmware-bridge/PROTOCOL.md). ACK frames go
 * out only for readings already committed; readings the firmware resends (gateway restart, lost
 * ACK) are recognised by (device, session, sensor, seq) and not stored twice. The port is
 * reopened with back-off when the device disappears (unplug, reset, adapter replug).
 */
export class SerialSource implements Source {
  readonly id: string;
  private port: SerialPort | undefined;
  private stopped = false;
  private connected = false;
  private failures = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  private frames = new FrameDecoder();
  private lines = new LineDecoder();
  private device: Device | undefined;
  private lastHelloRequest = 0;
  private readonly stats = { accepted: 0, duplicates: 0, rejected: 0 };
  private readonly extra = { gaps: 0, out_of_order: 0, resent: 0, errors_from_device: 0, reopens: 0 };
  private lastMessageAt: number | undefined;
  private lastError: string | undefined;
  private inFlight = new Set<Promise<unknown>>();
  private watchdog: NodeJS.Timeout | undefined;
  private lastByteMono = 0;

  constructor(
    private readonly cfg: SerialSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.id = ctx.id;
  }

  async start(): Promise<void> {
    this.open();
    // A vanished pty or a hung USB adapter does not always raise close or error: silence does.
    // (Frames mode only: a text-mode sketch owes us no heartbeat.)
    if (this.cfg.mode === 'frames') {
      this.watchdog = setInterval(() => {
        if (this.connected && performance.now() - this.lastByteMono > this.cfg.silence_timeout_ms) this.lost(`no data for ${this.cfg.silence_timeout_ms} ms`);
      }, 500);
    }
  }

  private open(): void {
    if (this.stopped) return;
    const port = new SerialPort({ path: this.cfg.path, baudRate: this.cfg.baud, autoOpen: false });
    this.port = port;
    port.open((err) => {
      if (err) return this.lost(`open ${this.cfg.path}: ${err.message}`);
      this.connected = true;
      this.failures = 0;
      this.lastByteMono = performance.now();
      this.frames = new FrameDecoder(); // a new line starts mid-nothing: no half frame carries over
      this.lines = new LineDecoder();
      this.ctx.log.info({ path: this.cfg.path, baud: this.cfg.baud, mode: this.cfg.mode }, 'serial port open');
      // Ask the device who it is: after a gateway restart it may be mid-stream (PROTOCOL.md §3.6).
      if (this.cfg.mode === 'frames') this.write({ type: 'hello-request' });
    });
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    port.on('close', () => this.lost(`${this.cfg.path} closed`));
    port.on('error', (err) => this.lost(`${this.cfg.path}: ${err.message}`));
  }

  private lost(reason: string): void {
    if (this.stopped || this.reopenTimer) return;
    if (this.connected) this.ctx.log.warn({ path: this.cfg.path, reason }, 'serial port lost; reopening');
    this.connected = false;
    this.lastError = reason;
    this.failures++;
    this.extra.reopens++;
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) port.close(() => undefined);
    port?.removeAllListeners('data');
    const delay = backoffDelay(this.failures, this.cfg.reopen_initial_ms, this.cfg.reopen_max_ms);
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      this.open();
    }, delay);
  }

  private write(frame: Frame): void {
    if (this.port?.isOpen) this.port.write(Buffer.from(encodeFrame(frame)));
  }

  private onData(chunk: Buffer): void {
    this.lastMessageAt = Date.now();
    this.lastByteMono = performance.now();
    if (this.cfg.mode === 'text') return this.onText(chunk);
    const before = { ...this.frames.counters };
    const frames = this.frames.push(chunk);
    const rejected: string[] = [];
    for (const [k, v] of Object.entries(this.frames.counters)) {
      const delta = v - before[k as keyof typeof before];
      if (k !== 'frames' && k !== 'bytesDiscarded') for (let i = 0; i < delta; i++) rejected.push(`frame ${k}`);
    }
    const readings: Reading[] = [];
    const progress = new Map<number, number>(); // committed with the readings, then acknowledged
    const reack = new Map<number, number>(); // resends: acknowledged again, nothing to store
    const now = Date.now();
    for (const f of frames) {
      if (f.type === 'hello') this.onHello(f);
      else if (f.type === 'error') {
        this.extra.errors_from_device++;
        if (f.code === 2 && this.device) this.device.overflowed = true;
        this.ctx.log.warn({ path: this.cfg.path, code: f.code, message: f.message }, 'device reported an error');
      } else if (f.type === 'reading') this.onReading(f, now, readings, progress, reack, rejected);
    }
    this.stats.rejected += rejected.length;
    if (readings.length === 0 && rejected.length === 0 && progress.size === 0 && reack.size === 0) return;
    const device = this.device;
    const cursors = device ? cursorsOf(device.uid, device.session, progress) : [];
    this.track(this.ctx.sink.submit({ source: this.id, readings, rejected, cursors }).then(
      (r) => {
        this.stats.accepted += r.accepted;
        this.stats.duplicates += r.duplicates;
        // Only now, committed: tell the device what it may drop (PROTOCOL.md §3.3).
        if (device && device === this.device) {
          for (const [sensor, seq] of new Map([...reack, ...progress])) this.write({ type: 'ack', session: device.session, sensor, seq });
        }
      },
      (err: Error) => {
        // Not committed: no ACK, and forget what was taken, so the device's resend is stored.
        this.lastError = `store: ${err.message}`;
        if (device) for (const sensor of progress.keys()) device.taken.delete(sensor);
        this.ctx.log.error({ err, path: this.cfg.path }, 'could not commit serial readings; the device will resend');
      },
    ));
  }

  /** Keeps a commit's promise until it settles, so stop() can wait for the last ones. */
  private track(commit: Promise<unknown>): void {
    this.inFlight.add(commit);
    void commit.finally(() => this.inFlight.delete(commit));
  }

  private onHello(f: Extract<Frame, { type: 'hello' }>): void {
    const uid = Buffer.from(f.uid).toString('hex');
    // The same session saying hello again keeps what is taken in memory: some of it may still be
    // on its way to the store, which is all the database would know.
    const same = this.device?.uid === uid && this.device.session === f.session;
    const taken = same ? this.device!.taken : progressOf(this.ctx.cursors(sessionPrefix(uid, f.session)), uid, f.session);
    this.device = { uid, session: f.session, firmware: `${f.firmware} ${f.fwVersion}`, sensors: new Map(f.sensors.map((s) => [s.index, s])), taken, overflowed: same && this.device!.overflowed };
    this.ctx.log.info({ path: this.cfg.path, device: uid, session: f.session, firmware: this.device.firmware, sensors: f.sensors.map((s) => s.id) }, 'device said hello');
    // A session seen before (we restarted, or the line dropped): say at once what we already hold.
    for (const [sensor, seq] of taken) this.write({ type: 'ack', session: f.session, sensor, seq });
  }

  private onReading(f: Extract<Frame, { type: 'reading' }>, now: number, out: Reading[], progress: Map<number, number>, reack: Map<number, number>, rejected: string[]): void {
    const dev = this.device;
    if (!dev) {
      rejected.push('reading before hello');
      if (now - this.lastHelloRequest > 1000) {
        this.lastHelloRequest = now;
        this.write({ type: 'hello-request' });
      }
      return;
    }
    const info = dev.sensors.get(f.sensor);
    if (!info || checkSensorId(info.id)) {
      rejected.push('unknown sensor index');
      return;
    }
    const last = dev.taken.get(f.sensor);
    if (last !== undefined && !after(f.seq, last)) {
      this.stats.duplicates++;
      this.extra.resent++;
      // Acknowledged again once this submission commits: by then (group commits are in order) so is `last`.
      if (!progress.has(f.sensor)) reack.set(f.sensor, last);
      return;
    }
    if (last !== undefined && f.seq !== ((last + 1) >>> 0)) {
      // An ACK means "everything up to seq is stored" (PROTOCOL.md §3.3), so the gateway never
      // acknowledges past a hole: a reading ahead of it is not stored, and the device's in-order
      // resend fills the hole first. Only readings the device says it lost are skipped.
      if (!dev.overflowed) {
        this.extra.out_of_order++;
        return;
      }
      this.extra.gaps += (f.seq - last - 1) >>> 0;
    }
    if (f.values.some((v) => !Number.isFinite(v))) {
      rejected.push('non-finite value');
    } else {
      f.values.forEach((value, k) => {
        out.push({ sensor: f.values.length === 1 ? info.id : `${info.id}/${k}`, ts: now, timeSource: this.ctx.clock.gatewayTimeSource(now), value, ...(info.unit ? { unit: info.unit } : {}), seq: f.seq });
      });
    }
    dev.taken.set(f.sensor, f.seq);
    progress.set(f.sensor, f.seq);
  }

  private onText(chunk: Buffer): void {
    const before = new Map(this.lines.rejected);
    const now = Date.now();
    const readings: Reading[] = this.lines.push(chunk).map((s) => ({ sensor: s.sensor, ts: now, timeSource: this.ctx.clock.gatewayTimeSource(now), value: s.value }));
    const rejected: string[] = [];
    for (const [reason, n] of this.lines.rejected) for (let i = 0; i < n - (before.get(reason) ?? 0); i++) rejected.push(`line: ${reason}`);
    this.stats.rejected += rejected.length;
    if (readings.length === 0 && rejected.length === 0) return;
    this.track(this.ctx.sink.submit({ source: this.id, readings, rejected }).then(
      (r) => {
        this.stats.accepted += r.accepted;
      },
      (err: Error) => {
        this.lastError = `store: ${err.message}`;
      },
    ));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    await Promise.allSettled([...this.inFlight]);
    const port = this.port;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
    this.connected = false;
  }

  health(): SourceHealth {
    const c = this.frames.counters;
    const h: SourceHealth = {
      type: 'serial',
      connected: this.connected,
      endpoint: `${this.cfg.path} ${this.cfg.baud} baud ${this.cfg.mode}${this.device ? ` device ${this.device.uid} (${this.device.firmware})` : ''}`,
      ...this.stats,
      counters: { frames: c.frames, crc_errors: c.crc, cobs_errors: c.cobs, oversize: c.oversize, malformed: c.malformed + c['too-short'] + c['unknown-type'] + c['bad-version'], ...this.extra },
    };
    if (this.lastMessageAt !== undefined) h.lastMessageAt = this.lastMessageAt;
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }
}
