import { SerialPort } from 'serialport';
import { backoffDelay } from '../../util/backoff.js';
import type { Reading } from '../../types.js';
import type { IntervalControl, IntervalOutcome } from '../../contracts/interval-control.js';
import { TIMED_RESEND_COMMIT_WITHIN_MS } from '../../contracts/reading-sink.js';
import { IntervalRequests } from './interval-requests.js';
import type { Source, SourceContext, SourceHealth } from '../source.js';
import type { SerialSourceConfig } from './config.js';
import { FrameDecoder } from './frame-decoder.js';
import { keepPollerEvents } from './poller-events.js';
import { helloRefusal } from './hello-check.js';
import { LineDecoder } from './line-decoder.js';
import { AttestReport, provisionedKey } from './attest-report.js';
import { encodeFrame, HELLO_STATE, INTERVAL_BOUNDS, type Frame, type ProtocolVersion } from './protocol.js';
import { Segment, type DeviceSession, type LineCounters } from './segment.js';
import { cursorsOf, progressOf, sessionPrefix } from './stream-cursors.js';

/** Frames waiting for the store while a commit runs: past this the line's frames are dropped (the device resends). */
const MAX_QUEUED_FRAMES = 50_000;
/** Frames judged per submission: keeps each transaction, and each turn of the event loop, short. */
const MAX_SEGMENT_FRAMES = 5_000;

type Hello = Extract<Frame, { type: 'hello' }>;

/**
 * Reads a sensor microcontroller over a serial line (firmware-bridge/PROTOCOL.md, versions 1 and 2).
 * Frames are handled strictly in the order they arrived, one store submission at a time: the
 * frames up to a HELLO are judged against the committed progress of their session and committed;
 * only then are their ACKs computed, from what the store now holds, for that session (§3.3), and
 * only then is the HELLO answered. Readings the firmware resends (gateway restart, lost ACK) are
 * recognised by (device, session, sensor, seq) and not stored twice. The port is reopened with
 * back-off when the device disappears (unplug, reset, adapter replug).
 */
export class SerialSource implements Source, IntervalControl {
  readonly id: string;
  private port: SerialPort | undefined;
  private stopped = false;
  private connected = false;
  private failures = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  // One decoder for the source's life: its counters survive port reopens (they are "since the agent started").
  private readonly frames = new FrameDecoder();
  private lines = new LineDecoder();
  private device: DeviceSession | undefined;
  private lastHelloRequest = 0;
  private readonly stats = { accepted: 0, duplicates: 0, rejected: 0 };
  private readonly extra: LineCounters = { gaps: 0, lost: 0, out_of_order: 0, resent: 0, errors_from_device: 0, reopens: 0, hello_requests: 0, awaiting_hello: 0, stray_interval_acks: 0 };
  private readonly attest = new AttestReport();
  private lastMessageAt: number | undefined;
  private lastRefusal = { reason: '', at: 0 };
  private lastError: string | undefined;
  private queue: Frame[] = [];
  private pendingRejected: string[] = [];
  private draining: Promise<void> | undefined;
  private textInFlight = new Set<Promise<unknown>>();
  private watchdog: NodeJS.Timeout | undefined;
  private lastByteMono = 0;
  private readonly intervals: IntervalRequests;

  constructor(
    private readonly cfg: SerialSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.id = ctx.id;
    this.intervals = new IntervalRequests(`serial:${ctx.id}`, (f) => this.write(f));
  }

  /** §3.10: only a version 2 device, and only a sensor its accepted HELLO names (one-value readings carry the id itself). */
  reaches(sensor: string): boolean {
    return this.connected && this.device?.version === 2 && [...this.device.sensors.values()].some((s) => s.id === sensor);
  }

  current(sensor: string): number | undefined {
    if (!this.reaches(sensor)) return undefined;
    return [...this.device!.sensors.values()].find((s) => s.id === sensor)?.periodMs;
  }

  setInterval(sensor: string, intervalMs: number): Promise<IntervalOutcome> {
    const dev = this.device;
    const info = dev && [...dev.sensors.values()].find((s) => s.id === sensor);
    if (!this.connected || !dev || dev.version !== 2 || !info) return Promise.resolve({ status: 'not_connected', via: `serial:${this.id}` });
    // The gateway's side of the bounds (§3.10); the device checks its own narrower ones.
    if (!Number.isInteger(intervalMs) || intervalMs < INTERVAL_BOUNDS.minMs || intervalMs > INTERVAL_BOUNDS.maxMs) return Promise.resolve({ status: 'out_of_range', via: `serial:${this.id}`, minMs: INTERVAL_BOUNDS.minMs, maxMs: INTERVAL_BOUNDS.maxMs });
    return this.intervals.request(dev.session, info.index, intervalMs).then((o) => {
      if (o.status === 'applied' && o.intervalMs !== undefined) info.periodMs = o.intervalMs; // what status shows until the next HELLO
      if (o.status === 'timeout') this.ctx.log.warn({ path: this.cfg.path, sensor, interval_ms: intervalMs }, 'the device did not answer SET_INTERVAL (firmware without PROTOCOL.md §3.10 interval control?)');
      return o;
    });
  }

