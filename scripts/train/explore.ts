/**
 * Architecture exploration (not part of npm run train): trains one variant of a model with a
 * JSON override of its config and prints its validation figures.
 *   node dist/scripts/train/explore.js skab-pump '{"window":32}' [--data DIR]
 *   (stream-ad 2 is explored with npm run eval -- --nab-sweep: its choices are made on NAB, not SKAB)
 *   node dist/scripts/train/explore.js cmapss-rul '{"window":40,"hidden":[128,64]}'
 */
import { dataDirFromArgs, loadCmapss, loadSkab } from './lib/datasets.js';
import { trainSkabPump, SKAB_PUMP_CONFIG } from './skab-pump.js';
import { trainCmapss, CMAPSS_CONFIG } from './cmapss-rul.js';

const id = process.argv[2];
const override = JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>;
const data = dataDirFromArgs(process.argv);
const r = (o: object) => JSON.stringify(o, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v));
if (id === 'skab-pump') {
  const { free, faults } = loadSkab(data);
  const t = trainSkabPump(free, faults, { ...SKAB_PUMP_CONFIG, ...override }, true);
  console.log(`${id} ${r(override)} ${t.trainingSeconds.toFixed(0)}s params ${t.model.mlp.parameterCount()}\n  cv ${r(t.tuned.crossValidated)}\n  in ${r(t.tuned.inSample)} chosen ${r(t.tuned.chosen)}`);
} else if (id === 'cmapss-rul') {
  const t = trainCmapss(loadCmapss(data), { ...CMAPSS_CONFIG, ...override }, true);
  console.log(`${id} ${r(override)} ${t.trainingSeconds.toFixed(0)}s params ${t.model.mlp.parameterCount()} ${r(t.figures)}`);
} else {
  throw new Error('usage: explore.js skab-pump|cmapss-rul [JSON config override]');
}
