import type { AttestationClaim } from '../../contracts/reading-sink.js';
import type { Reading } from '../../types.js';
import type { Frame, ProtocolVersion, SensorInfo } from './protocol.js';

/** RFC 1982 serial number arithmetic on 32 bits (PROTOCOL.md §3.3): is a after b? */
export const after = (a: number, b: number) => a !== b && ((a - b) >>> 0) < 0x80000000;

/** One device boot session as the gateway knows it after accepting its HELLO (PROTOCOL.md §4.1). */
export interface DeviceSession {
  uid: string;
  session: number;
  version: ProtocolVersion;
  firmware: string;
  sensors: Map<number, SensorInfo>;
  /** Settled progress per sensor index, exactly as the store has committed it (§4.2). */
  committed: Map<number, number>;
  /** Version 1: ERROR 2 seen, and the sensors whose one overflow hole was then accepted (§7). */
  overflowSeen: boolean;
  jumped: Set<number>;
  /**
   * Readings that came ahead of a hole, per sensor, held in memory (never acknowledged) until the
   * hole is filled: then they are stored with it, and the device's go-back resend of them is a
   * duplicate rather than the only copy. Bounded by MAX_AHEAD per sensor.
   */
  ahead: Map<number, Map<number, Held>>;
  /** The device's sensor key from the config (`attest_keys`), when one is provisioned (PROTOCOL.md §3.9). */
  key?: Uint8Array;
  /** The device's uid bytes (the attestation message names them). */
  uidBytes: Uint8Array;
}

/** The signing stream of a sensor: one run of attestations per device, session and sensor index (§3.9). */
export const signingStream = (dev: DeviceSession, sensor: number) => `${dev.uid}/${dev.session}/${sensor}`;

/** A reading held ahead of a hole, with the gateway time it arrived at (its timestamp, §3.2). */
export interface Held {
  f: Extract<Frame, { type: 'reading' }>;
  now: number;
  timeSource: Reading['timeSource'];
}

/** Readings held ahead of a hole per sensor (§4.3): a bound on memory, whatever the line does. */
export const MAX_AHEAD = 2048;

/** What the serial source counts beside the store's counters, for the source's whole life. */
export interface LineCounters {
  gaps: number;
  lost: number;
  out_of_order: number;
  resent: number;
  errors_from_device: number;
  reopens: number;
  hello_requests: number;
  /** Frames of a session the gateway has no HELLO for (yet): not refused, the device resends them after its HELLO. */
  awaiting_hello: number;
  /** INTERVAL_ACKs that answer no waiting SET_INTERVAL (late, after the gateway gave up; PROTOCOL.md §3.11). */
  stray_interval_acks: number;
}

/**
 * The frames between two HELLOs, judged against one session's committed progress and turned into
 * one store submission. Nothing in it is acknowledged before the submission commits; then the
 * ACKs are computed from the committed progress, for this segment's session (§3.3).
 */
export class Segment {
  readonly readings: Reading[] = [];
  readonly rejected: string[] = [];
  /** Settled progress this segment adds, per sensor index. */
  readonly progress = new Map<number, number>();
  /** Sensors that sent a duplicate: their current ACK is repeated (§4.2). */
  readonly reack = new Set<number>();
  /** Readings declared lost per sensor index, and the last seq declared (§3.8). */
  readonly lost = new Map<number, { count: number; through: number }>();
  /** Resends of readings already settled (§4.2). */
  duplicates = 0;
  /** ATTEST frames of a device with a provisioned key, for the store to check and keep (§3.9). */
  readonly attestations: AttestationClaim[] = [];
  /** ATTEST frames of a device without a provisioned key: counted, flagged, not carried. */
  unprovisioned = 0;

  constructor(
    readonly dev: DeviceSession | undefined,
    private readonly counters: LineCounters,
    private readonly requestHello: (version: ProtocolVersion) => void,
  ) {}

  get storesSomething(): boolean {
    return this.readings.length > 0 || this.rejected.length > 0 || this.progress.size > 0 || this.attestations.length > 0 || this.unprovisioned > 0;
  }

  /** The last settled sequence of a sensor: this segment's, else the committed one. */
  private last(sensor: number): number | undefined {
    return this.progress.get(sensor) ?? this.dev?.committed.get(sensor);
  }

  /** The device's session if `f` belongs to it; otherwise counts why not and asks for HELLO (§3.2, §3.6). */
  private sessionOf(f: Frame & { session?: number }): DeviceSession | undefined {
    const dev = this.dev;
    if (!dev) {
      this.counters.awaiting_hello++; // not a refusal: nothing is acknowledged, the device resends after HELLO
      this.requestHello(f.version);
      return undefined;
    }
    if (f.version !== dev.version || (dev.version === 2 && f.session !== dev.session)) {
      this.counters.awaiting_hello++;
      this.requestHello(f.version);
      return undefined;
    }
    return dev;
  }

