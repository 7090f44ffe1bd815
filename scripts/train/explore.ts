/**
 * Architecture exploration (not part of npm run train): trains one variant of a model with a
 * JSON override of its config and prints its validation figures.
 *   node dist/scripts/train/explore.js skab-pump '{"factors":[1.5]}' [--all] [--data DIR]
 *   (stream-ad 2 is explored with node dist/scripts/eval/nab-sweep.js: its choices are made on NAB, SKAB per channel a side condition)
 * cmapss-rul has its own k-fold runner: node dist/scripts/train/cmapss-cv.js '{"hidden":[64,32]}'
 */
import { dataDirFromArgs, loadSkab } from './lib/datasets.js';
import { trainSkabPump, SKAB_PUMP_CONFIG } from './skab-pump.js';

const id = process.argv[2];
const override = JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>;
const data = dataDirFromArgs(process.argv);
const r = (o: object) => JSON.stringify(o, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v));
if (id === 'skab-pump') {
  const { free, faults } = loadSkab(data);
  const t = await trainSkabPump(free, faults, { ...SKAB_PUMP_CONFIG, ...override }, true, (s) => console.error(s));
  const s = t.selection;
  console.log(`${id} ${r(override)} ${t.trainingSeconds.toFixed(0)}s params ${t.model.mlp.parameterCount()} admissible ${s.admissible}/${t.candidates.length}`);
  if (process.argv.includes('--all')) {
    const { figures } = await import('./lib/pump-tuning.js');
    t.results.forEach((res, i) => {
      const c = Object.values(res.byGroup).reduce((a, b) => ({ tp: a.tp + b.tp, fp: a.fp + b.fp, tn: a.tn + b.tn, fn: a.fn + b.fn }));
      const c0 = t.candidates[i]!;
      console.log(`  #${i} graph ${c0.graph} ${c0.baseline ? `follow ${c0.baseline.follow[0]} clip ${c0.baseline.follow_clip} in-alert ${c0.baseline.follow_in_alert} relearn ${c0.baseline.relearn_after ?? '-'}` : 'frozen'} factor ${c0.score.factor} counts ${c0.alert.on_count}/${c0.alert.off_count}: ${r(figures(c))} free ${r(res.free)}`);
    });
  }
  console.log(`  cv ${r(s.crossValidated)}\n  in ${r(s.inSample)}\n  free ${r(s.free)}\n  chosen ${r(t.chosen)}`);
} else {
  throw new Error('usage: explore.js skab-pump [JSON config override] [--all]');
}
