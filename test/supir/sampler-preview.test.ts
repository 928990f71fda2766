/** latent2rgb: ComfyUI's SDXL latent→RGB factors on the scaled latent, (v+1)/2 clamped, first item only. */
import { describe, expect, it } from 'vitest';
import { latent2rgb, SDXL_LATENT_RGB_BIAS, SDXL_LATENT_RGB_FACTORS } from '../../nodes/supir/lib/latent-preview.ts';

describe('latent2rgb', () => {
  it('maps each cell through the factor matrix and bias, then to 0..1', () => {
    const h = 2;
    const w = 3;
    const plane = h * w;
    // Batch of 2: the second item must not show.
    const data = new Float32Array(2 * 4 * plane).map((_, i) => (i < 4 * plane ? Math.sin(i) * 0.8 : 99));
    const img = latent2rgb({ data, c: 4, h, w });
    expect([img.n, img.c, img.h, img.w]).toEqual([1, 3, h, w]);
    for (let p = 0; p < plane; p++) {
      for (let rgb = 0; rgb < 3; rgb++) {
        let v = SDXL_LATENT_RGB_BIAS[rgb]!;
        for (let ch = 0; ch < 4; ch++) v += data[ch * plane + p]! * SDXL_LATENT_RGB_FACTORS[ch]![rgb]!;
        expect(img.data[rgb * plane + p]).toBeCloseTo(Math.min(1, Math.max(0, (v + 1) / 2)), 6);
      }
    }
  });

  it('clamps out-of-range values and rejects non-SDXL latents', () => {
    const big = latent2rgb({ data: new Float32Array(16).fill(100), c: 4, h: 2, w: 2 });
    // Column sums of the factors: R −0.0971 (×100 → clamped to 0), B +0.2859 (×100 → 1).
    expect(Array.from(big.data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(big.data.subarray(8, 12))).toEqual([1, 1, 1, 1]);
    expect(() => latent2rgb({ data: new Float32Array(12), c: 3, h: 2, w: 2 })).toThrow(/4 channels/);
  });
});
