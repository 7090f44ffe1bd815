/**
 * Writes a WindowModel as an ONNX ModelProto (opset 13) with onnx-proto: input `x` float32
 * [N, W, F] with a symbolic batch dimension, weights as initializers, Gemm/Relu/Tanh layers and
 * the head's error computation inside the graph, so the runtime only reads one output.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { WindowModel } from './window-model.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
export const OPSET = 13;

export function floatTensor(name: string, dims: number[], data: Float32Array): OnnxTypes.ITensorProto {
  const bytes = new Uint8Array(data.byteLength);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { name, dims, dataType: FLOAT, rawData: bytes };
}

export function int64Tensor(name: string, values: number[]): OnnxTypes.ITensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(data.buffer) };
}

export function node(opType: string, inputs: string[], outputs: string[], attrs: OnnxTypes.IAttributeProto[] = []): OnnxTypes.INodeProto {
  return { opType, input: inputs, output: outputs, name: outputs[0]!, attribute: attrs };
}

export const intAttr = (name: string, i: number): OnnxTypes.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
export const intsAttr = (name: string, ints: number[]): OnnxTypes.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints });

export function valueInfo(name: string, dims: (number | string)[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export interface ExportInfo {
  /** Graph name and doc string. */
  name: string;
  doc: string;
}

export function exportOnnx(model: WindowModel, info: ExportInfo): Uint8Array {
  const { window: w, features: f, mlp, head } = model;
  const nodes: OnnxTypes.INodeProto[] = [];
  const inits: OnnxTypes.ITensorProto[] = [];
  inits.push(int64Tensor('flat_shape', [-1, w * f]));
  nodes.push(node('Reshape', ['x', 'flat_shape'], ['flat']));

  let mlpIn = 'flat';
  if (head === 'forecaster') {
    inits.push(int64Tensor('past_start', [0]), int64Tensor('past_end', [(w - 1) * f]), int64Tensor('last_end', [w * f]), int64Tensor('axis1', [1]));
    nodes.push(node('Slice', ['flat', 'past_start', 'past_end', 'axis1'], ['past']));
    nodes.push(node('Slice', ['flat', 'past_end', 'last_end', 'axis1'], ['last']));
    mlpIn = 'past';
  }

  const members = head === 'regressor' ? [mlp, ...(model.ensemble ?? [])] : [mlp];
  const memberOut = members.map((m, k) => {
    const p = members.length === 1 ? '' : `m${k}_`;
    let cur = mlpIn;
    m.layers.forEach((layer, l) => {
      inits.push(floatTensor(`${p}W${l}`, [layer.outputs, layer.inputs], layer.weight));
      inits.push(floatTensor(`${p}b${l}`, [layer.outputs], layer.bias));
      nodes.push(node('Gemm', [cur, `${p}W${l}`, `${p}b${l}`], [`${p}h${l}`], [intAttr('transB', 1)]));
      cur = `${p}h${l}`;
      if (layer.activation !== 'linear') {
        nodes.push(node(layer.activation === 'relu' ? 'Relu' : 'Tanh', [cur], [`${p}a${l}`]));
        cur = `${p}a${l}`;
      }
    });
    return cur;
  });
  let cur = memberOut[0]!;
  if (memberOut.length > 1) {
    nodes.push(node('Sum', memberOut, ['member_sum']));
    cur = 'member_sum';
  }

  const out = model.outputName;
  let outDims: (number | string)[];
  if (head === 'regressor') {
    inits.push(floatTensor('out_scale', [1], Float32Array.of(model.outputScale / members.length)));
    nodes.push(node('Mul', [cur, 'out_scale'], ['scaled']));
    nodes.push(node('Relu', ['scaled'], [out]));
    outDims = ['N', 1];
  } else {
    const target = head === 'autoencoder' ? 'flat' : 'last';
    nodes.push(node('Sub', [target, cur], ['diff']));
    nodes.push(node('Mul', ['diff', 'diff'], ['sq']));
    let err = 'sq';
    if (head === 'forecaster' && (model.residualWeight ?? 1) !== 1) {
      inits.push(floatTensor('residual_weight', [1], Float32Array.of(model.residualWeight!)));
      nodes.push(node('Mul', ['sq', 'residual_weight'], ['sq_weighted']));
      err = 'sq_weighted';
    }
    if (model.levelWeight.some((v) => v !== 0)) {
      const cols = head === 'autoencoder' ? w : 1;
      const tiled = new Float32Array(cols * f);
      for (let i = 0; i < tiled.length; i++) tiled[i] = model.levelWeight[i % f]!;
      inits.push(floatTensor('level_weight', [cols * f], tiled));
      nodes.push(node('Mul', [target, target], ['level_sq']));
      nodes.push(node('Mul', ['level_sq', 'level_weight'], ['level']));
      nodes.push(node('Add', [err, 'level'], ['sq_total']));
      err = 'sq_total';
    }
    nodes.push(node('ReduceMean', [err], [out], [intsAttr('axes', [1]), intAttr('keepdims', 0)]));
    outDims = ['N'];
  }

  const graph: OnnxTypes.IGraphProto = {
    name: info.name,
    docString: info.doc,
    node: nodes,
    initializer: inits,
    input: [valueInfo('x', ['N', w, f])],
    output: [valueInfo(out, outDims)],
  };
  const proto: OnnxTypes.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'edge-agent scripts/train',
    producerVersion: '1',
    docString: info.doc,
    graph,
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(proto)).finish();
}
