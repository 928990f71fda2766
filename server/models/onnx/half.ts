/**
 * Half precision that means half-precision compute: a float32 graph rewritten so that every op
 * computes in float16 except where the numerics need float32, and every weight is stored at the
 * precision of the ops that read it, so no weight is cast back to float32 at run time.
 *
 * Float32 stays:
 * - at the interface: float inputs are cast to float16 on entry and float outputs back on exit, so
 *   callers feed and read float32 whatever the pack's precision;
 * - in normalisation statistics (InstanceNormalization, which GroupNorm is built on, and
 *   LayerNormalization): mean and variance over thousands of values lose too much in float16;
 * - in the nodes a compiler marks with `GraphBuilder.keepFloat32` (the timestep-embedding lookup,
 *   the text towers' eot search over token ids, which float16 cannot hold exactly above 2048).
 * Softmax accumulation happens inside the fused attention op, whose kernels accumulate in float32.
 *
 * Casts are inserted only where a float value crosses between the two precisions, once per value
 * and target. A weight read by both kinds of op stays float32 and is cast for the float16 ones
 * (a constant cast, folded when the session loads).
 */
import { toFloat16 } from '../../runtime/fp16.ts';
import { resolveTensorData, type DType, type LazyTensorData, type ModelRecord, type NodeRecord, type TensorRecord } from './proto.ts';

/** Ops that compute in float32 whatever the graph's precision. */
const FLOAT32_OPS = new Set(['InstanceNormalization', 'LayerNormalization', 'GroupNormalization', 'BatchNormalization']);
/** ONNX TensorProto codes used by Cast's `to`. */
const CODE: Partial<Record<DType, number>> = { float32: 1, float16: 10 };
const DTYPE_OF_CODE: Record<number, DType> = { 1: 'float32', 10: 'float16', 6: 'int32', 7: 'int64', 9: 'bool' } as Record<number, DType>;

/** Which inputs of an op carry its float data (the others are shapes, indices, scales, ...). */
function dataInputs(node: NodeRecord): number[] {
  switch (node.opType) {
    case 'Shape':
    case 'Cast':
      return [];
    case 'Resize': // roi and scales are float32 by the spec, whatever X is
    case 'Reshape':
    case 'Expand':
    case 'Tile':
    case 'Squeeze':
    case 'Unsqueeze':
    case 'Gather':
    case 'Split':
    case 'Slice':
      return [0];
    case 'Where':
      return [1, 2];
    default:
      return node.inputs.map((_, i) => i);
  }
}

/** The dtype of each of a node's outputs, from its inputs' (what the rewrite needs: float32 or not). */
function outputDtype(node: NodeRecord, dtypeOf: (name: string) => DType | undefined): DType | undefined {
  switch (node.opType) {
    case 'Shape':
      return 'int64';
    case 'Equal':
    case 'Less':
    case 'Greater':
    case 'Not':
      return 'bool';
    case 'Cast':
      return DTYPE_OF_CODE[node.attrs.to as number];
    case 'ConstantOfShape':
      return 'float32';
    case 'Where':
      return dtypeOf(node.inputs[1]!);
    default:
      return dtypeOf(node.inputs.find((n) => n !== '') ?? '');
  }
}

