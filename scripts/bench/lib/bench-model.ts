import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto, { type onnx } from 'onnx-proto';

const proto = onnxProto.onnx;
import { SHIPPED_MODELS_DIR } from '../../../agent/inference/index.js';

export interface BenchModel {
  modelsDir: string;
  id: string;
  /** Which model the figures were measured with. */
  description: string;
}

/**
 * The model the benchmark runs: the first single-channel anomaly model shipped in models/, or,
 * while none is shipped, a stand-in of the same shape (a real ONNX graph: window of 16, mean of
 * the squared z-scores) so the runtime's cost (windowing, normalisation, onnxruntime session,
 * verdicts stored and signed) is measured all the same.
 */
export function benchModel(scratch: string): BenchModel {
  const shipped = join(SHIPPED_MODELS_DIR, 'manifest.json');
  if (existsSync(shipped)) {
    const manifest = JSON.parse(readFileSync(shipped, 'utf8')) as { models: { id: string; task: string; input: { features: string[]; window: number } }[] };
    const m = manifest.models.find((x) => x.task === 'anomaly' && x.input.features.length === 1);
    if (m) return { modelsDir: SHIPPED_MODELS_DIR, id: m.id, description: `shipped model ${m.id} (window ${m.input.window})` };
  }
  const dir = join(scratch, 'bench-models');
  mkdirSync(dir, { recursive: true });
  const bytes = meanSquareModel();
  writeFileSync(join(dir, 'bench-mean-square.onnx'), bytes);
  const manifest = {
    format: 'edge-agent/models/1',
    models: [
      {
        id: 'bench-mean-square',
        version: '1.0.0',
        task: 'anomaly',
        description: 'benchmark stand-in: mean of the squared normalised window',
        file: 'bench-mean-square.onnx',
        sha256: createHash('sha256').update(bytes).digest('hex'),
        input: { name: 'x', window: 16, features: ['value'], pad: 'none' },
        normalisation: { type: 'warmup', warmup: 64, min_std: 1e-6 },
        clip: 10,
        outputs: [{ name: 'error', meaning: 'mean squared z-score of the window' }],
        score: { output: 'error', ewma_halflife: 0, calibration: { type: 'warmup-quantile', quantile: 0.99, factor: 2 } },
        alert: { output: 'score', direction: 'above', on: 0.9, off: 0.8, on_count: 3, off_count: 3 },
      },
    ],
  };
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { modelsDir: dir, id: 'bench-mean-square', description: 'stand-in ONNX model bench-mean-square (window 16; no model shipped in models/ yet)' };
}

function meanSquareModel(): Uint8Array {
  const tensor = (name: string, dims: (number | string)[]): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: proto.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'edge-agent-bench',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'bench',
      node: [
        { opType: 'Mul', input: ['x', 'x'], output: ['sq'] },
        {
          opType: 'ReduceMean',
          input: ['sq'],
          output: ['error'],
          attribute: [
            { name: 'axes', type: proto.AttributeProto.AttributeType.INTS, ints: [1, 2] },
            { name: 'keepdims', type: proto.AttributeProto.AttributeType.INT, i: 0 },
          ],
        },
      ],
      input: [tensor('x', ['N', 'W', 'F'])],
      output: [tensor('error', ['N'])],
    },
  };
  return proto.ModelProto.encode(proto.ModelProto.create(model)).finish();
}
