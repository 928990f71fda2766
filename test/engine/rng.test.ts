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

describe('Rng bulk fills (the degradation noise fields)', () => {
  it('fillUint32 gives the same words as nextUint32 in turn, and leaves the stream where they would', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const bulk = a.fillUint32(new Uint32Array(1000));
    for (let i = 0; i < 1000; i++) expect(bulk[i]).toBe(b.nextUint32());
    expect(a.nextUint32()).toBe(b.nextUint32());
    // into an Int32Array: the same bits
    const signed = new Rng(5).fillUint32(new Int32Array(1000));
    expect(Array.from(signed, (x) => x >>> 0)).toEqual(Array.from(bulk));
  });

  it('fillNormalZiggurat is reproducible, scaled, and standard normal in its core, wedges and tails', () => {
    const n = 400_000;
    const z = new Rng(6).fillNormalZiggurat(new Float32Array(n));
    expect(Buffer.from(new Rng(6).fillNormalZiggurat(new Float32Array(n)).buffer).equals(Buffer.from(z.buffer))).toBe(true);
    // scale multiplies each value: the same draws times 0.25 (to float32 rounding)
    const scaled = new Rng(6).fillNormalZiggurat(new Float32Array(1000), 0.25);
    for (let i = 0; i < 1000; i++) expect(scaled[i]).toBeCloseTo(0.25 * z[i]!, 6);
    let m = 0;
    let v = 0;
    let tail3 = 0;
    let tail4 = 0;
    let wedge = 0;
    for (const x of z) {
      m += x;
      v += x * x;
      if (Math.abs(x) > 3) tail3++;
      if (Math.abs(x) > 3.442619855899) tail4++; // past R: only the exponential tail method gives these
      if (Math.abs(x) > 1 && Math.abs(x) < 2) wedge++;
    }
    m /= n;
    v = v / n - m * m;
    expect(Math.abs(m)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(v - 1)).toBeLessThan(0.01);
    // P(|x| > 3) = 0.0027, P(|x| > R) = 5.76e-4, P(1 < |x| < 2) = 0.2718: tails, tail method and
    // the layers' edges are right, not only the rectangles' cores.
    expect(Math.abs(tail3 / n - 0.0027)).toBeLessThan(0.0004);
    expect(Math.abs(tail4 / n - 5.76e-4)).toBeLessThan(1.5e-4);
    expect(Math.abs(wedge / n - 0.2718)).toBeLessThan(0.004);
  });

  it('fillNormalZiggurat continues one stream across calls (a field drawn in two parts equals one drawn whole)', () => {
    const whole = new Rng(8).fillNormalZiggurat(new Float32Array(10_000));
    const r = new Rng(8);
    const first = r.fillNormalZiggurat(new Float32Array(3_333));
    const second = r.fillNormalZiggurat(new Float32Array(10_000 - 3_333));
    expect(Array.from(first)).toEqual(Array.from(whole.subarray(0, 3_333)));
    expect(Array.from(second)).toEqual(Array.from(whole.subarray(3_333)));
  });

  it('child() is seeded from two draws: reproducible, different from its parent and from the next child', () => {
    const p = new Rng(11);
    const q = new Rng(11);
    const c1 = p.child();
    expect(c1.nextUint32()).toBe(q.child().nextUint32());
    const c2 = p.child();
    expect(Array.from({ length: 4 }, () => c1.nextUint32())).not.toEqual(Array.from({ length: 4 }, () => c2.nextUint32()));
    // the parent moved on by exactly two words per child
    const r = new Rng(11);
    for (let i = 0; i < 4; i++) r.nextUint32();
    expect(p.nextUint32()).toBe(r.nextUint32());
  });

  it('keeps nextUint32, uniform and fillNormal on their streams (the SUPIR samplers are seeded with them)', () => {
    // values recorded before the bulk fills were added (commit 1d6ab2a): these must never change
    expect(new Rng(7).nextUint32()).toBe(1801096769);
    expect(new Rng(7).uniform()).toBe(0.4193505224726699);
    expect(Array.from(new Rng(123).fillNormal(new Float32Array(4)))).toEqual([0.1919272094964981, 1.3598787784576416, 0.343129426240921, 0.30159294605255127]);
  });
});
