import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ThrottledWarn } from '../../agent/util/log-throttle.js';
import { parsePayload } from '../../agent/payloads/parse.js';

const ctx = (defaultSensor: string) => ({ defaultSensor, nowMs: 1_763_000_000_000, clockSynced: true });
const parse = (sensor: string, json: unknown, fields?: Parameters<typeof parsePayload>[2]) => parsePayload(Buffer.from(JSON.stringify(json)), ctx(sensor), fields);
const summary = (r: ReturnType<typeof parse>) => r.readings.map((x) => [x.sensor, x.value, x.unit ?? null]);

describe('common device payloads: one reading per named field', () => {
  it('Zigbee2MQTT: fields with their well-known units, booleans as 0/1, link quality left out', () => {
    const r = parse('zigbee2mqtt/living_room', { temperature: 21.5, humidity: 48.2, battery: 97, linkquality: 120, contact: false, update: { state: 'idle' } });
    expect(summary(r)).toEqual([
      ['zigbee2mqtt/living_room/temperature', 21.5, 'Cel'],
      ['zigbee2mqtt/living_room/humidity', 48.2, '%RH'],
      ['zigbee2mqtt/living_room/battery', 97, '%'],
      ['zigbee2mqtt/living_room/contact', 0, null],
    ]);
    expect(r.readings.every((x) => x.timeSource === 'gateway-synced')).toBe(true);
  });

  it('Tasmota: nested sensor objects joined with /, POWER ON as 1, local Time ignored', () => {
    const r = parse('tele/plug1/SENSOR', { Time: '2025-11-13T03:13:20', AM2301: { Temperature: 21.5, Humidity: 48.2 }, ENERGY: { Power: 12.5, Voltage: 230 }, POWER: 'ON', TempUnit: 'C' });
    expect(summary(r)).toEqual([
      ['tele/plug1/SENSOR/AM2301/Temperature', 21.5, 'Cel'],
      ['tele/plug1/SENSOR/AM2301/Humidity', 48.2, '%RH'],
      ['tele/plug1/SENSOR/ENERGY/Power', 12.5, 'W'],
      ['tele/plug1/SENSOR/ENERGY/Voltage', 230, 'V'],
      ['tele/plug1/SENSOR/POWER', 1, null],
    ]);
  });

  it('Shelly: tC is Celsius; a mapping keeps only the named fields and sets units', () => {
    expect(summary(parse('shellies/ht1', { id: 0, tC: 21.5, tF: 70.7 }))).toEqual([
      ['shellies/ht1/tC', 21.5, 'Cel'],
      ['shellies/ht1/tF', 70.7, null],
    ]);
    expect(summary(parse('shellies/ht1', { id: 0, tC: 21.5, tF: 70.7 }, { include: ['tC'] }))).toEqual([['shellies/ht1/tC', 21.5, 'Cel']]);
    expect(summary(parse('dev', { a: { x: 1, y: 2 }, b: 3 }, { exclude: ['a/*'], units: { b: 'm' } }))).toEqual([['dev/b', 3, 'm']]);
  });

  it('refuses an object without numeric fields, a flood of fields, and keeps the simple format as it was', () => {
    expect(parse('d', { state: 'idle' }).rejections[0]!.reason).toMatch(/no numeric field/);
    expect(parse('d', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`f${i}`, i]))).rejections[0]!.reason).toMatch(/more than 64/);
    expect(parse('d', { t: 1_763_000_000 }).rejections[0]!.reason).toBe('object has no "v" value');
    expect(summary(parse('d', { v: 2, u: 'V' }))).toEqual([['d', 2, 'V']]);
    expect(parse('d', { 'bad name': 1 }).rejections[0]!.reason).toMatch(/not a valid SenML name/);
  });
});

describe('throttled warnings', () => {
  it('log the first at once, then one line per interval with the count suppressed', () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const w = new ThrottledWarn(log, 60_000);
    for (let i = 0; i < 100; i++) w.warn('topic/a', { i }, 'rejected payload', 1000 + i);
    w.warn('topic/b', {}, 'rejected payload', 2000);
    w.warn('topic/a', { i: 100 }, 'rejected payload', 70_000);
    expect(lines.map((l) => [l.i ?? null, l.suppressed ?? null])).toEqual([[0, null], [null, null], [100, 99]]);
  });
});
