import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import type { ImageTensor } from '../api/tensor.ts';
import { combo } from '../api/widgets.ts';
import { colourFix, type ColourFixMethod, type Planes } from './lib/colorfix.ts';

export const COLOUR_FIX_METHODS = ['Wavelet', 'AdaIN', 'None'] as const;

/** 0..1 → [-1, 1], where the official code applies the fix (AdaIN's eps is not scale-free). */
function toSigned(image: ImageTensor): Planes {
  return { ...image, data: image.data.map((v) => v * 2 - 1) };
}

/** The reference for every image of the batch: the same batch size, or one image for all. */
function broadcast(reference: ImageTensor, n: number): ImageTensor {
  if (reference.n === n) return reference;
  const data = new Float32Array(n * reference.data.length);
  for (let i = 0; i < n; i++) data.set(reference.data, i * reference.data.length);
  return { ...reference, n, data };
}

/**
 * SUPIR's colour correction: the restored image keeps its detail and takes the colours of the
 * reference (the stage-1 image). Wavelet swaps the low-frequency band (5 à-trous levels, up to
 * 32 px); AdaIN matches each channel's mean and spread. Nothing is clamped: Save does that.
 */
export default defineNode({
  id: 'ColourFix',
  displayName: 'SUPIR Colour Fix',
  category: 'supir',
  description:
    "Gives the restored image the reference's colours: Wavelet (SUPIR's default) keeps the image's fine detail over the reference's low frequencies; AdaIN matches per-channel mean and spread.",
  inputs: {
    image: { type: 'IMAGE', description: 'The restored image (SUPIR Decode).' },
    reference: { type: 'IMAGE', description: 'Whose colours to keep: the stage-1 image.' },
  },
  widgets: { method: combo({ options: COLOUR_FIX_METHODS, default: 'Wavelet' }) },
  outputs: { image: 'IMAGE' },
  execute({ image, reference, method }) {
    if (method === 'None') return { image };
    if (reference.c !== image.c || reference.h !== image.h || reference.w !== image.w) {
      throw new InputError('reference', `is ${reference.w}x${reference.h} with ${reference.c} channels, the image ${image.w}x${image.h} with ${image.c}: they must match (resize one)`);
    }
    if (reference.n !== image.n && reference.n !== 1) {
      throw new InputError('reference', `holds ${reference.n} images for a batch of ${image.n}: give one reference, or one per image`);
    }
    const fixed = colourFix(toSigned(image), toSigned(broadcast(reference, image.n)), method as ColourFixMethod);
    const data = fixed.data.map((v) => (v + 1) / 2);
    return { image: { n: image.n, c: image.c, h: image.h, w: image.w, data } };
  },
});
