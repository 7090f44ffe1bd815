import { topicMatches } from '../util/topic-filter.js';
import type { StoredReading } from '../types.js';
import type { BindingConfig } from './config.js';
import type { ModelRunner, Row } from './model-runner.js';

/** One configured binding with its runner and the state of row assembly. */
export class Binding {
  readonly series = new Set<string>();
  /** Whether any reading has matched this binding since start (or since its restored state). */
  matchedAny = false;
  /** Multivariate: the latest value of each channel, and which have news since the last row. */
  private readonly latest: Float64Array;
  private readonly fresh: boolean[];
  private freshCount = 0;
  private latestTs = -Infinity;
  private readonly channelOf = new Map<string, number>();

  constructor(
    readonly id: string,
    readonly cfg: BindingConfig,
    readonly runner: ModelRunner,
  ) {
    const features = runner.entry.input.features;
    this.latest = new Float64Array(features.length);
    this.fresh = features.map(() => false);
    if (cfg.channels) for (const [feature, sensor] of Object.entries(cfg.channels)) this.channelOf.set(sensor, features.indexOf(feature));
  }

  get multivariate(): boolean {
    return this.cfg.asset !== undefined;
  }

  /** Whether this binding takes readings of `sensor`: MQTT filter rules over sensor ids (cached by the router). */
  wants(sensor: string): boolean {
    return this.multivariate ? this.channelOf.has(sensor) : this.cfg.sensors!.some((f) => topicMatches(f, sensor));
  }

  /**
   * Turns one reading into a row, or none. A single-channel binding makes one row per reading
   * (unless the series cap is reached: 'unscored'); a multivariate one makes a row when every
   * channel has had a new reading since the last row, from each channel's latest value.
   */
  rowOf(r: StoredReading): Row | 'unscored' | undefined {
    this.matchedAny = true;
    if (!this.multivariate) {
      if (!this.series.has(r.sensor)) {
        if (this.series.size >= this.cfg.max_series) return 'unscored';
        this.series.add(r.sensor);
      }
      return { key: r.sensor, ts: r.ts, values: [r.value], ref: r.id };
    }
    const f = this.channelOf.get(r.sensor)!;
    this.latest[f] = r.value;
    if (r.ts > this.latestTs) this.latestTs = r.ts;
    if (!this.fresh[f]) {
      this.fresh[f] = true;
      this.freshCount++;
    }
    if (this.freshCount < this.fresh.length) return undefined;
    this.fresh.fill(false);
    this.freshCount = 0;
    return { key: this.cfg.asset!, ts: this.latestTs, values: [...this.latest], ref: r.id };
  }
}

const ROUTE_CACHE_MAX = 100_000;

/** Sends each committed reading to the bindings that want it, as rows for their runners. */
export class Router {
  private readonly cache = new Map<string, Binding[]>();

  constructor(readonly bindings: readonly Binding[]) {}

  route(readings: readonly StoredReading[]): { rows: Map<Binding, Row[]>; unscored: Map<Binding, number> } {
    const rows = new Map<Binding, Row[]>();
    const unscored = new Map<Binding, number>();
    for (const r of readings) {
      for (const b of this.bindingsOf(r.sensor)) {
        const row = b.rowOf(r);
        if (row === 'unscored') unscored.set(b, (unscored.get(b) ?? 0) + 1);
        else if (row) {
          let list = rows.get(b);
          if (!list) rows.set(b, (list = []));
          list.push(row);
        }
      }
    }
    return { rows, unscored };
  }

  /**
   * Rows of readings the models must not learn from (quarantined or in maintenance; scored by
   * ModelRunner.scoreUnlearned): single-channel bindings only, and only for series they already
   * know. Nothing in the router or a binding moves (a multivariate row would take the reading
   * into its asset's latest values, so those bindings skip it).
   */
  unlearnedRows(readings: readonly StoredReading[]): Map<Binding, Row[]> {
    const rows = new Map<Binding, Row[]>();
    for (const r of readings) {
      for (const b of this.bindingsOf(r.sensor)) {
        if (b.multivariate || !b.series.has(r.sensor)) continue;
        let list = rows.get(b);
        if (!list) rows.set(b, (list = []));
        list.push({ key: r.sensor, ts: r.ts, values: [r.value], ref: r.id });
      }
    }
    return rows;
  }

  private bindingsOf(sensor: string): Binding[] {
    let hit = this.cache.get(sensor);
    if (!hit) {
      if (this.cache.size >= ROUTE_CACHE_MAX) this.cache.clear();
      hit = this.bindings.filter((b) => b.wants(sensor));
      this.cache.set(sensor, hit);
    }
    return hit;
  }
}
