import type { Reading } from '../types.js';
import { checkSensorId, gatewayTimeSource, makeReading, MAX_UNIT, type ParseContext, type ParseResult } from './types.js';

/**
 * JSON objects with several named fields, as Zigbee2MQTT (`{"temperature":21.5,"humidity":48.2,
 * "battery":97}`), Tasmota (`{"Time":"...","AM2301":{"Temperature":21.5,"Humidity":48.2}}`) and
 * Shelly (`{"id":0,"tC":21.5}`) publish them: one reading per numeric field, named
 * `<topic sensor id>/<field>` (nested objects joined with `/`, two levels at most). Booleans and
 * "ON"/"OFF" are 1 and 0 (a contact, an occupancy, a relay). Other strings, and Tasmota's local
 * `Time` (it carries no time zone), are left out; the gateway's clock times the readings.
 */

export interface FieldMapping {
  /** Only these fields (paths such as `AM2301/Temperature`; `*` matches within one level). */
  include?: string[];
  /** Never these fields. */
  exclude?: string[];
  /** Unit per field path, over the well-known defaults below. */
  units?: Record<string, string>;
}

/** At most this many readings from one object; more is refused as a whole (a flood, not a device). */
export const MAX_FIELDS = 64;
const MAX_DEPTH = 2;

/** Units (SenML, RFC 8428 §12.1 and RFC 8798) of field names these devices commonly use, lower-cased. */
export const DEFAULT_FIELD_UNITS: Readonly<Record<string, string>> = {
  temperature: 'Cel',
  tc: 'Cel',
  humidity: '%RH',
  pressure: 'hPa',
  battery: '%',
  illuminance_lux: 'lx',
  illuminance: 'lx',
  voltage: 'V',
  current: 'A',
  power: 'W',
  energy: 'kWh',
  co2: 'ppm',
};

/** Fields that are metadata, not measurements, left out unless `include` names them. */
const METADATA = new Set(['id', 'time', 'linkquality', 'last_seen', 'uptime', 'tempunit', 'wifi']);

const globToRegex = (glob: string) => new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);

export function parseDeviceObject(obj: Record<string, unknown>, ctx: ParseContext, mapping: FieldMapping = {}): ParseResult {
  const include = mapping.include?.map(globToRegex);
  const exclude = mapping.exclude?.map(globToRegex);
  const fields: [path: string, value: number, isState: boolean][] = [];
  const rejections: ParseResult['rejections'] = [];
  const walk = (o: Record<string, unknown>, prefix: string, depth: number): void => {
    for (const [key, raw] of Object.entries(o)) {
      const path = prefix === '' ? key : `${prefix}/${key}`;
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
        if (depth < MAX_DEPTH) walk(raw as Record<string, unknown>, path, depth + 1);
        continue;
      }
      const value = typeof raw === 'number' ? raw : typeof raw === 'boolean' ? (raw ? 1 : 0) : raw === 'ON' ? 1 : raw === 'OFF' ? 0 : undefined;
      if (value === undefined || !Number.isFinite(value)) continue;
      if (include ? !include.some((r) => r.test(path)) : METADATA.has(key.toLowerCase())) continue;
      if (exclude?.some((r) => r.test(path))) continue;
      fields.push([path, value, typeof raw !== 'number']);
    }
  };
  walk(obj, '', 1);
  if (fields.length === 0) return { readings: [], rejections: [{ reason: 'object has no "v" value and no numeric field' }] };
  if (fields.length > MAX_FIELDS) return { readings: [], rejections: [{ reason: `object has ${fields.length} numeric fields, more than ${MAX_FIELDS}` }] };
  const readings: Reading[] = [];
  for (const [path, value, isState] of fields) {
    const sensor = `${ctx.defaultSensor}/${path}`;
    const bad = checkSensorId(sensor);
    if (bad) {
      rejections.push({ reason: `field ${path.slice(0, 64)}: ${bad}` });
      continue;
    }
    const leaf = path.split('/').pop()!.toLowerCase();
    // A state (true/false, ON/OFF) has no unit, whatever its name: Tasmota's POWER is a relay, not watts.
    const unit = mapping.units?.[path] ?? (isState ? undefined : DEFAULT_FIELD_UNITS[leaf]);
    readings.push(makeReading(sensor, ctx.nowMs, gatewayTimeSource(ctx), value, unit !== undefined && unit.length <= MAX_UNIT ? unit : undefined));
  }
  return { readings, rejections };
}
