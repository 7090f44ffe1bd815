import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';

/**
 * Tiny real ONNX graphs whose arithmetic a test can reproduce by hand, so the runtime's
 * warm-up, calibration, scoring, padding and hysteresis can be checked exactly.
 */
function reduceMeanModel(square: boolean, output: string): Uint8Array {
  const nodes: onnx.INodeProto[] = [];
  let input = 'x';
  if (square) {
    nodes.push({ opType: 'Mul', input: ['x', 'x'], output: ['sq'] });
    input = 'sq';
  }
  nodes.push({
    opType: 'ReduceMean', // opset 13: axes is still an attribute
    input: [input],
    output: [output],
    attribute: [
      { name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 2] },
      { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
    ],
  });
  const tensor = (name: string, dims: (number | string)[]): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'edge-agent-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'fixture', node: nodes, input: [tensor('x', ['N', 'W', 'F'])], output: [tensor(output, ['N'])] },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export const FIXTURE_WINDOW = 4;

/** Writes `mean-square` (anomaly: error = mean of the squared normalised window) and `window-mean` (rul-like). */
export function writeFixtureModels(dir: string, overrides: { warmup?: number } = {}): void {
  mkdirSync(dir, { recursive: true });
  const meanSquare = reduceMeanModel(true, 'error');
  const windowMean = reduceMeanModel(false, 'rul');
  writeFileSync(join(dir, 'mean-square.onnx'), meanSquare);
  writeFileSync(join(dir, 'window-mean.onnx'), windowMean);
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const manifest = {
    format: 'edge-agent/models/1',
    models: [
      {
        id: 'mean-square',
        version: '1.0.0',
        task: 'anomaly',
        description: 'test fixture: mean of the squared normalised window',
        file: 'mean-square.onnx',
        sha256: sha(meanSquare),
        input: { name: 'x', window: FIXTURE_WINDOW, features: ['value'], pad: 'none' },
        normalisation: { type: 'warmup', warmup: overrides.warmup ?? 8, min_std: 1e-6 },
        clip: 10,
        outputs: [{ name: 'error', meaning: 'mean squared z-score of the window' }],
        score: { output: 'error', ewma_halflife: 0, calibration: { type: 'warmup-quantile', quantile: 0.5, factor: 2 } },
        alert: { output: 'score', direction: 'above', on: 0.5, off: 0.4, on_count: 2, off_count: 2 },
      },
      {
        id: 'window-mean',
        version: '1.0.0',
        task: 'rul',
        description: 'test fixture: mean of the normalised window',
        file: 'window-mean.onnx',
        sha256: sha(windowMean),
        input: { name: 'x', window: FIXTURE_WINDOW, features: ['a', 'b'], pad: 'edge' },
        normalisation: { type: 'fixed', mean: [0, 10], std: [1, 2] },
        clip: 100,
        outputs: [{ name: 'rul', meaning: 'mean of the window', unit: 'cycles' }],
        alert: { output: 'rul', direction: 'below', on: 0, off: 1, on_count: 1, off_count: 1 },
      },
    ],
  };
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}
