/**
 * C-MAPSS FD001 evaluation of cmapss-rul:
 * - the k-fold validation of its training procedure (scripts/train/lib/rul-kfold.ts), retrained
 *   here with the given seeds (a few minutes per seed), which is the figure that predicts the
 *   official test set; the shipped lower bound's coverage and the alert on out-of-fold predictions;
 * - the shipped model through the agent's runtime (openModel / runner.push) on all 100 engines:
 *   one verdict per cycle with its three outputs (in-sample: it was trained on them).
 */
import { openModel, type Row } from '../../agent/inference/index.js';
import type { Engine } from '../train/lib/datasets.js';
import { CMAPSS_FEATURES, featureRows } from '../train/lib/cmapss-data.js';
import { CMAPSS_CONFIG, SERVICE_ALERT, validateRul } from '../train/cmapss-rul.js';
import { alertLeads, type AlertLeads } from '../train/lib/rul-lower-bound.js';
import type { KfoldSummary } from '../train/lib/rul-kfold.js';

export interface RulEval {
  /** Retrained here, or (with no seeds) the figures npm run train stored in the manifest. */
  kfoldSource: 'retrained' | 'manifest';
  kfold: KfoldSummary;
  /** The shipped bound (margin, spread) on this run's out-of-fold cycles with true RUL <= cap. */
  shippedBoundCoverage: number;
  alertOutOfFold: AlertLeads;
  validationSeconds: number;
  runtime: { engines: number; verdicts: number; meanRulSd: number; meanSlack: number };
}

export async function evalCmapss(modelsDir: string, engines: Engine[], seeds: number[], log: (s: string) => void): Promise<RulEval> {
  const runner = await openModel(modelsDir, 'cmapss-rul');
  const names = runner.entry.input.features;
  if (names.join() !== CMAPSS_FEATURES.join()) throw new Error(`cmapss-rul features ${names.join()} differ from ${CMAPSS_FEATURES.join()}`);
  const rows: Row[] = [];
  engines.forEach((e) => featureRows(e).forEach((values, t) => rows.push({ key: `unit${e.unit}`, ts: t * 3_600_000, values })));
  const verdicts = await runner.push(rows);
  let sd = 0;
  let slack = 0;
  verdicts.forEach((v, i) => {
    if (!v) throw new Error(`row ${i}: no verdict (pad "edge" should give one per cycle)`);
    sd += v.outputs.rul_sd!;
    slack += v.outputs.rul! - v.outputs.service_within!;
  });
  await runner.close();
  const lower = shippedBound(runner.entry.metrics);

  const runtime = { engines: engines.length, verdicts: verdicts.length, meanRulSd: sd / verdicts.length, meanSlack: slack / verdicts.length };
  if (seeds.length === 0) {
    const m = runner.entry.metrics as { kfold?: KfoldSummary; lower_bound?: { coverage_in_sample?: number }; alert_out_of_fold?: AlertLeads };
    if (!m.kfold || !m.alert_out_of_fold) throw new Error('cmapss-rul manifest entry has no metrics.kfold: retrain with npm run train, or pass --cmapss-seeds');
    return { kfoldSource: 'manifest', kfold: m.kfold, shippedBoundCoverage: m.lower_bound?.coverage_in_sample ?? NaN, alertOutOfFold: m.alert_out_of_fold, validationSeconds: 0, runtime };
  }
  const v = validateRul(engines, CMAPSS_CONFIG, seeds, log);
  let ok = 0;
  let n = 0;
  for (const oof of v.oofs)
    engines.forEach((e, i) => {
      for (let t = 0; t < e.rows.length; t++) {
        const truth = e.rows.length - (t + 1);
        if (truth > CMAPSS_CONFIG.cap) continue;
        n++;
        if (truth >= Math.max(0, oof.mean[i]![t]! - (lower.margin + lower.spread * oof.sd[i]![t]!))) ok++;
      }
    });
  return {
    kfoldSource: 'retrained',
    kfold: v.kfold,
    shippedBoundCoverage: ok / n,
    alertOutOfFold: alertLeads(engines, v.oofs[0]!, lower, SERVICE_ALERT, 60, 5),
    validationSeconds: v.seconds,
    runtime,
  };
}

/** The lower bound the manifest documents (metrics.lower_bound, written by npm run train). */
function shippedBound(metrics: Record<string, unknown>): { margin: number; spread: number } {
  const lb = metrics.lower_bound as { margin?: unknown; spread?: unknown } | undefined;
  if (typeof lb?.margin !== 'number' || typeof lb.spread !== 'number') throw new Error('cmapss-rul manifest entry has no metrics.lower_bound {margin, spread}: retrain with npm run train');
  return { margin: lb.margin, spread: lb.spread };
}
