import { READING_FLAGS } from '../identity/batch-v3.js';
import { topicMatches } from '../util/topic-filter.js';
import type { GuardBatch, GuardCheck } from './check.js';
import { rangeOfUnit, type PhysicalRange } from './physical-ranges.js';

/** Flags out_of_range (§12.3 bit 0): a value outside its sensor's range (YAML) or its unit's physical range. */
export class RangeCheck implements GuardCheck {
  readonly name = 'range';
  private readonly perSensor: [string, PhysicalRange][];

  constructor(
    perSensor: Readonly<Record<string, PhysicalRange>>,
    private readonly unitRanges: Readonly<Record<string, PhysicalRange>>,
  ) {
    this.perSensor = Object.entries(perSensor);
  }

  inspect(b: GuardBatch): void {
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      const range = this.rangeOf(r.sensor, r.unit);
      if (range && (r.value < range.min || r.value > range.max)) b.flags[i]! |= READING_FLAGS.out_of_range;
    });
  }

  private rangeOf(sensor: string, unit: string | undefined): PhysicalRange | undefined {
    for (const [filter, range] of this.perSensor) if (topicMatches(filter, sensor)) return range;
    return rangeOfUnit(unit, this.unitRanges);
  }
}
