import { describe, expect, it } from 'vitest';
import { encode } from 'cborg';
import { parseSenmlCbor } from '../../agent/payloads/content-format.js';
import { parsePayload, sensorFromTopic, type ParseContext } from '../../agent/payloads/parse.js';
import { MAX_PACK_RECORDS } from '../../agent/payloads/types.js';

const NOW = 1_763_000_000_000;
const ctx: ParseContext = { defaultSensor: 'topic-sensor', nowMs: NOW, clockSynced: true };
const parse = (text: string | Uint8Array, c: Partial<ParseContext> = {}) =>
  parsePayload(typeof text === 'string' ? new TextEncoder().encode(text) : text, { ...ctx, ...c });

describe('SenML JSON (RFC 8428)', () => {
  it('resolves base name, base time, base unit and relative times (§5.1.2 example)', () => {
    const pack = [
      { bn: 'urn:dev:ow:10e2073a01080063:', bt: 1.276020076001e9, bu: 'A', bver: 5, n: 'voltage', u: 'V', v: 120.1 },
      { n: 'current', t: -5, v: 1.2 },
      { n: 'current', t: -4, v: 1.3 },
      { n: 'current', v: 1.7 },
    ];
    const r = parse(JSON.stringify(pack));
    expect(r.rejections).toEqual([]);
    expect(r.readings).toEqual([
      { sensor: 'urn:dev:ow:10e2073a01080063:voltage', ts: 1_276_020_076_001, timeSource: 'sensor', value: 120.1, unit: 'V' },
      { sensor: 'urn:dev:ow:10e2073a01080063:current', ts: 1_276_020_071_001, timeSource: 'sensor', value: 1.2, unit: 'A' },
      { sensor: 'urn:dev:ow:10e2073a01080063:current', ts: 1_276_020_072_001, timeSource: 'sensor', value: 1.3, unit: 'A' },
      { sensor: 'urn:dev:ow:10e2073a01080063:current', ts: 1_276_020_076_001, timeSource: 'sensor', value: 1.7, unit: 'A' },
    ]);
  });

  it('treats absent and small times as gateway time, flagged by the clock state', () => {
    const r = parse('[{"n":"a","v":1},{"n":"b","t":-2,"v":2}]', { clockSynced: false });
    expect(r.readings).toEqual([
      { sensor: 'a', ts: NOW, timeSource: 'gateway-unsynced', value: 1 },
      { sensor: 'b', ts: NOW - 2000, timeSource: 'gateway-unsynced', value: 2 },
    ]);
  });

  it('adds base value and base sum, maps vb to 1/0, and names unnamed records after the topic', () => {
    const r = parse('[{"bv":100,"v":1.5},{"n":"door","vb":true},{"n":"energy","bs":10,"s":5}]');
    expect(r.readings.map((x) => [x.sensor, x.value])).toEqual([['topic-sensor', 101.5], ['door', 1], ['energy', 15]]);
  });

  it('rejects only the bad records of a pack, each with its index and reason', () => {
    const r = parse('[{"n":"ok1","v":1},{"n":"label","vs":"hello"},{"n":"bad name!","v":1},{"n":"x","v":1,"foo_":1},{"n":"ok2","v":2},{"n":"big","v":1e999}]');
    expect(r.readings.map((x) => x.sensor)).toEqual(['ok1', 'ok2']);
    expect(r.rejections).toEqual([
      { record: 1, reason: 'string/data values are not supported' },
      { record: 2, reason: expect.stringMatching(/not a valid SenML name/) },
      { record: 3, reason: expect.stringMatching(/mandatory-to-understand field "foo_"/) },
      { record: 5, reason: 'v is not a finite number' },
    ]);
  });

  it('rejects a newer SenML version, an empty pack, records that are not objects and missing values', () => {
    expect(parse('[{"bver":11,"n":"a","v":1}]').rejections[0]!.reason).toMatch(/bver 11/);
    expect(parse('[]').rejections).toEqual([{ reason: 'SenML pack is empty' }]);
    expect(parse('[1, {"n":"a"}]').rejections).toEqual([
      { record: 0, reason: 'record is not a JSON object' },
      { record: 1, reason: 'record has no value (v, vb or s)' },
    ]);
  });
});

