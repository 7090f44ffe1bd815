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

/** The keys maps of per-sensor state are held under: bounded, least recently seen forgotten first. */
export class BoundedMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, v: V): void {
    this.map.delete(key);
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, v);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  get size(): number {
    return this.map.size;
  }
}

/** Sensors tracked per check: beyond it the least recently seen is forgotten (memory stays bounded under a flood of ids). */
export const MAX_TRACKED_SENSORS = 20_000;

export const sensorKey = (source: string, sensor: string) => `${source}\u0000${sensor}`;
