import type { StoredReading } from '../types.js';

/**
 * The last committed value and unit per sensor, for messages that name them (alerts). Bounded:
 * past `max` sensors the oldest-inserted is forgotten, so a flood of ids cannot grow it.
 */
export class LastValues {
  private readonly values = new Map<string, { value: number; unit?: string }>();

  constructor(private readonly max = 10_000) {}

  note(readings: readonly StoredReading[]): void {
    for (const r of readings) {
      if (!this.values.has(r.sensor) && this.values.size >= this.max) this.values.delete(this.values.keys().next().value!);
      this.values.set(r.sensor, r.unit !== undefined ? { value: r.value, unit: r.unit } : { value: r.value });
    }
  }

  get(sensor: string): { value: number; unit?: string } | undefined {
    return this.values.get(sensor);
  }
}
