/**
 * Halves a model's weights on disk: float32 initializers become float16 followed by a Cast back to
 * float32, so every op still computes in float32 (onnxruntime folds the casts at load). Tensors
 * that need float32 precision — normalisation scales and shifts, small vectors — are kept as
 * they are. A pass over serialised ONNX, so it works on any graph the compilers emit.
 */
import onnxProto from 'onnx-proto';
import { toFloat16 } from '../../runtime/fp16.ts';

const { onnx } = onnxProto;
const FLOAT = 1;
const FLOAT16 = 10;

/** Keep float32: norms (GroupNorm/LayerNorm parameters, named so in every checkpoint) and tensors
 * under 1024 values (biases, scalars), where the saving is nil and the precision matters. */
export function keepsFloat32(name: string, size: number): boolean {
  return size < 1024 || /(^|\.)(norm[\w]*|ln_\w+|layer_norm\w*|in_layers\.0|out_layers\.0|final_layer_norm)\./.test(`${name}.`);
}

export function withFp16Weights(model: Uint8Array, keep: (name: string, size: number) => boolean = keepsFloat32): { bytes: Uint8Array; converted: number; kept: number } {
  const decoded = onnx.ModelProto.decode(model);
  const graph = decoded.graph!;
  const casts: onnxProto.onnx.INodeProto[] = [];
  let converted = 0;
  let kept = 0;
  for (const init of graph.initializer ?? []) {
    if (init.dataType !== FLOAT) continue;
    const size = (init.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
    if (keep(init.name!, size)) {
      kept++;
      continue;
    }
    const raw = init.rawData && init.rawData.length > 0 ? init.rawData : Buffer.from(Float32Array.from(init.floatData ?? []).buffer);
    const f32 = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const half = toFloat16(f32);
    const original = init.name!;
    init.name = `${original}.fp16`;
    init.dataType = FLOAT16;
    init.rawData = new Uint8Array(half.buffer);
    init.floatData = [];
    // The Cast takes the original name, so every consumer is untouched.
    casts.push({ opType: 'Cast', input: [init.name], output: [original], name: `${original}.cast`, attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }] });
    converted++;
  }
  graph.node = [...casts, ...(graph.node ?? [])];
  return { bytes: onnx.ModelProto.encode(decoded).finish(), converted, kept };
}
