/**
 * Export check: the ONNX bytes, run in onnxruntime-node, must give what the JS forward pass
 * gives on the same windows (max |diff| <= 1e-4 * max(1, |y|): float32 sums differ by rounding).
 */
import '../../../agent/inference/ort-privacy.js'; // first of all: onnxruntime without telemetry (ort-privacy.ts)
import * as ort from 'onnxruntime-node';
import { forwardWindows, type WindowModel } from './window-model.js';

export interface OrtCheck {
  windows: number;
  maxAbsDiff: number;
  maxRelDiff: number;
}

export async function checkAgainstOrt(bytes: Uint8Array, model: WindowModel, windows: Float32Array, n: number): Promise<OrtCheck> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  try {
    const x = new ort.Tensor('float32', windows, [n, model.window, model.features]);
    const result = await session.run({ x });
    const t = result[model.outputName];
    if (!t) throw new Error(`onnxruntime returned no output "${model.outputName}"`);
    const got = t.data as Float32Array;
    if (got.length !== n) throw new Error(`output ${model.outputName}: ${got.length} values for ${n} windows (dims ${t.dims.join(',')})`);
    const want = forwardWindows(model, windows, n);
    let maxAbs = 0;
    let maxRel = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.abs(got[i]! - want[i]!);
      if (!Number.isFinite(d)) throw new Error(`window ${i}: onnxruntime ${got[i]} vs JS ${want[i]}`);
      maxAbs = Math.max(maxAbs, d);
      maxRel = Math.max(maxRel, d / Math.max(1, Math.abs(want[i]!)));
    }
    if (maxRel > 1e-4) throw new Error(`onnxruntime and the JS forward pass disagree: max |diff| ${maxAbs} (relative ${maxRel}) over ${n} windows`);
    return { windows: n, maxAbsDiff: maxAbs, maxRelDiff: maxRel };
  } finally {
    await session.release();
  }
}
