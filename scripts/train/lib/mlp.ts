/**
 * A small multilayer perceptron trained with Adam, written for exact ONNX export: every layer is
 * `y = act(x · Wᵀ + b)` with W stored row-major [out][in] (ONNX Gemm with transB = 1).
 * Tensors are Float32Array; sums are taken in float64 so training is deterministic per seed.
 */
import { Prng } from './prng.js';

export type Activation = 'relu' | 'tanh' | 'linear';

export interface DenseLayer {
  inputs: number;
  outputs: number;
  activation: Activation;
  /** [outputs][inputs], row-major. */
  weight: Float32Array;
  bias: Float32Array;
}

export interface MlpSpec {
  /** Layer widths, input first: [420, 64, 32, 1]. */
  sizes: number[];
  /** Activation of the hidden layers; the last layer is linear. */
  hidden: Activation;
}

export class Mlp {
  readonly layers: DenseLayer[];

  constructor(spec: MlpSpec, rng: Prng) {
    if (spec.sizes.length < 2) throw new Error('an MLP needs at least an input and an output size');
    this.layers = [];
    for (let l = 0; l + 1 < spec.sizes.length; l++) {
      const inputs = spec.sizes[l]!;
      const outputs = spec.sizes[l + 1]!;
      const last = l + 2 === spec.sizes.length;
      const activation: Activation = last ? 'linear' : spec.hidden;
      // He initialisation for ReLU, Glorot for tanh/linear.
      const scale = activation === 'relu' ? Math.sqrt(2 / inputs) : Math.sqrt(1 / inputs);
      const weight = new Float32Array(inputs * outputs);
      for (let i = 0; i < weight.length; i++) weight[i] = rng.gauss() * scale;
      this.layers.push({ inputs, outputs, activation, weight, bias: new Float32Array(outputs) });
    }
  }

  get inputSize(): number {
    return this.layers[0]!.inputs;
  }

  get outputSize(): number {
    return this.layers[this.layers.length - 1]!.outputs;
  }

  /** Forward pass of a batch [n][inputSize]; returns every layer's activations (input first). */
  forwardAll(x: Float32Array, n: number): Float32Array[] {
    const acts: Float32Array[] = [x];
    let cur = x;
    for (const layer of this.layers) {
      const out = new Float32Array(n * layer.outputs);
      const { inputs, outputs, weight, bias, activation } = layer;
      for (let b = 0; b < n; b++) {
        const xo = b * inputs;
        for (let o = 0; o < outputs; o++) {
          let s = bias[o]!;
          const wo = o * inputs;
          for (let i = 0; i < inputs; i++) s += weight[wo + i]! * cur[xo + i]!;
          out[b * outputs + o] = activation === 'relu' ? (s > 0 ? s : 0) : activation === 'tanh' ? Math.tanh(s) : s;
        }
      }
      acts.push(out);
      cur = out;
    }
    return acts;
  }

  forward(x: Float32Array, n: number): Float32Array {
    const acts = this.forwardAll(x, n);
    return acts[acts.length - 1]!;
  }

  /**
   * Back-propagates dLoss/dOutput through the batch whose activations are `acts`; returns the
   * gradients of every layer's weight and bias (summed over the batch) in layer order.
   */
  backward(acts: Float32Array[], gradOut: Float32Array, n: number): Float32Array[] {
    const grads: Float32Array[] = [];
    let g = gradOut;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const layer = this.layers[l]!;
      const { inputs, outputs, weight } = layer;
      const out = acts[l + 1]!;
      const inp = acts[l]!;
      // Through the activation.
      const gz = new Float32Array(g.length);
      for (let k = 0; k < g.length; k++) {
        const y = out[k]!;
        gz[k] = layer.activation === 'relu' ? (y > 0 ? g[k]! : 0) : layer.activation === 'tanh' ? g[k]! * (1 - y * y) : g[k]!;
      }
      const gw = new Float64Array(inputs * outputs);
      const gb = new Float64Array(outputs);
      const gin = l > 0 ? new Float32Array(n * inputs) : null;
      for (let b = 0; b < n; b++) {
        const xo = b * inputs;
        for (let o = 0; o < outputs; o++) {
          const d = gz[b * outputs + o]!;
          if (d === 0) continue;
          gb[o]! += d;
          const wo = o * inputs;
          for (let i = 0; i < inputs; i++) gw[wo + i]! += d * inp[xo + i]!;
          if (gin) for (let i = 0; i < inputs; i++) gin[xo + i]! += d * weight[wo + i]!;
        }
      }
      grads.unshift(Float32Array.from(gw), Float32Array.from(gb));
      if (gin) g = gin;
    }
    return grads;
  }

  /** Weight and bias arrays in the order `backward` returns their gradients. */
  parameters(): Float32Array[] {
    return this.layers.flatMap((l) => [l.weight, l.bias]);
  }

  parameterCount(): number {
    return this.parameters().reduce((s, p) => s + p.length, 0);
  }
}

/** Adam (Kingma & Ba 2015) with optional decoupled weight decay. */
export class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;

  constructor(
    private readonly params: Float32Array[],
    public lr = 1e-3,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
    private readonly weightDecay = 0,
  ) {
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }

  step(grads: Float32Array[], scale: number): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k]!;
      const g = grads[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! * scale;
        m[i] = this.beta1 * m[i]! + (1 - this.beta1) * gi;
        v[i] = this.beta2 * v[i]! + (1 - this.beta2) * gi * gi;
        p[i] = p[i]! - this.lr * ((m[i]! / c1) / (Math.sqrt(v[i]! / c2) + this.eps) + this.weightDecay * p[i]!);
      }
    }
  }
}

/** Mean squared error of a batch and its gradient w.r.t. the prediction (per element). */
export function mseLoss(pred: Float32Array, target: Float32Array): { loss: number; grad: Float32Array } {
  const grad = new Float32Array(pred.length);
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i]! - target[i]!;
    s += d * d;
    grad[i] = (2 * d) / pred.length;
  }
  return { loss: s / pred.length, grad };
}

/** Huber loss (quadratic within `delta`, linear beyond), mean over elements, and its gradient. */
export function huberLoss(pred: Float32Array, target: Float32Array, delta: number): { loss: number; grad: Float32Array } {
  const grad = new Float32Array(pred.length);
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i]! - target[i]!;
    const a = Math.abs(d);
    s += a <= delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
    grad[i] = (a <= delta ? d : delta * Math.sign(d)) / pred.length;
  }
  return { loss: s / pred.length, grad };
}
