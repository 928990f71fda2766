/**
 * A cheap RGB preview of an SDXL latent without the VAE: a fixed linear map of the 4 latent
 * channels (ComfyUI's `latent_formats.SDXL` latent_rgb_factors and bias), then (v+1)/2 clamped to
 * 0..1, at latent resolution. ComfyUI applies the factors to the sampler's own latent, i.e. the
 * *scaled* one (×0.13025) — the factors were fitted in that space — so we do the same and never
 * divide by the scale factor. Only the batch's first item is shown.
 */
import { createImage, type ImageTensor, type LatentTensor } from '../../api/tensor.ts';

/** Rows are latent channels, columns R, G, B. */
export const SDXL_LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.3651, 0.4232, 0.4341],
  [-0.2533, -0.0042, 0.1068],
  [0.1076, 0.1111, -0.0362],
  [-0.3165, -0.2492, -0.2188],
];
export const SDXL_LATENT_RGB_BIAS: readonly [number, number, number] = [0.1084, -0.0175, -0.0011];

/** The first item of a scaled [n, 4, h, w] latent as a 1×3×h×w image in 0..1. */
export function latent2rgb(latent: Pick<LatentTensor, 'data' | 'c' | 'h' | 'w'>): ImageTensor {
  const { c, h, w } = latent;
  if (c !== SDXL_LATENT_RGB_FACTORS.length) throw new RangeError(`latent preview needs ${SDXL_LATENT_RGB_FACTORS.length} channels, got ${c}`);
  const plane = h * w;
  const img = createImage(1, 3, h, w);
  for (let rgb = 0; rgb < 3; rgb++) {
    const out = img.data.subarray(rgb * plane, (rgb + 1) * plane);
    out.fill(SDXL_LATENT_RGB_BIAS[rgb]!);
    for (let ch = 0; ch < c; ch++) {
      const f = SDXL_LATENT_RGB_FACTORS[ch]![rgb]!;
      const src = latent.data.subarray(ch * plane, (ch + 1) * plane);
      for (let i = 0; i < plane; i++) out[i] = out[i]! + src[i]! * f;
    }
    for (let i = 0; i < plane; i++) out[i] = Math.min(1, Math.max(0, (out[i]! + 1) / 2));
  }
  return img;
}
