/**
 * node dist/scripts/train/cmapss-cv.js '{JSON config override}' [--seeds 1,2,3] [--v1] [--oof FILE] [--data DIR]
 * k-fold validation of a cmapss-rul variant (lib/rul-kfold.ts protocol); prints one JSON line.
 */
import { dataDirFromArgs, loadCmapss } from './lib/datasets.js';
import { CMAPSS_CONFIG, CMAPSS_V1_CONFIG, validateRul } from './cmapss-rul.js';
import { writeOofFile } from './lib/rul-oof-store.js';

const args = process.argv.slice(2);
const override = JSON.parse(args.find((a) => a.startsWith('{')) ?? '{}') as Record<string, unknown>;
const si = args.indexOf('--seeds');
const base = args.includes('--v1') ? CMAPSS_V1_CONFIG : CMAPSS_CONFIG;
const cfg = { ...base, ...override };
const seeds = si >= 0 ? args[si + 1]!.split(',').map(Number) : cfg.cvSeeds;
const engines = loadCmapss(dataDirFromArgs(process.argv));
const v = validateRul(engines, cfg, seeds, (s) => console.error(s));
const r3 = (_k: string, x: unknown) => (typeof x === 'number' ? Math.round(x * 1000) / 1000 : x);
console.log(JSON.stringify({ variant: { ...(args.includes('--v1') ? { base: 'v1' } : {}), ...override }, seconds: Math.round(v.seconds), kfold: { ...v.kfold, protocol: undefined }, lowerBound: v.lowerBound }, r3));
const oi = args.indexOf('--oof');
// With the config it was made with, so `npm run train -- --kfold-from` reuses it only for the same procedure.
if (oi >= 0) writeOofFile(args[oi + 1]!, v.oofs, cfg);
