/**
 * The tiny model a provider probe runs: one 3x3 convolution on a 1x1x8x8 input. A convolution and
 * not an Add because it makes CUDA load cuDNN and WebGPU compile a real shader, so a probe that
 * passes means real models can run.
 */
import { GraphBuilder } from '../models/onnx/builder.ts';

let bytes: Uint8Array | undefined;

export const PROBE_INPUT: { name: string; dims: readonly number[] } = { name: 'x', dims: [1, 1, 8, 8] };

export function probeModel(): Uint8Array {
  if (!bytes) {
    const g = new GraphBuilder({ name: 'provider-probe' });
    const x = g.input(PROBE_INPUT.name, 'float32', [...PROBE_INPUT.dims]);
    const w = g.initializer('w', new Float32Array(9).fill(1 / 9), [1, 1, 3, 3]);
    g.output(g.op('Conv', [x, w], { pads: [1, 1, 1, 1] }), 'y', 'float32', [...PROBE_INPUT.dims]);
    bytes = g.toBytes();
  }
  return bytes;
}
