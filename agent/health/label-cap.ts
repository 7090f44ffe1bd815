export const OTHER_LABEL = '_other';

/**
 * Bounds the label values a metric can take. Sensor ids come from whoever publishes to the
 * broker, and every distinct label value is a time series kept in memory here and in
 * Prometheus: the first `max` values get their own series, later ones share "_other".
 */
export class LabelCap {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  label(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return OTHER_LABEL;
    this.seen.add(value);
    return value;
  }

  get size(): number {
    return this.seen.size;
  }
}
