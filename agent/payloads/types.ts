import { gatewayTimeSourceOf, type Reading, type TimeSource } from '../types.js';

export interface ParseContext {
  /** Sensor id to use when the payload names none (derived from the MQTT topic by the caller). */
  defaultSensor: string;
  /** Gateway clock now, ms since epoch. */
  nowMs: number;
  /** Whether the gateway clock is known to be synchronised: decides timeSource of gateway-timed readings. */
  clockSynced: boolean;
}

export interface Rejection {
  reason: string;
  /** Index of the SenML record, when only that record is rejected. */
  record?: number;
}

export interface ParseResult {
  readings: Reading[];
  rejections: Rejection[];
}

export const MAX_SENSOR_ID = 256;
export const MAX_UNIT = 32;
/** Records in one SenML pack (and JSON objects/arrays in one payload): a payload past it is refused before it is parsed. */
export const MAX_PACK_RECORDS = 10_000;
// RFC 8428 §4.5.1: names start with a letter or digit; then letters, digits and - : . / _
const SENML_NAME = /^[A-Za-z0-9][-:./_A-Za-z0-9]*$/;

export function gatewayTimeSource(ctx: ParseContext): TimeSource {
  return gatewayTimeSourceOf(ctx.clockSynced);
}

export function checkSensorId(name: string): string | undefined {
  if (name.length > MAX_SENSOR_ID) return `name longer than ${MAX_SENSOR_ID} characters`;
  if (!SENML_NAME.test(name)) return `name "${name.slice(0, 64)}" is not a valid SenML name (RFC 8428 §4.5.1)`;
  return undefined;
}

/** Builds a reading from checked parts, leaving optional keys out rather than undefined. */
export function makeReading(sensor: string, ts: number, timeSource: TimeSource, value: number, unit?: string, seq?: number): Reading {
  // -0 and 0 are the same measurement; the canonical encoding must not depend on the sign bit.
  const r: Reading = { sensor, ts, timeSource, value: value === 0 ? 0 : value };
  if (unit !== undefined) r.unit = unit;
  if (seq !== undefined) r.seq = seq;
  return r;
}
