/**
 * How much work a super-resolution model does per input pixel, read from its ONNX graph: the
 * multiply-adds of every Conv, ConvTranspose, MatMul and Gemm whose weight is an initializer, each
 * counted at the resolution it runs at. Resolution is followed through the graph as a factor of the
 * input's (strided convolutions divide it, DepthToSpace, ConvTranspose and Resize/Upsample with
 * constant scales multiply it). Attention scores and element-wise work are left out, so this is a
 * lower bound; for the shipped ESRGAN models it matches the multiply-adds counted from their
 * TensorFlow.js layers (test/nodes/upscale-runs.test.ts).
 *
 * Upscale Image sizes its model runs with it, so that each run is short enough for Stop.
 */
import fs from 'node:fs';
import onnxProto from 'onnx-proto';

type Long = number | { toNumber(): number };
const num = (v: Long | null | undefined): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

const known = new Map<string, number>();

/**
 * Multiply-adds per input pixel of the model at `file`, cached per content hash (`key`); 0 (not
 * known) for a file this reader cannot take, which onnxruntime has opened all the same (over
 * protobuf's 2 GB, say): its runs are then sized by memory alone.
 */
export function modelMacsPerInputPixel(file: string, key: string): number {
  let macs = known.get(key);
  if (macs === undefined) {
    try {
      macs = macsPerInputPixel(fs.readFileSync(file));
    } catch {
      macs = 0;
    }
    known.set(key, macs);
  }
  return macs;
}

export function macsPerInputPixel(bytes: Uint8Array): number {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) return 0;
  const weights = new Map<string, { dims: number[]; values: number[] }>();
  for (const t of graph.initializer ?? []) {
    if (!t.name) continue;
    const dims = (t.dims ?? []).map((d) => num(d as Long));
    weights.set(t.name, { dims, values: t.floatData?.length ? [...t.floatData] : floatsOf(t, dims) });
  }
  const scale = new Map<string, number>();
  for (const input of graph.input ?? []) if (input.name && !weights.has(input.name)) scale.set(input.name, 1);
  const attr = (node: onnxProto.onnx.INodeProto, name: string): onnxProto.onnx.IAttributeProto | undefined => node.attribute?.find((a) => a.name === name);
  const ints = (node: onnxProto.onnx.INodeProto, name: string): number[] => (attr(node, name)?.ints ?? []).map((v) => num(v as Long));
  const elements = (name: string | undefined): number => {
    const w = name ? weights.get(name) : undefined;
    return w ? w.dims.reduce((a, b) => a * b, 1) : 0;
  };
  let macs = 0;
  for (const node of graph.node ?? []) {
    const inputs = node.input ?? [];
    const at = Math.max(0, ...inputs.map((name) => scale.get(name) ?? 0)) || 1;
    let out = at;
    switch (node.opType) {
      case 'Conv': {
        out = at / Math.max(1, ints(node, 'strides')[0] ?? 1);
        const dims = weights.get(inputs[1] ?? '')?.dims ?? [];
        const group = num(attr(node, 'group')?.i as Long) || 1;
        // A per-channel scale written as a depthwise 1x1 conv (the ESRGAN converter's residual
        // scaling, kept in onnxruntime's blocked layout) is element-wise work, left out like the rest.
        const perChannel = group > 1 && dims[0] === group && dims.slice(1).every((d) => d === 1);
        if (!perChannel) macs += elements(inputs[1]) * out * out;
        break;
      }
      case 'ConvTranspose':
        macs += elements(inputs[1]) * at * at;
        out = at * Math.max(1, ints(node, 'strides')[0] ?? 1);
        break;
      case 'MatMul':
      case 'Gemm':
        macs += elements(inputs[1]) * at * at;
        break;
      case 'DepthToSpace':
        out = at * num(attr(node, 'blocksize')?.i as Long);
        break;
      case 'SpaceToDepth':
        out = at / Math.max(1, num(attr(node, 'blocksize')?.i as Long));
        break;
      case 'Resize':
      case 'Upsample': {
        const scales = weights.get(inputs[node.opType === 'Resize' ? 2 : 1] ?? '')?.values;
        if (scales && scales.length === 4 && scales[3]! > 0) out = at * scales[3]!;
        break;
      }
    }
    for (const o of node.output ?? []) scale.set(o, out);
  }
  return macs;
}

/** Small float initializers (Resize scales) stored as raw little-endian bytes. */
function floatsOf(t: onnxProto.onnx.ITensorProto, dims: number[]): number[] {
  const raw = t.rawData;
  if (t.dataType !== onnxProto.onnx.TensorProto.DataType.FLOAT || !raw || dims.length !== 1 || raw.byteLength !== 4 * dims[0]!) return [];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: dims[0]! }, (_, i) => view.getFloat32(4 * i, true));
}
