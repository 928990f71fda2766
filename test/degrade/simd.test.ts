import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { poissonCdf } from '../../nodes/degrade/lib/noise.ts';
import { Arena, runInverseCdf, runTranspose } from '../../nodes/degrade/lib/simd.ts';

describe('runTranspose (SIMD 4x4 blocks, JS edges)', () => {
  it('transposes every shape, whole blocks or not, with and without row padding', () => {
    // Sizes 1..9 cover no whole block, whole blocks only, and every edge remainder (1..3 rows and
    // columns); the strided case writes into wider rows and must leave their padding alone.
    for (let h = 1; h <= 9; h++) {
      for (let w = 1; w <= 9; w++) {
        for (const pad of [0, 3]) {
          const arena = new Arena();
          const src = arena.alloc(h * (w + pad));
          const dst = arena.alloc(w * (h + pad));
          arena.reserve();
          const s = arena.f32(src);
          for (let i = 0; i < s.length; i++) s[i] = i + 0.5;
          const d = arena.f32(dst);
          d.fill(-1);
          runTranspose(arena, src, dst, h, w, w + pad, h + pad);
          for (let x = 0; x < w; x++) {
            for (let y = 0; y < h; y++) expect(d[x * (h + pad) + y]).toBe(s[y * (w + pad) + x]);
            for (let y = h; y < h + pad; y++) expect(d[x * (h + pad) + y]).toBe(-1);
          }
        }
      }
    }
  });

  it('round-trips a large odd-sized plane exactly', () => {
    const h = 131;
    const w = 250;
    const arena = new Arena();
    const a = arena.alloc(h * w);
    const b = arena.alloc(w * h);
    const c = arena.alloc(h * w);
    arena.reserve();
    const s = arena.f32(a);
    for (let i = 0; i < s.length; i++) s[i] = Math.sin(i);
    runTranspose(arena, a, b, h, w);
    runTranspose(arena, b, c, w, h);
    expect(Buffer.from(arena.f32(c).slice().buffer).equals(Buffer.from(s.slice().buffer))).toBe(true);
    expect(arena.f32(b)[7 * h + 3]).toBe(s[3 * w + 7]);
  });
});

describe('runInverseCdf (the Poisson sampler\'s search)', () => {
  it('finds, for every word, the first CDF entry above word / 2^32, as a plain search from 0 does', () => {
    // 256 Poisson tables (means 0..178.5), scaled by 2^32 with a stopping entry, and a coarse guide:
    // the WebAssembly search must agree with the definition for random words and the extremes.
    const cdfs = Array.from({ length: 256 }, (_, v) => poissonCdf(v * 0.7));
    const start = new Int32Array(257);
    for (let v = 0; v < 256; v++) start[v + 1] = start[v]! + cdfs[v]!.length;
    const cdf = new Float64Array(start[256]!);
    const guide = new Int32Array(256 * 256);
    for (let v = 0; v < 256; v++) {
      cdfs[v]!.forEach((x, k) => (cdf[start[v]! + k] = x * 2 ** 32));
      cdf[start[v + 1]! - 1] = 2 ** 33;
      let k = start[v]!;
      for (let j = 0; j < 256; j++) {
        while (cdf[k]! <= j * 2 ** 24) k++;
        guide[v * 256 + j] = k;
      }
    }
    const n = 50_000;
    const rng = new Rng(21);
    const q = Uint8Array.from({ length: n }, () => rng.nextUint32() & 255);
    const words = new Rng(22).fillUint32(new Int32Array(n));
    words[0] = 0;
    words[1] = -1; // 0xffffffff
    const arena = new Arena();
    const ids = { q: arena.alloc(n, 1), words: arena.alloc(n), out: arena.alloc(n), cdf: arena.alloc(cdf.length, 8), guide: arena.alloc(guide.length), start: arena.alloc(257), affine: arena.alloc(257, 8) };
    arena.reserve();
    arena.u8(ids.q).set(q);
    arena.i32(ids.words).set(words);
    arena.f64(ids.cdf).set(cdf);
    arena.i32(ids.guide).set(guide);
    arena.i32(ids.start).set(start);
    // out = k * 1 + 0: the index itself
    arena.f64(ids.affine).fill(0)[256] = 1;
    // two calls, the second skipping into q (as the noise code calls it chunk by chunk) with new words from 0
    runInverseCdf(arena, ids.q, 0, ids.words, ids.out, n, ids);
    const got = arena.f32(ids.out).slice(0, n);
    const u = (i: number): number => (words[i]! >>> 0) / 2 ** 32;
    for (let i = 0; i < n; i++) {
      const c = cdfs[q[i]!]!;
      let k = 0;
      while (k < c.length - 1 && c[k]! <= u(i)) k++;
      if (got[i] !== k) expect({ i, v: q[i], word: words[i]! >>> 0, got: got[i] }).toEqual({ i, v: q[i], word: words[i]! >>> 0, got: k });
    }
    // and the affine map: out = k * affine[256] + affine[v], here 0.5 k - v / 4
    const affine = arena.f64(ids.affine);
    for (let v = 0; v < 256; v++) affine[v] = -v / 4;
    affine[256] = 0.5;
    runInverseCdf(arena, ids.q, 1000, ids.words, ids.out, 10, ids);
    const skipped = arena.f32(ids.out).slice(0, 10);
    for (let i = 0; i < 10; i++) {
      const v = q[1000 + i]!;
      const c = cdfs[v]!;
      let k = 0;
      while (k < c.length - 1 && c[k]! <= u(i)) k++;
      expect(skipped[i]).toBe(Math.fround(0.5 * k - v / 4));
    }
  });
});
