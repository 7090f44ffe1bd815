import type { AgentEventInput } from '../identity/event-format.js';
import type { Reading } from '../types.js';

/**
 * One submission as the guard's checks see it. Checks annotate (flags, READING_FLAGS of
 * docs/wire-format.md §12.3) or drop readings by index; nothing rewrites a reading's fields.
 */
export interface GuardBatch {
  /** Id of the source instance in the config. */
  readonly source: string;
  /**
   * Where the readings came from: `SOURCE:DETAIL` with the source's own detail (an MQTT topic
   * branch `mqtt:sensors/plant`, a CoAP address `coap:127.0.0.2`, a serial session
   * `serial:session:UID/SESSION`), or the source id alone when it names none.
   */
  readonly origin: string;
  readonly now: number;
  /** Payload bytes the source read, when it says. */
  readonly bytes: number | undefined;
  readonly readings: readonly Reading[];
  /** `sensorKey(source, sensor)` per reading, built once for every check. */
  readonly keys: readonly string[];
  /** Flags to add, per reading. */
  readonly flags: Uint16Array;
  /** Why a reading is dropped (a budget), per reading; undefined = kept. */
  readonly dropped: (string | undefined)[];
}

/** One judgement of the guard stage, with one job (design.md: watch, quarantine, flags, budgets). */
export interface GuardCheck {
  readonly name: string;
  inspect(batch: GuardBatch): void;
  /** About once a second, for judgements of time passing (silence, quiet periods). */
  tick?(now: number): void;
}

/** What checks report besides flags: events upstream (§12.5) with their counters, and counters alone. */
export interface GuardReports {
  event(event: AgentEventInput, counter?: string): void;
}

interface Held<V> {
  v: V;
  /** Looked up since the eviction scan last passed it (second chance). */
  seen: boolean;
}

/**
 * The keys maps of per-sensor state are held under: bounded, the least recently seen forgotten
 * first (approximately: a second-chance "clock", so a lookup only sets a bit, where moving the key
 * to the map's end on every lookup cost each check two map writes per reading).
 */
export class BoundedMap<V> {
  private readonly map = new Map<string, Held<V>>();
  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const h = this.map.get(key);
    if (h === undefined) return undefined;
    h.seen = true;
    return h.v;
  }

  set(key: string, v: V): void {
    const h = this.map.get(key);
    if (h !== undefined) {
      h.v = v;
      h.seen = true;
      return;
    }
    if (this.map.size >= this.max) this.evictOne();
    this.map.set(key, { v, seen: false });
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  *entries(): IterableIterator<[string, V]> {
    for (const [k, h] of this.map) yield [k, h.v];
  }

  get size(): number {
    return this.map.size;
  }

  /** From the oldest insertion: a key seen since it was passed goes to the end with its bit cleared; the first one not seen goes. */
  private evictOne(): void {
    for (const [k, h] of this.map) {
      this.map.delete(k);
      if (!h.seen) return;
      h.seen = false;
      this.map.set(k, h); // visited again after the others: the loop ends at the latest there
    }
  }
}

/** Sensors tracked per check: beyond it the least recently seen is forgotten (memory stays bounded under a flood of ids). */
export const MAX_TRACKED_SENSORS = 20_000;

export const sensorKey = (source: string, sensor: string) => `${source}\u0000${sensor}`;
