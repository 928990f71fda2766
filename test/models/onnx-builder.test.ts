import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

function f32(data: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.from(data), dims);
}

function values(t: ort.Tensor | undefined): number[] {
  if (!t) throw new Error('missing output');
  return Array.from(t.data as Float32Array);
}

describe('GraphBuilder', () => {
  it('passes a value through Identity with dynamic dims', async () => {
    const g = new GraphBuilder({ name: 'identity' });
    const x = g.input('x', 'float32', ['N', 3]);
    g.output(g.op('Identity', [x]), 'y', 'float32', ['N', 3]);
    const out = await run(g.toBytes(), { x: f32([1, 2, 3, 4, 5, 6], [2, 3]) });
    expect(values(out.y)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(out.y?.dims).toEqual([2, 3]);
  });

  it('computes a 3x3 conv with known weights, bias and padding', async () => {
    const g = new GraphBuilder({ name: 'conv' });
    const x = g.input('x', 'float32', [1, 1, 3, 3]);
    // Two output channels: a centre tap (identity) and the sum of the 3x3 neighbourhood.
    const w = new Float32Array(18);
    w[4] = 1;
    w.fill(1, 9, 18);
    const y = g.scope('conv_in', () => {
      const weight = g.initializer('weight', w, [2, 1, 3, 3]);
      const bias = g.initializer('bias', Float32Array.of(0.5, -1), [2]);
      expect(weight.name).toBe('conv_in.weight');
      return g.op('Conv', [x, weight, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    });
    g.output(y, 'y', 'float32', [1, 2, 3, 3]);
    const input = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const out = values((await run(g.toBytes(), { x: f32(input, [1, 1, 3, 3]) })).y);
    // Hand-computed neighbourhood sums of the 3x3 grid 1..9 with zero padding.
    const sums = [12, 21, 16, 27, 45, 33, 24, 39, 28];
    expect(out.slice(0, 9)).toEqual(input.map((v) => v + 0.5));
    expect(out.slice(9)).toEqual(sums.map((v) => v - 1));
  });

  it('adds, multiplies by a float scalar and concatenates on channels', async () => {
    const g = new GraphBuilder({ name: 'add-concat' });
    const a = g.input('a', 'float32', [1, 1, 1, 2]);
    const b = g.input('b', 'float32', [1, 1, 1, 2]);
    const sum = g.op('Add', [a, b]);
    const scaled = g.op('Mul', [sum, g.scalar(0.5)]);
    const cat = g.op('Concat', [scaled, a], { axis: 1 });
    const clipped = g.op('Clip', [cat, g.scalar(0), g.scalar(2)]);
    g.output(clipped, 'y', 'float32', [1, 2, 1, 2]);
    const out = await run(g.toBytes(), { a: f32([1, 3], [1, 1, 1, 2]), b: f32([2, 4], [1, 1, 1, 2]) });
    expect(values(out.y)).toEqual([1.5, 2, 1, 2]);
  });

  it('rearranges channels with DepthToSpace in DCR and CRD modes', async () => {
    const input = Array.from({ length: 8 }, (_, i) => i); // [1, 8, 1, 1]: channels 0..7
    for (const mode of ['DCR', 'CRD'] as const) {
      const g = new GraphBuilder({ name: `d2s-${mode}` });
      const x = g.input('x', 'float32', [1, 8, 1, 1]);
      g.output(g.op('DepthToSpace', [x], { blocksize: 2, mode }), 'y', 'float32', [1, 2, 2, 2]);
      const out = values((await run(g.toBytes(), { x: f32(input, [1, 8, 1, 1]) })).y);
      // DCR: out[c][i][j] = in[(i*2 + j) * C + c]; CRD: out[c][i][j] = in[c*4 + i*2 + j].
      expect(out).toEqual(mode === 'DCR' ? [0, 2, 4, 6, 1, 3, 5, 7] : [0, 1, 2, 3, 4, 5, 6, 7]);
    }
  });

  it('deduplicates equal weights and constants by content', () => {
    const g = new GraphBuilder({ name: 'dedup' });
    const a = g.initializer('a', Float32Array.of(1, 2), [2]);
    const b = g.initializer('b', Float32Array.of(1, 2), [2]);
    const c = g.initializer('c', Float32Array.of(1, 2), [1, 2]);
    expect(b.name).toBe(a.name);
    expect(c.name).not.toBe(a.name);
    expect(g.scalar(2).name).toBe(g.scalar(2).name);
    expect(g.int64s([1, 2]).name).not.toBe(g.scalar(2).name);
    expect(g.stats().initializers).toBe(4);
  });

  it('names repeated nodes uniquely and rejects bad graphs', () => {
    const g = new GraphBuilder({ name: 'names' });
    const x = g.input('x', 'float32', [1]);
    const r1 = g.scope('block', () => g.op('Relu', [x]));
    const r2 = g.scope('block', () => g.op('Relu', [x]));
    expect(r1.name).toBe('block.Relu');
    expect(r2.name).not.toBe(r1.name);
    const parts = g.opMulti('Split', [x], 2, { axis: 0 });
    expect(parts.map((p) => p.name)).toEqual(['Split:0', 'Split:1']);
    expect(() => g.op('Relu', [{ name: 'nowhere' }])).toThrow(/not defined/);
    expect(() => g.op('Bogus' as never, [x])).toThrow(/unsupported op/);
    expect(() => g.initializer('w', Float32Array.of(1, 2, 3), [2])).toThrow(/does not fit/);
    expect(() => g.op('Mul', [x, x], { alpha: 0.5 })).toThrow(/not an int/);
    expect(() => new GraphBuilder({ name: 'empty' }).toBytes()).toThrow(/no outputs/);
  });

  it('writes the pinned opset and passes optional inputs as absent', async () => {
    const g = new GraphBuilder({ name: 'resize', opset: 18 });
    const x = g.input('x', 'float32', [1, 1, 1, 2]);
    const scales = g.constant(Float32Array.of(1, 1, 2, 2), [4]);
    const y = g.op('Resize', [x, null, scales], { mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric' });
    g.output(y, 'y', 'float32', [1, 1, 2, 4]);
    const out = await run(g.toBytes(), { x: f32([1, 2], [1, 1, 1, 2]) });
    expect(values(out.y)).toEqual([1, 1, 2, 2, 1, 1, 2, 2]);
  });
});
