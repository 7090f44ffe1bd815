import { checkSensorId } from '../../payloads/types.js';
import type { Frame } from './protocol.js';

/**
 * PROTOCOL.md §3.1: the sensor table of a HELLO must map each index 0..sensor_count-1 exactly once
 * to a SenML name. A HELLO that breaks it is refused whole (no reading may be filed under a
 * mapping the gateway never accepted); the reason is counted as `hello refused: ...`.
 */
export function helloRefusal(f: Extract<Frame, { type: 'hello' }>): string | undefined {
  const seen = new Set<number>();
  for (const s of f.sensors) {
    if (seen.has(s.index)) return `hello refused: sensor index ${s.index} listed twice`;
    seen.add(s.index);
    if (s.index >= f.sensors.length) return `hello refused: sensor index ${s.index} not below sensor_count ${f.sensors.length}`;
    const bad = checkSensorId(s.id);
    if (bad) return `hello refused: sensor ${s.index} id ${bad.replace(/^name /, '')}`;
  }
  return undefined;
}
