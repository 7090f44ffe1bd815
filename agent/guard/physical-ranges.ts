/**
 * What a reading of a SenML unit (RFC 8428 §12.1, and the secondary units of RFC 8798) can
 * physically be. These are limits of the quantity, not alarm thresholds: a value outside them is
 * a broken sensor, a wrong unit or forged data, and is flagged out_of_range (docs/wire-format.md
 * §12.3), never dropped. Tighter limits for one sensor go in YAML (`guard.ranges`), a unit the
 * table lacks in `guard.unit_ranges`; README "Guarding the edge" lists the table.
 */
export interface PhysicalRange {
  min: number;
  max: number;
}

export const PHYSICAL_RANGES: Readonly<Record<string, PhysicalRange>> = {
  // Temperature: absolute zero up to a type-B thermocouple's top (1820 °C).
  Cel: { min: -273.15, max: 2000 },
  K: { min: 0, max: 2273.15 },
  Far: { min: -459.67, max: 3632 },
  // Ratios of a whole.
  '%RH': { min: 0, max: 100 },
  '%EL': { min: 0, max: 100 },
  '%': { min: 0, max: 100 },
  // Pressure: absolute pressure is never negative; a gauge reading goes down to minus one atmosphere.
  Pa: { min: -101_325, max: 1e9 },
  hPa: { min: -1013.25, max: 1e7 },
  kPa: { min: -101.325, max: 1e6 },
  bar: { min: -1.01325, max: 1e4 },
  // Electricity, signed (a battery charging, power fed back).
  V: { min: -1e6, max: 1e6 },
  mV: { min: -1e9, max: 1e9 },
  A: { min: -1e5, max: 1e5 },
  mA: { min: -1e8, max: 1e8 },
  W: { min: -1e10, max: 1e10 },
  kW: { min: -1e7, max: 1e7 },
  VA: { min: 0, max: 1e10 },
  Hz: { min: 0, max: 1e12 },
  // Motion: the fastest surface winds measured are ~113 m/s; a vehicle or a shaft can be faster, sound is a bound for most.
  'm/s': { min: -1000, max: 1000 },
  'm/s2': { min: -1e5, max: 1e5 },
  // Light, air, water.
  lx: { min: 0, max: 200_000 },
  ppm: { min: 0, max: 1e6 },
  'ug/m3': { min: 0, max: 1e6 },
  'mm/h': { min: 0, max: 2000 },
  pH: { min: -1, max: 15 },
  NTU: { min: 0, max: 1e5 },
  'beat/min': { min: 0, max: 400 },
  // Position.
  lat: { min: -90, max: 90 },
  lon: { min: -180, max: 180 },
  // Counts and energy meters never go negative.
  count: { min: 0, max: Number.MAX_SAFE_INTEGER },
  Wh: { min: 0, max: 1e15 },
  kWh: { min: 0, max: 1e12 },
  dBm: { min: -200, max: 100 },
  Bspl: { min: 0, max: 200 },
};

/** The range of a unit: the operator's table first, then the built-in one; undefined when neither knows the unit. */
export function rangeOfUnit(unit: string | undefined, overrides: Readonly<Record<string, PhysicalRange>>): PhysicalRange | undefined {
  if (unit === undefined) return undefined;
  return overrides[unit] ?? PHYSICAL_RANGES[unit];
}
