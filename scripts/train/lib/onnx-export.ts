/**
 * Writes a WindowModel as an ONNX ModelProto (opset 13) with onnx-proto: input `x` float32
 * [N, W, F] with a symbolic batch dimension, weights as initializers, Gemm/Relu/Tanh layers and
 * the head's error computation inside the graph, so the runtime only reads one output.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { Mlp } from './mlp.js';
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

/** Gemm (+ Relu/Tanh) nodes of one MLP reading `input`, weights named `${prefix}W${l}`; returns its output's name. */
export function mlpNodes(mlp: Mlp, input: string, prefix: string, nodes: OnnxTypes.INodeProto[], inits: OnnxTypes.ITensorProto[]): string {
  let cur = input;
  mlp.layers.forEach((layer, l) => {
    inits.push(floatTensor(`${prefix}W${l}`, [layer.outputs, layer.inputs], layer.weight));
    inits.push(floatTensor(`${prefix}b${l}`, [layer.outputs], layer.bias));
    nodes.push(node('Gemm', [cur, `${prefix}W${l}`, `${prefix}b${l}`], [`${prefix}h${l}`], [intAttr('transB', 1)]));
    cur = `${prefix}h${l}`;
    if (layer.activation !== 'linear') {
      nodes.push(node(layer.activation === 'relu' ? 'Relu' : 'Tanh', [cur], [`${prefix}a${l}`]));
      cur = `${prefix}a${l}`;
    }
  });
  return cur;
}

/** The opset-13 ModelProto of a graph whose one input is `x` float32 [N, W, F]. */
export function encodeModel(info: ExportInfo, nodes: OnnxTypes.INodeProto[], inits: OnnxTypes.ITensorProto[], outputs: OnnxTypes.IValueInfoProto[], w: number, f: number): Uint8Array {
  const graph: OnnxTypes.IGraphProto = {
    name: info.name,
    docString: info.doc,
    node: nodes,
    initializer: inits,
    input: [valueInfo('x', ['N', w, f])],
    output: outputs,
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

/**
 * sum over f of windowLevelWeight[f] * (mean over the window of x[:, :, f])², as `out` [N] (window-model.ts).
 * Both sums are MatMuls: onnxruntime's ReduceMean over the window axis of [N, W, F] rounds
 * differently for a batch of 1 than for more, and a key's verdict must not depend on which other
 * keys share its run (the causality test cuts a stream where it is alone in the last run).
 */
function windowLevelNodes(model: WindowModel, nodes: OnnxTypes.INodeProto[], inits: OnnxTypes.ITensorProto[], out: string): void {
  const { window: w, features: f } = model;
  const average = new Float32Array(w * f * f);
  for (let i = 0; i < w * f; i++) average[i * f + (i % f)] = 1 / w;
  inits.push(int64Tensor('level_flat_shape', [-1, w * f]), floatTensor('window_average', [w * f, f], average));
  inits.push(floatTensor('window_level_weight', [f, 1], Float32Array.from(model.windowLevelWeight!)), int64Tensor('level_out_shape', [-1]));
  nodes.push(node('Reshape', ['x', 'level_flat_shape'], ['level_flat']));
  nodes.push(node('MatMul', ['level_flat', 'window_average'], ['window_mean']));
  nodes.push(node('Mul', ['window_mean', 'window_mean'], ['window_mean_sq']));
  nodes.push(node('MatMul', ['window_mean_sq', 'window_level_weight'], ['window_level_column']));
  nodes.push(node('Reshape', ['window_level_column', 'level_out_shape'], [out]));
}

/** An autoencoder-head model without its network: the window level term alone. */
function exportWindowLevel(model: WindowModel, info: ExportInfo): Uint8Array {
  if (!model.windowLevelWeight || model.levelWeight.some((v) => v !== 0)) throw new Error('reconstructionWeight 0 needs windowLevelWeight and no per-row level term');
  const nodes: OnnxTypes.INodeProto[] = [];
  const inits: OnnxTypes.ITensorProto[] = [];
  windowLevelNodes(model, nodes, inits, model.outputName);
  return encodeModel(info, nodes, inits, [valueInfo(model.outputName, ['N'])], model.window, model.features);
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

  if (head === 'autoencoder' && model.reconstructionWeight === 0) return exportWindowLevel(model, info);
  const members = head === 'regressor' ? [mlp, ...(model.ensemble ?? [])] : [mlp];
  const memberOut = members.map((m, k) => mlpNodes(m, mlpIn, members.length === 1 ? '' : `m${k}_`, nodes, inits));
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
    if (head === 'autoencoder' && (model.reconstructionWeight ?? 1) !== 1) throw new Error('reconstructionWeight other than 0 or 1 is not exported');
    if (head === 'autoencoder' && model.windowLevelWeight) {
      nodes.push(node('ReduceMean', [err], ['window_error'], [intsAttr('axes', [1]), intAttr('keepdims', 0)]));
      windowLevelNodes(model, nodes, inits, 'window_level');
      nodes.push(node('Add', ['window_error', 'window_level'], [out]));
    } else nodes.push(node('ReduceMean', [err], [out], [intsAttr('axes', [1]), intAttr('keepdims', 0)]));
    outDims = ['N'];
  }

  return encodeModel(info, nodes, inits, [valueInfo(out, outDims)], w, f);
}
