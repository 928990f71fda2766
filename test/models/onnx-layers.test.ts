import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { GraphBuilder, type Value } from '../../server/models/onnx/builder.ts';
import { attention, gelu, groupNorm, linear, weightsFromMap, type WeightTensor } from '../../server/models/onnx/layers.ts';
import { maxAbsDiff } from '../support/close.ts';

const rand = (n: number): Float32Array => new Rng(n * 31 + 7).fillNormal(new Float32Array(n));

async function run(g: GraphBuilder, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(g.toBytes());
  const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])));
  return out.y!.data as Float32Array;
}


describe('ONNX layers', () => {
  it('groupNorm equals torch.nn.GroupNorm computed by hand', async () => {
    const [N, C, H, W, G] = [2, 8, 3, 5, 4];
    const x = rand(N * C * H * W);
    const gamma = rand(C).map((v) => 1 + 0.1 * v);
    const beta = rand(C + 1).slice(0, C);
    const w = weightsFromMap(new Map<string, WeightTensor>([['n.weight', { data: gamma, dims: [C] }], ['n.bias', { data: beta, dims: [C] }]]), 'test');
    const g = new GraphBuilder({ name: 'gn' });
    const xin = g.input('x', 'float32', [N, C, H, W]);
    g.output(groupNorm(g, w, 'n', xin, { groups: G, eps: 1e-6 }), 'y', 'float32', [N, C, H, W]);
    const got = await run(g, { x: { data: x, dims: [N, C, H, W] } });
    const want = new Float32Array(x.length);
    const per = (C / G) * H * W;
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < G; gi++) {
        const base = (n * C + gi * (C / G)) * H * W;
        let mean = 0;
        for (let i = 0; i < per; i++) mean += x[base + i]!;
        mean /= per;
        let v = 0;
        for (let i = 0; i < per; i++) v += (x[base + i]! - mean) ** 2;
        v /= per;
        for (let i = 0; i < per; i++) {
          const c = gi * (C / G) + Math.floor(i / (H * W));
          want[base + i] = ((x[base + i]! - mean) / Math.sqrt(v + 1e-6)) * gamma[c]! + beta[c]!;
        }
      }
    }
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
  });

  it('linear + attention equal a hand computation', async () => {
    const [B, T, D, heads] = [2, 3, 8, 2];
    const dim = D / heads;
    const x = rand(B * T * D);
    const wq = rand(D * D + 3).slice(0, D * D);
    const bq = rand(D + 5).slice(0, D);
    const w = weightsFromMap(new Map<string, WeightTensor>([['q.weight', { data: wq, dims: [D, D] }], ['q.bias', { data: bq, dims: [D] }]]), 'test');
    const g = new GraphBuilder({ name: 'attn' });
    const xin = g.input('x', 'float32', [B, T, D]);
    const q: Value = linear(g, w, 'q', xin);
    g.output(gelu(g, attention(g, q, xin, xin, heads, dim)), 'y', 'float32', [B, T, D]);
    const got = await run(g, { x: { data: x, dims: [B, T, D] } });
    const at = (b: number, t: number, c: number): number => x[(b * T + t) * D + c]!;
    const qv = (b: number, t: number, c: number): number => {
      let s = bq[c]!;
      for (let i = 0; i < D; i++) s += at(b, t, i) * wq[c * D + i]!;
      return s;
    };
    const want = new Float32Array(B * T * D);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < heads; h++) {
        for (let t = 0; t < T; t++) {
          const scores = Array.from({ length: T }, (_, s) => {
            let dot = 0;
            for (let d = 0; d < dim; d++) dot += qv(b, t, h * dim + d) * at(b, s, h * dim + d);
            return dot / Math.sqrt(dim);
          });
          const m = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - m));
          const z = e.reduce((a, c) => a + c, 0);
          for (let d = 0; d < dim; d++) {
            let o = 0;
            for (let s = 0; s < T; s++) o += (e[s]! / z) * at(b, s, h * dim + d);
            const erf = (u: number): number => {
              // Abramowitz-Stegun 7.1.26 is too coarse; use the series via Math functions.
              const t1 = 1 / (1 + 0.5 * Math.abs(u));
              const y = 1 - t1 * Math.exp(-u * u - 1.26551223 + t1 * (1.00002368 + t1 * (0.37409196 + t1 * (0.09678418 + t1 * (-0.18628806 + t1 * (0.27886187 + t1 * (-1.13520398 + t1 * (1.48851587 + t1 * (-0.82215223 + t1 * 0.17087277)))))))));
              return u >= 0 ? y : -y;
            };
            want[(b * T + t) * D + h * dim + d] = 0.5 * o * (1 + erf(o / Math.SQRT2));
          }
        }
      }
    }
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
  });
});
