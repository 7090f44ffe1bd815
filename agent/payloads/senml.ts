import type { Reading } from '../types.js';
import { checkSensorId, gatewayTimeSource, makeReading, MAX_UNIT, type ParseContext, type ParseResult } from './types.js';

const SENML_VERSION = 10; // RFC 8428 §4.4: the default (and highest we implement) version
const RELATIVE_TIME_LIMIT = 2 ** 28; // RFC 8428 §4.5.3
const MAX_ABSOLUTE_S = 253_402_300_799; // 9999-12-31T23:59:59Z

interface BaseState {
  bn: string;
  bt: number;
  bu: string | undefined;
  bv: number;
  bs: number;
}

class RecordError extends Error {}

function num(rec: Record<string, unknown>, key: string): number | undefined {
  const v = rec[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RecordError(`${key} is not a finite number`);
  return v;
}

function str(rec: Record<string, unknown>, key: string): string | undefined {
  const v = rec[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new RecordError(`${key} is not a string`);
  return v;
}

/** Parses a SenML JSON pack (RFC 8428 §4, §5): base fields carry over to later records. */
export function parseSenmlPack(pack: unknown[], ctx: ParseContext): ParseResult {
  const result: ParseResult = { readings: [], rejections: [] };
  if (pack.length === 0) return { readings: [], rejections: [{ reason: 'SenML pack is empty' }] };
  const base: BaseState = { bn: '', bt: 0, bu: undefined, bv: 0, bs: 0 };
  pack.forEach((rec, index) => {
    try {
      result.readings.push(parseRecord(rec, base, ctx));
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      result.rejections.push({ reason: err.message, record: index });
    }
  });
  return result;
}

function parseRecord(raw: unknown, base: BaseState, ctx: ParseContext): Reading {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RecordError('record is not a JSON object');
  const rec = raw as Record<string, unknown>;
  // RFC 8428 §4.4: a label ending in '_' must be understood; we understand none.
  const mandatory = Object.keys(rec).find((k) => k.endsWith('_'));
  if (mandatory) throw new RecordError(`mandatory-to-understand field "${mandatory.slice(0, 32)}" is not supported`);

  // Base fields apply to this record and all later ones (RFC 8428 §4.1).
  const bver = rec.bver;
  if (bver !== undefined && (typeof bver !== 'number' || !Number.isInteger(bver) || bver > SENML_VERSION || bver < 1)) {
    throw new RecordError(`bver ${String(bver).slice(0, 16)} is not a SenML version we implement (≤ ${SENML_VERSION})`);
  }
  const bn = str(rec, 'bn');
  const bt = num(rec, 'bt');
  const bu = str(rec, 'bu');
  const bv = num(rec, 'bv');
  const bs = num(rec, 'bs');
  if (bn !== undefined) base.bn = bn;
  if (bt !== undefined) base.bt = bt;
  if (bu !== undefined) base.bu = bu;
  if (bv !== undefined) base.bv = bv;
  if (bs !== undefined) base.bs = bs;

  // Name (RFC 8428 §4.5.1): resolved name = bn + n; none at all means "the topic's sensor".
  const name = base.bn + (str(rec, 'n') ?? '');
  const sensor = name === '' ? ctx.defaultSensor : name;
  if (name !== '') {
    const bad = checkSensorId(name);
    if (bad) throw new RecordError(bad);
  }

  // Value (RFC 8428 §4.2): numbers only; a sum counts as a value.
  const v = num(rec, 'v');
  const s = num(rec, 's');
  const vb = rec.vb;
  if (vb !== undefined && typeof vb !== 'boolean') throw new RecordError('vb is not a boolean');
  const present = [v !== undefined, s !== undefined, vb !== undefined].filter(Boolean).length;
  if (present === 0) {
    if (rec.vs !== undefined || rec.vd !== undefined) throw new RecordError('string/data values are not supported');
    throw new RecordError('record has no value (v, vb or s)');
  }
  if (present > 1) throw new RecordError('record has more than one value field');
  const value = v !== undefined ? base.bv + v : s !== undefined ? base.bs + s : vb ? 1 : 0;
  if (!Number.isFinite(value)) throw new RecordError('value is not a finite number');

  const unit = str(rec, 'u') ?? base.bu;
  if (unit !== undefined && (unit.length === 0 || unit.length > MAX_UNIT)) throw new RecordError(`unit must be 1..${MAX_UNIT} characters`);

  // Time (RFC 8428 §4.5.3): 0 or absent is "now"; below 2^28 it is relative to now; else absolute seconds.
  const time = base.bt + (num(rec, 't') ?? 0);
  if (!Number.isFinite(time)) throw new RecordError('time is not a finite number');
  let ts: number;
  let timeSource = gatewayTimeSource(ctx);
  if (Math.abs(time) < RELATIVE_TIME_LIMIT) ts = ctx.nowMs + Math.round(time * 1000);
  else {
    if (time > MAX_ABSOLUTE_S || time < 0) throw new RecordError('time is out of range');
    ts = Math.round(time * 1000);
    timeSource = 'sensor';
  }
  if (!Number.isSafeInteger(ts)) throw new RecordError('time is out of range');
  return makeReading(sensor, ts, timeSource, value, unit);
}
