import { parseDeviceObject, type FieldMapping } from './device-json.js';
import { parseSenmlPack } from './senml.js';
import { parseBareNumber, parseJsonObject } from './simple.js';
import { MAX_PACK_RECORDS, MAX_SENSOR_ID, type ParseContext, type ParseResult } from './types.js';

export type { ParseContext, ParseResult, Rejection } from './types.js';
export type { FieldMapping } from './device-json.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The keys of the simple `{"v", "t", "n", "u", "seq"}` object (simple.ts). */
const SIMPLE_KEYS = ['v', 't', 'n', 'u', 'seq'];

/**
 * Turns one message payload into readings. Never throws: unusable input comes back as
 * rejections with a short, specific reason; a bad record in a SenML pack rejects only itself.
 * Format by first character: '[' SenML JSON pack, '{' JSON object, else a bare number.
 */
export function parsePayload(payload: Uint8Array, ctx: ParseContext, fields?: FieldMapping): ParseResult {
  if (ctx.defaultSensor.length > MAX_SENSOR_ID) return reject(`sensor id from the topic is longer than ${MAX_SENSOR_ID} characters`);
  let text: string;
  try {
    text = utf8.decode(payload).trim();
  } catch {
    return reject('not UTF-8');
  }
  if (text === '') return reject('empty payload');
  const first = text[0];
  if (first !== '[' && first !== '{') {
    const r = parseBareNumber(text, ctx);
    return typeof r === 'string' ? reject(r) : { readings: [r], rejections: [] };
  }
  // JSON.parse has no limits: count the containers first (an over-count, braces in strings included),
  // so that a payload of a million empty objects is one cheap refusal, not a million objects.
  // A pack of MAX_PACK_RECORDS records is that many objects plus its array.
  if (countContainers(text, MAX_PACK_RECORDS + 2) > MAX_PACK_RECORDS + 1) return reject(`more than ${MAX_PACK_RECORDS} records (JSON objects and arrays) in one payload`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return reject('not valid JSON');
  }
  if (Array.isArray(json)) return parseSenmlPack(json, ctx);
  if (typeof json === 'object' && json !== null) {
    // Without "v": a device object of named fields (Zigbee2MQTT, Tasmota, Shelly), one reading each.
    // (An object with the simple format's own keys but no "v" is a broken simple reading, not a device.)
    if (!SIMPLE_KEYS.some((k) => k in json)) return parseDeviceObject(json as Record<string, unknown>, ctx, fields);
    const r = parseJsonObject(json as Record<string, unknown>, ctx);
    return typeof r === 'string' ? reject(r) : { readings: [r], rejections: [] };
  }
  return reject('not JSON, SenML or a number');
}

function countContainers(text: string, stopAt: number): number {
  let n = 0;
  for (let i = 0; i < text.length && n < stopAt; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) n++;
  }
  return n;
}

function reject(reason: string): ParseResult {
  return { readings: [], rejections: [{ reason }] };
}

/**
 * The sensor id an MQTT topic stands for: the levels the filter's wildcards matched
 * (`sensors/#` + `sensors/kitchen/temp` → `kitchen/temp`); with no wildcard, the last level.
 */
export function sensorFromTopic(filter: string, topic: string): string {
  const f = filter.split('/');
  const t = topic.split('/');
  const hashAt = f.indexOf('#');
  const matched: string[] = [];
  for (let i = 0; i < t.length; i++) {
    if (hashAt !== -1 && i >= hashAt) matched.push(t[i]!);
    else if (f[i] === '+') matched.push(t[i]!);
  }
  if (!filter.includes('#') && !filter.includes('+')) return t[t.length - 1] || topic;
  const id = matched.filter((l) => l !== '').join('/');
  return id === '' ? topic : id;
}