export function toHalfPrecision(model: ModelRecord): ModelRecord {
  const dtype = new Map<string, DType>();
  for (const io of model.inputs) dtype.set(io.name, io.dtype);
  for (const t of model.initializers) dtype.set(t.name, t.dtype);
  const dtypeOf = (name: string): DType | undefined => dtype.get(name);
  // Pass 1: the float32 graph's dtypes, and where each node computes.
  const half = new Map<NodeRecord, boolean>();
  for (const node of model.nodes) {
    const out = outputDtype(node, dtypeOf);
    for (const o of node.outputs) if (out) dtype.set(o, out);
    const touchesFloat = out === 'float32' || dataInputs(node).some((i) => dtypeOf(node.inputs[i] ?? '') === 'float32');
    if (!touchesFloat) continue;
    half.set(node, !(node.float32 || FLOAT32_OPS.has(node.opType) || node.opType === 'ConstantOfShape'));
  }
  // Which precision reads each float32 initializer (false also for reads as a shape or scales input).
  const readers = new Map<string, Set<boolean>>();
  const read = (name: string, isHalf: boolean): void => void (readers.get(name) ?? readers.set(name, new Set()).get(name)!).add(isHalf);
  for (const node of model.nodes) {
    const isHalf = half.get(node);
    const data = new Set(dataInputs(node));
    node.inputs.forEach((name, i) => {
      if (dtypeOf(name) === 'float32') read(name, isHalf !== undefined && data.has(i) ? isHalf : false);
    });
  }
  const initializers: TensorRecord[] = model.initializers.map((t) => {
    const r = readers.get(t.name);
    return t.dtype === 'float32' && r?.size === 1 && r.has(true) ? { ...t, dtype: 'float16', data: halved(t) } : t;
  });
  const stored = new Map(initializers.map((t) => [t.name, t.dtype]));
  // The dtype each float value has after the rewrite.
  const now = (name: string): DType | undefined => {
    if (stored.has(name)) return stored.get(name);
    if (model.inputs.some((io) => io.name === name)) return dtypeOf(name);
    const d = dtypeOf(name);
    if (d !== 'float32') return d;
    const producer = producerOf.get(name);
    return producer && half.get(producer) ? 'float16' : 'float32';
  };
  const producerOf = new Map<string, NodeRecord>();
  for (const node of model.nodes) for (const o of node.outputs) producerOf.set(o, node);

  const nodes: NodeRecord[] = [];
  const casts = new Map<string, string>();
  const castTo = (name: string, to: 'float16' | 'float32'): string => {
    const key = `${name}|${to}`;
    let out = casts.get(key);
    if (!out) {
      out = `${name}.as_${to === 'float16' ? 'fp16' : 'fp32'}`;
      casts.set(key, out);
      nodes.push({ name: `${out}/Cast`, opType: 'Cast', inputs: [name], outputs: [out], attrs: { to: CODE[to]! } });
    }
    return out;
  };
  for (const node of model.nodes) {
    const isHalf = half.get(node);
    if (isHalf === undefined) {
      nodes.push(node);
      continue;
    }
    const want: 'float16' | 'float32' = isHalf ? 'float16' : 'float32';
    const inputs = [...node.inputs];
    for (const i of dataInputs(node)) {
      const name = inputs[i]!;
      const d = now(name);
      if ((d === 'float32' || d === 'float16') && d !== want) inputs[i] = castTo(name, want);
    }
    const attrs = node.opType === 'Cast' && node.attrs.to === CODE.float32 ? { ...node.attrs, to: CODE[want]! } : node.attrs;
    nodes.push({ ...node, inputs, attrs });
  }
  // Float outputs leave as float32 under their own names.
  const renamed = new Map<string, string>();
  for (const io of model.outputs) {
    if (io.dtype !== 'float32' || now(io.name) !== 'float16') continue;
    renamed.set(io.name, `${io.name}.fp16`);
  }
  const rename = (n: string): string => renamed.get(n) ?? n;
  const final = nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
  for (const [name, inner] of renamed) final.push({ name: `${name}/Cast`, opType: 'Cast', inputs: [inner], outputs: [name], attrs: { to: CODE.float32! } });
  return { ...model, initializers, nodes: final };
}

/** The float16 copy of a float32 weight, made only when the writer reads it (one at a time). */
function halved(t: TensorRecord): LazyTensorData {
  const data = t.data;
  return {
    lazy: true,
    dtype: 'float16',
    dims: t.dims,
    read: async () => toFloat16((await resolveTensorData(data, `initializer '${t.name}'`)) as Float32Array),
  };
}