  async start(): Promise<void> {
    this.open();
    // A vanished pty or a hung USB adapter does not always raise close or error: silence does.
    // (Frames mode only: a text-mode sketch owes us no heartbeat.)
    if (this.cfg.mode === 'frames') {
      let lastTick = performance.now();
      this.watchdog = setInterval(() => {
        const now = performance.now();
        // A tick that comes late means this process was busy, and bytes may be waiting unread: not silence.
        const late = now - lastTick > 1500;
        lastTick = now;
        if (!late && this.connected && now - this.lastByteMono > this.cfg.silence_timeout_ms) this.lost(`no data for ${this.cfg.silence_timeout_ms} ms`);
      }, 500);
    }
  }

  private open(): void {
    if (this.stopped) return;
    const port = new SerialPort({ path: this.cfg.path, baudRate: this.cfg.baud, autoOpen: false });
    this.port = port;
    port.open((err) => {
      if (err) return this.lost(`open ${this.cfg.path}: ${err.message}`);
      // An ACK must not wait for the device's next byte (poller-events.ts).
      if (!keepPollerEvents(port)) this.ctx.log.debug({ path: this.cfg.path }, 'serial binding without the unix Poller: nothing to work around');
      this.connected = true;
      this.failures = 0;
      this.lastByteMono = performance.now();
      this.frames.resync(); // a new line starts mid-nothing: no half frame carries over
      this.lines = new LineDecoder();
      this.ctx.log.info({ path: this.cfg.path, baud: this.cfg.baud, mode: this.cfg.mode }, 'serial port open');
      // Ask the device who it is: after a gateway restart it may be mid-stream (PROTOCOL.md §3.6).
      // In both versions while we do not know which it speaks (each drops the other's frames).
      if (this.cfg.mode === 'frames') for (const version of this.device ? [this.device.version] : ([2, 1] as const)) this.write({ version, type: 'hello-request' });
    });
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    port.on('close', () => this.lost(`${this.cfg.path} closed`));
    port.on('error', (err) => this.lost(`${this.cfg.path}: ${err.message}`));
  }