  reading(f: Extract<Frame, { type: 'reading' }>, now: number, timeSource: Reading['timeSource']): void {
    const dev = this.sessionOf(f);
    if (!dev) return;
    const last = this.last(f.sensor);
    if (last !== undefined && !after(f.seq, last)) {
      this.counters.resent++;
      this.duplicates++;
      this.reack.add(f.sensor);
      return;
    }
    // §4.3: the next expected number is progress + 1, or 0 for a sensor with no progress.
    const expected = last === undefined ? 0 : (last + 1) >>> 0;
    if (f.seq !== expected) {
      // Version 1 after ERROR 2: the first jump of each sensor is the overflow's hole (§7).
      if (dev.version === 1 && dev.overflowSeen && !dev.jumped.has(f.sensor) && after(f.seq, expected)) {
        this.counters.gaps += (f.seq - expected) >>> 0;
        dev.jumped.add(f.sensor);
      } else {
        // Not stored, not acknowledged: the device's resend, oldest first, fills the hole.
        this.counters.out_of_order++;
        this.holdAhead(dev, { f, now, timeSource }, expected);
        return;
      }
    }
    this.settle(dev, f, now, timeSource);
    this.takeAhead(dev, f.sensor);
  }

  private holdAhead(dev: DeviceSession, h: Held, expected: number): void {
    if (!dev.sensors.has(h.f.sensor) || !after(h.f.seq, expected) || ((h.f.seq - expected) >>> 0) > MAX_AHEAD) return;
    let held = dev.ahead.get(h.f.sensor);
    if (!held) dev.ahead.set(h.f.sensor, (held = new Map()));
    if (held.size < MAX_AHEAD && !held.has(h.f.seq)) held.set(h.f.seq, h);
  }

  /** After progress moved: the readings held just behind it follow, in order. */
  private takeAhead(dev: DeviceSession, sensor: number): void {
    const held = dev.ahead.get(sensor);
    if (!held || held.size === 0) return;
    for (;;) {
      const last = this.last(sensor);
      if (last === undefined) return;
      const next = held.get((last + 1) >>> 0);
      if (!next) break;
      held.delete(next.f.seq);
      this.settle(dev, next.f, next.now, next.timeSource);
    }
    // What a LOST notice jumped over, or a resend settled, is no longer ahead: forget it when the hold is full.
    if (held.size >= MAX_AHEAD / 2) {
      const last = this.last(sensor)!;
      for (const seq of held.keys()) if (!after(seq, last)) held.delete(seq);
    }
  }

  /** §3.2: stored, or refused for good (counted), and in either case settled. */
  private settle(dev: DeviceSession, f: Extract<Frame, { type: 'reading' }>, now: number, timeSource: Reading['timeSource']): void {
    const info = dev.sensors.get(f.sensor);
    if (!info) this.rejected.push(`sensor index ${f.sensor} not in HELLO`);
    else if (f.values.some((v) => !Number.isFinite(v))) this.rejected.push('non-finite value');
    else {
      f.values.forEach((value, k) => {
        this.readings.push({ sensor: f.values.length === 1 ? info.id : `${info.id}/${k}`, ts: now, timeSource, value, ...(info.unit ? { unit: info.unit } : {}), seq: f.seq, ...(dev.key ? { attestStream: signingStream(dev, f.sensor) } : {}) });
      });
    }
    this.progress.set(f.sensor, f.seq);
  }

  /** §3.8: the device lost this sensor's unacknowledged readings up to `throughSeq` for good. */
  lostNotice(f: Extract<Frame, { type: 'lost' }>): void {
    const dev = this.sessionOf(f);
    if (!dev) return;
    const last = this.last(f.sensor);
    if (last !== undefined && !after(f.throughSeq, last)) {
      this.reack.add(f.sensor); // already settled: say so again
      return;
    }
    const n = last === undefined ? f.throughSeq + 1 : (f.throughSeq - last) >>> 0;
    this.lost.set(f.sensor, { count: (this.lost.get(f.sensor)?.count ?? 0) + n, through: f.throughSeq });
    this.counters.lost += n;
    this.progress.set(f.sensor, f.throughSeq);
    this.takeAhead(dev, f.sensor);
  }

  /**
   * §3.9: a sensor's signature over its readings first_seq..last_seq, for the store to check
   * against what it committed (after this segment's readings). The key is the provisioned one,
   * never one the line announced; without one the frame is counted as unprovisioned.
   */
  attest(f: Extract<Frame, { type: 'attest' }>): void {
    const dev = this.sessionOf(f);
    if (!dev) return;
    const info = dev.sensors.get(f.sensor);
    if (!info) return void this.rejected.push(`attest: sensor index ${f.sensor} not in HELLO`);
    if (!dev.key) return void this.unprovisioned++;
    this.attestations.push({ stream: signingStream(dev, f.sensor), sensor: info.id, key: dev.key, uid: dev.uidBytes, session: f.session, sensorIndex: f.sensor, firstSeq: f.firstSeq, lastSeq: f.lastSeq, sig: f.sig });
  }

  heartbeat(f: Extract<Frame, { type: 'heartbeat' }>): void {
    // §3.5: a heartbeat before any HELLO, or (version 2) of another session, means the HELLO was lost.
    const dev = this.dev;
    if (!dev || dev.version !== f.version || (f.version === 2 && dev.session !== f.session)) this.requestHello(f.version);
  }

  /** §3.8: the readings declared lost, as counters committed with the segment (`serial_lost`, by sensor). */
  lostCounts(source: string): { name: string; label: string; n: number }[] {
    const dev = this.dev;
    if (!dev) return [];
    return [...this.lost].map(([sensor, { count }]) => ({ name: 'serial_lost', label: `${source}: ${dev.sensors.get(sensor)?.id ?? `index ${sensor}`}`, n: count }));
  }
}
