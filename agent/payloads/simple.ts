import type { Reading } from '../types.js';
import { checkSensorId, gatewayTimeSource, makeReading, MAX_UNIT, type ParseContext } from './types.js';

// A plain decimal number: no hex, no Infinity/NaN, no empty string.
const DECIMAL = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
// "t" above this is taken as milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
const MS_THRESHOLD = 1e11;

export function parseBareNumber(text: string, ctx: ParseContext): Reading | string {
  if (!DECIMAL.test(text)) return 'not JSON, SenML or a number';
  const value = Number(text);
  if (!Number.isFinite(value)) return 'value is not a finite number';
  return makeReading(ctx.defaultSensor, ctx.nowMs, gatewayTimeSource(ctx), value);
}

/** `{"v": 21.5, "t"?: seconds or ms, "n"?: sensor, "u"?: unit, "seq"?: n}`; other keys are ignored. */
export function parseJsonObject(obj: Record<string, unknown>, ctx: ParseContext): Reading | string {
  const { v, t, n, u, seq } = obj;
  if (v === undefined) return 'object has no "v" value';
  if (typeof v !== 'number' || !Number.isFinite(v)) return '"v" is not a finite number';
  let sensor = ctx.defaultSensor;
  if (n !== undefined) {
    if (typeof n !== 'string' || n === '') return '"n" is not a non-empty string';
    const bad = checkSensorId(n);
    if (bad) return bad;
    sensor = n;
  }
  if (u !== undefined && (typeof u !== 'string' || u.length === 0 || u.length > MAX_UNIT)) return `"u" must be a string of 1..${MAX_UNIT} characters`;
  if (seq !== undefined && (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0)) return '"seq" is not a non-negative integer';
  if (t === undefined) return makeReading(sensor, ctx.nowMs, gatewayTimeSource(ctx), v, u as string | undefined, seq as number | undefined);
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) return '"t" is not a positive number';
  const ts = Math.round(t > MS_THRESHOLD ? t : t * 1000);
  if (!Number.isSafeInteger(ts) || ts > 253_402_300_799_000) return '"t" is out of range';
  return makeReading(sensor, ts, 'sensor', v, u as string | undefined, seq as number | undefined);
}
