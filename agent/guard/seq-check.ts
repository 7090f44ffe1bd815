import { READING_FLAGS } from '../identity/batch-v3.js';
import { GUARD_ROWS_MAX, SESSIONS_PER_DEVICE } from '../store/guard-store.js';
import { BoundedMap, MAX_TRACKED_SENSORS, sensorKey, type GuardBatch, type GuardCheck, type GuardReports } from './check.js';

/** Where the sessions seen per serial device are kept across restarts (store/guard-store.ts). */
export interface SessionMemory {
  serialSessions(): Map<string, number[]>;
  saveSerialSessions(device: string, sessions: readonly number[], now: number): void;
}

/**
 * Flags seq_regress (§12.3 bit 8): a sensor's own sequence number went back or repeated within one
 * origin session, the mark of a replay (the store already refuses exact resends of a message, so
 * what gets here is new bytes carrying old numbers). A serial device's new boot starts a new origin
 * (`SOURCE:session:UID/SESSION`), so its seq restarting at 0 is not a regress; a session number older than
 * one already seen from that device is (a replayed session: event guard.replay). The sessions seen
 * per device are saved in the store as each new one appears, so a session replayed after the
 * agent restarted is still caught.
 */
export class SeqCheck implements GuardCheck {
  readonly name = 'seq';
  private readonly lastSeq = new BoundedMap<number>(MAX_TRACKED_SENSORS);
  /** Per serial device uid: the sessions seen, in the order first seen (bounded). */
  private readonly sessions = new BoundedMap<string[]>(GUARD_ROWS_MAX);
  private readonly reported = new BoundedMap<true>(1000);

  constructor(
    private readonly reports: GuardReports,
    private readonly memory?: SessionMemory,
  ) {
    // Oldest first, so the least recently seen device is the first the bounded map forgets.
    for (const [uid, list] of [...(memory?.serialSessions() ?? new Map<string, number[]>())].reverse()) this.sessions.set(uid, list.map(String));
  }

  inspect(b: GuardBatch): void {
    const replayedSession = this.sessionReplayed(b);
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      if (replayedSession) {
        b.flags[i]! |= READING_FLAGS.seq_regress;
        return;
      }
      if (r.seq === undefined) return;
      const key = sensorKey(b.origin, r.sensor);
      const last = this.lastSeq.get(key);
      if (last !== undefined && r.seq <= last) {
        b.flags[i]! |= READING_FLAGS.seq_regress;
        this.report(`seq:${key}`, { kind: 'guard.replay', key: r.sensor, detail: { origin: b.origin, seq: r.seq, last_seq: last } });
        return;
      }
      this.lastSeq.set(key, r.seq);
    });
  }

  /** A serial origin `SOURCE:session:UID/SESSION` whose session is not the device's latest one: a replay of an old boot. */
  private sessionReplayed(b: GuardBatch): boolean {
    const m = /^[^:]+:session:([^/]+)\/(\d+)$/.exec(b.origin);
    if (!m) return false;
    const [, uid, session] = m as unknown as [string, string, string];
    const seen = this.sessions.get(uid) ?? [];
    const at = seen.indexOf(session);
    if (at === -1) {
      const list = [...seen.slice(-(SESSIONS_PER_DEVICE - 1)), session];
      this.sessions.set(uid, list);
      // Saved before the readings commit: a crash in between only remembers a session early.
      this.memory?.saveSerialSessions(uid, list.map(Number), b.now);
      return false;
    }
    if (at === seen.length - 1) return false;
    this.report(`session:${b.origin}`, { kind: 'guard.replay', key: b.origin, detail: { device: uid, session: Number(session), latest_session: Number(seen[seen.length - 1]), readings: b.readings.length } });
    return true;
  }

  /** One event per replayed stream until it behaves (counted every time in guard_replays). */
  private report(once: string, e: Parameters<GuardReports['event']>[0]): void {
    if (this.reported.has(once)) return;
    this.reported.set(once, true);
    this.reports.event(e, 'guard_replays');
  }
}
