/** Mini-batch training loop: seeded shuffling, Adam, MSE or Huber loss, progress per epoch. */
import { Adam, huberLoss, mseLoss, type Mlp } from './mlp.js';
import { Prng } from './prng.js';
import { createProgress } from '../../../agent/progress/progress.js';

export interface FitOptions {
  epochs: number;
  batch: number;
  lr: number;
  /** Learning rate multiplied by this after each epoch. */
  lrDecay?: number;
  weightDecay?: number;
  seed: number;
  loss: 'mse' | 'huber';
  huberDelta?: number;
  /** Standard deviation of Gaussian noise added to each training input (augmentation), 0 = none. */
  inputNoise?: number;
  label: string;
  quiet?: boolean;
}

/** Trains `mlp` to map rows of x [n][in] to rows of y [n][out]; returns the last epoch's mean loss. */
export function fit(mlp: Mlp, x: Float32Array, y: Float32Array, n: number, opts: FitOptions): number[] {
  const din = mlp.inputSize;
  const dout = mlp.outputSize;
  if (x.length !== n * din || y.length !== n * dout) throw new Error(`fit: shapes ${x.length}/${y.length} do not match ${n}x${din} -> ${n}x${dout}`);
  const rng = new Prng(opts.seed);
  const adam = new Adam(mlp.parameters(), opts.lr, 0.9, 0.999, 1e-8, opts.weightDecay ?? 0);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const progress = opts.quiet ? null : createProgress({ label: opts.label, total: opts.epochs, unit: 'epochs' });
  const losses: number[] = [];
  const bx = new Float32Array(opts.batch * din);
  const by = new Float32Array(opts.batch * dout);
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    rng.shuffle(order);
    let total = 0;
    for (let start = 0; start < n; start += opts.batch) {
      const m = Math.min(opts.batch, n - start);
      for (let k = 0; k < m; k++) {
        const i = order[start + k]!;
        bx.set(x.subarray(i * din, (i + 1) * din), k * din);
        by.set(y.subarray(i * dout, (i + 1) * dout), k * dout);
      }
      if (opts.inputNoise) for (let k = 0; k < m * din; k++) bx[k]! += opts.inputNoise * rng.gauss();
      const xin = m === opts.batch ? bx : bx.subarray(0, m * din);
      const target = m === opts.batch ? by : by.subarray(0, m * dout);
      const acts = mlp.forwardAll(xin, m);
      const pred = acts[acts.length - 1]!;
      const { loss, grad } = opts.loss === 'mse' ? mseLoss(pred, target) : huberLoss(pred, target, opts.huberDelta ?? 1);
      total += loss * m;
      adam.step(mlp.backward(acts, grad, m), 1);
    }
    losses.push(total / n);
    adam.lr *= opts.lrDecay ?? 1;
    progress?.update(epoch + 1, `loss ${(total / n).toFixed(5)}`);
  }
  progress?.finish(`loss ${losses[losses.length - 1]!.toFixed(5)}`);
  return losses;
}
