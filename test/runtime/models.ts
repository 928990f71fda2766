/** Tiny ONNX models for the runtime tests, written with the project's graph builder. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { toFloat16 } from '../../server/runtime/fp16.ts';

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'supir-runtime-'));
}

/** y = x + 1 over a vector of any length. */
export function addOneModel(dir: string, name = 'add-one.onnx'): string {
  const g = new GraphBuilder({ name: 'add-one' });
  const x = g.input('x', 'float32', ['n']);
  g.output(g.op('Add', [x, g.scalar(1)]), 'y', 'float32', ['n']);
  return write(dir, name, g.toBytes());
}

/** y = x * 2 + 0.5 with float16 input, weights and output. */
export function halfModel(dir: string): string {
  const g = new GraphBuilder({ name: 'half' });
  const x = g.input('x', 'float16', ['n']);
  const two = g.constant(toFloat16(Float32Array.of(2)), [], 'float16');
  const half = g.constant(toFloat16(Float32Array.of(0.5)), [], 'float16');
  g.output(g.op('Add', [g.op('Mul', [x, two]), half]), 'y', 'float16', ['n']);
  return write(dir, 'half.onnx', g.toBytes());
}

/**
 * 3 channels in, `depth` 3x3 convolutions over 32 channels, 3 out (the shape of an upscaler's
 * body): about 19 MFLOP per input pixel at depth 10, so 512x512 keeps two cores busy for a few
 * hundred milliseconds while its input and output stay small.
 */
export function heavyConvModel(dir: string, depth = 10): string {
  const g = new GraphBuilder({ name: 'heavy' });
  const C = 32;
  let v = g.input('x', 'float32', [1, 3, 'h', 'w']);
  let cin = 3;
  for (let i = 0; i < depth; i++) {
    const cout = i === depth - 1 ? 3 : C;
    const w = new Float32Array(cout * cin * 9).map((_, k) => ((k * 7919 + i) % 17) / 17 / (cin * 9));
    v = g.op('Conv', [v, g.initializer(`conv${i}.weight`, w, [cout, cin, 3, 3])], { pads: [1, 1, 1, 1] });
    cin = cout;
  }
  g.output(v, 'y', 'float32', [1, 3, 'h', 'w']);
  return write(dir, 'heavy.onnx', g.toBytes());
}

export function write(dir: string, name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}
