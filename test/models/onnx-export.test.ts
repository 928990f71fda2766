import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { writeModel } from '../../server/models/onnx/export.ts';
import { maxAbsDiff } from '../support/close.ts';

/** y = x @ W + b with a 256x512 W (512 KiB) and a norm-named scale kept in float32. */
function model(): GraphBuilder {
  const g = new GraphBuilder({ name: 'export-test' });
  const x = g.input('x', 'float32', [2, 256]);
  const w = g.initializer('layer.weight', new Rng(1).fillNormal(new Float32Array(256 * 512)), [256, 512]);
  const s = g.initializer('layer.norm.weight', new Rng(2).fillNormal(new Float32Array(512)), [512]);
  g.output(g.op('Mul', [g.op('MatMul', [x, w]), s]), 'y', 'float32', [2, 512]);
  return g;
}

async function run(file: string, x: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file);
  const out = (await session.run({ x: new ort.Tensor('float32', x, [2, 256]) })).y!.data as Float32Array;
  await session.release();
  return out;
}

describe('writeModel', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-export-'));
  const x = new Rng(3).fillNormal(new Float32Array(512));

  it('puts large tensors in external data that onnxruntime reads back', async () => {
    const inline = await writeModel(model().record(), path.join(dir, 'inline.onnx'), { externalThreshold: Infinity });
    const split = await writeModel(model().record(), path.join(dir, 'split.onnx'), { externalThreshold: 4096 });
    expect(inline.files).toHaveLength(1);
    expect(split.files.map((f) => path.basename(f))).toEqual(['split.onnx', 'split.onnx.data']);
    expect(fs.statSync(path.join(dir, 'split.onnx')).size).toBeLessThan(10_000);
    expect(Array.from(await run(path.join(dir, 'split.onnx'), x))).toEqual(Array.from(await run(path.join(dir, 'inline.onnx'), x)));
  });

  it('stores weights as float16 (keeping norms in float32) with outputs close to float32', async () => {
    const full = await writeModel(model().record(), path.join(dir, 'f32.onnx'), { externalThreshold: Infinity });
    const half = await writeModel(model().record(), path.join(dir, 'f16.onnx'), { externalThreshold: Infinity, fp16: true });
    expect(half.bytes).toBeLessThan(full.bytes * 0.55);
    const a = await run(path.join(dir, 'f32.onnx'), x);
    const b = await run(path.join(dir, 'f16.onnx'), x);
    const maxRef = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const maxDiff = maxAbsDiff(a, b);
    expect(maxDiff / maxRef).toBeLessThan(2e-3);
    expect(maxDiff).toBeGreaterThan(0);
  });
});
