/** C-MAPSS FD001 evaluation of cmapss-rul through the shipped runtime, on the held-out engines. */
import { openModel, type Row } from '../../agent/inference/index.js';
import type { Engine } from '../train/lib/datasets.js';
import { CMAPSS_FEATURES, featureRows, splitEngines } from '../train/lib/cmapss-data.js';
import { CMAPSS_CONFIG, rulFigures, type RulFigures } from '../train/cmapss-rul.js';

export interface RulEval extends RulFigures {
  engines: number;
  /** Alert (rul <= on, hysteresis) raised before failure on this many held-out engines. */
  alerted: number;
  /** True remaining cycles when the alert was first raised: min/median/max over engines. */
  leadCycles: { min: number; median: number; max: number };
  /** Engines whose first alert came with more than 60 true cycles left (early alarms). */
  earlyAlerts: number;
}

export async function evalCmapss(modelsDir: string, engines: Engine[]): Promise<RulEval> {
  const runner = await openModel(modelsDir, 'cmapss-rul');
  const names = runner.entry.input.features;
  if (names.join() !== CMAPSS_FEATURES.join()) throw new Error(`cmapss-rul features ${names.join()} differ from ${CMAPSS_FEATURES.join()}`);
  const { valid } = splitEngines(engines, CMAPSS_CONFIG.holdOut, CMAPSS_CONFIG.splitSeed);
  const rows: Row[] = [];
  valid.forEach((e) => featureRows(e).forEach((values, t) => rows.push({ key: `unit${e.unit}`, ts: t * 3_600_000, values })));
  const verdicts = await runner.push(rows);
  const pred: Float32Array[] = valid.map((e) => new Float32Array(e.rows.length));
  const lead: number[] = [];
  let k = 0;
  valid.forEach((e, i) => {
    let first = -1;
    for (let t = 0; t < e.rows.length; t++, k++) {
      const v = verdicts[k];
      if (!v) throw new Error(`unit ${e.unit} cycle ${t + 1}: no verdict (pad "edge" should give one per cycle)`);
      pred[i]![t] = v.outputs.rul!;
      if (v.alert && first === -1) first = t;
    }
    if (first !== -1) lead.push(e.rows.length - (first + 1));
  });
  lead.sort((a, b) => a - b);
  return {
    ...rulFigures(valid, pred, CMAPSS_CONFIG.cap, CMAPSS_CONFIG.splitSeed + 1),
    engines: valid.length,
    alerted: lead.length,
    leadCycles: { min: lead[0] ?? NaN, median: lead[Math.floor(lead.length / 2)] ?? NaN, max: lead[lead.length - 1] ?? NaN },
    earlyAlerts: lead.filter((c) => c > 60).length,
  };
}
