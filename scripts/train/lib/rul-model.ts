/**
 * The remaining-useful-life model: fixed window summaries (rul-features.ts, standardised), then a
 * bagged ensemble of small MLPs. Its graph outputs, per window:
 *   rul            = max(0, mean over members of cap · mlp_m(features))
 *   rul_sd         = population standard deviation of the members' predictions (the spread)
 *   service_within = max(0, mean - (margin + k · rul_sd)): a lower bound on the life left,
 *                    calibrated by cross-validation (cmapss-rul.ts) so that the true RUL falls
 *                    below it rarely; the operator's "service within N cycles".
 * The JS forward pass here and the ONNX graph compute the same thing; `checkRulAgainstOrt` proves it.
 */
import '../../../agent/inference/ort-privacy.js'; // first of all: onnxruntime without telemetry (ort-privacy.ts)
import type { onnx as OnnxTypes } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { Mlp } from './mlp.js';
import { encodeModel, floatTensor, int64Tensor, intAttr, intsAttr, mlpNodes, node, valueInfo, type ExportInfo } from './onnx-export.js';
import { project } from './rul-features.js';

export interface RulModel {
  window: number;
  features: number;
  /** [W*F][K], already divided by each feature's training standard deviation. */
  projection: Float32Array;
  /** Added after the projection: -mean/std of each feature over the training windows. */
  featureBias: Float32Array;
  k: number;
  members: Mlp[];
  cap: number;
  /** service_within = mean - (margin + spread · rul_sd). */
  lower: { margin: number; spread: number };
}

export const RUL_OUTPUTS = ['rul', 'rul_sd', 'service_within'] as const;
export type RulOutputs = Record<(typeof RUL_OUTPUTS)[number], Float32Array>;

/** Standardised summary features of n windows. */
export function rulFeatures(model: Pick<RulModel, 'projection' | 'featureBias' | 'k'>, windows: Float32Array, n: number): Float32Array {
  const z = project(windows, n, model.projection, model.k);
  for (let i = 0; i < z.length; i++) z[i] = Math.fround(z[i]! + model.featureBias[i % model.k]!);
  return z;
}

/** Each member's prediction (cycles) for features [n][K]: preds[m][b]. */
export function memberPredictions(model: RulModel, feats: Float32Array, n: number): Float32Array[] {
  return model.members.map((m) => {
    const y = m.forward(feats, n);
    return y.map((v) => v * model.cap);
  });
}

export function combine(model: RulModel, preds: Float32Array[], n: number): RulOutputs {
  const out: RulOutputs = { rul: new Float32Array(n), rul_sd: new Float32Array(n), service_within: new Float32Array(n) };
  const m = preds.length;
  for (let b = 0; b < n; b++) {
    let mean = 0;
    for (const p of preds) mean += p[b]!;
    mean /= m;
    let v = 0;
    for (const p of preds) v += (p[b]! - mean) ** 2;
    const sd = Math.sqrt(v / m);
    out.rul[b] = Math.max(0, mean);
    out.rul_sd[b] = sd;
    out.service_within[b] = Math.max(0, mean - (model.lower.margin + model.lower.spread * sd));
  }
  return out;
}

export function forwardRul(model: RulModel, windows: Float32Array, n: number): RulOutputs {
  const feats = rulFeatures(model, windows, n);
  return combine(model, memberPredictions(model, feats, n), n);
}

export function exportRulOnnx(model: RulModel, info: ExportInfo): Uint8Array {
  const { window: w, features: f, k } = model;
  const nodes: OnnxTypes.INodeProto[] = [];
  const inits: OnnxTypes.ITensorProto[] = [
    int64Tensor('flat_shape', [-1, w * f]),
    floatTensor('projection', [w * f, k], model.projection),
    floatTensor('feature_bias', [k], model.featureBias),
  ];
  nodes.push(node('Reshape', ['x', 'flat_shape'], ['flat']));
  nodes.push(node('MatMul', ['flat', 'projection'], ['summary']));
  nodes.push(node('Add', ['summary', 'feature_bias'], ['feat']));
  const memberOut = model.members.map((mlp, m) => mlpNodes(mlp, 'feat', `m${m}_`, nodes, inits));
  inits.push(floatTensor('cap', [1], Float32Array.of(model.cap)));
  inits.push(floatTensor('margin', [1], Float32Array.of(model.lower.margin)));
  inits.push(floatTensor('spread', [1], Float32Array.of(model.lower.spread)));
  const mean1 = [intsAttr('axes', [1]), intAttr('keepdims', 1)];
  nodes.push(node('Concat', memberOut, ['members_raw'], [intAttr('axis', 1)]));
  nodes.push(node('Mul', ['members_raw', 'cap'], ['members']));
  nodes.push(node('ReduceMean', ['members'], ['mean'], mean1));
  nodes.push(node('Relu', ['mean'], ['rul']));
  nodes.push(node('Sub', ['members', 'mean'], ['dev']));
  nodes.push(node('Mul', ['dev', 'dev'], ['dev2']));
  nodes.push(node('ReduceMean', ['dev2'], ['var'], mean1));
  nodes.push(node('Sqrt', ['var'], ['rul_sd']));
  nodes.push(node('Mul', ['rul_sd', 'spread'], ['spread_sd']));
  nodes.push(node('Add', ['spread_sd', 'margin'], ['below']));
  nodes.push(node('Sub', ['mean', 'below'], ['lower']));
  nodes.push(node('Relu', ['lower'], ['service_within']));
  return encodeModel(info, nodes, inits, RUL_OUTPUTS.map((o) => valueInfo(o, ['N', 1])), w, f);
}

/** Every output of the graph in onnxruntime vs the JS forward pass (max |diff| <= 1e-4 · max(1, |y|)). */
export async function checkRulAgainstOrt(bytes: Uint8Array, model: RulModel, windows: Float32Array, n: number): Promise<{ windows: number; maxAbsDiff: number }> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  try {
    const result = await session.run({ x: new ort.Tensor('float32', windows, [n, model.window, model.features]) });
    const want = forwardRul(model, windows, n);
    let maxAbs = 0;
    for (const o of RUL_OUTPUTS) {
      const got = result[o]?.data as Float32Array | undefined;
      if (!got || got.length !== n) throw new Error(`onnxruntime output ${o}: ${got?.length ?? 'no'} values for ${n} windows`);
      for (let i = 0; i < n; i++) {
        const d = Math.abs(got[i]! - want[o][i]!);
        if (!(d <= 1e-4 * Math.max(1, Math.abs(want[o][i]!)))) throw new Error(`onnxruntime and the JS forward pass disagree on ${o}, window ${i}: ${got[i]} vs ${want[o][i]}`);
        maxAbs = Math.max(maxAbs, d);
      }
    }
    return { windows: n, maxAbsDiff: maxAbs };
  } finally {
    await session.release();
  }
}