  private lost(reason: string): void {
    if (this.stopped || this.reopenTimer) return;
    if (this.connected) this.ctx.log.warn({ path: this.cfg.path, reason }, 'serial port lost; reopening');
    // A device that is not there (or not ours to open) is said once at warn, then at debug while it stays so.
    else this.ctx.log[reason === this.lastError ? 'debug' : 'warn']({ path: this.cfg.path, reason }, 'cannot open the serial port; retrying with back-off (is the device plugged in? ls -l /dev/serial/by-id/)');
    this.connected = false;
    this.intervals.cancelAll('not_connected');
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

  /** An event for the network (carried in the next batch); a failure to store it is logged, never fatal. */
  private event(kind: string, key: string, detail: Record<string, string | number | boolean>): void {
    try {
      this.ctx.events?.record({ kind, key, detail });
    } catch (err) {
      this.ctx.log.warn({ err, kind, key }, 'could not store an event for the network');
    }
  }

  private ack(dev: DeviceSession, sensor: number): void {
    const seq = dev.committed.get(sensor);
    if (seq !== undefined) this.write({ version: dev.version, type: 'ack', session: dev.session, sensor, seq });
  }

  /** §3.6, at most once a second: a READING before any HELLO, or of another session (§3.2). */
  private requestHello(version: ProtocolVersion): void {
    const now = Date.now();
    if (now - this.lastHelloRequest < 1000) return;
    this.lastHelloRequest = now;
    this.extra.hello_requests++;
    this.write({ version, type: 'hello-request' });
  }

  private onData(chunk: Buffer): void {
    this.lastMessageAt = Date.now();
    this.lastByteMono = performance.now();
    if (this.cfg.mode === 'text') return this.onText(chunk);
    const before = { ...this.frames.counters };
    const frames = this.frames.push(chunk);
    for (const [k, v] of Object.entries(this.frames.counters)) {
      const delta = v - before[k as keyof typeof before];
      if (k !== 'frames' && k !== 'bytesDiscarded') for (let i = 0; i < delta; i++) this.pendingRejected.push(`frame ${k}`);
    }
    const room = MAX_QUEUED_FRAMES - this.queue.length;
    if (frames.length > room) {
      for (let i = room; i < frames.length; i++) this.pendingRejected.push('frame queue full (store slower than the line)');
      frames.length = Math.max(0, room);
    }
    for (const f of frames) this.queue.push(f);
    this.pump();
  }

  private pump(): void {
    if (this.draining || (this.queue.length === 0 && this.pendingRejected.length === 0)) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      this.pump();
    });
  }

  /** Handles queued frames in arrival order: a segment up to the next HELLO, committed, then the HELLO. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.pendingRejected.length > 0) {
      const frames = this.queue.length > MAX_SEGMENT_FRAMES ? this.queue.splice(0, MAX_SEGMENT_FRAMES) : this.queue;
      if (frames === this.queue) this.queue = [];
      const seg = new Segment(this.device, this.extra, (v) => this.requestHello(v));
      seg.rejected.push(...this.pendingRejected.splice(0));
      const now = Date.now();
      const timeSource = this.ctx.clock.gatewayTimeSource(now);
      let hello: Hello | undefined;
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        if (f.type === 'hello') {
          hello = f;
          this.queue = frames.slice(i + 1).concat(this.queue);
          break;
        }
        if (f.type === 'reading') seg.reading(f, now, timeSource);
        else if (f.type === 'lost') seg.lostNotice(f);
        else if (f.type === 'heartbeat') seg.heartbeat(f);
        else if (f.type === 'error') this.onDeviceError(f);
        else if (f.type === 'attest') seg.attest(f);
        else if (f.type === 'interval-ack') {
          if (!this.intervals.answer(f)) this.extra.stray_interval_acks++; // a late answer to a request given up
        }
        else seg.rejected.push(`frame ${f.type} sent by the device (a gateway-to-device type)`);
      }
      await this.commit(seg);
      if (hello) await this.onHello(hello);
    }
  }

  private async commit(seg: Segment): Promise<void> {
    const dev = seg.dev;
    this.stats.rejected += seg.rejected.length;
    this.stats.duplicates += seg.duplicates;
    if (seg.storesSomething) {
      try {
        const r = await this.ctx.sink.submit({
          source: this.id,
          readings: seg.readings,
          rejected: seg.rejected,
          // The device resends what is not acknowledged within resend_after (PROTOCOL.md §4.2).
          commitWithinMs: TIMED_RESEND_COMMIT_WITHIN_MS,
          ...(dev ? { cursors: cursorsOf(dev.uid, dev.session, seg.progress), origin: `session:${dev.uid}/${dev.session}` } : {}),
          counts: [...seg.lostCounts(this.id), ...(seg.unprovisioned > 0 ? [{ name: 'attestations', label: `${this.id}: unprovisioned`, n: seg.unprovisioned }] : [])],
          ...(dev?.key ? { attestWait: { ms: this.cfg.attest_wait_ms } } : {}),
          ...(seg.attestations.length > 0 ? { attestations: seg.attestations } : {}),
        });
        this.stats.accepted += r.accepted;
        this.stats.duplicates += r.duplicates;
        if (dev) this.attest.outcomes(this.ctx, this.cfg.path, dev, seg, r.attestations ?? []);
      } catch (err) {
        // Not committed: nothing changes, nothing is acknowledged; the device resends (§4.2).
        this.lastError = `store: ${(err as Error).message}`;
        this.ctx.log.error({ err, path: this.cfg.path }, 'could not commit serial readings; the device will resend');
        return;
      }
    }
    if (!dev) return;
    // Only now, committed: tell the device what it may drop (PROTOCOL.md §3.3).
    for (const [sensor, seq] of seg.progress) dev.committed.set(sensor, seq);
    for (const [sensor, { count, through }] of seg.lost) {
      this.event('serial.lost', dev.sensors.get(sensor)?.id ?? `${this.id}/index-${sensor}`, { source: this.id, device: dev.uid, session: dev.session, count, through_seq: through });
    }
    for (const sensor of new Set([...seg.progress.keys(), ...seg.reack])) this.ack(dev, sensor);
  }

  private onDeviceError(f: Extract<Frame, { type: 'error' }>): void {
    this.extra.errors_from_device++;
    // Version 1 overflow (§7): the next jump of each sensor is the hole it left. Version 2 uses LOST (§3.8).
    if (f.code === 2 && this.device?.version === 1 && f.version === 1) {
      this.device.overflowSeen = true;
      this.device.jumped = new Set();
    }
    this.ctx.log.warn({ path: this.cfg.path, code: f.code, message: f.message }, 'device reported an error');
  }

  /** Runs once everything received before the HELLO is committed, so its answer is current (§3.3, §3.7). */
  private async onHello(f: Hello): Promise<void> {
    const uid = Buffer.from(f.uid).toString('hex');
    const refusal = helloRefusal(f);
    if (refusal) {
      this.device = undefined;
      this.pendingRejected.push(refusal);
      this.lastError = `device ${uid}: ${refusal}`;
      // The device says HELLO again every few seconds: one log line a minute per reason is enough.
      if (refusal !== this.lastRefusal.reason || Date.now() - this.lastRefusal.at > 60_000) {
        this.lastRefusal = { reason: refusal, at: Date.now() };
        this.ctx.log.error({ path: this.cfg.path, device: uid, session: f.session, reason: refusal }, 'HELLO refused: fix the firmware sensor table (firmware-bridge/PROTOCOL.md §3.1)');
      }
      if (f.version === 2) this.write({ version: 2, type: 'hello-ack', session: f.session, uptimeMs: f.uptimeMs ?? 0, state: HELLO_STATE.refused });
      this.event('serial.hello_refused', this.id, { device: uid, session: f.session, reason: refusal.slice(0, 256) });
      return;
    }
    const same = this.device?.uid === uid && this.device.session === f.session && this.device.version === f.version;
    // The store is the only truth for what was committed: no commit is running now.
    const committed = progressOf(this.ctx.cursors(sessionPrefix(uid, f.session)), uid, f.session);
    this.device = {
      uid,
      session: f.session,
      version: f.version,
      firmware: `${f.firmware} ${f.fwVersion}`,
      sensors: new Map(f.sensors.map((s) => [s.index, s])),
      committed,
      overflowSeen: same && this.device!.overflowSeen,
      jumped: same ? this.device!.jumped : new Set(),
      ahead: same ? this.device!.ahead : new Map(),
      uidBytes: f.uid,
      ...provisionedKey(this.cfg.attest_keys, uid),
    };
    if (!same && committed.size === 0) this.event('serial.session', this.id, { device: uid, session: f.session, protocol: f.version, firmware: this.device.firmware.slice(0, 256), sensors: f.sensors.map((x) => `${x.index}=${x.id}`).join(' ').slice(0, 256) });
    if (!same) this.ctx.log.info({ path: this.cfg.path, device: uid, session: f.session, version: f.version, firmware: this.device.firmware, sensors: f.sensors.map((s) => s.id), known: committed.size > 0 }, 'device said hello');
    if (f.version === 2) this.write({ version: 2, type: 'hello-ack', session: f.session, uptimeMs: f.uptimeMs ?? 0, state: committed.size > 0 ? HELLO_STATE.known : HELLO_STATE.new });
    // A session seen before (we restarted, or the line dropped): say at once what we already hold.
    for (const sensor of committed.keys()) this.ack(this.device, sensor);
  }

  private onText(chunk: Buffer): void {
    const before = new Map(this.lines.rejected);
    const now = Date.now();
    const readings: Reading[] = this.lines.push(chunk).map((s) => ({ sensor: s.sensor, ts: now, timeSource: this.ctx.clock.gatewayTimeSource(now), value: s.value }));
    const rejected: string[] = [];
    for (const [reason, n] of this.lines.rejected) for (let i = 0; i < n - (before.get(reason) ?? 0); i++) rejected.push(`line: ${reason}`);
    this.stats.rejected += rejected.length;
    if (readings.length === 0 && rejected.length === 0) return;
    const commit = this.ctx.sink.submit({ source: this.id, readings, rejected, commitWithinMs: TIMED_RESEND_COMMIT_WITHIN_MS }).then(
      (r) => {
        this.stats.accepted += r.accepted;
      },
      (err: Error) => {
        this.lastError = `store: ${err.message}`;
      },
    );
    this.textInFlight.add(commit);
    void commit.finally(() => this.textInFlight.delete(commit));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.intervals.cancelAll('not_connected');
    this.queue = [];
    await Promise.allSettled([...this.textInFlight, ...(this.draining ? [this.draining] : [])]);
    const port = this.port;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
    this.connected = false;
  }

  health(): SourceHealth {
    const c = this.frames.counters;
    const h: SourceHealth = {
      type: 'serial',
      connected: this.connected,
      endpoint: `${this.cfg.path} ${this.cfg.baud} baud ${this.cfg.mode}${this.device ? ` device ${this.device.uid} (${this.device.firmware}) protocol ${this.device.version}` : ''}`,
      ...this.stats,
      counters: { frames: c.frames, crc_errors: c.crc, cobs_errors: c.cobs, oversize: c.oversize, malformed: c.malformed + c['too-short'] + c['unknown-type'] + c['bad-version'], ...this.extra, ...this.attest.counters },
    };
    if (this.lastMessageAt !== undefined) h.lastMessageAt = this.lastMessageAt;
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }
}
