/**
 * The guard stage (agent/guard/) in front of a real store: what each check does to the readings
 * that reach the store (flags, drops, counters, events), through the stage's ReadingSink.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildGuard } from '../../agent/guard/build.js';
import { guardSchema, type GuardConfig } from '../../agent/guard/config.js';
import { READING_FLAGS as F } from '../../agent/identity/batch-v3.js';
import type { AgentEventInput } from '../../agent/identity/event-format.js';
import { EventStore } from '../../agent/store/event-store.js';
import { GuardStore } from '../../agent/store/guard-store.js';
import { readCounters } from '../../agent/store/reading-store.js';
import type { Reading } from '../../agent/types.js';
import { freshStore } from '../helpers/store.js';

const T0 = 1_763_000_000_000;

function setup(cfg: unknown = {}, assets: Record<string, string[]> = {}) {
  const { db, store, writer } = freshStore('guard');
  const events: AgentEventInput[] = [];
  const eventStore = new EventStore(db, 1);
  let now = T0;
  const guard = buildGuard(guardSchema.parse(cfg) as GuardConfig, writer, {
    db,
    reports: { event: (e, counter) => (events.push(e), eventStore.record(e), counter && store.addCounter(counter, e.key)) },
    count: (name, label) => store.addCounter(name, label),
    assets,
    log: pino({ level: 'silent' }),
    now: () => now,
  });
  const stored = () => db.prepare('SELECT sensor, value, flags FROM readings ORDER BY id').all() as { sensor: string; value: number; flags: number | null }[];
  const counter = (name: string) => readCounters(db).filter((c) => c.name === name).reduce((n, c) => n + c.value, 0);
  return {
    db,
    guard,
    events,
    stored,
    counter,
    guardStore: new GuardStore(db),
    advance: (ms: number) => (now += ms),
    at: () => now,
    submit: (readings: Reading[], origin?: string, source = 'mqtt') => guard.submit({ source, readings, ...(origin ? { origin } : {}) }),
  };
}

const reading = (sensor: string, value: number, ts: number, extra: Partial<Reading> = {}): Reading => ({ sensor, value, ts, timeSource: 'sensor', ...extra });

describe('guard stage: quality flags on every reading (docs/wire-format.md §12.3)', () => {
  it('flags out_of_range by the unit table and by a per-sensor range, and leaves values alone', async () => {
    const g = setup({ ranges: { 'tank/level': { min: 0, max: 5 } } });
    await g.submit([reading('room/t', 21.5, T0, { unit: 'Cel' }), reading('room/t2', -300, T0, { unit: 'Cel' }), reading('room/h', 104, T0, { unit: '%RH' }), reading('tank/level', 7, T0, { unit: 'm' }), reading('x/y', 1e12, T0)]);
    expect(g.stored()).toEqual([
      { sensor: 'room/t', value: 21.5, flags: null },
      { sensor: 'room/t2', value: -300, flags: F.out_of_range },
      { sensor: 'room/h', value: 104, flags: F.out_of_range },
      { sensor: 'tank/level', value: 7, flags: F.out_of_range },
      { sensor: 'x/y', value: 1e12, flags: null }, // no unit, no range: nothing to judge by
    ]);
  });

  it('flags stuck after N equal readings over min_s, jump against the rolling median, duplicate_time, future_time and gap_before', async () => {
    const g = setup({ stuck: { readings: 5, min_s: 2 }, jump: { window: 5, factor: 5 }, silence_factor: 3 });
    for (let i = 0; i < 8; i++) await g.submit([reading('frozen', 4.2, T0 + i * 1000)]);
    expect(g.stored().map((r) => r.flags ?? 0)).toEqual([0, 0, 0, 0, F.stuck, F.stuck, F.stuck, F.stuck]);
    const wavy = [20, 20.2, 19.9, 20.1, 20, 20.2, 35, 20.1];
    for (let i = 0; i < wavy.length; i++) await g.submit([reading('wavy', wavy[i]!, T0 + i * 1000)]);
    expect(g.stored().filter((r) => r.sensor === 'wavy').map((r) => r.flags ?? 0)).toEqual([0, 0, 0, 0, 0, 0, F.jump, 0]);
    // Sensor-timed readings of one sensor at one time are stored once (the store's de-duplication); gateway-timed ones are flagged.
    const gw = { timeSource: 'gateway-synced' } as const;
    await g.submit([reading('dup', 1, T0, gw), reading('dup', 1, T0, gw), reading('dup', 2, T0, gw), reading('ahead', 1, g.at() + 3_600_000)]);
    expect(g.stored().slice(-4).map((r) => r.flags ?? 0)).toEqual([0, F.duplicate_time, 0, F.future_time]);
    // A sensor clock going back: no flag bit, an event (once an hour per sensor).
    await g.submit([reading('rtc', 1, T0 + 5000), reading('rtc', 2, T0 + 1000), reading('rtc', 3, T0 + 500)]);
    expect(g.events.filter((e) => e.kind === 'sensor.time_backwards')).toEqual([{ kind: 'sensor.time_backwards', key: 'rtc', ts: g.at(), detail: { back_ms: 4000, t: T0 + 1000 } }]);
    // A seq that skips numbers is a gap however short the pause.
    await g.submit([reading('counted', 1, T0, { seq: 1 }), reading('counted', 2, T0 + 1, { seq: 2 }), reading('counted', 3, T0 + 2, { seq: 5 })]);
    expect(g.stored().slice(-3).map((r) => r.flags ?? 0)).toEqual([0, 0, F.gap_before]);
    // 12 readings a second apart teach the cadence; then 10 s of nothing before the next one.
    for (let i = 0; i < 12; i++) await g.submit([reading('cadence', i % 3, T0 + i * 1000)]);
    await g.submit([reading('cadence', 1, T0 + 21_000)]);
    expect(g.stored().filter((r) => r.sensor === 'cadence').map((r) => r.flags ?? 0)).toEqual([...Array(12).fill(0), F.gap_before]);
  });

  it('reports a sensor gone silent (sensor.silent) and back (sensor.back)', async () => {
    const g = setup({ silence_factor: 3 });
    for (let i = 0; i < 12; i++) {
      g.advance(1000);
      await g.submit([reading('pulse', i % 2, g.at())]);
    }
    g.advance(2000);
    g.guard.tick();
    expect(g.events.filter((e) => e.kind === 'sensor.silent')).toEqual([]);
    g.advance(5000);
    g.guard.tick();
    g.guard.tick();
    expect(g.events.filter((e) => e.kind === 'sensor.silent')).toMatchObject([{ key: 'pulse', detail: { source: 'mqtt', interval_ms: 1000 } }]);
    await g.submit([reading('pulse', 1, g.at())]);
    expect(g.events.at(-1)).toMatchObject({ kind: 'sensor.back', key: 'pulse' });
    expect(g.counter('sensors_silent')).toBe(1);
  });

  it('flags seq_regress when a sensor seq goes back or repeats, and every reading of a replayed serial session', async () => {
    const g = setup();
    await g.submit([reading('s', 1, T0, { seq: 5 }), reading('s', 2, T0 + 1, { seq: 6 }), reading('s', 3, T0 + 2, { seq: 6 }), reading('s', 4, T0 + 3, { seq: 2 })], 'sensors');
    expect(g.stored().map((r) => r.flags ?? 0)).toEqual([0, 0, F.seq_regress, F.seq_regress]);
    await g.submit([reading('m/a', 1, T0, { seq: 0 })], 'session:0102/7', 'serial');
    await g.submit([reading('m/a', 1, T0 + 1, { seq: 0 })], 'session:0102/8', 'serial');
    await g.submit([reading('m/a', 1, T0 + 2, { seq: 9 })], 'session:0102/7', 'serial');
    // (seq 9 after seq 0 also skips numbers: gap_before.)
    expect(g.stored().slice(-3).map((r) => r.flags ?? 0)).toEqual([0, 0, F.seq_regress | F.gap_before]);
    expect(g.events.filter((e) => e.kind === 'guard.replay').map((e) => e.key)).toEqual(['s', 'serial:session:0102/7']);
  });
});

describe('guard stage: budgets and quarantine', () => {
  it('quarantines an origin that bursts never-seen ids: its readings flagged, held to the quarantine budget, released after the quiet period', async () => {
    const g = setup({ defaults: { new_ids_per_10s: 50 }, quarantine: { keep_per_s: 10, keep_max: 30, quiet_s: 60 } });
    await g.submit([reading('plant/p1', 1, T0, { unit: 'Cel' })], 'sensors/plant');
    for (let i = 0; i < 200; i++) await g.submit([reading(`flood/${i}`, i, T0)], 'sensors/flood');
    await g.submit([reading('plant/p1', 2, T0 + 1, { unit: 'Cel' })], 'sensors/plant');
    const flood = g.stored().filter((r) => r.sensor.startsWith('flood/'));
    // 50 before the burst is seen; from the 51st, 10 (the keep_per_s bucket) flagged; the rest dropped and counted.
    expect(flood.filter((r) => !r.flags)).toHaveLength(50);
    expect(flood.filter((r) => r.flags === F.quarantined)).toHaveLength(10);
    expect(g.counter('guard_dropped')).toBe(140);
    expect(g.db.prepare('SELECT sum(count) FROM drops_unreported').pluck().get()).toBe(140);
    expect(g.stored().filter((r) => r.sensor === 'plant/p1').map((r) => r.flags ?? 0)).toEqual([0, 0]);
    expect(g.events.filter((e) => e.kind === 'quarantine.start')).toMatchObject([{ key: 'source:mqtt:sensors/flood', detail: { reason: 'new_id_burst', by: 'guard' } }]);
    g.guard.tick();
    expect(g.guardStore.activeQuarantines()).toMatchObject([{ key: 'source:mqtt:sensors/flood', reason: 'new_id_burst', since: T0, kept: 10, dropped: 140 }]);

    // keep_max: at most 30 kept per quarantine, however slowly they come.
    for (let i = 0; i < 40; i++) {
      g.advance(1000);
      await g.submit([reading(`flood/${i}`, i, g.at())], 'sensors/flood');
    }
    g.guard.tick();
    expect(g.guardStore.activeQuarantines()[0]).toMatchObject({ kept: 30 });
    // Quiet for quiet_s: released by itself, an event with what it kept and dropped.
    g.advance(61_000);
    g.guard.tick();
    expect(g.guardStore.activeQuarantines()).toEqual([]);
    expect(g.events.at(-1)).toMatchObject({ kind: 'quarantine.release', key: 'source:mqtt:sensors/flood', detail: { by: 'quiet', kept: 30 } });
  });

  it('drops what passes a sensor budget, counts it, reports the episode, and quarantines a sensor a whole burst over', async () => {
    const g = setup({ defaults: { sensor_per_s: 1, sensor_burst: 5 } });
    for (let i = 0; i < 12; i++) await g.submit([reading('chatty', i, T0 + i)]);
    expect(g.stored()).toHaveLength(5);
    expect(g.counter('guard_dropped')).toBe(7);
    expect(g.events.map((e) => e.kind)).toEqual(['guard.rate_limited', 'quarantine.start']);
    expect(g.events[1]).toMatchObject({ key: 'sensor:chatty', detail: { reason: 'rate_budget' } });
  });

  it('quarantines a sensor whose origin changes (a CoAP address), and an operator release through the request table', async () => {
    const g = setup();
    await g.submit([reading('node7/t', 20, T0)], '127.0.0.1', 'coap');
    await g.submit([reading('node7/t', 21, T0 + 1000)], '127.0.0.2', 'coap');
    expect(g.stored().map((r) => r.flags ?? 0)).toEqual([0, F.quarantined]);
    expect(g.events.map((e) => [e.kind, e.key])).toEqual([['sensor.origin_change', 'node7/t'], ['quarantine.start', 'sensor:node7/t']]);
    expect(g.events[0]!.detail).toEqual({ from: 'coap:127.0.0.1', to: 'coap:127.0.0.2' });
    const id = g.guardStore.request('quarantine_release', 'sensor:node7/t');
    const nope = g.guardStore.request('quarantine_release', 'sensor:nobody');
    g.guard.tick();
    expect(g.guardStore.requestResult(id)).toBe('released');
    expect(g.guardStore.requestResult(nope)).toMatch(/not quarantined/);
    await g.submit([reading('node7/t', 22, T0 + 2000)], '127.0.0.2', 'coap');
    expect(g.stored().at(-1)!.flags).toBeNull();
    expect(g.events.at(-1)).toMatchObject({ kind: 'quarantine.release', detail: { by: 'operator' } });
  });

  it('flags maintenance for a sensor, the sensors below an id and an asset, until it is stopped or its time is up', async () => {
    const g = setup({}, { boiler1: ['plant/boiler1/+'] });
    g.guardStore.request('maintenance_start', 'gauge', g.at() + 10_000);
    g.guardStore.request('maintenance_start', 'boiler1');
    g.guard.tick();
    await g.submit([reading('gauge/rain', 1, T0), reading('plant/boiler1/temp', 1, T0), reading('other', 1, T0)]);
    expect(g.stored().map((r) => r.flags ?? 0)).toEqual([F.maintenance, F.maintenance, 0]);
    g.advance(10_000);
    g.guard.tick();
    g.guardStore.request('maintenance_stop', 'boiler1');
    g.guard.tick();
    await g.submit([reading('gauge/rain', 2, T0 + 5), reading('plant/boiler1/temp', 2, T0 + 5)]);
    expect(g.stored().slice(-2).map((r) => r.flags ?? 0)).toEqual([0, 0]);
    expect(g.events.map((e) => [e.kind, e.key, e.detail?.['by']])).toEqual([
      ['maintenance.start', 'gauge', 'operator'],
      ['maintenance.start', 'boiler1', 'operator'],
      ['maintenance.stop', 'gauge', 'timer'],
      ['maintenance.stop', 'boiler1', 'operator'],
    ]);
  });
});
