import type { StoredVerdict } from '../identity/verdict-format.js';

/** The readable message an operator sees in HA, Node-RED or a phone notification. */
export function alertMessage(v: Pick<StoredVerdict, 'key' | 'modelId' | 'alert' | 'score' | 'value' | 'threshold'>, reading?: { value: number; unit?: string }): string {
  const measure = v.score !== undefined ? `score ${v.score.toFixed(2)}` : `value ${v.value}`;
  const last = reading ? `; last reading ${reading.value}${reading.unit ? ` ${reading.unit}` : ''}` : '';
  return v.alert
    ? `${v.key}: anomaly raised by ${v.modelId} (${measure} at or above ${v.threshold})${last}`
    : `${v.key}: back to normal according to ${v.modelId} (${measure})${last}`;
}
