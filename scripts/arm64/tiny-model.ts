import onnxProto from 'onnx-proto';
import { writeFileSync } from 'node:fs';

const { onnx } = onnxProto;

/**
 * Writes a small ONNX model (opset 13) in the shape agent/inference/README.md asks of shipped
 * models: input `x` float32 [N, W, F], output `score` float32 [N] = mean of x² over the window.
 * It stands in for models/ until those ship; its answer is known, so a run can be checked.
 */
export function writeMeanSquareModel(path: string, window: number, features: number): void {
  const dim = (d: number | string) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d });
  const tensor = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map(dim) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'edge-agent scripts/arm64',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'mean-square',
      input: [tensor('x', ['N', window, features])],
      output: [tensor('score', ['N'])],
      node: [
        { opType: 'Mul', input: ['x', 'x'], output: ['sq'], name: 'square' },
        {
          opType: 'ReduceMean',
          input: ['sq'],
          output: ['score'],
          name: 'mean',
          attribute: [
            { name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 2] },
            { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
          ],
        },
      ],
    },
  });
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
}
