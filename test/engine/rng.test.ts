import { describe, expect, it } from 'vitest';
import { Rng, seedFromString } from '../../nodes/api/rng.ts';

describe('Rng', () => {
  it('is reproducible from its seed and differs across seeds', () => {
    const a = new Rng(123);
    const b = new Rng(123);
    const c = new Rng(124);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('draws normals with mean 0 and variance 1', () => {
    const out = new Rng(7).fillNormal(new Float32Array(200_000));
    const mean = out.reduce((s, v) => s + v, 0) / out.length;
    const variance = out.reduce((s, v) => s + (v - mean) ** 2, 0) / out.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
  });

  it('draws uniforms in [0,1) and ints in range', () => {
    const r = new Rng(seedFromString('key'));
    for (let i = 0; i < 10_000; i++) {
      const u = r.uniform();
      expect(u >= 0 && u < 1).toBe(true);
      const k = r.int(3, 5);
      expect(k >= 3 && k <= 5).toBe(true);
    }
  });
});