describe('simple formats', () => {
  it('reads {"v","t"} with t in seconds or milliseconds, plus unit, name and sequence number', () => {
    expect(parse('{"v":21.5,"t":1763000000.25,"u":"Cel","seq":7}').readings).toEqual([
      { sensor: 'topic-sensor', ts: 1_763_000_000_250, timeSource: 'sensor', value: 21.5, unit: 'Cel', seq: 7 },
    ]);
    expect(parse('{"v":-1,"t":1763000000250,"n":"probe"}').readings).toEqual([{ sensor: 'probe', ts: 1_763_000_000_250, timeSource: 'sensor', value: -1 }]);
    expect(parse('{"v":"21"}').rejections[0]!.reason).toBe('"v" is not a finite number');
    expect(parse('{"t":5}').rejections[0]!.reason).toBe('object has no "v" value');
    expect(parse('{"v":1,"seq":-1}').rejections[0]!.reason).toMatch(/seq/);
  });

  it('reads bare decimal numbers and refuses anything else', () => {
    for (const [text, value] of [['21.5', 21.5], ['-3e2', -300], [' 7 \n', 7], ['-0', 0]] as const) {
      expect(parse(text).readings).toEqual([{ sensor: 'topic-sensor', ts: NOW, timeSource: 'gateway-synced', value }]);
    }
    for (const text of ['0x10', 'NaN', 'Infinity', 'abc', '1,5', '1e999']) expect(parse(text).readings).toEqual([]);
    expect(parse('abc').rejections).toEqual([{ reason: 'not JSON, SenML or a number' }]);
    expect(parse('1e999').rejections).toEqual([{ reason: 'value is not a finite number' }]);
  });

  it('says why unusable bytes are unusable', () => {
    expect(parse(Uint8Array.of(0xff, 0xfe, 0x31)).rejections).toEqual([{ reason: 'not UTF-8' }]);
    expect(parse('   ').rejections).toEqual([{ reason: 'empty payload' }]);
    expect(parse('[{"n":').rejections).toEqual([{ reason: 'not valid JSON' }]);
    expect(parse('{"__proto__":{"v":1},"v":2}').readings[0]!.value).toBe(2);
  });
});

describe('sensor id from an MQTT topic', () => {
  it('takes the levels the wildcard matched, or the last level of an exact filter', () => {
    expect(sensorFromTopic('sensors/#', 'sensors/kitchen/temp')).toBe('kitchen/temp');
    expect(sensorFromTopic('site/+/temp', 'site/a1/temp')).toBe('a1');
    expect(sensorFromTopic('plant/boiler/temp', 'plant/boiler/temp')).toBe('temp');
    expect(sensorFromTopic('sensors/#', 'sensors')).toBe('sensors');
  });
});

describe('robustness', () => {
  it('never throws, and every payload yields readings or a reason, over 20,000 random and mutated inputs', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const valid = new TextEncoder().encode('[{"bn":"p/","bt":1763000000,"n":"t","u":"Cel","v":21.5},{"n":"r","t":1,"v":3}]');
    for (let i = 0; i < 20_000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      } else {
        bytes = Uint8Array.from(valid);
        for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
        if (rand() < 0.3) bytes = bytes.subarray(0, Math.floor(rand() * bytes.length));
      }
      const r = parsePayload(bytes, ctx);
      expect(r.readings.length + r.rejections.length).toBeGreaterThan(0);
      for (const x of r.readings) expect(Number.isFinite(x.value) && Number.isSafeInteger(x.ts)).toBe(true);
    }
  });
});

describe('bounded before parsing (issue 12: the same discipline for the agent\'s own inputs)', () => {
  it('a JSON payload of 1,000,000 empty objects is one refusal, made before JSON.parse builds them', () => {
    const r = parse(`[${'{},'.repeat(999_999)}{}]`);
    expect(r).toEqual({ readings: [], rejections: [{ reason: `more than ${MAX_PACK_RECORDS} records (JSON objects and arrays) in one payload` }] });
    // A full pack at the limit is still read.
    const full = parse(JSON.stringify(Array.from({ length: MAX_PACK_RECORDS }, (_, k) => ({ n: `s${k % 7}`, v: k }))));
    expect(full.readings).toHaveLength(MAX_PACK_RECORDS);
  });

  it('SenML CBOR: 1,000,000 empty maps are refused at the array header; nested containers past depth 2 too; a normal pack still parses', () => {
    const huge = Buffer.concat([Buffer.from([0x9a, 0x00, 0x0f, 0x42, 0x40]), Buffer.alloc(1_000_000, 0xa0)]);
    expect(parseSenmlCbor(huge, ctx).rejections[0]!.reason).toMatch(/array of 1000000 at \(top\), more than the limit of 10000/);
    expect(parseSenmlCbor(Buffer.concat([Buffer.alloc(10_000, 0x81), Buffer.from([0])]), ctx).rejections[0]!.reason).toMatch(/nested deeper than 2/);
    // Integer labels (RFC 8428 §6), any order, non-shortest widths: plain CBOR from a sensor is fine.
    const pack = encode([new Map<number, unknown>([[2, 21.5], [0, 'temp'], [-2, 'pump1/']])]);
    expect(parseSenmlCbor(pack, ctx)).toMatchObject({ readings: [{ sensor: 'pump1/temp', value: 21.5 }], rejections: [] });
  });
});

