/** Exploration (not part of npm run train): compares stream-ad architectures on SKAB per channel. */
import { loadSkab, dataDirFromArgs, SKAB_CHANNELS } from './lib/datasets.js';
import { normalise, type SeriesSpec } from './lib/contract.js';
import { Mlp } from './lib/mlp.js';
import { Prng } from './lib/prng.js';
import { fit } from './lib/fit.js';
import { forwardWindows, type Head, type WindowModel } from './lib/window-model.js';
import { skabRaw, skabFigures, alertRate, SKAB_TRAIN_ROWS } from './lib/skab-eval.js';

const data = dataDirFromArgs(process.argv);
const { free, faults } = loadSkab(data);
const head = (process.argv[2] ?? 'autoencoder') as Head | 'zscore';
const W = Number(process.argv[3] ?? 32);
const hidden = (process.argv[4] ?? '16,4,16').split(',').map(Number);
const epochs = Number(process.argv[5] ?? 10);
const levelWeight = Number(process.argv[6] ?? 0);
const spec: SeriesSpec = { window: W, pad: 'none', normalisation: { type: 'warmup', warmup: 400, min_std: 1e-6 }, clip: 10 };

let forward: (x: Float32Array, n: number) => Float32Array;
const t0 = Date.now();
if (head === 'zscore') {
  forward = (x, n) => {
    const out = new Float32Array(n);
    for (let b = 0; b < n; b++) out[b] = x[b * W + W - 1]! ** 2;
    return out;
  };
} else {
  // Training windows: the first 400 rows of every fault file, per channel, normalised by themselves.
  const wins: number[][] = [];
  for (const f of faults)
    for (let c = 0; c < SKAB_CHANNELS.length; c++) {
      const z = normalise(spec, f.rows.slice(0, SKAB_TRAIN_ROWS).map((r) => [r[c]!]), 1);
      for (let end = W - 1; end < SKAB_TRAIN_ROWS; end++) wins.push(Array.from(z.subarray(end - W + 1, end + 1)));
    }
  const n = wins.length;
  const inSize = head === 'forecaster' ? W - 1 : W;
  const outSize = head === 'forecaster' ? 1 : W;
  const x = new Float32Array(n * inSize);
  const y = new Float32Array(n * outSize);
  wins.forEach((w, i) => {
    x.set(w.slice(0, inSize), i * inSize);
    y.set(head === 'forecaster' ? [w[W - 1]!] : w, i * outSize);
  });
  const rng = new Prng(1);
  const mlp = new Mlp({ sizes: [inSize, ...hidden, outSize], hidden: 'relu' }, rng);
  fit(mlp, x, y, n, { epochs, batch: 64, lr: 2e-3, lrDecay: 0.85, seed: 2, loss: 'mse', label: `${head} W${W}` });
  const model: WindowModel = { head, window: W, features: 1, outputName: 'error', outputScale: 1, levelWeight, mlp };
  forward = (xx, nn) => forwardWindows(model, xx, nn);
}
console.log(`trained in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const freeSeries = SKAB_CHANNELS.map((_, c) => skabRaw([free], c, spec, forward)[0]!);
const perChannel = SKAB_CHANNELS.map((_, c) => skabRaw(faults, c, spec, forward));
for (const h of [0, 4, 16]) for (const factor of [0.5, 1, 1.5, 2]) for (const cnt of [[3, 5]] as const) {
  const score = { ewma_halflife: h, quantile: 0.99, factor };
  const alert = { direction: 'above' as const, on: 0.5, off: 0.4, on_count: cnt[0], off_count: cnt[1] };
  const figs = perChannel.map((s) => skabFigures(s, score, alert));
  const f1s = figs.map((f) => f.f1.toFixed(2)).join(' ');
  const meanF1 = figs.reduce((s, f) => s + f.f1, 0) / figs.length;
  const meanFar = figs.reduce((s, f) => s + f.far, 0) / figs.length;
  const freeRate = alertRate(freeSeries, score, alert);
  console.log(`h=${h} f=${factor} cnt=${cnt}: meanF1 ${meanF1.toFixed(3)} meanFAR ${meanFar.toFixed(1)} freeAlert ${(100 * freeRate).toFixed(1)}% | ${f1s}`);
}
